"""The stack's topology as the roles compute it, for scripts, benchmarks and verifiers.

Everything here comes from the inventory (``ansible-inventory --list``), the roles'
literal defaults and the stack model the roles read (plugin_utils/model.py: the
shards, the Alertmanager instances and their peer names, every host's address and
every tier's endpoints) and its access rule. No script works out a shard, a peer name, an address or a port by
itself.

    topo = Topology(ROOT / "inventories" / "lab")
    topo = Topology.of_scenario()   in a molecule verifier: the scenario's inventory
    topo.shards                 {0: ['prom-s0-a', 'prom-s0-b'], 1: [...]}
    topo.alertmanagers          [{'host', 'name', 'peer_name', 'web', 'cluster', ...}]
    topo.setting(host, 'prometheus_port')   the host's value, else the role default
    topo.url(host, 'prometheus_port', '/-/ready')    https:// unless the stack runs plain HTTP
    topo.fetch('prometheus', url)                    with the stack's CA and credentials
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from functools import cached_property
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "collections"))
from ansible_collections.promha.stack.plugins.plugin_utils import access as access_rule  # noqa: E402
from ansible_collections.promha.stack.plugins.plugin_utils import frontend, inventory, model  # noqa: E402

sys.path.insert(0, str(ROOT / "tests" / "helpers"))
import live  # noqa: E402

_REFERENCE = re.compile(r"^\{\{\s*(\w+)\s*\}\}$")


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


def read_inventory(path):
    """``(groups, hostvars)`` of an inventory: groups with their members, children included."""
    command = [str(ROOT / ".venv" / "bin" / "ansible-inventory"), "-i", str(path), "--list"]
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
    # As Ansible's hostvars have it: the stack's secrets are found beside the inventory.
    found = Path(path).resolve()
    directory = str(found if found.is_dir() else found.parent)
    for host in groups["all"]:
        hostvars.setdefault(host, {}).setdefault("inventory_dir", directory)
    return groups, hostvars


class Topology:
    def __init__(self, path):
        self.inventory = Path(path)
        self.groups, self.hostvars = read_inventory(path)
        self.defaults = role_defaults()

    @classmethod
    def of_scenario(cls):
        """The running molecule scenario's topology (the inventory molecule wrote for it)."""
        return cls(Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "inventory")

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
        return self.model["addresses"][host]

    def host_port(self, host, port_var):
        """``address:port`` of a host's service (IPv6 bracketed), as the roles write it: a tier's
        port where the host serves it is the stack model's endpoint."""
        tier = access_rule.port_tier(port_var)
        served = self.model["endpoints"].get(tier, {}) if tier else {}
        if host in served:
            return served[host]
        return inventory.join_host_port(self.address(host), self.setting(host, port_var))

    def url(self, host, port_var, path="", scheme=None):
        """The URL of a host's service; its scheme follows the tier's TLS setting."""
        if scheme is None:
            tier = access_rule.port_tier(port_var)
            scheme = self.access(tier)["scheme"] if tier else "http"
        return f"{scheme}://{self.host_port(host, port_var)}{path}"

    # --- how clients reach a tier: the stack's switch, CA and credentials ----------------

    def _stack_value(self, name):
        """A stack-wide setting (preflight makes every host agree): the first host that sets it."""
        for host in self.hosts("all"):
            if name in self.hostvars.get(host, {}):
                value = self.hostvars[host][name]
                match = _REFERENCE.match(value) if isinstance(value, str) else None
                return self.hostvars[host].get(match.group(1)) if match else value
        return None

    @cached_property
    def stack_access(self):
        """The stack model's access rule (plugin_utils/access.py) for this inventory."""
        secrets = self._stack_value("stack_secrets_dir")
        return access_rule.stack_access(self._stack_value("stack_plain_http"),
                                        secrets if secrets and "{{" not in str(secrets) else None, self.inventory)

    @cached_property
    def plain(self):
        """True when the inventory turned on the insecure switch, stack_plain_http."""
        return self.stack_access["plain"]

    @cached_property
    def secrets_dir(self):
        return Path(self.stack_access["secrets"])

    def access(self, tier):
        """``{scheme, cafile, auth}`` for calling ``tier``: the stack model's access for it (access.TIERS:
        prometheus, alertmanager, node_exporter, mysql_exporter, nginx_exporter, remote_storage,
        grafana, grafana_metrics, front), with its password."""
        found = self.model["access"].get(tier)
        if found is None:
            raise TopologyError(f"{tier} is not a tier of the stack model; one of {', '.join(self.model['access'])}")
        if "{{" in json.dumps(found):
            raise TopologyError(f"{tier}: its access settings are templates this helper cannot render: {found}")

        def value(name):
            found = self._stack_value(name)
            return None if found is None or "{{" in str(found) else found

        auth = None
        if found["user"]:
            password = access_rule.tier_password(tier, found, value)
            if not password:
                where = found["password_file"] or "the inventory"
                raise TopologyError(f"{tier}: {access_rule.TIERS[tier].password} is not set and {where} has no "
                                    "password (run site.yml)")
            auth = (found["user"], password)
        return {"scheme": found["scheme"], "cafile": Path(found["ca"]) if found["tls"] else None, "auth": auth}

    def fetch(self, tier, url, data=None, method=None, timeout=5, headers=None):
        """The body of ``url``, called with ``tier``'s CA and credentials (``live.fetch``)."""
        access = self.access(tier)
        return live.fetch(url, auth=access["auth"], cafile=access["cafile"], timeout=timeout, data=data,
                          method=method, headers=headers)

    def fetch_json(self, tier, url, data=None, timeout=5):
        """``fetch`` as JSON; ``data`` (JSON) makes it a POST."""
        body = None if data is None else json.dumps(data).encode()
        text = self.fetch(tier, url, data=body, method="POST" if body is not None else None, timeout=timeout,
                          headers={"Content-Type": "application/json"})
        return json.loads(text) if text.strip() else None

    @cached_property
    def model(self):
        """The stack model of this inventory (plugin_utils/model.py), as the roles read it."""
        return model.stack_model(self.groups, self.hostvars)

    @property
    def shards(self):
        """``{shard: [replica hosts]}`` (the global tier is not a shard)."""
        return self.model["shards"]

    @property
    def alertmanagers(self):
        """Every Alertmanager instance (peer_name, web, cluster, ...)."""
        return self.model["alertmanagers"]

    @cached_property
    def front_tls(self):
        """Whether the nginx front serves HTTPS (nginx_tls_enabled; on unless the stack runs plain HTTP)."""
        return self.access("front")["scheme"] == "https"

    def front_url(self, path="", host=None):
        """``path`` on the front: the floating address, or one balancer's own address (``host``); https
        on nginx_tls_port unless the front runs plain HTTP. Its certificate comes from the web CA, so
        ``fetch('prometheus', ...)`` checks it."""
        if not host:
            return frontend.front_url(self.hosts("loadbalancer")[0], self.hostvars, tls=self.front_tls) + path
        port = self.setting(host, "nginx_tls_port" if self.front_tls else "nginx_listen_port")
        return f"{'https' if self.front_tls else 'http'}://{inventory.join_host_port(self.address(host), port)}{path}"

    @cached_property
    def vip(self):
        """The balancers' floating address, without its prefix length (None without balancers)."""
        for host in self.hosts("loadbalancer"):
            return str(self.setting(host, "keepalived_virtual_ipaddress")).split("/")[0]
        return None
