"""The stack's flows: which hosts call which ports of each host, from the inventory.

One table, :data:`FLOWS`, says which group's daemon is called on which port by
which groups; :func:`stack_flows` turns it, with the stack model's addresses,
shards and Alertmanager instances, into every host's inbound flows. The stack
model (model.py) holds the result as ``flows``; the firewall (firewall.py) adds
what is not the stack's own traffic - SSH from the admins, the operators, the
front's clients, the site's extra rules, VRRP peers' link-layer addresses - and
writes each host's plan.

A flow is ``{name, protos, ports, callers, operated, clients}``: ``callers`` names
the flow's callers, one key of the model's ``callers`` (``{key: {address: host}}``:
each calling address and its host, the host itself among them where its group
calls its own, which the firewall leaves out; a key is the calling groups joined
by ``+``, ``shard N`` for a replica's pair, ``gossip to HOST`` for an Alertmanager
host's peers), so that each set of callers is written once whatever the number of
hosts it calls. ``operated`` says the operators reach the port too, ``clients``
that the front's clients do.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.promha.stack.plugins.plugin_utils.access import truthy
from ansible_collections.promha.stack.plugins.plugin_utils.inventory import setting

# (flow, serving group, protocols, port setting (access.PORTS) or None, calling groups, operators too)
FLOWS = (
    # The global tier only federates: the shards' replicas scrape every node_exporter.
    ("node_exporter", "all", ("tcp",), "node_exporter_port", ("prometheus",), True),
    # A replica is called by its own shard's other replicas (the pair job) too: stack_flows adds it.
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


# The exporters a role runs unless the host switches them off: such a host does not
# serve the tier (no endpoint in the model, no flow, no scrape).
SWITCHES = {"mysql_exporter": "mysql_exporter_enabled", "nginx_exporter": "nginx_exporter_enabled"}


def switched_off(hostvars, host, name):
    """Whether ``host`` switches off the exporter of flow or tier ``name`` (:data:`SWITCHES`)."""
    return name in SWITCHES and not truthy(setting(hostvars, host, SWITCHES[name], True))


def vrrp_protocol(hostvars, host):
    """VRRP's IP protocol on ``host``: ``ah`` (51) when keepalived authenticates advertisements
    (``keepalived_authentication``, default ah, none under ``stack_plain_http``), ``vrrp`` (112)
    when it does not."""
    plain = truthy(setting(hostvars, host, "stack_plain_http", False))
    mode = setting(hostvars, host, "keepalived_authentication", "none" if plain else "ah")
    if mode not in ("ah", "none"):
        raise AnsibleFilterError(f"stack_model: keepalived_authentication of {host!r} must be ah or none, "
                                 f"got {mode!r}")
    return "ah" if mode == "ah" else "vrrp"


def _flow(name, protos, ports, callers, operated=False, clients=False):
    return {"name": name, "protos": list(protos), "ports": sorted(ports), "callers": callers,
            "operated": operated, "clients": clients}


def stack_flows(groups, hostvars, addresses, shards, instances, port):
    """``({host: [flow]}, {key: {address: host}})``: every host's flows and their callers (see
    the module's text).

    ``addresses``, ``shards`` and ``instances`` are the stack model's; ``port(host,
    port_var)`` the port a host serves a setting on. A caller without an address (a
    partial model) is left out.
    """
    callers = {}

    def of_groups(names):
        key = "+".join(names)
        if key not in callers:
            callers[key] = {addresses[h]: h for g in names for h in groups.get(g) or [] if h in addresses}
        return key

    members = {group: set(groups.get(group) or []) for group in {row[1] for row in FLOWS} | {"alertmanager"}}
    pairs = {}
    for shard, replicas in shards.items():
        callers[f"shard {shard}"] = {addresses[h]: h for h in replicas if h in addresses}
        pairs.update((host, f"shard {shard}") for host in replicas)
    per_host = {}
    for instance in instances:
        per_host.setdefault(instance["host"], []).append(instance)
    flows = {}
    for host in groups.get("all") or []:
        mine = flows[host] = []
        if host in pairs:
            mine.append(_flow("prometheus", ("tcp",), [port(host, "prometheus_port")], pairs[host]))
        for name, group, protos, port_var, calling, operated in FLOWS:
            if host not in members[group] or switched_off(hostvars, host, name):
                continue
            if name == "vrrp":
                protos = (vrrp_protocol(hostvars, host),)
            mine.append(_flow(name, protos, [port(host, port_var)] if port_var else [], of_groups(calling), operated))
        if host in members["alertmanager"]:
            own = per_host.get(host, [])
            mine.append(_flow("alertmanager", ("tcp",), {i["web_port"] for i in own},
                              of_groups(("prometheus", "prometheus_global", "loadbalancer")), operated=True))
            gossip = callers[f"gossip to {host}"] = {i["address"]: i["host"] for i in instances if i["host"] != host}
            gossip.update((addresses[h], h) for h in groups["alertmanager"] if h != host and h in addresses)
            tls = setting(hostvars, host, "alertmanager_cluster_tls_enabled", None)
            if tls is None:
                tls = not truthy(setting(hostvars, host, "stack_plain_http", False))
            # Gossip over TLS is TCP only (memberlist's packets ride the TLS streams).
            mine.append(_flow("alertmanager_gossip", ("tcp",) if truthy(tls) else ("tcp", "udp"),
                              {i["cluster_port"] for i in own}, f"gossip to {host}"))
        if host in members["loadbalancer"]:
            # The front's clients, and the shard replicas that probe its paths as users do.
            mine.append(_flow("front", ("tcp",), {port(host, "nginx_listen_port"), port(host, "nginx_tls_port")},
                              of_groups(("prometheus",)), clients=True))
    return flows, callers
