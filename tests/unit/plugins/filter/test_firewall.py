"""Unit tests for firewall_rules (the stack model's firewall module): the flows each host accepts, from the inventory."""

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.promha.stack.plugins.plugin_utils.firewall import firewall_rules
from ansible_collections.promha.stack.plugins.plugin_utils.model import stack_model, stack_view

GROUPS = {
    "all": ["prom-s0-a", "prom-s0-b", "prom-g", "am-1", "am-2", "vm-1", "db-1", "graf-1", "graf-2", "lb-1", "lb-2"],
    "prometheus": ["prom-s0-a", "prom-s0-b"],
    "prometheus_global": ["prom-g"],
    "alertmanager": ["am-1", "am-2"],
    "remote_storage": ["vm-1"],
    "mysql": ["db-1"],
    "grafana": ["graf-1", "graf-2"],
    "loadbalancer": ["lb-1", "lb-2"],
}
ADDRESSES = {"prom-s0-a": "10.0.0.21", "prom-s0-b": "10.0.0.22", "prom-g": "10.0.0.25", "am-1": "10.0.0.31",
             "am-2": "10.0.0.32", "vm-1": "10.0.0.41", "db-1": "10.0.0.51", "graf-1": "10.0.0.61",
             "graf-2": "10.0.0.62", "lb-1": "10.0.0.71", "lb-2": "10.0.0.72"}
HOSTVARS = {host: {"stack_address": address} for host, address in ADDRESSES.items()}
HOSTVARS["prom-s0-a"]["prometheus_shard"] = HOSTVARS["prom-s0-b"]["prometheus_shard"] = 0
HOSTVARS["am-1"]["alertmanager_instances"] = [{"name": "a", "web_port": 19093, "cluster_port": 19094},
                                              {"name": "b", "web_port": 29093, "cluster_port": 29094,
                                               "address": "10.0.0.33"}]
ADMIN = ["10.0.0.1"]
PROMETHEUS = ["10.0.0.21", "10.0.0.22", "10.0.0.25"]


def rules(host, hostvars=HOSTVARS, **kwargs):
    kwargs.setdefault("admin_sources", ADMIN)
    return {(r["name"], r["proto"]): r for r in firewall_rules(host, GROUPS, hostvars, **kwargs)}


def test_every_host_opens_ssh_to_the_admins_and_node_exporter_to_prometheus_only():
    found = rules("db-1")
    assert found["ssh", "tcp"] == {"name": "ssh", "proto": "tcp", "ports": [22], "v4": ADMIN, "v6": [],
                                   "anywhere": False}
    assert found["node_exporter", "tcp"]["ports"] == [9100]
    # The scraping replicas only: the global tier federates, it scrapes no node_exporter.
    assert found["node_exporter", "tcp"]["v4"] == ["10.0.0.21", "10.0.0.22"]
    # MySQL answers Grafana only, never an operator.
    assert found["mysql", "tcp"]["v4"] == ["10.0.0.61", "10.0.0.62"]
    # Its exporter answers the scraping replicas only, not the global tier.
    assert found["mysql_exporter", "tcp"]["ports"] == [9104]
    assert found["mysql_exporter", "tcp"]["v4"] == ["10.0.0.21", "10.0.0.22"]
    assert set(found) == {("icmp", "icmp"), ("icmpv6", "icmpv6"), ("ssh", "tcp"), ("node_exporter", "tcp"),
                          ("mysql", "tcp"), ("mysql_exporter", "tcp")}


def test_a_hosts_view_gives_the_plan_the_model_gives_and_another_hosts_view_is_refused():
    model = stack_model(GROUPS, HOSTVARS)
    for host in GROUPS["all"]:
        assert rules(host, model=stack_view(host, model)) == rules(host, model=model) == rules(host)
    with pytest.raises(AnsibleFilterError, match=r"got the stack view of 'lb-2', not of 'lb-1'"):
        rules("lb-1", model=stack_view("lb-2", model))


def test_only_the_icmp_types_a_host_needs_are_accepted():
    found = rules("db-1")
    assert found["icmp", "icmp"]["types"] == ["echo-request", "destination-unreachable", "time-exceeded",
                                              "parameter-problem"]
    assert found["icmpv6", "icmpv6"]["types"] == ["echo-request", "destination-unreachable", "packet-too-big",
                                                  "time-exceeded", "parameter-problem", "nd-neighbor-solicit",
                                                  "nd-neighbor-advert"]
    for entry in (found["icmp", "icmp"], found["icmpv6", "icmpv6"]):
        assert not {"timestamp-request", "redirect", "nd-router-advert", "nd-redirect"} & set(entry["types"])


def test_a_replica_is_called_by_its_own_shard_only_besides_the_global_tier_and_the_balancers():
    groups = dict(GROUPS, all=GROUPS["all"] + ["prom-s1-a", "prom-s1-b"],
                  prometheus=["prom-s0-a", "prom-s0-b", "prom-s1-a", "prom-s1-b"])
    hostvars = {**HOSTVARS, "prom-s1-a": {"stack_address": "10.0.0.23", "prometheus_shard": 1},
                "prom-s1-b": {"stack_address": "10.0.0.24", "prometheus_shard": 1}}
    hostvars["prom-s0-a"] = dict(HOSTVARS["prom-s0-a"], prometheus_shard=0)
    hostvars["prom-s0-b"] = dict(HOSTVARS["prom-s0-b"], prometheus_shard="0")
    found = {(r["name"], r["proto"]): r for r in firewall_rules("prom-s1-a", groups, hostvars, admin_sources=ADMIN)}
    assert found["prometheus", "tcp"]["v4"] == ["10.0.0.24", "10.0.0.25", "10.0.0.71", "10.0.0.72"]
    found = {(r["name"], r["proto"]): r for r in firewall_rules("prom-s0-a", groups, hostvars, admin_sources=ADMIN)}
    assert found["prometheus", "tcp"]["v4"] == ["10.0.0.22", "10.0.0.25", "10.0.0.71", "10.0.0.72"]
    # Every replica of every shard still scrapes node_exporter, wherever the shard plan puts a host.
    assert found["node_exporter", "tcp"]["v4"] == ["10.0.0.22", "10.0.0.23", "10.0.0.24"]


def test_a_prometheus_replica_answers_its_pair_the_global_tier_and_the_balancers_not_itself():
    found = rules("prom-s0-a", operator_sources=["192.0.2.0/24"])
    assert found["prometheus", "tcp"]["ports"] == [9090]
    assert found["prometheus", "tcp"]["v4"] == ["10.0.0.22", "10.0.0.25", "10.0.0.71", "10.0.0.72", "192.0.2.0/24"]
    # Operators reach the HTTP ports, never SSH unless they are admins too.
    assert found["ssh", "tcp"]["v4"] == ADMIN


def test_alertmanager_web_ports_from_prometheus_and_balancers_gossip_from_every_other_instance():
    found = rules("am-2")
    assert found["alertmanager", "tcp"]["ports"] == [9093]
    assert found["alertmanager", "tcp"]["v4"] == PROMETHEUS + ["10.0.0.71", "10.0.0.72"]
    assert found["alertmanager_gossip", "tcp"]["ports"] == [9094]
    # am-1's host address and its second instance's own address.
    assert found["alertmanager_gossip", "tcp"]["v4"] == ["10.0.0.31", "10.0.0.33"]
    # Gossip TLS (the default) is TCP only: no UDP port is open.
    assert ("alertmanager_gossip", "udp") not in found
    several = rules("am-1")
    assert several["alertmanager", "tcp"]["ports"] == [19093, 29093]
    assert several["alertmanager_gossip", "tcp"]["ports"] == [19094, 29094]
    assert several["alertmanager_gossip", "tcp"]["v4"] == ["10.0.0.32"]


@pytest.mark.parametrize("switch", [{"stack_plain_http": True}, {"alertmanager_cluster_tls_enabled": "false"}])
def test_plain_gossip_opens_udp_too(switch):
    hostvars = dict(HOSTVARS, **{"am-2": dict(HOSTVARS["am-2"], **switch)})
    found = rules("am-2", hostvars=hostvars)
    for proto in ("tcp", "udp"):
        assert found["alertmanager_gossip", proto]["v4"] == ["10.0.0.31", "10.0.0.33"]


def test_balancers_open_the_front_to_anyone_by_default_and_vrrp_to_each_other():
    found = rules("lb-1")
    assert found["front", "tcp"] == {"name": "front", "proto": "tcp", "ports": [80, 443], "v4": [], "v6": [],
                                     "anywhere": True}
    # Authenticated VRRP (keepalived's IPsec AH) by default: the advertisements are IP protocol ah.
    assert found["vrrp", "ah"]["v4"] == ["10.0.0.72"]
    assert ("vrrp", "vrrp") not in found
    limited = rules("lb-1", client_sources=["198.51.100.0/24", "2001:db8::/32"])
    assert limited["front", "tcp"]["anywhere"] is False
    # The shard replicas too: they probe the front's paths as users do.
    assert limited["front", "tcp"]["v4"] == ["10.0.0.21", "10.0.0.22", "198.51.100.0/24"]
    assert limited["front", "tcp"]["v6"] == ["2001:db8::/32"]


def test_ports_follow_the_same_settings_as_the_roles():
    hostvars = {h: dict(v) for h, v in HOSTVARS.items()}
    hostvars["vm-1"]["remote_storage_port"] = 18428
    hostvars["vm-1"]["node_exporter_port"] = "19100"
    found = rules("vm-1", hostvars=hostvars)
    assert found["remote_storage", "tcp"]["ports"] == [18428]
    assert found["node_exporter", "tcp"]["ports"] == [19100]
    assert found["remote_storage", "tcp"]["v4"] == PROMETHEUS + ["10.0.0.61", "10.0.0.62", "10.0.0.71", "10.0.0.72"]


def test_extra_rules_from_groups_and_sources_with_ranges():
    hostvars = {h: dict(v) for h, v in HOSTVARS.items()}
    hostvars["graf-1"]["firewall_extra_rules"] = [
        {"name": "farm", "proto": "tcp", "ports": ["19990", "20000-20099"], "from_groups": ["prometheus"]},
        {"name": "farm", "proto": "tcp", "ports": 23000, "sources": ["fd00::/64"]},
    ]
    found = rules("graf-1", hostvars=hostvars)
    assert found["farm", "tcp"]["ports"] == [19990, "20000-20099", 23000]
    assert found["farm", "tcp"]["v4"] == ["10.0.0.21", "10.0.0.22"]
    assert found["farm", "tcp"]["v6"] == ["fd00::/64"]
    assert found["grafana_ha", "udp"]["v4"] == ["10.0.0.62"]


@pytest.mark.parametrize(("rule", "message"), [
    ({"name": "x", "proto": "icmp", "ports": 1, "sources": []}, "proto must be tcp or udp"),
    ({"name": "x", "proto": "tcp", "ports": "90-80", "sources": []}, "runs backwards"),
    ({"name": "x", "proto": "tcp", "ports": 1, "from_groups": ["nope"]}, "does not have"),
    ({"name": "x", "proto": "tcp", "ports": 1, "sourcez": []}, "allowed keys"),
    ({"name": "x", "proto": "tcp", "ports": 1, "sources": ["not-an-ip"]}, "not an IP address or network"),
])
def test_bad_extra_rules_are_refused_naming_the_host(rule, message):
    hostvars = {h: dict(v) for h, v in HOSTVARS.items()}
    hostvars["db-1"]["firewall_extra_rules"] = [rule]
    with pytest.raises(AnsibleFilterError, match=message) as error:
        rules("db-1", hostvars=hostvars)
    assert "'db-1'" in str(error.value)


def test_no_admin_source_is_refused_it_would_lock_the_controller_out():
    with pytest.raises(AnsibleFilterError, match="firewall_admin_sources of 'db-1' is empty"):
        rules("db-1", admin_sources=[])


def test_a_caller_known_only_by_name_is_refused_naming_it():
    hostvars = {h: dict(v) for h, v in HOSTVARS.items()}
    hostvars["graf-2"] = {"ansible_host": "grafana-2.example.org"}
    with pytest.raises(AnsibleFilterError, match="'graf-2' has address 'grafana-2.example.org'"):
        rules("db-1", hostvars=hostvars)


def test_vrrp_without_authentication_is_plain_vrrp_and_a_bad_mode_is_refused_by_name():
    hostvars = {h: dict(v) for h, v in HOSTVARS.items()}
    hostvars["lb-1"]["keepalived_authentication"] = "none"
    found = rules("lb-1", hostvars=hostvars)
    assert found["vrrp", "vrrp"]["v4"] == ["10.0.0.72"]
    assert ("vrrp", "ah") not in found
    plain = {h: dict(v, stack_plain_http=True) for h, v in HOSTVARS.items()}
    assert ("vrrp", "vrrp") in rules("lb-1", hostvars=plain)  # the stack's insecure switch
    hostvars["lb-1"]["keepalived_authentication"] = "pass"
    with pytest.raises(AnsibleFilterError, match=r"^stack_model: keepalived_authentication of 'lb-1' must be ah or "
                                                 r"none, got 'pass'"):
        firewall_rules("lb-1", GROUPS, hostvars, admin_sources=ADMIN)


def test_vrrp_is_accepted_only_from_each_peers_link_layer_address_where_facts_give_it():
    hostvars = {h: dict(v) for h, v in HOSTVARS.items()}
    found = rules("lb-1", hostvars=hostvars)
    assert found["vrrp", "ah"]["macs"] == {}                         # no facts: the address alone
    hostvars["lb-2"]["ansible_facts"] = {
        "interfaces": ["lo", "eth0"],
        "lo": {"ipv4": {"address": "127.0.0.1"}, "macaddress": "00:00:00:00:00:00"},
        "eth0": {"ipv4": {"address": "10.0.0.72"}, "macaddress": "02:42:0A:00:00:48"},
    }
    found = rules("lb-1", hostvars=hostvars)
    assert found["vrrp", "ah"]["macs"] == {"10.0.0.72": "02:42:0a:00:00:48"}
    assert "macs" not in found["front", "tcp"]
    # A fact set whose interfaces hold another address gives no MAC.
    hostvars["lb-2"]["ansible_facts"]["eth0"]["ipv4"]["address"] = "10.9.9.9"
    assert rules("lb-1", hostvars=hostvars)["vrrp", "ah"]["macs"] == {}
