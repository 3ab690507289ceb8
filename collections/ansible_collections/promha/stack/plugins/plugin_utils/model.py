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
    address, web_port, cluster_port, web, cluster).

playbooks/preflight.yml computes it once per run and sets it on every host of the
run as ``_stack_model``. The roles read it through the ``promha.stack.model``
lookup, which computes it from the inventory where that did not happen (a role
included on its own); tests/helpers/topology.py reads the same function.

Filters
-------
``stack_model``
    ``groups | stack_model(hostvars)`` -> the mapping above; an error names the host
    and variable of the first problem (playbooks/preflight.yml lists them all first).
"""

from __future__ import annotations

from ansible.errors import AnsibleError
from ansible_collections.promha.stack.plugins.plugin_utils import alertmanager, inventory
from ansible_collections.promha.stack.plugins.plugin_utils.filters import filter_module

# The prometheus role's default for prometheus_min_replicas (roles/prometheus/defaults).
DEFAULT_MIN_REPLICAS = 2


def min_replicas(groups, hostvars):
    """``prometheus_min_replicas`` as the first Prometheus host sets it, else the role's default."""
    hosts = groups.get("prometheus") or []
    value = hostvars[hosts[0]].get("prometheus_min_replicas") if hosts else None
    return DEFAULT_MIN_REPLICAS if value in (None, "") else value


def stack_model(groups, hostvars, partial=False):
    """The stack's addresses, Prometheus shards, global tier and Alertmanager instances.

    An inventory the model cannot be built from raises the first problem. With
    ``partial``, what cannot be built is left out instead (a host's address, the
    shards, the instances): preflight names those problems itself and goes on to
    check what depends on the rest.
    """
    hostvars = inventory.HostVarsView(hostvars)
    shard_hosts = groups.get("prometheus") or []
    alertmanager_hosts = groups.get("alertmanager") or []

    def built(part, empty):
        try:
            return part()
        except AnsibleError:
            if not partial:
                raise
            return empty

    addresses = {host: built(lambda host=host: inventory.host_address(host, hostvars), None)
                 for host in groups.get("all") or []}
    return {
        "addresses": {host: address for host, address in addresses.items() if address is not None},
        "shards": built(lambda: inventory.prometheus_shards(
            shard_hosts, hostvars, min_replicas=min_replicas(groups, hostvars)), {}) if shard_hosts else {},
        "global": sorted(groups.get("prometheus_global") or []),
        "alertmanagers": built(lambda: alertmanager.alertmanager_instances(alertmanager_hosts, hostvars), [])
        if alertmanager_hosts else [],
    }


FilterModule = filter_module(stack_model)
