"""Unit tests for plugins/filter/peers.py."""

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.promha.stack.plugins.plugin_utils import peers
from ansible_collections.promha.stack.plugins.plugin_utils.peers import (
    FilterModule,
    alertmanager_advertise_address,
    alertmanager_instances,
    alertmanager_peers,
    alertmanager_targets,
    host_address,
    host_ports,
    join_host_port,
    prometheus_shards,
    split_host_port,
)

# The design document's example: three Alertmanagers on one host, plus one elsewhere.
HOSTVARS = {
    "am1": {"stack_address": "192.168.1.220", "alertmanager_instances": [
        {"name": "a", "web_port": 19093, "cluster_port": 19094},
        {"name": "b", "web_port": 29093, "cluster_port": 29094},
        {"name": "c", "web_port": 39093, "cluster_port": 39094},
    ]},
    "am2": {"ansible_host": "fd00::2"},
    "named": {"ansible_host": "am3.example.org"},
    "bare": {},
}


def test_host_address_precedence():
    hv = {"h": {"stack_address": "10.0.0.1", "ansible_host": "10.9.9.9"}}
    assert host_address("h", hv) == "10.0.0.1"
    assert host_address("am2", HOSTVARS) == "fd00::2"
    assert host_address("bare", HOSTVARS) == "bare"
    assert host_address("h", {"h": {"stack_address": "", "ansible_host": "10.1.1.1"}}) == "10.1.1.1"


@pytest.mark.parametrize("hostvars,message", [
    ({"h": {"stack_address": "bad address!"}}, r"host 'h' has address 'bad address!' \(stack_address\)"),
    ({"h": {"ansible_host": 12}}, r"host 'h' has no usable address \(ansible_host is 12\)"),
    ({}, r"host 'h' is not in the inventory"),
])
def test_host_address_errors(hostvars, message):
    with pytest.raises(AnsibleFilterError, match=r"^host_address: " + message):
        host_address("h", hostvars)


def test_join_host_port_brackets_ipv6():
    assert join_host_port("10.0.0.1", 9090) == "10.0.0.1:9090"
    assert join_host_port("fd00::1", "9090") == "[fd00::1]:9090"
    assert join_host_port("[fd00::1]", 1) == "[fd00::1]:1"
    with pytest.raises(AnsibleFilterError, match=r"^join_host_port: port 70000 .* outside 1\.\.65535"):
        join_host_port("a", 70000)


@pytest.mark.parametrize("value,expected", [
    ("10.0.0.1:9093", {"host": "10.0.0.1", "port": 9093}),
    ("[fd00::1]:9094", {"host": "fd00::1", "port": 9094}),
    ("am.example:80", {"host": "am.example", "port": 80}),
])
def test_split_host_port(value, expected):
    assert split_host_port(value) == expected


@pytest.mark.parametrize("value", ["10.0.0.1", "fd00::1:9093", "host:", ":80", "h:99999", "[zz::]:1", 5])
def test_split_host_port_malformed(value):
    with pytest.raises(AnsibleFilterError, match=r"^split_host_port: "):
        split_host_port(value)


def test_instances_design_example():
    instances = alertmanager_instances(["am1", "am2"], HOSTVARS)
    assert [(i["host"], i["name"], i["web"], i["cluster"]) for i in instances] == [
        ("am1", "a", "192.168.1.220:19093", "192.168.1.220:19094"),
        ("am1", "b", "192.168.1.220:29093", "192.168.1.220:29094"),
        ("am1", "c", "192.168.1.220:39093", "192.168.1.220:39094"),
        ("am2", "9093", "[fd00::2]:9093", "[fd00::2]:9094"),
    ]
    assert [i["peer_name"] for i in instances] == ["am1-a", "am1-b", "am1-c", "am2-9093"]


def test_peers_are_every_other_member_sorted():
    instances = alertmanager_instances(["am2", "am1", "am1"], HOSTVARS)
    assert alertmanager_peers(instances, "am1", "b") == [
        "192.168.1.220:19094", "192.168.1.220:39094", "[fd00::2]:9094",
    ]
    assert alertmanager_peers(instances, "am2") == [
        "192.168.1.220:19094", "192.168.1.220:29094", "192.168.1.220:39094",
    ]


def test_single_member_has_no_peers():
    instances = alertmanager_instances(["am2"], HOSTVARS)
    assert alertmanager_peers(instances, "am2") == []


def test_targets_are_every_instance_web_address():
    instances = alertmanager_instances(["am1", "am2"], HOSTVARS)
    assert alertmanager_targets(instances) == [
        "192.168.1.220:19093", "192.168.1.220:29093", "192.168.1.220:39093", "[fd00::2]:9093",
    ]


def test_advertise_needs_an_ip():
    instances = alertmanager_instances(["am1", "named"], HOSTVARS)
    assert alertmanager_advertise_address(instances, "am1", "c") == "192.168.1.220:39094"
    with pytest.raises(AnsibleFilterError, match=(
            r"^alertmanager_advertise_address: host 'named' instance '9093' only has the name "
            r"'am3.example.org'; .*needs an IP:port")):
        alertmanager_advertise_address(instances, "named")


@pytest.mark.parametrize("spec,message", [
    ([{"name": "a", "web_port": 9093}, {"name": "b", "web_port": 9093, "cluster_port": 9095}],
     r"alertmanager_instances\[1\]\.web_port 9093 is already the web_port of instance 'a'"),
    ([{"name": "a"}, {"name": "a", "web_port": 1, "cluster_port": 2}], r"name 'a' is used twice"),
    ([{"web_port": 9093, "cluster_port": 9093}], r"cluster_port 9093 is already the web_port"),
    ([{"web_port": "http"}], r"port 'http' of host 'x' alertmanager_instances\[0\]\.web_port is not a number"),
    ([{"port": 1}], r"unknown key\(s\) \['port'\]"),
    ([], r"must be a non-empty list"),
    ("9093", r"must be a non-empty list"),
    ([{"name": "a b"}], r"name 'a b' may hold only"),
])
def test_instances_errors(spec, message):
    with pytest.raises(AnsibleFilterError, match=r"^alertmanager_instances: .*" + message):
        alertmanager_instances(["x"], {"x": {"stack_address": "10.0.0.9", "alertmanager_instances": spec}})


def test_instances_clash_across_hosts():
    hv = {"x": {"stack_address": "10.0.0.9"}, "y": {"stack_address": "10.0.0.9"}}
    with pytest.raises(AnsibleFilterError, match=r"both use cluster address 10\.0\.0\.9:9094"):
        alertmanager_instances(["x", "y"], hv)


def test_empty_group_is_named():
    with pytest.raises(AnsibleFilterError, match=r"^alertmanager_instances: the alertmanager group is empty"):
        alertmanager_instances([], {})


def test_unknown_instance():
    instances = alertmanager_instances(["am2"], HOSTVARS)
    with pytest.raises(AnsibleFilterError, match=r"no Alertmanager instance am1/a; known: am2/9093"):
        alertmanager_peers(instances, "am1", "a")


def test_host_ports_for_upstreams_and_ha_peers():
    hv = {"g1": {"stack_address": "10.0.0.2"}, "g2": {"stack_address": "10.0.0.1", "grafana_port": 3001},
          "g3": {"ansible_host": "fd00::3"}}
    assert host_ports(["g3", "g1", "g2"], hv, 3000) == ["10.0.0.1:3000", "10.0.0.2:3000", "[fd00::3]:3000"]
    assert host_ports(["g1", "g2"], hv, 3000, port_var="grafana_port") == ["10.0.0.1:3001", "10.0.0.2:3000"]
    assert host_ports(["g1", "g2", "g3"], hv, 9094, exclude="g1") == ["10.0.0.1:9094", "[fd00::3]:9094"]
    with pytest.raises(AnsibleFilterError, match=r"^host_ports: the group group is empty"):
        host_ports([], hv, 1)


def test_prometheus_shards():
    hv = {"p1": {"prometheus_shard": 0}, "p2": {"prometheus_shard": "0"},
          "p3": {"prometheus_shard": 1}, "p4": {"prometheus_shard": 1}}
    assert prometheus_shards(["p4", "p3", "p2", "p1"], hv, min_replicas=2) == {0: ["p1", "p2"], 1: ["p3", "p4"]}


@pytest.mark.parametrize("hostvars,min_replicas,message", [
    ({"p1": {"prometheus_shard": 0}, "p2": {"prometheus_shard": 2}}, 1,
     r"shard index\(es\) \[1\] have no host; shards must run 0\.\.2"),
    ({"p1": {"prometheus_shard": 0}, "p2": {}}, 1, r"host 'p2' has no prometheus_shard"),
    ({"p1": {"prometheus_shard": "one"}, "p2": {"prometheus_shard": 0}}, 1,
     r"host 'p1' has prometheus_shard='one'; it must be a whole number >= 0"),
    ({"p1": {"prometheus_shard": -1}, "p2": {"prometheus_shard": 0}}, 1, r"prometheus_shard=-1"),
    ({"p1": {"prometheus_shard": 0}, "p2": {"prometheus_shard": 1}}, 2,
     r"shard 0 has 1 replica\(s\) \(p1\); this environment requires at least 2"),
])
def test_prometheus_shards_errors(hostvars, min_replicas, message):
    with pytest.raises(AnsibleFilterError, match=r"^prometheus_shards: .*" + message):
        prometheus_shards(["p1", "p2"], hostvars, min_replicas=min_replicas)


def test_filter_map():
    assert "alertmanager_peers" in FilterModule().filters()
    assert all(callable(f) for f in FilterModule().filters().values())


class _CountingHostvars:
    """hostvars that count how often a host's variables are computed and a variable is read."""

    def __init__(self, hosts):
        self.hosts, self.computed, self.read = hosts, 0, []

    def __getitem__(self, host):
        self.computed += 1
        outer = self

        class Variables:
            def get(self, name, default=None):
                outer.read.append((host, name))
                if name == "broken":
                    raise AnsibleFilterError(f"{host}: broken cannot be rendered")
                return outer.hosts[host].get(name, default)
        return Variables()

    def __contains__(self, host):
        return host in self.hosts

    def __iter__(self):
        return iter(self.hosts)


def test_the_hostvars_view_computes_each_host_and_reads_each_variable_once():
    counting = _CountingHostvars({"a": {"x": 1}, "b": {}})
    view = peers.HostVarsView(counting)
    assert peers.HostVarsView(view) is view
    assert [view["a"].get("x"), view["a"].get("x"), view["a"]["x"], view["b"].get("x", "unset")] == [1, 1, 1, "unset"]
    assert "x" in view["a"] and "x" not in view["b"] and "a" in view and list(view) == ["a", "b"]
    for _ in range(2):
        with pytest.raises(AnsibleFilterError, match="a: broken cannot be rendered"):
            view["a"].get("broken")
    with pytest.raises(KeyError):
        view["b"]["x"]
    assert counting.computed == 2
    assert sorted(counting.read) == [("a", "broken"), ("a", "x"), ("b", "x")]


def test_the_firewall_plans_agree_through_the_view_and_without_it():
    groups = {"all": ["p1", "n1"], "prometheus": ["p1"]}
    hostvars = {"p1": {"stack_address": "10.0.0.2", "prometheus_shard": 0}, "n1": {"stack_address": "10.0.0.10"}}
    plain = peers.firewall_rules("n1", groups, hostvars, admin_sources=["10.9.0.0/16", "10.0.0.1"])
    viewed = peers.firewall_rules("n1", groups, peers.HostVarsView(hostvars), admin_sources=["10.0.0.1", "10.9.0.0/16"])
    assert plain == viewed
    ssh = next(rule for rule in plain if rule["name"] == "ssh")
    assert ssh["v4"] == ["10.0.0.1", "10.9.0.0/16"]
    assert next(rule for rule in plain if rule["name"] == "node_exporter")["v4"] == ["10.0.0.2"]
