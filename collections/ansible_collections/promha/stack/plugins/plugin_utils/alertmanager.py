"""The Alertmanager cluster from the inventory: every instance, its peers and addresses.

A host runs one instance or several (``alertmanager_instances``); an instance may
carry its own ``address``. Every Prometheus sends to every instance, and each
instance gossips with all the others.

Filters
-------
``alertmanager_instances``
    ``groups['alertmanager'] | alertmanager_instances(hostvars)`` -> one dict per
    instance: ``host, name, peer_name, address, web_port, cluster_port, web,
    cluster``. A host lists its instances in ``alertmanager_instances``
    (``[{name, web_port, cluster_port, address}]``); without it, one instance on
    the default ports.
``alertmanager_peers``
    ``instances | alertmanager_peers(inventory_hostname, name)`` -> the
    ``--cluster.peer`` list of that instance: the cluster address of every other
    instance.
``alertmanager_advertise_address``
    ``instances | alertmanager_advertise_address(inventory_hostname, name)`` ->
    ``ip:cluster_port``; an error when only a host name is known, since
    Alertmanager does not accept names there.
``alertmanager_targets``
    ``instances | alertmanager_targets`` -> the web address of every instance, for
    Prometheus' ``alerting.alertmanagers`` (never a load balancer).

:func:`alertmanager_problems` is preflight's check of the cluster's settings.
"""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError
from ansible_collections.promha.stack.plugins.plugin_utils import inventory
from ansible_collections.promha.stack.plugins.plugin_utils.filters import filter_module, listed
from ansible_collections.promha.stack.plugins.plugin_utils.flags import gossip_problems
from ansible_collections.promha.stack.plugins.plugin_utils.inventory import UNSET, collect, variable


def alertmanager_instances(hosts, hostvars, default_web_port=9093, default_cluster_port=9094,
                           instances_var="alertmanager_instances", address_var=inventory.DEFAULT_ADDRESS_VAR):
    """Return every Alertmanager instance of the group, with addresses and peer names."""
    members = inventory.group_hosts("alertmanager_instances", hosts, "alertmanager")
    result = []
    for host in members:
        hvars = inventory.vars_of("alertmanager_instances", hostvars, host)
        declared = hvars.get(instances_var)
        if declared is None:
            declared = [{"web_port": default_web_port, "cluster_port": default_cluster_port}]
        declared = listed(declared, f"alertmanager_instances: host {host!r} has {instances_var}={declared!r}; it "
                          "must be a non-empty list of {name, web_port, cluster_port}", empty=False)
        seen_ports, seen_names = {}, set()
        for position, spec in enumerate(declared):
            where = f"host {host!r} {instances_var}[{position}]"
            if not isinstance(spec, dict):
                raise AnsibleFilterError(f"alertmanager_instances: {where} must be a mapping, got {spec!r}")
            unknown = set(spec) - {"name", "web_port", "cluster_port", "address"}
            if unknown:
                raise AnsibleFilterError(
                    f"alertmanager_instances: {where} has unknown key(s) {sorted(unknown)}; "
                    "allowed: name, web_port, cluster_port, address"
                )
            web = inventory.port_number("alertmanager_instances", spec.get("web_port", default_web_port), f"{where}.web_port")
            cluster = inventory.port_number("alertmanager_instances", spec.get("cluster_port", default_cluster_port),
                            f"{where}.cluster_port")
            name = str(spec.get("name", web))
            if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
                raise AnsibleFilterError(
                    f"alertmanager_instances: {where}.name {name!r} may hold only letters, digits, '.', '_' and '-'"
                )
            if name in seen_names:
                raise AnsibleFilterError(f"alertmanager_instances: {where}.name {name!r} is used twice on {host!r}")
            seen_names.add(name)
            for kind, number in (("web_port", web), ("cluster_port", cluster)):
                if number in seen_ports:
                    raise AnsibleFilterError(
                        f"alertmanager_instances: {where}.{kind} {number} is already the "
                        f"{seen_ports[number]} on {host!r}; every instance on a host needs its own ports"
                    )
                seen_ports[number] = f"{kind} of instance {name!r}"
            if "address" in spec:
                address = inventory.clean_address("alertmanager_instances", host, spec["address"], f"{where}.address")
            else:
                address = inventory.host_address(host, hostvars, address_var)
            result.append({
                "host": host,
                "name": name,
                "peer_name": f"{host}-{name}",
                "address": address,
                "web_port": web,
                "cluster_port": cluster,
                "web": inventory.join_host_port(address, web),
                "cluster": inventory.join_host_port(address, cluster),
            })
    clusters = {}
    for instance in result:
        other = clusters.setdefault(instance["cluster"], instance)
        if other is not instance:
            raise AnsibleFilterError(
                f"alertmanager_instances: {instance['host']}/{instance['name']} and "
                f"{other['host']}/{other['name']} both use cluster address {instance['cluster']}"
            )
    return sorted(result, key=lambda item: (item["host"], item["web_port"]))


def _find_instance(filter_name, instances, host, name):
    if not isinstance(instances, list) or not instances:
        raise AnsibleFilterError(f"{filter_name}: expected the list from alertmanager_instances, got {instances!r}")
    for instance in instances:
        if instance.get("host") == host and (name is None or str(instance.get("name")) == str(name)):
            return instance
    known = ", ".join(f"{i.get('host')}/{i.get('name')}" for i in instances)
    raise AnsibleFilterError(f"{filter_name}: no Alertmanager instance {host}/{name}; known: {known}")


def alertmanager_peers(instances, host, name=None):
    """Return the ``--cluster.peer`` list for one instance: every other member's cluster address."""
    me = _find_instance("alertmanager_peers", instances, host, name)
    return sorted({i["cluster"] for i in instances if i is not me and i["cluster"] != me["cluster"]})


def alertmanager_advertise_address(instances, host, name=None):
    """Return ``ip:cluster_port`` for ``--cluster.advertise-address``; names are refused."""
    me = _find_instance("alertmanager_advertise_address", instances, host, name)
    if not inventory.is_ip(me["address"]):
        raise AnsibleFilterError(
            f"alertmanager_advertise_address: host {host!r} instance {me['name']!r} only has the name "
            f"{me['address']!r}; Alertmanager's --cluster.advertise-address needs an IP:port. Set "
            f"{inventory.DEFAULT_ADDRESS_VAR} (or the instance's address) to the host's IP"
        )
    return me["cluster"]


def alertmanager_targets(instances):
    """Return the web address of every Alertmanager instance (Prometheus ``alerting`` targets)."""
    if not isinstance(instances, list) or not instances:
        raise AnsibleFilterError(
            f"alertmanager_targets: expected the non-empty list from alertmanager_instances, got {instances!r}"
        )
    return sorted({instance["web"] for instance in instances})


# roles/alertmanager's gossip defaults (a unit test keeps them equal).
GOSSIP_DEFAULTS = {"alertmanager_cluster_peer_timeout": "15s", "alertmanager_cluster_gossip_interval": "200ms",
                   "alertmanager_cluster_pushpull_interval": "10s", "alertmanager_cluster_probe_interval": "1s",
                   "alertmanager_cluster_probe_timeout": "500ms", "alertmanager_cluster_settle_timeout": "1m0s",
                   "alertmanager_cluster_tcp_timeout": "10s"}
_CLUSTER_LABEL = re.compile(r"^[A-Za-z0-9_.-]*$")


def alertmanager_problems(groups, hostvars, model):
    """Preflight's check of the Alertmanager cluster: an IP address to advertise for every instance
    of ``model``, gossip settings Alertmanager accepts, a cluster label of safe characters."""
    problems = []
    instances = model.get("alertmanagers") or []
    for instance in instances:
        collect(problems, alertmanager_advertise_address, instances, instance["host"], instance["name"])
    for host in groups.get("alertmanager", []):
        settings = {name: variable(hostvars, host, name, default) for name, default in GOSSIP_DEFAULTS.items()}
        problems += [f"host {host}: {line}" for line in gossip_problems(settings)]
        label = variable(hostvars, host, "alertmanager_cluster_label")
        if label is not UNSET and not _CLUSTER_LABEL.fullmatch(str(label)):
            problems.append(f"host {host}: alertmanager_cluster_label {label!r} may hold only letters, digits, "
                            "'.', '_' and '-'")
    return problems


FilterModule = filter_module(
    alertmanager_instances, alertmanager_peers, alertmanager_advertise_address, alertmanager_targets)
