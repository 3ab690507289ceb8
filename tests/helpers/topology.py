"""The stack's topology as the roles compute it, for scripts, benchmarks and verifiers.

Everything here comes from the inventory (``ansible-inventory --list``), the roles'
literal defaults and the same filter plugins the roles call: the shards
(``prometheus_shards``), the Alertmanager instances and their peer names
(``alertmanager_instances``), every host's address (``host_address``). No script
works out a shard, a peer name, an address or a port by itself.

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
from ansible_collections.promha.stack.plugins.plugin_utils import alertmanager, frontend, inventory  # noqa: E402

sys.path.insert(0, str(ROOT / "tests" / "helpers"))
import live  # noqa: E402

# How clients reach each tier, as the roles' defaults say: (TLS switch, user, password,
# CA file) variables, and the generated credentials file under stack_secrets_dir.
ACCESS = {
    "prometheus": ("prometheus_web_tls_enabled", "prometheus_web_basic_auth_username",
                   "prometheus_web_basic_auth_password", "prometheus_web_tls_ca_src", "prometheus_web"),
    "alertmanager": ("alertmanager_web_tls_enabled", "alertmanager_web_basic_auth_username",
                     "alertmanager_web_basic_auth_password", "alertmanager_web_tls_ca_src", "alertmanager_web"),
    "node_exporter": ("node_exporter_web_tls_enabled", "node_exporter_web_basic_auth_username",
                      "node_exporter_web_basic_auth_password", "node_exporter_web_tls_ca_src", "node_exporter_web"),
    # The database hosts' exporter shares node_exporter's credential.
    "mysql_exporter": ("mysql_exporter_web_tls_enabled", "mysql_exporter_web_basic_auth_username",
                       "mysql_exporter_web_basic_auth_password", "mysql_exporter_web_tls_ca_src", "node_exporter_web"),
    # nginx's metrics server on the balancers, the same credential again.
    "nginx_exporter": ("nginx_exporter_tls_enabled", "nginx_exporter_basic_auth_username",
                       "nginx_exporter_basic_auth_password", "nginx_exporter_tls_ca_src", "node_exporter_web"),
    "remote_storage": ("remote_storage_tls_enabled", "remote_storage_basic_auth_username",
                       "remote_storage_basic_auth_password", "remote_storage_tls_ca_src", "remote_storage_web"),
    # Grafana's port has no basic auth of the stack's (users log in to Grafana itself).
    "grafana": ("grafana_tls_enabled", None, None, "grafana_tls_ca_src", None),
}
# The tier behind a port variable (others are plain HTTP here).
PORT_TIER = {"prometheus_port": "prometheus", "node_exporter_port": "node_exporter",
             "mysql_exporter_port": "mysql_exporter", "nginx_exporter_port": "nginx_exporter",
             "remote_storage_port": "remote_storage", "grafana_http_port": "grafana"}
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
        return inventory.host_address(host, self.hostvars)

    def host_port(self, host, port_var):
        """``address:port`` of a host's service (IPv6 bracketed), as the roles write it."""
        return inventory.join_host_port(self.address(host), self.setting(host, port_var))

    def url(self, host, port_var, path="", scheme=None):
        """The URL of a host's service; its scheme follows the tier's TLS setting."""
        if scheme is None:
            scheme = self.access(PORT_TIER[port_var])["scheme"] if port_var in PORT_TIER else "http"
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
        """``{scheme, cafile, auth}`` for calling ``tier`` (prometheus, alertmanager, node_exporter,
        mysql_exporter, nginx_exporter, remote_storage, grafana)."""
        tls_var, user_var, password_var, ca_var, credential = ACCESS[tier]
        tls = self._stack_value(tls_var)
        tls = self.stack_access["tls"] if tls is None or "{{" in str(tls) else access_rule.truthy(tls)
        user = self._stack_value(user_var) if user_var else ""
        user = self.stack_access["user"] if user is None or "{{" in str(user) else user
        auth = None
        if user:
            password = self._stack_value(password_var)
            if password is None or "{{" in str(password):
                path = self.secrets_dir / "credentials" / credential
                if not path.exists():
                    raise TopologyError(f"{tier}: {password_var} is not set and {path} does not exist (run site.yml)")
                password = path.read_text().strip()
            auth = (user, password)
        ca = self._stack_value(ca_var)
        cafile = (Path(ca) if ca and "{{" not in str(ca) else Path(self.stack_access["web_ca"])) if tls else None
        return {"scheme": "https" if tls else "http", "cafile": cafile, "auth": auth}

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
    def shards(self):
        """``{shard: [replica hosts]}``, from prometheus_shards (the global tier is not a shard)."""
        return inventory.prometheus_shards(self.hosts("prometheus"), self.hostvars)

    @cached_property
    def alertmanagers(self):
        """Every Alertmanager instance, from alertmanager_instances (peer_name, web, cluster, ...)."""
        return alertmanager.alertmanager_instances(self.hosts("alertmanager"), self.hostvars)

    @cached_property
    def front_tls(self):
        """Whether the nginx front serves HTTPS (nginx_tls_enabled; on unless the stack runs plain HTTP)."""
        tls = self._stack_value("nginx_tls_enabled")
        return self.stack_access["tls"] if tls is None or "{{" in str(tls) else access_rule.truthy(tls)

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
