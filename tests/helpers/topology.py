"""The stack's topology as the roles compute it, for scripts, benchmarks and verifiers.

Everything here comes from the inventory (``ansible-inventory --list``), the roles'
literal defaults and the same filter plugins the roles call: the shards
(``prometheus_shards``), the Alertmanager instances and their peer names
(``alertmanager_instances``), every host's address (``host_address``). No script
works out a shard, a peer name, an address or a port by itself.

    topo = Topology(ROOT / "inventories" / "lab")
    topo.shards                 {0: ['prom-s0-a', 'prom-s0-b'], 1: [...]}
    topo.alertmanagers          [{'host', 'name', 'peer_name', 'web', 'cluster', ...}]
    topo.setting(host, 'prometheus_port')   the host's value, else the role default
    topo.url(host, 'prometheus_port', '/-/ready')
"""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cached_property
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "plugins" / "filter"))
import peers  # noqa: E402


class TopologyError(Exception):
    """The inventory cannot be read, or a setting has no value."""


def role_defaults():
    """Every role's literal defaults (values that are templates are left out)."""
    defaults = {}
    for path in sorted((ROOT / "roles").glob("*/defaults/main.yml")):
        for name, value in (yaml.safe_load(path.read_text()) or {}).items():
            if not (isinstance(value, str) and "{{" in value):
                defaults[name] = value
    return defaults


def read_inventory(inventory):
    """``(groups, hostvars)`` of an inventory: groups with their members, children included."""
    command = [str(ROOT / ".venv" / "bin" / "ansible-inventory"), "-i", str(inventory), "--list"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise TopologyError(f"{' '.join(command)} failed: {result.stderr.strip()}")
    data = json.loads(result.stdout)
    hostvars = data.get("_meta", {}).get("hostvars", {})
    groups = {}

    def walk(group, seen=()):
        node = data.get(group, {})
        members = set(node.get("hosts", []))
        for child in node.get("children", []):
            if child not in seen:
                members |= walk(child, seen + (group,))
        groups[group] = sorted(members)
        return members

    walk("all")
    return groups, hostvars


class Topology:
    def __init__(self, inventory):
        self.inventory = Path(inventory)
        self.groups, self.hostvars = read_inventory(inventory)
        self.defaults = role_defaults()

    def hosts(self, group):
        return self.groups.get(group, [])

    def setting(self, host, name):
        """The host's value of a role variable, else the role's default."""
        if name in self.hostvars.get(host, {}):
            return self.hostvars[host][name]
        if name in self.defaults:
            return self.defaults[name]
        raise TopologyError(f"{name} is set neither for {host} nor as a literal role default")

    def address(self, host):
        return peers.host_address(host, self.hostvars)

    def host_port(self, host, port_var):
        """``address:port`` of a host's service (IPv6 bracketed), as the roles write it."""
        return peers.join_host_port(self.address(host), self.setting(host, port_var))

    def url(self, host, port_var, path="", scheme="http"):
        return f"{scheme}://{self.host_port(host, port_var)}{path}"

    @cached_property
    def shards(self):
        """``{shard: [replica hosts]}``, from prometheus_shards (the global tier is not a shard)."""
        return peers.prometheus_shards(self.hosts("prometheus"), self.hostvars)

    @cached_property
    def alertmanagers(self):
        """Every Alertmanager instance, from alertmanager_instances (peer_name, web, cluster, ...)."""
        return peers.alertmanager_instances(self.hosts("alertmanager"), self.hostvars)

    @cached_property
    def vip(self):
        """The balancers' floating address, without its prefix length (None without balancers)."""
        for host in self.hosts("loadbalancer"):
            return str(self.setting(host, "keepalived_virtual_ipaddress")).split("/")[0]
        return None
