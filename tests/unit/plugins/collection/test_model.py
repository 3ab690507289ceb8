"""Unit tests for the stack model (collections/.../plugin_utils/model.py) and its lookup."""

import pytest
from ansible.errors import AnsibleFilterError, AnsibleLookupError
from ansible_collections.promha.stack.plugins.lookup.model import LookupModule
from ansible_collections.promha.stack.plugins.lookup.view import LookupModule as ViewLookup
from ansible_collections.promha.stack.plugins.plugin_utils.access import TIERS
from ansible_collections.promha.stack.plugins.plugin_utils.inventory import host_ports
from ansible_collections.promha.stack.plugins.plugin_utils.model import DEFAULT_MIN_REPLICAS, endpoints, stack_model, stack_view


def inventory():
    hostvars = {
        "p0a": {"prometheus_shard": 0, "stack_address": "10.0.0.1"},
        "p0b": {"prometheus_shard": 0, "ansible_host": "10.0.0.2"},
        "p1a": {"prometheus_shard": 1, "stack_address": "fd00::3"},
        "p1b": {"prometheus_shard": "1", "stack_address": "10.0.0.4"},
        "g1": {"stack_address": "10.0.0.5"},
        "am1": {"stack_address": "10.0.0.6", "alertmanager_instances": [
            {"name": "a", "web_port": 19093, "cluster_port": 19094},
            {"name": "b", "web_port": 29093, "cluster_port": 29094}]},
        "am2": {"stack_address": "10.0.0.7"},
    }
    groups = {"all": list(hostvars), "prometheus": ["p1b", "p0a", "p1a", "p0b"], "prometheus_global": ["g1"],
              "alertmanager": ["am2", "am1"]}
    return groups, hostvars


def test_the_model_of_an_inventory():
    groups, hostvars = inventory()
    model = stack_model(groups, hostvars)
    assert model["addresses"] == {"p0a": "10.0.0.1", "p0b": "10.0.0.2", "p1a": "fd00::3", "p1b": "10.0.0.4",
                                  "g1": "10.0.0.5", "am1": "10.0.0.6", "am2": "10.0.0.7"}
    assert model["shards"] == {0: ["p0a", "p0b"], 1: ["p1a", "p1b"]}
    assert model["global"] == ["g1"]
    assert [(i["peer_name"], i["web"], i["cluster"]) for i in model["alertmanagers"]] == [
        ("am1-a", "10.0.0.6:19093", "10.0.0.6:19094"), ("am1-b", "10.0.0.6:29093", "10.0.0.6:29094"),
        ("am2-9093", "10.0.0.7:9093", "10.0.0.7:9094")]


def test_an_inventory_without_prometheus_or_alertmanager_has_none():
    model = stack_model({"all": ["db-1"], "mysql": ["db-1"]}, {"db-1": {}})
    assert (model["shards"], model["global"], model["alertmanagers"]) == ({}, [], [])
    assert model["addresses"] == {"db-1": "db-1"}


def test_shards_need_the_replicas_the_first_prometheus_host_asks_for():
    groups, hostvars = inventory()
    del hostvars["p1b"]["prometheus_shard"]
    groups["prometheus"].remove("p1b")
    with pytest.raises(AnsibleFilterError, match=rf"shard 1 has 1 replica\(s\) \(p1a\); .* at least {DEFAULT_MIN_REPLICAS}"):
        stack_model(groups, hostvars)
    hostvars["p0a"]["prometheus_min_replicas"] = 1  # p0a: the group's first host
    assert stack_model(groups, hostvars)["shards"] == {0: ["p0a", "p0b"], 1: ["p1a"]}


def test_a_problem_names_the_host_and_variable():
    groups, hostvars = inventory()
    hostvars["am2"]["alertmanager_instances"] = "9093"
    with pytest.raises(AnsibleFilterError, match=r"host 'am2' has alertmanager_instances='9093'"):
        stack_model(groups, hostvars)


def test_a_partial_model_leaves_out_what_cannot_be_built_and_keeps_the_rest():
    groups, hostvars = inventory()
    hostvars["am2"]["alertmanager_instances"] = "9093"
    hostvars["p1b"]["prometheus_shard"] = 2  # shard 1 and 2 with one replica each
    model = stack_model(groups, hostvars, partial=True)
    assert (model["shards"], model["alertmanagers"]) == ({}, [])
    assert model["addresses"]["am2"] == "10.0.0.7" and model["global"] == ["g1"]


def test_each_tier_is_served_on_its_hosts_port_else_the_roles_default():
    groups, hostvars = inventory()
    hostvars["p0b"]["prometheus_port"] = 19090
    groups.update(remote_storage=["am2"], loadbalancer=["g1"])
    model = stack_model(groups, hostvars)
    assert model["endpoints"]["prometheus"] == {"p1b": "10.0.0.4:9090", "p0a": "10.0.0.1:9090", "p1a": "[fd00::3]:9090",
                                                "p0b": "10.0.0.2:19090", "g1": "10.0.0.5:9090"}
    assert model["endpoints"]["remote_storage"] == {"am2": "10.0.0.7:8428"}
    assert model["endpoints"]["front"] == {"g1": "10.0.0.5:443"}
    assert len(model["endpoints"]["node_exporter"]) == len(groups["all"])
    assert model["endpoints"]["grafana"] == {} and model["endpoints"]["mysql_exporter"] == {}


def test_endpoints_are_what_host_ports_gave_for_the_same_hosts():
    groups, hostvars = inventory()
    hostvars["p1a"]["prometheus_port"] = "9091"
    model = stack_model(groups, hostvars)
    for hosts in (groups["prometheus"], ["p1a", "p1b"], ["g1"], groups["prometheus"] + ["p0a"]):
        assert endpoints(hosts, model, "prometheus") == host_ports(hosts, hostvars, 9090, port_var="prometheus_port")
    assert endpoints([], model, "prometheus") == []


def test_grafanas_gossip_endpoints_are_its_ha_port_else_the_roles_default():
    groups, hostvars = inventory()
    groups["grafana"] = ["p0a", "g1", "am2"]
    hostvars["g1"]["grafana_ha_port"] = 19094
    model = stack_model(groups, hostvars)
    assert model["endpoints"]["grafana_ha"] == {"p0a": "10.0.0.1:9094", "g1": "10.0.0.5:19094", "am2": "10.0.0.7:9094"}
    # What the role's ha_peers was before the model: every other instance, on its port.
    for host in groups["grafana"]:
        others = [h for h in groups["grafana"] if h != host]
        assert endpoints(others, model, "grafana_ha") == host_ports(
            groups["grafana"], hostvars, 9094, port_var="grafana_ha_port", exclude=host)


def test_a_hosts_view_is_the_shared_model_and_its_own_part():
    groups, hostvars = inventory()
    groups.update(grafana=["am1"], remote_storage=["am2"])
    model = stack_model(groups, hostvars)
    view = stack_view("p1a", model)
    assert (view["host"], view["address"], view["shard"], view["replicas"]) == ("p1a", "fd00::3", 1, ["p1a", "p1b"])
    assert view["serves"] == {"prometheus": "[fd00::3]:9090", "node_exporter": "[fd00::3]:9100"}
    assert view["instances"] == [] and view["flows"] == model["flows"]["p1a"]
    assert {c["service"] for c in view["certificates"]} >= {"prometheus", "node-exporter"}
    assert all(c["host"] == "p1a" for c in view["certificates"])
    # The shared parts are the model's own objects, not copies.
    assert all(view[part] is model[part] for part in ("addresses", "endpoints", "access", "shards", "alertmanagers"))
    assert endpoints(["am2"], view, "remote_storage") == ["10.0.0.7:8428"]
    glob, am1 = stack_view("g1", model), stack_view("am1", model)
    assert (glob["shard"], glob["replicas"]) == ("global", ["g1"])
    assert (am1["shard"], am1["replicas"]) == (None, [])
    assert [i["name"] for i in am1["instances"]] == ["a", "b"]
    assert set(am1["serves"]) == {"node_exporter", "grafana", "grafana_ha"}
    with pytest.raises(AnsibleFilterError, match=r"host 'p9' is not in the stack model"):
        stack_view("p9", model)
    with pytest.raises(AnsibleFilterError, match=r"expects the stack model"):
        stack_view("p1a", {"shards": {}})


def test_a_host_that_does_not_serve_the_tier_and_an_unknown_tier_are_refused():
    groups, hostvars = inventory()
    model = stack_model(groups, hostvars)
    with pytest.raises(AnsibleFilterError, match=r"host\(s\) am1 do not serve prometheus \(the hosts of prometheus "
                       r"and prometheus_global do, unless they switch it off\)"):
        endpoints(["p0a", "am1"], model, "prometheus")
    with pytest.raises(AnsibleFilterError, match=r"'grafna' is not a tier of the stack model"):
        endpoints(["p0a"], model, "grafna")
    hostvars["g1"]["prometheus_port"] = 70000
    with pytest.raises(AnsibleFilterError, match=r"host 'g1' \(prometheus_port\)"):
        stack_model(groups, hostvars)
    assert "g1" not in stack_model(groups, hostvars, partial=True)["endpoints"]["prometheus"]


def test_a_host_that_switches_its_exporter_off_does_not_serve_it():
    groups = {"all": ["db1", "db2", "lb1"], "mysql": ["db1", "db2"], "loadbalancer": ["lb1"]}
    hostvars = {"db1": {}, "db2": {"mysql_exporter_enabled": "false"}, "lb1": {"nginx_exporter_enabled": False}}
    model = stack_model(groups, hostvars)
    assert model["endpoints"]["mysql_exporter"] == {"db1": "db1:9104"}
    assert model["endpoints"]["nginx_exporter"] == {}
    # Its node_exporter and the rest stay; no flow reaches the exporter's port.
    assert set(model["endpoints"]["node_exporter"]) == {"db1", "db2", "lb1"}
    assert [f["name"] for f in model["flows"]["db1"]].count("mysql_exporter") == 1
    assert "mysql_exporter" not in [f["name"] for f in model["flows"]["db2"]]
    assert "nginx_exporter" not in [f["name"] for f in model["flows"]["lb1"]]
    with pytest.raises(AnsibleFilterError, match=r"host\(s\) db2 do not serve mysql_exporter"):
        endpoints(["db1", "db2"], model, "mysql_exporter")


def test_the_certificates_are_the_pki_steps_and_its_plan_reads_them():
    from ansible_collections.promha.stack.plugins.plugin_utils.pki import stack_certificates, stack_pki_plan

    groups, hostvars = inventory()
    model = stack_model(groups, hostvars)
    assert model["certificates"] == stack_certificates(groups, hostvars)
    assert {(c["host"], c["service"]) for c in model["certificates"]} >= {("p1a", "prometheus"), ("am1", "gossip")}
    # The plan issues what the model lists: a certificate the model leaves out is not issued.
    listed = [c for c in model["certificates"] if c["host"] != "g1"]
    plan = stack_pki_plan(groups, hostvars, ["web/ca.crt", "gossip/ca.crt"], [], certificates=listed)
    assert plan["certificates"] == listed


def test_each_tier_is_reached_as_the_hosts_serving_it_say_else_by_the_rule():
    groups, hostvars = inventory()
    for host in hostvars:
        hostvars[host]["inventory_dir"] = "/srv/inv"
    # Alertmanager's hosts turn its account off; the other tiers keep the stack's rule.
    hostvars["am2"]["alertmanager_web_basic_auth_username"] = ""
    hostvars["p0a"]["remote_storage_basic_auth_password"] = "given"  # nobody serves remote_storage: first host's
    access = stack_model(groups, hostvars)["access"]
    assert access["alertmanager"] == {"tls": True, "scheme": "https", "user": "", "ca": "/srv/inv/.secrets/web/ca.crt",
                                      "password_file": ""}
    assert access["prometheus"] == {"tls": True, "scheme": "https", "user": "promha",
                                    "ca": "/srv/inv/.secrets/web/ca.crt",
                                    "password_file": "/srv/inv/.secrets/credentials/prometheus_web"}
    assert access["remote_storage"]["password_file"] == ""
    assert access["front"]["user"] == "" and sorted(access) == sorted(TIERS)
    # The switch, where the serving hosts set it (preflight holds it alike on every host).
    hostvars["p1b"]["stack_plain_http"] = True  # p1b: the prometheus group's first host
    plain = stack_model(groups, hostvars)["access"]["prometheus"]
    assert (plain["scheme"], plain["user"], plain["ca"], plain["password_file"]) == ("http", "", "", "")
    assert stack_model(groups, hostvars)["access"]["alertmanager"]["scheme"] == "https"


def test_the_lookup_reads_the_model_the_run_set_and_computes_it_where_none_was_set():
    groups, hostvars = inventory()
    lookup = LookupModule()
    computed = lookup.run([], {"groups": groups, "hostvars": hostvars})
    assert computed == [stack_model(groups, hostvars)]
    assert lookup.run([], {"groups": groups, "hostvars": hostvars, "_stack_model": {"set": "once"}}) == [{"set": "once"}]
    with pytest.raises(AnsibleLookupError, match="takes no terms"):
        lookup.run(["shards"], {"groups": groups, "hostvars": hostvars})


def test_the_view_lookup_is_the_host_at_hands_view_of_the_runs_model():
    groups, hostvars = inventory()
    model = stack_model(groups, hostvars)
    variables = {"groups": groups, "hostvars": hostvars, "inventory_hostname": "am1"}
    assert ViewLookup().run([], variables) == [stack_view("am1", model)]
    # The run's model where preflight set it: g1 moved to shard 0 there.
    ran = dict(model, shards={0: ["p0a", "p0b", "g1"]}, **{"global": []})
    assert ViewLookup().run([], dict(variables, inventory_hostname="g1", _stack_model=ran))[0]["shard"] == 0
    with pytest.raises(AnsibleLookupError, match="takes no terms"):
        ViewLookup().run(["address"], variables)
    with pytest.raises(AnsibleFilterError, match="host 'nowhere' is not in the stack model"):
        ViewLookup().run([], dict(variables, inventory_hostname="nowhere"))


def test_the_default_minimum_is_the_prometheus_roles():
    from pathlib import Path

    import yaml

    defaults = Path(__file__).resolve().parents[4] / "roles" / "prometheus" / "defaults" / "main.yml"
    assert yaml.safe_load(defaults.read_text())["prometheus_min_replicas"] == DEFAULT_MIN_REPLICAS
