"""Unit tests for the inventory module of the stack model (addresses, ports, shard layout, hostvars view)."""

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.promha.stack.plugins.plugin_utils import firewall, inventory
from ansible_collections.promha.stack.plugins.plugin_utils.inventory import (
    FilterModule,
    host_address,
    host_ports,
    join_host_port,
    prometheus_shards,
    split_host_port,
)


def test_host_address_precedence():
    hv = {"h": {"stack_address": "10.0.0.1", "ansible_host": "10.9.9.9"}}
    assert host_address("h", hv) == "10.0.0.1"
    assert host_address("v6", {"v6": {"ansible_host": "fd00::2"}}) == "fd00::2"
    assert host_address("bare", {"bare": {}}) == "bare"
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
    assert "host_ports" in FilterModule().filters()
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
    view = inventory.HostVarsView(counting)
    assert inventory.HostVarsView(view) is view
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
    hostvars = {"p1": {"stack_address": "10.0.0.2", "prometheus_shard": 0,
                        "prometheus_min_replicas": 1}, "n1": {"stack_address": "10.0.0.10"}}
    plain = firewall.firewall_rules("n1", groups, hostvars, admin_sources=["10.9.0.0/16", "10.0.0.1"])
    viewed = firewall.firewall_rules("n1", groups, inventory.HostVarsView(hostvars), admin_sources=["10.0.0.1", "10.9.0.0/16"])
    assert plain == viewed
    ssh = next(rule for rule in plain if rule["name"] == "ssh")
    assert ssh["v4"] == ["10.0.0.1", "10.9.0.0/16"]
    assert next(rule for rule in plain if rule["name"] == "node_exporter")["v4"] == ["10.0.0.2"]
