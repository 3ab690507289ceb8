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
    the host. The stack's own flows (which hosts call which port) are the stack
    model's (``model``, plugin_utils/model.py and flows.py; computed from
    ``groups`` and ``hostvars`` when not given); this adds SSH, the operators, the
    front's clients, the extra rules, the peers' MACs and ICMP. Example: ``'vm-1' |
    firewall_rules(groups, hostvars, admin_sources=['10.0.0.0/24'])``

:func:`firewall_problems` is preflight's check that every host's plan can be computed.
"""

from __future__ import annotations

import functools
import ipaddress
import re

from ansible.errors import AnsibleFilterError
from ansible_collections.promha.stack.plugins.plugin_utils import inventory
from ansible_collections.promha.stack.plugins.plugin_utils.filters import filter_module, listed
from ansible_collections.promha.stack.plugins.plugin_utils.inventory import UNSET, collect, port_number, setting, variable
from ansible_collections.promha.stack.plugins.plugin_utils.model import stack_model

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


def _ip_of(host, address):
    """``host``'s address, refused naming the host when it has none or it is not an IP address."""
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

    ``model`` is the stack model or the host's view of it (stack_view: the role passes
    its view, preflight its own model for every host's plan); without it, it is computed here.
    """
    if not isinstance(groups, dict) or "all" not in groups:
        raise AnsibleFilterError("firewall_rules: expects the groups mapping (with 'all')")
    if host not in groups["all"]:
        raise AnsibleFilterError(f"firewall_rules: host {host!r} is not in the inventory")
    groups, hostvars = inventory.plain_groups(groups), inventory.HostVarsView(hostvars)
    if model is None:
        model = stack_model(groups, hostvars)
    if "host" in model and model["host"] != host:
        raise AnsibleFilterError(f"firewall_rules: got the stack view of {model['host']!r}, not of {host!r}")
    addresses = model["addresses"]
    # The host's flows: its view's (stack_view), else the model's entry for it.
    own_flows = model["flows"] if "host" in model else model["flows"].get(host, [])
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

    def callers_of(callers):
        """The addresses of ``callers`` (``(address, host)`` pairs) but ``host``'s own, each an IP address."""
        found = sorted({_ip_of(caller, address) for address, caller in callers if caller != host})
        return _networks("firewall_rules", found, "a caller's address")

    macs = {}
    allow("ssh", ("tcp",), {port_number("firewall_rules", ssh_port, "ssh_port")}, admin)
    # The stack's own traffic (the model's flows, flows.py), with the operators where they call too.
    for flow in own_flows:
        name, protos, ports = flow["name"], flow["protos"], set(flow["ports"])
        if name == "vrrp":
            # Each peer's advertisements only from its own link-layer address, where its facts
            # give it: a stranger sending with a peer's IP address is dropped before keepalived.
            for address, peer in model["callers"][flow["callers"]].items():
                mac = peer != host and _link_address(hostvars, peer, address)
                if mac:
                    macs[address] = mac
        if flow["clients"]:
            clients = _networks("firewall_rules", client_sources, "firewall_client_sources")
            anywhere = "0.0.0.0/0" in clients[0] and "::/0" in clients[1]
            allow(name, protos, ports, ([], []) if anywhere else clients, anywhere=anywhere)
            if anywhere:
                continue  # its other callers are among everyone
        allow(name, protos, ports, callers_of(model["callers"][flow["callers"]].items()))
        if flow["operated"]:
            allow(name, protos, ports, operators)
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
        from_groups = callers_of((addresses.get(h), h) for g in rule.get("from_groups", []) for h in groups.get(g, []))
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


def firewall_problems(groups, hostvars, model):
    """Preflight's check: each host's firewall plan (roles/firewall) can be computed from ``model``,
    its admin sources set and its callers with IP addresses; a host that turns it off is skipped."""
    problems = []
    for host in sorted(groups.get("all", [])):
        enabled = variable(hostvars, host, "firewall_enabled")
        if enabled is not UNSET and str(enabled).lower() not in ("true", "yes", "1", "on"):
            continue
        settings = {name: variable(hostvars, host, f"firewall_{name}") for name in
                    ("admin_sources", "operator_sources", "client_sources")}
        kwargs = {name: value for name, value in settings.items() if value is not UNSET}
        collect(problems, firewall_rules, host, groups, hostvars, ssh_port=variable(hostvars, host, "ansible_port", 22),
                model=model, **kwargs)
    return problems


FilterModule = filter_module(firewall_rules)
