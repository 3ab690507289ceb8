"""tests/helpers/topology.py: the lab inventory's endpoints as the roles write them."""

from pathlib import Path

import pytest
import yaml
from topology import Topology, TopologyError

ROOT = Path(__file__).resolve().parents[2]


def test_a_tiers_port_is_the_models_endpoint_and_any_other_the_setting(tmp_path):
    inventory = yaml.safe_load((ROOT / "inventories" / "lab" / "hosts.yml").read_text())
    # The lab with one replica on another port and the database on IPv6.
    inventory["all"]["children"]["prometheus"]["children"]["prometheus_shard_0"]["hosts"]["prom-s0-b"][
        "prometheus_port"] = 19090
    inventory["all"]["children"]["mysql"]["hosts"]["db-1"]["stack_address"] = "fd00::51"
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "group_vars").symlink_to(ROOT / "inventories" / "lab" / "group_vars")
    topo = Topology(tmp_path)
    assert topo.host_port("prom-s0-a", "prometheus_port") == "10.213.0.21:9090"
    assert topo.host_port("prom-s0-b", "prometheus_port") == "10.213.0.22:19090"
    assert topo.host_port("db-1", "node_exporter_port") == "[fd00::51]:9100"
    assert topo.host_port("db-1", "mysql_port") == "[fd00::51]:3306"  # no tier: the role's default
    assert topo.model["endpoints"]["prometheus"]["prom-s0-b"] == "10.213.0.22:19090"


def test_a_tier_is_called_with_the_models_access_and_its_password(tmp_path):
    inventory = yaml.safe_load((ROOT / "inventories" / "lab" / "hosts.yml").read_text())
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "group_vars").symlink_to(ROOT / "inventories" / "lab" / "group_vars")
    topo = Topology(tmp_path)
    # Before the PKI step wrote the generated password, a call says what is missing.
    with pytest.raises(TopologyError, match=r"prometheus: prometheus_web_basic_auth_password is not set and "
                                            rf"{tmp_path}/.secrets/credentials/prometheus_web has no password"):
        topo.access("prometheus")
    (tmp_path / ".secrets" / "credentials").mkdir(parents=True)
    (tmp_path / ".secrets" / "credentials" / "prometheus_web").write_text("generated\n")
    assert topo.access("prometheus") == {"scheme": "https", "cafile": tmp_path / ".secrets" / "web" / "ca.crt",
                                         "auth": ("promha", "generated")}
    assert topo.access("front")["auth"] is None
    with pytest.raises(TopologyError, match="'nodes' is not a tier|nodes is not a tier"):
        topo.access("nodes")
