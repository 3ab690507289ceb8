"""Unit tests for the certificate filters of plugins/filter/peers.py."""

import pytest
from ansible.errors import AnsibleFilterError
from peers import san_name, stack_certificates, stack_pki_plan

GROUPS = {"all": ["prom-a", "am-1", "lb-1"], "alertmanager": ["am-1"], "loadbalancer": ["lb-1"]}
HOSTVARS = {
    "prom-a": {"stack_address": "10.0.0.11", "prometheus_web_tls_server_name": "prom.internal"},
    "am-1": {"stack_address": "fd00::21"},
    "lb-1": {"stack_address": "10.0.0.31", "keepalived_virtual_ipaddress": "10.0.0.30/24",
             "nginx_server_name": "monitoring.example.org"},
}


def by(certificates, host, kind):
    return next(c["names"] for c in certificates if c["host"] == host and c["kind"] == kind)


def test_web_certificate_names():
    certs = stack_certificates(GROUPS, HOSTVARS)
    assert by(certs, "prom-a", "web") == ["IP:10.0.0.11", "DNS:prom-a", "DNS:prom.internal", "DNS:alertmanager",
                                          "DNS:node-exporter", "DNS:remote-storage"]
    assert by(certs, "am-1", "web")[0] == "IP:fd00::21"


def test_balancer_carries_floating_address_and_server_name():
    names = by(stack_certificates(GROUPS, HOSTVARS), "lb-1", "web")
    assert names[-2:] == ["IP:10.0.0.30", "DNS:monitoring.example.org"]


def test_gossip_only_for_alertmanagers_and_only_own_names():
    certs = stack_certificates(GROUPS, HOSTVARS)
    assert [(c["host"]) for c in certs if c["kind"] == "gossip"] == ["am-1"]
    assert by(certs, "am-1", "gossip") == ["IP:fd00::21", "DNS:am-1"]


def test_host_without_address_uses_its_name():
    certs = stack_certificates({"all": ["node-9"]}, {"node-9": {}})
    assert by(certs, "node-9", "web")[0] == "DNS:node-9"
    assert by(certs, "node-9", "web").count("DNS:node-9") == 1


@pytest.mark.parametrize("value,expected", [("10.1.2.3", "IP:10.1.2.3"), ("[fd00::1]", "IP:fd00::1"),
                                            ("grafana.example.org", "DNS:grafana.example.org")])
def test_san_name(value, expected):
    assert san_name(value) == expected


@pytest.mark.parametrize("value", ["", None, "bad name", "a\nDNS:evil", "prom-a\n", "-x"])
def test_san_name_refuses(value):
    with pytest.raises(AnsibleFilterError, match="neither an IP address nor a DNS name"):
        san_name(value)


def test_groups_must_be_a_mapping():
    with pytest.raises(AnsibleFilterError, match="groups mapping"):
        stack_certificates(["prom-a"], HOSTVARS)


def test_registered():
    from peers import FilterModule
    assert {"stack_certificates", "stack_pki_plan", "san_name"} <= set(FilterModule().filters())


def hosts_of(plan):
    return [(c["kind"], c["host"]) for c in plan["certificates"]]


def test_plan_of_an_empty_directory_issues_everything():
    plan = stack_pki_plan(GROUPS, HOSTVARS, [], ["prometheus_web"])
    assert plan["cas"] == ["web", "gossip"]
    assert hosts_of(plan) == [("web", "am-1"), ("web", "lb-1"), ("web", "prom-a"), ("gossip", "am-1")]
    assert plan["credentials"] == ["prometheus_web"]


def test_plan_fills_gaps_only():
    present = ["web/ca.crt", "gossip/ca.crt", "web/am-1.crt", "web/prom-a.crt", "gossip/am-1.crt",
               "credentials/prometheus_web"]
    plan = stack_pki_plan(GROUPS, HOSTVARS, present, ["prometheus_web", "alertmanager_web"])
    assert plan == {"cas": [], "certificates": [c for c in stack_certificates(GROUPS, HOSTVARS)
                                                 if (c["kind"], c["host"]) == ("web", "lb-1")],
                    "credentials": ["alertmanager_web"]}


def test_a_new_ca_reissues_its_kind():
    present = ["web/ca.crt", "web/am-1.crt", "web/lb-1.crt", "web/prom-a.crt", "gossip/am-1.crt"]
    assert hosts_of(stack_pki_plan(GROUPS, HOSTVARS, present, [])) == [("gossip", "am-1")]


def test_plan_refuses_non_lists():
    with pytest.raises(AnsibleFilterError, match="must be lists"):
        stack_pki_plan(GROUPS, HOSTVARS, "web/ca.crt", [])
