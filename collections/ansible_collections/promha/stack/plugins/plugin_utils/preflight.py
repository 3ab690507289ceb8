"""Preflight: the stack model can be built from the inventory, and every problem, in one list.

site.yml's first play (playbooks/preflight.yml) runs this on the controller. It
builds the stack model (model.py) with every problem the model meets on the way (an
address, a shard, an Alertmanager instance, a port, a certificate's name), then runs
each subject's check (:data:`CHECKS`) against that model: the settings the model
does not hold (secrets, TLS files, extra flags, failure domains) beside the code
they protect. Each check reuses the functions the roles use, so preflight and the
roles cannot disagree, and names the host and the variable; the play fails once with
the whole list, before any host is contacted.

Filters
-------
``inventory_check``
    ``groups | inventory_check(hostvars)`` -> ``{problems, model}``: every problem, one
    line each, and the stack model, whole when there is none: playbooks/preflight.yml
    sets it for the run.
``inventory_problems``
    ``groups | inventory_problems(hostvars)`` -> ``['host db-1: mysql_grafana_password
    is a placeholder; ...', ...]``; empty when the inventory can be deployed.
``inventory_warnings``
    ``groups | inventory_warnings(inventory_dir, hostvars)`` -> one line per name under
    ``<inventory_dir>/group_vars/`` that is not a group of the inventory (a typo
    there silently applies nothing); with ``hostvars``, outside production the
    failure-domain problems (domains.py), and where a host turns ``stack_plain_http``
    on, what that leaves open.
"""

from __future__ import annotations

import os
import re

from ansible.errors import AnsibleFilterError
from ansible_collections.promha.stack.plugins.plugin_utils import (
    access,
    alertmanager,
    domains,
    firewall,
    flags,
    frontend,
    galera,
    inventory,
    model,
    prometheus,
    webaccess,
)
from ansible_collections.promha.stack.plugins.plugin_utils.filters import filter_module

# Each subject's check, ``(groups, hostvars, model) -> [problem]``, in the order the list names them.
CHECKS = (
    access.stack_setting_problems,     # one value of every stack-wide setting; no plain HTTP in production
    prometheus.prometheus_problems,    # retired variables, scrape jobs for the model's shards, labels, front probes
    alertmanager.alertmanager_problems,  # advertise addresses, gossip settings, the cluster label
    frontend.frontend_problems,        # nginx's and Grafana's metrics, the secrets, database TLS, the floating address
    galera.database_problems,          # the database's votes and cluster settings
    webaccess.web_problems,            # Prometheus' and Alertmanager's passwords and TLS files
    firewall.firewall_problems,        # each host's firewall plan from the model
    flags.extra_problems,              # extra flags and settings
    domains.domain_problems,           # failure domains, in production
)


def inventory_check(groups, hostvars):
    """``{problems, model}``: every problem of the inventory, once each, naming the host and the
    variable, and the stack model (model.py), whole when there is no problem."""
    if not hasattr(groups, "get"):
        raise AnsibleFilterError(f"inventory_problems: expected the groups mapping, got {groups!r}")
    groups, hostvars = inventory.plain_groups(groups), inventory.HostVarsView(hostvars)
    problems = []
    stack = model.stack_model(groups, hostvars, problems=problems)
    for check in CHECKS:
        problems += check(groups, hostvars, stack)
    return {"problems": list(dict.fromkeys(problems)), "model": stack}


def inventory_problems(groups, hostvars):
    """Every problem of the inventory, one line each, naming the host and the variable."""
    return inventory_check(groups, hostvars)["problems"]


PLAIN_WARNING = ("stack_plain_http is on: plain HTTP, no credentials and no gossip TLS wherever a tier does not "
                 "turn them on itself; anyone who reaches a port can read, write, silence and delete")


def inventory_warnings(groups, inventory_dir, hostvars=None):
    """Names under ``inventory_dir/group_vars`` (files or directories) that are not groups; with
    ``hostvars``, outside production, what ``failure_domain_problems`` finds, and
    :data:`PLAIN_WARNING` where a host reads ``stack_plain_http`` as on (access.py's rule)."""
    found = []
    if hostvars is not None:
        groups, hostvars = inventory.plain_groups(groups), inventory.HostVarsView(hostvars)
        if not domains.production(groups, hostvars):
            found = [f"{line} (refused in production)" for line in domains.failure_domain_problems(groups, hostvars)]
        if any(access.host_access(hostvars, host)["plain"] for host in groups.get("all", [])):
            found.append(PLAIN_WARNING)
    directory = os.path.join(str(inventory_dir or ""), "group_vars")
    if not inventory_dir or not os.path.isdir(directory):
        return found
    names = {re.sub(r"\.(ya?ml|json)$", "", entry) for entry in os.listdir(directory) if not entry.startswith(".")}
    known = set(groups) | {"all", "ungrouped"}
    return [f"group_vars/{name} names no group of this inventory (a typo? its variables apply to no host)"
            for name in sorted(names - known)] + found


FilterModule = filter_module(inventory_check, inventory_problems, inventory_warnings)
