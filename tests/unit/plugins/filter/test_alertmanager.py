"""Unit tests for the alertmanager module of the stack model (instances, peers, addresses)."""

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.promha.stack.plugins.plugin_utils.alertmanager import (
    FilterModule,
    alertmanager_advertise_address,
    alertmanager_instances,
    alertmanager_peers,
    alertmanager_targets,
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


def test_filter_map():
    assert set(FilterModule().filters()) == {
        "alertmanager_instances", "alertmanager_peers", "alertmanager_advertise_address", "alertmanager_targets"}
