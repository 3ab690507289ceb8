"""Failure domains: what one lost rack, zone or hypervisor would take down whole.

Each host may name its failure domain (``stack_failure_domain``). Groups whose
members stand in for each other (:data:`REDUNDANT_GROUPS`, and each Prometheus
shard's replicas) must keep a member outside any one domain; a quorum group
(:data:`QUORUM_GROUPS`) must keep its majority outside any one domain; a group of
:data:`PAIRED_GROUPS`, each the only copy of something, needs two members. Preflight
refuses these problems where ``stack_environment`` is production and warns of them
elsewhere.

Filters
-------
``failure_domain_problems``
    ``groups | failure_domain_problems(hostvars)`` -> one line per set of hosts that
    one ``stack_failure_domain`` would take down together (both replicas of a shard,
    every storage node, both balancers, every Alertmanager, a quorum's majority);
    part of ``inventory_problems`` where ``stack_environment`` is production.
"""

from __future__ import annotations

from ansible.errors import AnsibleError, AnsibleFilterError
from ansible_collections.promha.stack.plugins.plugin_utils import inventory
from ansible_collections.promha.stack.plugins.plugin_utils.filters import filter_module
from ansible_collections.promha.stack.plugins.plugin_utils.inventory import UNSET, variable

REDUNDANT_GROUPS = ("remote_storage", "loadbalancer", "alertmanager", "prometheus_global", "grafana")
QUORUM_GROUPS = ("mysql",)
PAIRED_GROUPS = ("remote_storage", "loadbalancer", "alertmanager")


def production(groups, hostvars):
    """Whether any host of the inventory sets ``stack_environment`` to production."""
    return any(str(variable(hostvars, host, "stack_environment")) == "production" for host in groups.get("all", []))


def _shards(groups, hostvars, model):
    if model is not None:
        return model.get("shards") or {}
    hosts = groups.get("prometheus", [])
    try:
        return inventory.prometheus_shards(hosts, hostvars) if hosts else {}
    except AnsibleError:
        return {}  # named by the model's own problems


def failure_domain_problems(groups, hostvars, model=None):
    """What one lost failure domain would take down whole, one line each (the module's rules);
    the shards from ``model`` where given, else from the inventory."""
    if not hasattr(groups, "get"):
        raise AnsibleFilterError(f"failure_domain_problems: expected the groups mapping, got {groups!r}")
    hostvars = inventory.HostVarsView(hostvars)
    sets = [(f"the replicas of shard {shard}", replicas, False)
            for shard, replicas in _shards(groups, hostvars, model).items()]
    sets += [(f"the {group} hosts", sorted(groups.get(group, [])), False) for group in REDUNDANT_GROUPS]
    sets += [(f"the {group} quorum", sorted(groups.get(group, [])), True) for group in QUORUM_GROUPS]
    problems, unnamed = [], set()
    for what, hosts, quorum in sets:
        if len(hosts) < (3 if quorum else 2):
            continue
        domains = {}
        for host in hosts:
            domain = variable(hostvars, host, "stack_failure_domain")
            if domain is UNSET or not str(domain).strip():
                unnamed.add(host)
                continue
            domains.setdefault(str(domain), []).append(host)
        for domain, members in sorted(domains.items()):
            whole = len(members) == len(hosts)
            if whole or (quorum and len(members) > len(hosts) // 2):
                share = "all" if whole else f"{len(members)} of {len(hosts)}, a majority"
                problems.append(f"hosts {', '.join(members)}: {what} ({share}) share stack_failure_domain "
                                f"{domain!r}; losing it loses them together: put them in different domains")
    for group in PAIRED_GROUPS:
        members = groups.get(group, [])
        if len(members) == 1:
            problems.append(f"host {members[0]}: the only {group} host; one lost host would take the tier down: "
                            f"add a second {group} host in another stack_failure_domain")
    if unnamed:
        problems.append(f"hosts {', '.join(sorted(unnamed))}: stack_failure_domain is not set; name each host's "
                        "rack, zone or hypervisor so that preflight can check that no one domain holds a whole tier")
    return problems


def domain_problems(groups, hostvars, model):
    """Preflight's check: :func:`failure_domain_problems` where the inventory is production's."""
    return failure_domain_problems(groups, hostvars, model) if production(groups, hostvars) else []


FilterModule = filter_module(failure_domain_problems)
