"""Whole-inventory preflight: every problem of an inventory, in one list.

site.yml's first play runs these on the controller. Each check reuses the filter
the roles use (so preflight and the roles cannot disagree), catches its error,
and adds one line naming the host and the variable; the play then fails once
with the whole list, before any host is contacted.

Filters
-------
``inventory_problems``
    ``groups | inventory_problems(hostvars)`` -> ``['host db-1: mysql_grafana_password
    is a placeholder; ...', ...]``; empty when the inventory can be deployed.
``inventory_warnings``
    ``groups | inventory_warnings(inventory_dir)`` -> one line per name under
    ``<inventory_dir>/group_vars/`` that is not a group of the inventory (a typo
    there silently applies nothing).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys

from ansible.errors import AnsibleError, AnsibleFilterError
from jinja2 import Undefined


def _sibling(name):
    """Load plugins/filter/<name>.py once (Ansible loads each filter file on its own)."""
    key = f"promha_filter_{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                                         f"{name}.py"))
        sys.modules[key] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[key])
    return sys.modules[key]


peers = _sibling("peers")
frontend = _sibling("frontend")
webaccess = _sibling("webaccess")
shards = _sibling("shards")

_VIP = re.compile(r"^[0-9a-fA-F:.]+/[0-9]{1,3}$")
_UNSET = object()


def _get(hostvars, host, name):
    """A host's variable, ``_UNSET`` when it is not defined (or its template is undefined)."""
    try:
        value = hostvars[host].get(name, _UNSET)
    except AnsibleError:
        return _UNSET
    # ansible-core 2.19 hands out an undefined template result as a marker object.
    return _UNSET if isinstance(value, Undefined) else value


def _secret(hostvars, host, name):
    value = _get(hostvars, host, name)
    return None if value is _UNSET else value


def _check(problems, call, *args, **kwargs):
    try:
        return call(*args, **kwargs)
    except AnsibleError as error:
        problems.append(str(error.message if hasattr(error, "message") else error).strip())
        return None


def _address_problems(groups, hostvars, problems):
    for host in groups.get("all", []):
        _check(problems, peers.host_address, host, hostvars)


# Role defaults, for hosts that do not set these (preflight does not see role defaults).
_SCRAPE_DEFAULTS = {"prometheus_scrape_jobs": [], "prometheus_shard_mode": "rendezvous",
                    "prometheus_shard_replicas": 1}


def _prometheus_problems(groups, hostvars, problems):
    hosts = groups.get("prometheus", [])
    if not hosts:
        return
    minimum = _get(hostvars, hosts[0], "prometheus_min_replicas")
    layout = _check(problems, peers.prometheus_shards, hosts, hostvars,
                    min_replicas=2 if minimum is _UNSET else minimum)
    _scrape_job_problems(groups, hostvars, sorted(hosts), len(layout) if layout else None, problems)


def _scrape_job_problems(groups, hostvars, hosts, shard_count, problems):
    """The site's scrape jobs: one setting for every shard, and jobs the filters accept."""
    for host in hosts:
        if _get(hostvars, host, "prometheus_scrape_configs") is not _UNSET:
            problems.append(f"host {host}: prometheus_scrape_configs is no longer read; move its jobs to "
                            "prometheus_scrape_jobs (shard: all keeps a job on every shard, as before)")
    first = hosts[0]
    rendered = {host: _get(hostvars, host, "_preflight_scrape") for host in hosts}
    for host, value in rendered.items():
        if isinstance(value, dict) and "error" in value:
            problems.append(f"host {host}: prometheus_scrape_jobs, prometheus_shard_mode or prometheus_shard_replicas "
                            f"cannot be rendered: {value['error']}")
            return
    settings = {}
    for name, default in _SCRAPE_DEFAULTS.items():
        values = {}
        for host in hosts:
            # Rendered in each host's own context by the play before (playbooks/preflight.yml);
            # without it (the filter called on its own), read through hostvars.
            value = (rendered[host] or {}).get(name) if rendered[host] is not _UNSET else _get(hostvars, host, name)
            values[host] = default if value in (None, _UNSET) else value
        differ = [host for host in hosts if json.dumps(values[host], sort_keys=True, default=str)
                  != json.dumps(values[first], sort_keys=True, default=str)]
        if differ:
            problems.append(f"hosts {first} and {', '.join(differ)}: {name} differs; every shard must read the "
                            "same value: set it once for the prometheus group (group_vars/prometheus)")
        settings[name] = values[first]
    if settings["prometheus_shard_mode"] not in shards.MODES:
        problems.append(f"host {first}: prometheus_shard_mode is {settings['prometheus_shard_mode']!r}; use "
                        f"{' or '.join(shards.MODES)}")
    found = []
    jobs = _check(found, peers.inventory_scrape_jobs, settings["prometheus_scrape_jobs"], groups, hostvars)
    problems += [f"host {first}: prometheus_scrape_jobs: {problem}" for problem in found]
    if jobs is None or not shard_count:
        return
    for problem in shards.scrape_job_problems(jobs, shard_count, settings["prometheus_shard_replicas"],
                                              reserved=shards.TOOLKIT_JOB_NAMES):
        problems.append(f"host {first}: prometheus_scrape_jobs: {problem}")


def _alertmanager_problems(groups, hostvars, problems):
    hosts = groups.get("alertmanager", [])
    if not hosts:
        return
    instances = _check(problems, peers.alertmanager_instances, hosts, hostvars)
    for instance in instances or []:
        _check(problems, peers.alertmanager_advertise_address, instances, instance["host"], instance["name"])


def _secret_problems(groups, hostvars, problems):
    for host in groups.get("mysql", []):
        for line in frontend.secret_problems(
                {"mysql_grafana_password": _secret(hostvars, host, "mysql_grafana_password")}):
            problems.append(f"host {host}: {line} (set it in the inventory's vault file)")
    grafana = groups.get("grafana", [])
    for host in grafana:
        for line in frontend.secret_problems({name: _secret(hostvars, host, name) for name in (
                "grafana_database_password", "grafana_admin_password", "grafana_secret_key")}):
            problems.append(f"host {host}: {line} (set it in the inventory's vault file)")
    if not grafana:
        return
    keys = {_secret(hostvars, host, "grafana_secret_key") for host in grafana}
    if len(keys) > 1:
        problems.append(f"grafana hosts ({', '.join(grafana)}): grafana_secret_key must be identical on every "
                        "instance; set it once, for the whole group (group_vars/grafana or the vault file)")
    databases = groups.get("mysql", [])
    wanted = _secret(hostvars, databases[0], "mysql_grafana_password") if databases else None
    # Compared only when the database's own password is usable (else that is the problem reported).
    if databases and not frontend.secret_problem(wanted):
        differ = [host for host in grafana if _secret(hostvars, host, "grafana_database_password") != wanted]
        if differ:
            problems.append(f"hosts {', '.join(differ)}: grafana_database_password must equal mysql_grafana_password "
                            f"of {databases[0]}; set both from the same vault variable")


def _read(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read(), ""
    except OSError as error:
        return None, error.strerror or str(error)


def _tls_file_problems(host, hostvars, prefix, names, fallback=None):
    """Problems of one host's ``<prefix>_{cert,key,ca}_src`` files (else ``<fallback>_...``, the role default)."""
    variables = {kind: f"{prefix}_{kind}_src" for kind in ("cert", "key", "ca")}
    contents, problems = {}, []
    for kind, name in variables.items():
        path = _get(hostvars, host, name)
        if (path is _UNSET) and fallback:
            name = variables[kind] = f"{fallback}_{kind}_src"
            path = _get(hostvars, host, name)
        if path is _UNSET or not str(path).strip():
            problems.append(f"host {host}: {name} is not set ({prefix}_enabled is true)")
            continue
        contents[kind], error = _read(str(path))
        if contents[kind] is None:
            problems.append(f"host {host}: {name} ({path}) cannot be read: {error}")
    if problems:
        return problems
    return [f"host {host}: {variables['cert']} / {variables['key']}: {problem}"
            for problem in webaccess.tls_problems(contents["cert"], contents["key"], names=names,
                                                  ca_pem=contents["ca"])]


def _web_problems(groups, hostvars, problems):
    """TLS files and basic-auth passwords of the Prometheus and Alertmanager web ports."""
    tiers = (("prometheus", groups.get("prometheus", []) + groups.get("prometheus_global", [])),
             ("alertmanager", groups.get("alertmanager", [])))
    for component, hosts in tiers:
        for host in dict.fromkeys(hosts):
            username = _get(hostvars, host, f"{component}_web_basic_auth_username")
            if username is not _UNSET and username:
                password = f"{component}_web_basic_auth_password"
                problem = frontend.secret_problem(_secret(hostvars, host, password))
                if problem:
                    problems.append(f"host {host}: {password} {problem} (set it in the inventory's vault file)")
            if _get(hostvars, host, f"{component}_web_tls_enabled") is True:
                server_name = _get(hostvars, host, f"{component}_web_tls_server_name")
                address = _check(problems, peers.host_address, host, hostvars)
                names = [address, component if server_name is _UNSET else server_name]
                problems.extend(_tls_file_problems(host, hostvars, f"{component}_web_tls", names))
            if component == "alertmanager" and _get(hostvars, host, "alertmanager_cluster_tls_enabled") is True:
                address = _check(problems, peers.host_address, host, hostvars)
                problems.extend(_tls_file_problems(host, hostvars, "alertmanager_cluster_tls", [address],
                                                   fallback="alertmanager_web_tls"))


def _balancer_problems(groups, hostvars, problems):
    balancers = groups.get("loadbalancer", [])
    if len(balancers) < 2:
        return
    addresses = set()
    for host in balancers:
        vip = _get(hostvars, host, "keepalived_virtual_ipaddress")
        if vip is _UNSET or not _VIP.match(str(vip)):
            problems.append(f"host {host}: keepalived_virtual_ipaddress must be the floating address with its prefix "
                            "length (for example 10.0.0.70/24); set it in group_vars/loadbalancer")
        else:
            addresses.add(str(vip))
    if len(addresses) > 1:
        problems.append(f"loadbalancer hosts: keepalived_virtual_ipaddress differs ({', '.join(sorted(addresses))}); "
                        "the balancers share one floating address")


def inventory_problems(groups, hostvars):
    """Every problem of the inventory, one line each, naming the host and the variable."""
    if not hasattr(groups, "get"):
        raise AnsibleFilterError(f"inventory_problems: expected the groups mapping, got {groups!r}")
    problems = []
    for check in (_address_problems, _prometheus_problems, _alertmanager_problems, _secret_problems,
                  _web_problems, _balancer_problems):
        check(groups, hostvars, problems)
    return list(dict.fromkeys(problems))


def inventory_warnings(groups, inventory_dir):
    """Names under ``inventory_dir/group_vars`` (files or directories) that are not groups."""
    directory = os.path.join(str(inventory_dir or ""), "group_vars")
    if not inventory_dir or not os.path.isdir(directory):
        return []
    names = {re.sub(r"\.(ya?ml|json)$", "", entry) for entry in os.listdir(directory) if not entry.startswith(".")}
    known = set(groups) | {"all", "ungrouped"}
    return [f"group_vars/{name} names no group of this inventory (a typo? its variables apply to no host)"
            for name in sorted(names - known)]


class FilterModule:
    """Preflight filters."""

    def filters(self):
        return {
            "inventory_problems": inventory_problems,
            "inventory_warnings": inventory_warnings,
        }
