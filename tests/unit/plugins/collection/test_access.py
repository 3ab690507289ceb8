"""Unit tests for the stack model's access rule (collections/.../plugin_utils/access.py) and its lookup."""

import pytest
from ansible.errors import AnsibleLookupError
from ansible_collections.promha.stack.plugins.lookup.access import LookupModule
from ansible_collections.promha.stack.plugins.plugin_utils.access import (
    credential_path,
    gossip_files,
    stack_access,
    truthy,
    web_files,
)


@pytest.mark.parametrize("value,expected", [(True, True), ("yes", True), ("On", True), ("1", True), (False, False),
                                            ("false", False), ("no", False), ("", False), (None, False)])
def test_the_switch_reads_inventory_booleans(value, expected):
    assert truthy(value) is expected
    assert stack_access(value, None, "/inv")["plain"] is expected


def test_secure_by_default_with_the_secrets_beside_the_inventory():
    assert stack_access(None, None, "/srv/inv") == {
        "plain": False, "tls": True, "user": "promha", "secrets": "/srv/inv/.secrets",
        "web_ca": "/srv/inv/.secrets/web/ca.crt", "gossip_ca": "/srv/inv/.secrets/gossip/ca.crt"}


def test_plain_http_drops_tls_and_the_account_and_a_secrets_dir_wins():
    found = stack_access("true", "/vault/promha", "/srv/inv")
    assert (found["tls"], found["user"], found["secrets"]) == (False, "", "/vault/promha")
    assert stack_access(None, None, None)["secrets"] == ""


def test_the_pki_steps_paths():
    found = stack_access(None, "/s", None)
    assert web_files(found, "am-1", "alertmanager") == {
        "cert": "/s/web/am-1/alertmanager.crt", "key": "/s/web/am-1/alertmanager.key", "ca": "/s/web/ca.crt"}
    assert gossip_files(found, "am-1") == {"cert": "/s/gossip/am-1.crt", "key": "/s/gossip/am-1.key",
                                           "ca": "/s/gossip/ca.crt"}
    assert credential_path(found, "prometheus_web") == "/s/credentials/prometheus_web"


def test_the_lookup_answers_for_the_host_at_hand():
    variables = {"inventory_dir": "/srv/inv", "inventory_hostname": "prom-1"}
    lookup = LookupModule()
    assert lookup.run(["tls"], variables) == [True]
    assert lookup.run(["user"], variables) == ["promha"]
    assert lookup.run(["cert", "prometheus"], variables) == ["/srv/inv/.secrets/web/prom-1/prometheus.crt"]
    assert lookup.run(["gossip_key"], variables) == ["/srv/inv/.secrets/gossip/prom-1.key"]
    assert lookup.run(["credential", "vrrp_front"], variables) == ["/srv/inv/.secrets/credentials/vrrp_front"]
    assert lookup.run(["tls"], dict(variables, stack_plain_http="yes")) == [False]
    for terms in (["nope"], ["cert"], ["tls", "extra"]):
        with pytest.raises(AnsibleLookupError, match="unknown setting"):
            lookup.run(terms, variables)


def test_the_lookup_answers_for_another_host_when_asked():
    # A play on the controller (localhost) asking for the stack's secrets directory.
    variables = {"inventory_dir": "/elsewhere", "inventory_hostname": "localhost", "hostvars": {
        "prom-1": {"inventory_dir": "/srv/inv", "inventory_hostname": "prom-1"},
        "prom-2": {"inventory_dir": "/srv/inv", "stack_secrets_dir": "/vault/promha"}}}
    lookup = LookupModule()
    assert lookup.run(["secrets"], variables, host="prom-1") == ["/srv/inv/.secrets"]
    assert lookup.run(["secrets"], variables, host="prom-2") == ["/vault/promha"]
    assert lookup.run(["secrets"], variables) == ["/elsewhere/.secrets"]
    with pytest.raises(AnsibleLookupError, match="host 'nobody' is not in the inventory"):
        lookup.run(["secrets"], variables, host="nobody")
    with pytest.raises(AnsibleLookupError, match=r"unknown option\(s\) \['hots'\]"):
        lookup.run(["secrets"], variables, hots="prom-1")
