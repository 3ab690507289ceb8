"""Each host's firewall plan: the inbound flows the stack needs, from the inventory.

Filters
-------
``firewall_rules``
    ``inventory_hostname | firewall_rules(groups, hostvars, admin_sources=[...],
    operator_sources=[...])`` -> the inbound flows this host must accept, one
    ``{name, proto, ports, v4, v6, anywhere}`` per flow: SSH from the admin
    sources; each daemon's port from the hosts that call it (node_exporter from
    the scraping replicas, a Prometheus from its own shard's other replicas, the
    global tier and the balancers, Alertmanager's web ports from Prometheus and
    the balancers, gossip from the other instances (TCP only under gossip TLS),
    remote storage from Prometheus, Grafana and the balancers, MySQL from
    Grafana, Grafana from the balancers, the front from ``client_sources``, VRRP
    between balancers and between database members, as proto ``ah`` when keepalived
    authenticates it, the default, else ``vrrp``, with ``macs``: each peer's
    link-layer address where its gathered facts give it); every HTTP port from the operator sources too; the host's
    ``firewall_extra_rules``; and the ICMP types a host needs (``icmp`` and
    ``icmpv6`` entries with ``types``: echo requests, errors, IPv6 neighbour
    discovery; no timestamps, redirects or router advertisements). Ports follow the same
    settings as the roles (``node_exporter_port``, ``prometheus_port``, an
    instance's ``web_port``...). An address that is not an IP is refused, naming
    the host. The addresses, each replica's shard and the Alertmanager instances
    are the stack model's (``model``, plugin_utils/model.py; computed from
    ``groups`` and ``hostvars`` when not given). Example: ``'vm-1' |
    firewall_rules(groups, hostvars, admin_sources=['10.0.0.0/24'])``
"""

from __future__ import annotations

import functools
import ipaddress
import re

from ansible.errors import AnsibleFilterError
from ansible_collections.promha.stack.plugins.plugin_utils import inventory
from ansible_collections.promha.stack.plugins.plugin_utils.access import truthy
from ansible_collections.promha.stack.plugins.plugin_utils.filters import filter_module, listed
from ansible_collections.promha.stack.plugins.plugin_utils.inventory import port_number, setting
from ansible_collections.promha.stack.plugins.plugin_utils.model import serving_port, stack_model

# (flow, serving group, protocols, port setting (access.PORTS) or None, calling groups, operators too)
_FLOWS = (
    # The global tier only federates: the shards' replicas scrape every node_exporter.
    ("node_exporter", "all", ("tcp",), "node_exporter_port", ("prometheus",), True),
    # A replica is called by its own shard's other replicas (the pair job), added in firewall_rules.
    ("prometheus", "prometheus", ("tcp",), "prometheus_port", ("prometheus_global", "loadbalancer"), True),
    ("prometheus", "prometheus_global", ("tcp",), "prometheus_port",
     ("prometheus_global", "loadbalancer"), True),
    ("remote_storage", "remote_storage", ("tcp",), "remote_storage_port",
     ("prometheus", "prometheus_global", "grafana", "loadbalancer"), True),
    ("mysql", "mysql", ("tcp",), "mysql_port", ("grafana",), False),
    ("mysql_exporter", "mysql", ("tcp",), "mysql_exporter_port", ("prometheus",), True),
    # A Galera cluster's replication, incremental and snapshot state transfers (members only).
    ("galera", "mysql", ("tcp",), "mysql_galera_port", ("mysql", "mysql_arbitrator"), False),
    ("galera_ist", "mysql", ("tcp",), "mysql_galera_ist_port", ("mysql",), False),
    ("galera_sst", "mysql", ("tcp",), "mysql_galera_sst_port", ("mysql",), False),
    ("galera", "mysql_arbitrator", ("tcp",), "mysql_galera_port", ("mysql", "mysql_arbitrator"), False),
    # The balancers proxy to Grafana; the shards' replicas scrape its /metrics.
    ("grafana", "grafana", ("tcp",), "grafana_http_port", ("loadbalancer", "prometheus"), True),
    ("grafana_ha", "grafana", ("tcp", "udp"), "grafana_ha_port", ("grafana",), False),
    ("nginx_exporter", "loadbalancer", ("tcp",), "nginx_exporter_port", ("prometheus",), True),
    ("vrrp", "loadbalancer", ("vrrp",), None, ("loadbalancer",), False),
    ("vrrp", "mysql", ("vrrp",), None, ("mysql",), False),
)
_EXTRA_KEYS = {"name", "proto", "ports", "from_groups", "sources"}
# The ICMP a host answers or needs: echo requests, the errors path MTU discovery and
# clients rely on, and IPv6 neighbour discovery. Not timestamps, redirects, router
# advertisements or solicitations.
ICMP_TYPES = ("echo-request", "destination-unreachable", "time-exceeded", "parameter-problem")
ICMPV6_TYPES = ("echo-request", "destination-unreachable", "packet-too-big", "time-exceeded", "parameter-problem",
                "nd-neighbor-solicit", "nd-neighbor-advert")


def _networks(filter_name, values, where):
    """Split IP addresses and networks into (IPv4, IPv6) lists; a clear error for anything else."""
    values = listed(values, lambda: f"{filter_name}: {where} must be a list of IP addresses or networks, got {values!r}")
    v4, v6 = {}, {}
    for value in values:
        parsed = _network(str(value).strip())
        if parsed is None:
            raise AnsibleFilterError(f"{filter_name}: {where} holds {value!r}, which is not an IP address or "
                                     "network")
        version, key, text = parsed
        (v4 if version == 4 else v6)[text] = key
    return sorted(v4, key=v4.__getitem__), sorted(v6, key=v6.__getitem__)


def _network_key(text):
    return _network(text)[1]


@functools.lru_cache(maxsize=65536)
def _network(text):
    """``(version, sort key, text)`` of an address or network, the text of a host address
    without its /32 or /128; None when ``text`` is neither. Cached: a firewall plan over
    many hosts parses each caller again for every host it calls."""
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None
    host = network.prefixlen == network.max_prefixlen
    return (network.version, (int(network.network_address), network.prefixlen),
            str(network.network_address) if host else str(network))


def _vrrp_protocol(hostvars, host):
    """VRRP's IP protocol on ``host``: ``ah`` (51) when keepalived authenticates advertisements
    (``keepalived_authentication``, default ah, none under ``stack_plain_http``), ``vrrp`` (112)
    when it does not."""
    plain = truthy(setting(hostvars, host, "stack_plain_http", False))
    mode = setting(hostvars, host, "keepalived_authentication", "none" if plain else "ah")
    if mode not in ("ah", "none"):
        raise AnsibleFilterError(f"firewall_rules: keepalived_authentication of {host!r} must be ah or none, "
                                 f"got {mode!r}")
    return "ah" if mode == "ah" else "vrrp"


def _link_address(hostvars, host, address):
    """The MAC address of ``host``'s interface that holds ``address``, from its gathered facts
    (``interfaces`` and each interface's ``ipv4`` and ``macaddress``); None when unknown."""
    facts = hostvars[host].get("ansible_facts") or {}
    names = list(facts.get("interfaces") or [])
    for candidate in [facts.get(n.replace("-", "_")) or {} for n in names] + [facts.get("default_ipv4") or {}]:
        ipv4 = candidate.get("ipv4") if "ipv4" in candidate else candidate
        mac = candidate.get("macaddress")
        if isinstance(ipv4, dict) and ipv4.get("address") == address and isinstance(mac, str) \
                and re.fullmatch(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}", mac.lower()) and mac != "00:00:00:00:00:00":
            return mac.lower()
    return None


def _port(hostvars, host, port_var):
    return serving_port(hostvars, host, port_var, "firewall_rules")


def _ip_of(host, addresses):
    address = addresses.get(host)
    if address is None:
        raise AnsibleFilterError(f"firewall_rules: host {host!r} has no address: set "
                                 f"{inventory.DEFAULT_ADDRESS_VAR} for it")
    if not inventory.is_ip(address):
        raise AnsibleFilterError(f"firewall_rules: host {host!r} has address {address!r}, a name; the firewall "
                                 f"needs an IP address: set {inventory.DEFAULT_ADDRESS_VAR} for it")
    return address


def firewall_rules(host, groups, hostvars, admin_sources=(), operator_sources=(),
                   client_sources=("0.0.0.0/0", "::/0"), ssh_port=22, model=None):
    """The inbound flows ``host`` accepts: ``[{name, proto, ports, v4, v6, anywhere}]``, the ICMP
    entries (with ``types``) first, then the flows sorted by name.

    ``model`` is the stack model (the role passes the one preflight computed for the
    run, preflight its own for every host's plan); without it, it is computed here.
    """
    if not isinstance(groups, dict) or "all" not in groups:
        raise AnsibleFilterError("firewall_rules: expects the groups mapping (with 'all')")
    if host not in groups["all"]:
        raise AnsibleFilterError(f"firewall_rules: host {host!r} is not in the inventory")
    groups, hostvars = inventory.plain_groups(groups), inventory.HostVarsView(hostvars)
    if model is None:
        model = stack_model(groups, hostvars)
    addresses = model["addresses"]
    admin = _networks("firewall_rules", admin_sources, "firewall_admin_sources")
    if not admin[0] and not admin[1]:
        raise AnsibleFilterError(f"firewall_rules: firewall_admin_sources of {host!r} is empty: SSH would be "
                                 "closed to everyone; list the addresses or networks the controller connects from")
    operators = _networks("firewall_rules", operator_sources, "firewall_operator_sources")
    flows = {}

    def allow(name, protos, ports, sources, anywhere=False):
        for proto in protos:
            entry = flows.setdefault((name, proto), {"name": name, "proto": proto, "ports": set(),
                                                     "v4": set(), "v6": set(), "anywhere": False})
            entry["ports"].update(ports)
            entry["v4"].update(sources[0])
            entry["v6"].update(sources[1])
            entry["anywhere"] = entry["anywhere"] or anywhere

    def callers(names):
        found = sorted({_ip_of(h, addresses) for g in names for h in groups.get(g, []) if h != host})
        return _networks("firewall_rules", found, "a caller's address")

    def member(group):
        return host in groups.get(group, [])

    macs = {}
    allow("ssh", ("tcp",), {port_number("firewall_rules", ssh_port, "ssh_port")}, admin)
    if member("prometheus"):
        pair = next((replicas for replicas in model["shards"].values() if host in replicas), [])
        allow("prometheus", ("tcp",), {_port(hostvars, host, "prometheus_port")}, _networks(
            "firewall_rules", sorted({_ip_of(h, addresses) for h in pair if h != host}), "a caller's address"))
    for name, group, protos, port, calling, operated in _FLOWS:
        if not member(group):
            continue
        if name == "vrrp":
            protos = (_vrrp_protocol(hostvars, host),)
            # Each peer's advertisements only from its own link-layer address, where its facts
            # give it: a stranger sending with a peer's IP address is dropped before keepalived.
            for peer in groups.get(group, []):
                address = _ip_of(peer, addresses) if peer != host else None
                mac = address and _link_address(hostvars, peer, address)
                if mac:
                    macs[address] = mac
        ports = {_port(hostvars, host, port)} if port else set()
        allow(name, protos, ports, callers(calling))
        if operated:
            allow(name, protos, ports, operators)
    if member("alertmanager"):
        instances = model["alertmanagers"]
        mine = [i for i in instances if i["host"] == host]
        gossip = _networks("firewall_rules", sorted({i["address"] for i in instances if i["host"] != host}
                                                    | {_ip_of(h, addresses) for h in groups["alertmanager"]
                                                       if h != host}),
                           "an Alertmanager instance's address")
        web_ports = {i["web_port"] for i in mine}
        allow("alertmanager", ("tcp",), web_ports, callers(("prometheus", "prometheus_global", "loadbalancer")))
        allow("alertmanager", ("tcp",), web_ports, operators)
        tls = setting(hostvars, host, "alertmanager_cluster_tls_enabled", None)
        if tls is None:
            tls = not truthy(setting(hostvars, host, "stack_plain_http", False))
        # Gossip over TLS is TCP only (memberlist's packets ride the TLS streams).
        allow("alertmanager_gossip", ("tcp",) if truthy(tls) else ("tcp", "udp"), {i["cluster_port"] for i in mine}, gossip)
    if member("loadbalancer"):
        front_ports = {_port(hostvars, host, "nginx_listen_port"), _port(hostvars, host, "nginx_tls_port")}
        clients = _networks("firewall_rules", client_sources, "firewall_client_sources")
        anywhere = "0.0.0.0/0" in clients[0] and "::/0" in clients[1]
        allow("front", ("tcp",), front_ports, ([], []) if anywhere else clients, anywhere=anywhere)
        if not anywhere:
            # The shard replicas probe the front's paths as users do (the front job).
            allow("front", ("tcp",), front_ports, callers(("prometheus",)))
    extra = setting(hostvars, host, "firewall_extra_rules", [])
    extra = listed(extra, f"firewall_rules: firewall_extra_rules of {host!r} must be a list, got {extra!r}")
    for position, rule in enumerate(extra):
        where = f"firewall_extra_rules[{position}] of {host!r}"
        if not isinstance(rule, dict) or not {"name", "proto", "ports"} <= set(rule) or set(rule) - _EXTRA_KEYS:
            raise AnsibleFilterError(f"firewall_rules: {where} must be a mapping with name, proto, ports and "
                                     f"from_groups and/or sources (allowed keys: {', '.join(sorted(_EXTRA_KEYS))}), "
                                     f"got {rule!r}")
        if rule["proto"] not in ("tcp", "udp") or not re.fullmatch(r"[a-z0-9_]+", str(rule["name"])):
            raise AnsibleFilterError(f"firewall_rules: {where}: proto must be tcp or udp and name [a-z0-9_], "
                                     f"got {rule['proto']!r} and {rule['name']!r}")
        ports = set()
        for value in ([rule["ports"]] if isinstance(rule["ports"], (str, int)) else rule["ports"]):
            low, _, high = str(value).partition("-")
            first = port_number("firewall_rules", low, where)
            last = port_number("firewall_rules", high, where) if high else first
            if last < first:
                raise AnsibleFilterError(f"firewall_rules: {where}: port range {value!r} runs backwards")
            ports.add(first if first == last else f"{first}-{last}")
        unknown = [g for g in rule.get("from_groups", []) if g not in groups]
        if unknown:
            raise AnsibleFilterError(f"firewall_rules: {where} names group(s) {unknown} the inventory does not have")
        sources = _networks("firewall_rules", rule.get("sources", []), where)
        from_groups = callers(rule.get("from_groups", []))
        allow(str(rule["name"]), (rule["proto"],), ports,
              (sources[0] + from_groups[0], sources[1] + from_groups[1]))
    result = [{"name": "icmp", "proto": "icmp", "types": list(ICMP_TYPES), "ports": [], "v4": [], "v6": [],
               "anywhere": True},
              {"name": "icmpv6", "proto": "icmpv6", "types": list(ICMPV6_TYPES), "ports": [], "v4": [], "v6": [],
               "anywhere": True}]
    for (name, proto), entry in sorted(flows.items()):
        if not (entry["v4"] or entry["v6"] or entry["anywhere"]):
            continue  # nobody calls it: the port stays closed
        result.append({"name": name, "proto": proto,
                       "ports": sorted(entry["ports"], key=lambda p: int(str(p).split("-")[0])),
                       "v4": sorted(entry["v4"], key=_network_key),
                       "v6": sorted(entry["v6"], key=_network_key), "anywhere": entry["anywhere"]})
        if name == "vrrp":
            result[-1]["macs"] = {a: macs[a] for a in result[-1]["v4"] if a in macs}
    return result


FilterModule = filter_module(firewall_rules)
