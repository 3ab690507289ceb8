"""Unit tests for the stack's flows (collections/.../plugin_utils/flows.py) as the stack model holds them."""

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.promha.stack.plugins.plugin_utils.firewall import firewall_rules
from ansible_collections.promha.stack.plugins.plugin_utils.model import stack_model

GROUPS = {"all": ["p0a", "p0b", "g1", "am1", "am2", "lb1", "lb2", "db1"], "prometheus": ["p0a", "p0b"],
          "prometheus_global": ["g1"], "alertmanager": ["am1", "am2"], "loadbalancer": ["lb1", "lb2"],
          "mysql": ["db1"]}


def hostvars():
    found = {host: {"stack_address": f"10.0.0.{number}"} for number, host in enumerate(GROUPS["all"], 1)}
    found["p0a"]["prometheus_shard"] = found["p0b"]["prometheus_shard"] = 0
    # Two instances on am1, one of them on an address of its own.
    first, second = {"name": "x", "web_port": 9093, "cluster_port": 9094, "address": "10.0.1.9"}, {"name": "y"}
    found["am1"]["alertmanager_instances"] = [first, dict(second, web_port=9193, cluster_port=9194)]
    return found


def flows_of(model, host):
    return {(flow["name"], tuple(flow["protos"])): flow for flow in model["flows"][host]}


def test_each_host_is_called_by_the_groups_the_table_names_on_its_own_port():
    variables = hostvars()
    variables["db1"]["node_exporter_port"] = 19100
    model = stack_model(GROUPS, variables)
    db = flows_of(model, "db1")
    assert db["node_exporter", ("tcp",)] == {"name": "node_exporter", "protos": ["tcp"], "ports": [19100],
                                             "callers": "prometheus", "operated": True, "clients": False}
    assert model["callers"]["prometheus"] == {"10.0.0.1": "p0a", "10.0.0.2": "p0b"}
    # No Grafana here: nobody calls MySQL.
    assert model["callers"][db["mysql", ("tcp",)]["callers"]] == {} and not db["mysql", ("tcp",)]["operated"]
    # The callers of one set of groups are written once, whatever the number of hosts they call.
    assert model["flows"]["lb1"][0]["callers"] == model["flows"]["db1"][0]["callers"] == "prometheus"


def test_a_replica_is_called_by_its_pair_the_global_tier_and_the_balancers():
    model = stack_model(GROUPS, hostvars())
    p0a = [flow["callers"] for flow in model["flows"]["p0a"] if flow["name"] == "prometheus"]
    assert p0a == ["shard 0", "prometheus_global+loadbalancer"]
    assert [model["callers"][key] for key in p0a] == [{"10.0.0.1": "p0a", "10.0.0.2": "p0b"},
                                                      {"10.0.0.3": "g1", "10.0.0.6": "lb1", "10.0.0.7": "lb2"}]


def test_gossip_comes_from_the_other_hosts_instances_and_is_tcp_only_under_tls():
    model = stack_model(GROUPS, hostvars())
    am2 = flows_of(model, "am2")
    assert model["callers"][am2["alertmanager_gossip", ("tcp",)]["callers"]] == {"10.0.0.4": "am1", "10.0.1.9": "am1"}
    assert flows_of(model, "am1")["alertmanager", ("tcp",)]["ports"] == [9093, 9193]
    assert flows_of(model, "am1")["alertmanager_gossip", ("tcp",)]["ports"] == [9094, 9194]
    variables = hostvars()
    variables["am2"]["alertmanager_cluster_tls_enabled"] = False
    assert ("alertmanager_gossip", ("tcp", "udp")) in flows_of(stack_model(GROUPS, variables), "am2")


def test_the_front_is_the_clients_and_vrrp_follows_keepalived_authentication():
    variables = hostvars()
    variables["lb2"]["keepalived_authentication"] = "none"
    model = stack_model(GROUPS, variables)
    assert flows_of(model, "lb1")["front", ("tcp",)]["clients"] is True
    assert flows_of(model, "lb1")["front", ("tcp",)]["ports"] == [80, 443]
    assert ("vrrp", ("ah",)) in flows_of(model, "lb1") and ("vrrp", ("vrrp",)) in flows_of(model, "lb2")
    variables["lb2"]["keepalived_authentication"] = "pass"
    with pytest.raises(AnsibleFilterError, match="keepalived_authentication of 'lb2' must be ah or none"):
        stack_model(GROUPS, variables)


def test_the_firewall_plan_is_the_models_flows():
    variables = hostvars()
    model = stack_model(GROUPS, variables)
    plan = {(r["name"], r["proto"]): r for r in firewall_rules("db1", GROUPS, variables, admin_sources=["10.9.9.9"],
                                                                  model=model)}
    assert plan["node_exporter", "tcp"]["v4"] == ["10.0.0.1", "10.0.0.2"]
    # A flow the model does not have is not opened; one it has is.
    model["flows"]["db1"] = [flow for flow in model["flows"]["db1"] if flow["name"] != "node_exporter"]
    model["callers"]["the global tier"] = {"10.0.0.3": "g1"}
    model["flows"]["db1"].append({"name": "extra", "protos": ["udp"], "ports": [7], "callers": "the global tier",
                                  "operated": False, "clients": False})
    plan = {(r["name"], r["proto"]): r for r in firewall_rules("db1", GROUPS, variables, admin_sources=["10.9.9.9"],
                                                                  model=model)}
    assert ("node_exporter", "tcp") not in plan and plan["extra", "udp"]["v4"] == ["10.0.0.3"]
