"""The stack model: what the tiers know of each other, from the inventory, computed once.

``stack_model(groups, hostvars)`` answers, for the whole inventory at once, the
questions several roles, the preflight, the scripts and the tests ask:

``addresses``
    every host's address (``host_address``: ``stack_address``, else ``ansible_host``,
    else the inventory name);
``shards``
    the Prometheus shards, ``{index: [replicas]}`` (``prometheus_shards``: indices
    0..N-1 without gaps, each with at least ``prometheus_min_replicas`` replicas as
    the first Prometheus host sets it, else 2, the role's default);
``global``
    the global tier's hosts, sorted;
``alertmanagers``
    every Alertmanager instance (``alertmanager_instances``: host, name, peer_name,
    address, web_port, cluster_port, web, cluster);
``endpoints``
    ``{tier: {host: "address:port"}}``: where each host of a tier's groups
    (:data:`SERVED_BY`) serves it, on the port its variable sets (:data:`PORT_OF`: the
    tier's in access.TIERS, ``grafana_ha_port`` for Grafana's alerting gossip,
    ``grafana_ha``), else the role's default (access.PORTS); a host that switches an exporter off
    (``mysql_exporter_enabled``, ``nginx_exporter_enabled``) does not serve it;
``access``
    ``{tier: {tls, scheme, user, ca, password_file}}``: how a client reaches each tier
    of access.TIERS (access.tier_settings), from the variables of the first host
    that serves it (:data:`ACCESS_FROM`; preflight holds them alike on every host),
    else the stack's rule; ``password_file`` is the generated credential a client
    sends, ``''`` where the inventory sets the password (the lookup reads it) or the
    tier asks for no account;
``certificates``
    every certificate the stack's CAs issue, with its subjectAltNames
    (``pki.stack_certificates``), which site.yml's PKI step issues where missing;
``flows`` and ``callers``
    ``{host: [{name, protos, ports, callers, operated, clients}]}``: every host's
    inbound flows of the stack's own traffic, each naming its callers, a key of
    ``callers`` (``{key: {address: host}}``; flows.py), from which the firewall
    writes each host's plan.

playbooks/preflight.yml computes it once per run and sets it on every host of the
run as ``_stack_model``. The roles read it through the ``promha.stack.model``
lookup, which computes it from the inventory where that did not happen (a role
included on its own); each role reads its host's view (``stack_view``) through the
``promha.stack.view`` lookup. tests/helpers/topology.py reads the same function.

Filters
-------
``stack_model``
    ``groups | stack_model(hostvars)`` -> the mapping above; an error names the host
    and variable of the first problem (playbooks/preflight.yml lists them all first).
``endpoints``
    ``hosts | endpoints(model, tier)`` -> the sorted ``address:port`` list of ``tier``
    on those hosts (upstreams, targets, peers); a host that does not serve the tier
    is refused, naming it. Example: ``groups['grafana'] |
    endpoints(lookup('promha.stack.model'), 'grafana')``
``stack_view``
    ``host | stack_view(model)`` -> ``host``'s view of the stack, what its roles read:
    the model's shared parts as they are (``addresses``, ``endpoints``, ``access``,
    ``shards``, ``global``, ``alertmanagers``; the ``endpoints`` filter takes the view as the
    model), and the host's own: ``address``; ``serves`` (``{tier: "address:port"}``,
    each tier it serves); ``shard`` (its Prometheus shard's index, ``'global'`` on the
    global tier, else None) and ``replicas`` (the hosts of that shard or tier, itself
    among them); ``instances`` (its Alertmanager instances); ``flows`` (its inbound
    flows) and ``certificates`` (those issued to it). A host the model does not know is
    refused, naming it. The roles read it as ``lookup('promha.stack.view')``, which
    computes it beside the model (a filter given the model's lookup receives a copy of
    the whole model). Example: ``'prom-s0-a' | stack_view(model)``
"""

from __future__ import annotations

from ansible.errors import AnsibleError, AnsibleFilterError
from ansible_collections.promha.stack.plugins.plugin_utils import alertmanager, flows, inventory, pki
from ansible_collections.promha.stack.plugins.plugin_utils.access import PORTS, TIERS, stack_access, tier_settings
from ansible_collections.promha.stack.plugins.plugin_utils.filters import filter_module, listed
from jinja2 import Undefined

# The prometheus role's default for prometheus_min_replicas (roles/prometheus/defaults).
DEFAULT_MIN_REPLICAS = 2
# The groups whose hosts serve each tier on one port (Alertmanager's instances, several
# per host, are ``alertmanagers``).
SERVED_BY = {"prometheus": ("prometheus", "prometheus_global"), "node_exporter": ("all",),
             "remote_storage": ("remote_storage",), "mysql_exporter": ("mysql",), "grafana": ("grafana",),
             "nginx_exporter": ("loadbalancer",), "front": ("loadbalancer",), "grafana_ha": ("grafana",)}
# The variable of the port each of those serves on: the tier's (access.TIERS), and for
# Grafana's alerting gossip (ha_peers), which only the other Grafana instances call, its own.
PORT_OF = dict({tier: TIERS[tier].port for tier in SERVED_BY if tier in TIERS}, grafana_ha="grafana_ha_port")
# Whose variables say how each tier of access.TIERS is reached: the hosts that serve it.
ACCESS_FROM = dict({tier: SERVED_BY[tier] for tier in SERVED_BY if tier in TIERS},
                   alertmanager=("alertmanager",), grafana_metrics=("grafana",))


def min_replicas(groups, hostvars):
    """``prometheus_min_replicas`` as the first Prometheus host sets it, else the role's default."""
    hosts = groups.get("prometheus") or []
    value = hostvars[hosts[0]].get("prometheus_min_replicas") if hosts else None
    return DEFAULT_MIN_REPLICAS if value in (None, "") else value


def stack_model(groups, hostvars, partial=False, problems=None):
    """The stack's addresses, Prometheus shards, global tier, Alertmanager instances,
    endpoints, access, certificates, flows and their callers.

    An inventory the model cannot be built from raises the first problem. With
    ``partial``, what cannot be built is left out instead (a host's address or
    endpoint, the shards, the instances, the certificates); with ``problems`` (a
    list) too, and each problem is added to it: preflight's way, which lists every
    problem, and whose model is whole when it found none.
    """
    hostvars = inventory.HostVarsView(hostvars)
    shard_hosts = groups.get("prometheus") or []
    alertmanager_hosts = groups.get("alertmanager") or []

    def built(part, empty):
        try:
            return part()
        except AnsibleError as error:
            if problems is not None:
                # A bad port is met as an endpoint and again as a flow: listed once.
                if inventory.message(error) not in problems:
                    problems.append(inventory.message(error))
            elif not partial:
                raise
            return empty

    addresses = {host: built(lambda host=host: inventory.host_address(host, hostvars), None)
                 for host in groups.get("all") or []}
    addresses = {host: address for host, address in addresses.items() if address is not None}
    shards = built(lambda: inventory.prometheus_shards(
        shard_hosts, hostvars, min_replicas=min_replicas(groups, hostvars)), {}) if shard_hosts else {}
    instances = built(lambda: alertmanager.alertmanager_instances(alertmanager_hosts, hostvars), []) \
        if alertmanager_hosts else []
    model = {
        "addresses": addresses,
        "shards": shards,
        "global": sorted(groups.get("prometheus_global") or []),
        "alertmanagers": instances,
        "endpoints": {tier: {host: endpoint for host, endpoint in (
            (host, built(lambda host=host, tier=tier: _endpoint(hostvars, host, addresses[host], tier), None))
            for host in _serving(groups, tier, hostvars) if host in addresses) if endpoint is not None}
            for tier in SERVED_BY},
        "access": built(lambda: tiers_access(groups, hostvars), {}),
        "certificates": built(lambda: pki.stack_certificates(groups, hostvars), []),
    }
    model["flows"], model["callers"] = built(lambda: flows.stack_flows(
        groups, hostvars, addresses, shards, instances,
        lambda host, port_var: serving_port(hostvars, host, port_var)), ({}, {}))
    return model


def tiers_access(groups, hostvars):
    """The model's ``access``: ``{tier: access.tier_settings(...)}``, each from the first host that
    serves the tier, else the first host of the inventory, else the stack's rule."""
    first = (groups.get("all") or [None])[0]
    found = {}
    for tier in TIERS:
        host = next((h for group in ACCESS_FROM[tier] for h in groups.get(group) or []), first)
        value = _variable_of(hostvars, host)
        found[tier] = tier_settings(tier, value, stack_access(
            value("stack_plain_http"), value("stack_secrets_dir"), value("inventory_dir")))
    return found


def _variable_of(hostvars, host):
    """``value(name)`` of ``host``'s variables: None where it is unset (or undefined), or no host."""
    def value(name):
        if host is None:
            return None
        found = hostvars[host].get(name)
        return None if isinstance(found, Undefined) else found
    return value


def run_model(variables):
    """The model the run set on the host (``_stack_model``), else computed from ``variables``'
    ``groups`` and ``hostvars`` (a role included on its own): what the lookups read."""
    model = variables.get("_stack_model")
    if model is None:
        model = stack_model(variables.get("groups") or {}, variables.get("hostvars") or {})
    return model


def _serving(groups, tier, hostvars):
    """The hosts of ``tier``'s groups, in inventory order, each once, but those that switch
    the tier's exporter off (flows.SWITCHES)."""
    return dict.fromkeys(host for group in SERVED_BY[tier] for host in groups.get(group) or []
                         if not flows.switched_off(hostvars, host, tier))


def serving_port(hostvars, host, port_var, caller="stack_model"):
    """The port ``host`` serves on for ``port_var``: its setting, else the role's default (access.PORTS);
    an error naming ``caller``, the host and the variable for anything but 1..65535."""
    return inventory.port_number(caller, inventory.setting(hostvars, host, port_var, PORTS[port_var]),
                                 f"host {host!r} ({port_var})")


def _endpoint(hostvars, host, address, tier):
    return inventory.join_host_port(address, serving_port(hostvars, host, PORT_OF[tier]))


def endpoints(hosts, model, tier):
    """The sorted ``address:port`` list of ``tier`` on ``hosts`` (each once), from the stack model."""
    served = (model.get("endpoints") or {}).get(tier) if isinstance(model, dict) else None
    if served is None:
        raise AnsibleFilterError(f"endpoints: {tier!r} is not a tier of the stack model; one of "
                                 f"{', '.join(SERVED_BY)} (give it lookup('promha.stack.model'))")
    hosts = listed(hosts, lambda: f"endpoints: expected a list of inventory host names, got {hosts!r}")
    strangers = [host for host in hosts if host not in served]
    if strangers:
        raise AnsibleFilterError(f"endpoints: host(s) {', '.join(map(str, strangers))} do not serve {tier} (the "
                                 f"hosts of {' and '.join(SERVED_BY[tier])} do, unless they switch it off)")
    return sorted({served[host] for host in hosts})


# The parts of the model every host's view shares, as they are.
SHARED = ("addresses", "endpoints", "access", "shards", "global", "alertmanagers", "callers")


def stack_view(host, model):
    """``host``'s view of the stack: the model's shared parts, its address, the tiers it serves,
    its shard and that shard's replicas, its Alertmanager instances, flows and certificates."""
    if not isinstance(model, dict) or "addresses" not in model:
        raise AnsibleFilterError(f"stack_view: expects the stack model (lookup('promha.stack.model')), got {model!r}")
    host = str(host)
    if host not in model["addresses"]:
        raise AnsibleFilterError(f"stack_view: host {host!r} is not in the stack model (its address could not be "
                                 "built, or it is not in the inventory)")
    shard, replicas = None, []
    if host in (model.get("global") or []):
        shard, replicas = "global", list(model["global"])
    else:
        for index, members in (model.get("shards") or {}).items():
            if host in members:
                shard, replicas = int(index), list(members)
                break
    view = {part: model.get(part) for part in SHARED}
    view.update({
        "host": host,
        "address": model["addresses"][host],
        "serves": {tier: served[host] for tier, served in (model.get("endpoints") or {}).items() if host in served},
        "shard": shard,
        "replicas": replicas,
        "instances": [i for i in model.get("alertmanagers") or [] if i["host"] == host],
        "flows": (model.get("flows") or {}).get(host, []),
        "certificates": [c for c in model.get("certificates") or [] if c["host"] == host],
    })
    return view


FilterModule = filter_module(stack_model, endpoints, stack_view)
