"""Unit tests for the stack model's access rule (collections/.../plugin_utils/access.py) and its lookup."""

import pytest
from ansible.errors import AnsibleLookupError
from ansible_collections.promha.stack.plugins.lookup.access import LookupModule
from ansible_collections.promha.stack.plugins.plugin_utils.access import (
    PORTS,
    TIERS,
    credential_path,
    gossip_files,
    port_tier,
    stack_access,
    tier_password,
    tier_settings,
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


def _secrets(tmp_path, **credentials):
    for name, content in credentials.items():
        (tmp_path / "credentials").mkdir(exist_ok=True)
        (tmp_path / "credentials" / name).write_text(content + "\n")
    return stack_access(None, str(tmp_path), None)


def _client(tier, value, access):
    """What a client sends: the tier's settings with the password."""
    settings = tier_settings(tier, value, access)
    return dict(settings, password=tier_password(tier, settings, value))


def test_a_tier_takes_the_rule_where_its_variables_are_unset(tmp_path):
    access = _secrets(tmp_path, alertmanager_web="s3cret")
    assert _client("alertmanager", lambda name: None, access) == {
        "tls": True, "scheme": "https", "user": "promha", "password": "s3cret", "ca": access["web_ca"],
        "password_file": str(tmp_path / "credentials" / "alertmanager_web")}
    # No credential written yet: an empty password, not an error (the PKI step comes later).
    assert _client("remote_storage", lambda name: None, access)["password"] == ""
    # Grafana's own port and the front take no account of the stack's.
    assert _client("front", lambda name: None, access)["user"] == ""
    assert _client("front", lambda name: None, access)["password_file"] == ""


def test_a_tiers_own_variables_win(tmp_path):
    access = _secrets(tmp_path, node_exporter_web="generated", remote_storage_web="not-read")
    settings = {"grafana_tls_enabled": "no", "grafana_metrics_basic_auth_username": "scraper",
                "remote_storage_basic_auth_password": "given", "remote_storage_tls_ca_src": "/site/ca.pem"}
    assert _client("grafana_metrics", settings.get, access) == {
        "tls": False, "scheme": "http", "user": "scraper", "password": "generated", "ca": "",
        "password_file": str(tmp_path / "credentials" / "node_exporter_web")}
    found = _client("remote_storage", settings.get, access)
    # A password the inventory sets is sent as set; no generated file is named.
    assert (found["password"], found["ca"], found["password_file"]) == ("given", "/site/ca.pem", "")
    # An account set to '' turns basic auth off for that tier alone.
    assert _client("alertmanager", {"alertmanager_web_basic_auth_username": ""}.get, access)["user"] == ""


def test_plain_http_leaves_no_tls_and_no_account(tmp_path):
    access = stack_access(True, str(tmp_path), None)
    assert _client("node_exporter", lambda name: None, access) == {
        "tls": False, "scheme": "http", "user": "", "password": "", "ca": "", "password_file": ""}
    with pytest.raises(KeyError, match="unknown tier 'nodes'"):
        tier_settings("nodes", lambda name: None, access)


def test_every_tiers_variables_are_role_variables():
    # Each name the table gives is a variable some role defines (defaults or argument spec).
    from pathlib import Path

    roles = Path(__file__).resolve().parents[4] / "roles"
    known = " ".join(path.read_text() for path in roles.glob("*/defaults/main.yml"))
    for tier, names in TIERS.items():
        for name in filter(None, names[:4]):
            assert f"\n{name}:" in known, f"{tier}: {name} is no role's default"


def test_the_lookup_reads_secrets_and_tiers(tmp_path):
    _secrets(tmp_path, alertmanager_web="pw")
    hostvars = {"am-1": {"stack_secrets_dir": str(tmp_path), "alertmanager_web_basic_auth_username": "am-user"},
                "prom-1": {"stack_secrets_dir": str(tmp_path)}}
    variables = dict(hostvars["prom-1"], inventory_hostname="prom-1", hostvars=hostvars,
                     groups={"all": ["prom-1", "am-1"], "alertmanager": ["am-1"], "prometheus": ["prom-1"]})
    lookup = LookupModule()
    assert lookup.run(["secret", "alertmanager_web"], variables) == ["pw"]
    assert lookup.run(["secret", "never_written"], variables) == [""]
    # The tier's settings are the model's, read from the hosts that serve it.
    assert lookup.run(["tier", "alertmanager"], variables) == [
        {"tls": True, "scheme": "https", "user": "am-user", "password": "pw", "ca": str(tmp_path / "web" / "ca.crt")}]
    # The run's model, where preflight set it, is read as it is.
    model = {"access": {"alertmanager": {"tls": False, "scheme": "http", "user": "", "ca": "", "password_file": ""}}}
    assert lookup.run(["tier", "alertmanager"], dict(variables, _stack_model=model))[0]["scheme"] == "http"
    with pytest.raises(AnsibleLookupError, match="unknown tier 'alert'"):
        lookup.run(["tier", "alert"], variables)
    # Several tiers at once, by name, each as the tier term gives it.
    tiers = lookup.run(["tiers", "alertmanager", "node_exporter"], variables)[0]
    assert list(tiers) == ["alertmanager", "node_exporter"]
    assert tiers["alertmanager"] == lookup.run(["tier", "alertmanager"], variables)[0]
    assert (tiers["node_exporter"]["user"], tiers["node_exporter"]["password"]) == ("promha", "")
    assert lookup.run(["tiers"], variables) == [{}]
    with pytest.raises(AnsibleLookupError, match="unknown tier 'graf'"):
        lookup.run(["tiers", "front", "graf"], variables)


def test_the_lookup_renders_a_variable_written_as_a_template(tmp_path):
    # A lookup sees variables as written: stack_secrets_dir: "{{ base }}/promha" must be rendered.
    lookup = LookupModule()
    lookup._templar = type("Templar", (), {"template": staticmethod(
        lambda raw: raw.replace("{{ base }}", str(tmp_path)))})()
    variables = {"base": str(tmp_path), "stack_secrets_dir": "{{ base }}/promha", "inventory_hostname": "h"}
    assert lookup.run(["secrets"], variables) == [f"{tmp_path}/promha"]


def test_each_port_variable_names_its_tier():
    assert port_tier("prometheus_port") == "prometheus"
    assert port_tier("remote_storage_port") == "remote_storage"
    assert port_tier("grafana_http_port") == "grafana"  # its /metrics (grafana_metrics) shares the port
    assert port_tier("nginx_tls_port") == "front"
    assert port_tier("mysql_port") is None
    ports = [tier.port for tier in TIERS.values() if tier.port]
    assert all(port.endswith("_port") for port in ports)
    assert TIERS["alertmanager"].port is None  # several instances per host, each its own port


def test_every_default_port_is_the_roles_and_every_tiers_port_has_one():
    from pathlib import Path

    import yaml

    roles = Path(__file__).resolve().parents[4] / "roles"
    defaults = {}
    for path in roles.glob("*/defaults/main.yml"):
        defaults.update(yaml.safe_load(path.read_text()) or {})
    assert PORTS == {name: defaults[name] for name in PORTS}
    assert {tier.port for tier in TIERS.values() if tier.port} <= set(PORTS)
