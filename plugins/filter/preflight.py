"""Whole-inventory preflight: every problem of an inventory, in one list.

site.yml's first play runs these on the controller. Each check reuses the filter
the roles use (so preflight and the roles cannot disagree), catches its error,
and adds one line naming the host and the variable; the play then fails once
with the whole list, before any host is contacted.

Filters
-------
``inventory_check``
    ``groups | inventory_check(hostvars)`` -> ``{problems, model}``: the problems
    below, and the stack model (plugin_utils/model.py) built on the way, whole when
    there is none: playbooks/preflight.yml sets it for the run.
``inventory_problems``
    ``groups | inventory_problems(hostvars)`` -> ``['host db-1: mysql_grafana_password
    is a placeholder; ...', ...]``; empty when the inventory can be deployed.
``inventory_warnings``
    ``groups | inventory_warnings(inventory_dir, hostvars)`` -> one line per name under
    ``<inventory_dir>/group_vars/`` that is not a group of the inventory (a typo
    there silently applies nothing), and outside production the failure-domain
    problems below.
``scrape_settings_need_host``
    ``groups['prometheus'] | scrape_settings_need_host(hostvars)`` -> the hosts whose
    ``prometheus_scrape_jobs``, ``prometheus_shard_mode`` or ``prometheus_shard_replicas``
    cannot be rendered through ``hostvars`` (a template that reads ``hostvars`` itself, or
    a broken one): only those render them in their own context, in a play of their own.
``failure_domain_problems``
    ``groups | failure_domain_problems(hostvars)`` -> one line per set of hosts that
    one ``stack_failure_domain`` would take down together (both replicas of a shard,
    every storage node, both balancers, every Alertmanager, a quorum's majority);
    part of ``inventory_problems`` where ``stack_environment`` is production.
"""

from __future__ import annotations

import json
import os
import re

from ansible.errors import AnsibleError, AnsibleFilterError
from ansible_collections.promha.stack.plugins.plugin_utils import (
    access,
    alertmanager,
    firewall,
    flags,
    flows,
    frontend,
    galera,
    inventory,
    model,
    shards,
    webaccess,
)
from ansible_collections.promha.stack.plugins.plugin_utils.filters import filter_module
from jinja2 import Undefined
from jinja2.exceptions import TemplateError

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
        _check(problems, inventory.host_address, host, hostvars)


# Role defaults, for hosts that do not set these (preflight does not see role defaults).
_SCRAPE_DEFAULTS = {"prometheus_scrape_jobs": [], "prometheus_shard_mode": "rendezvous",
                    "prometheus_shard_replicas": 1}


def scrape_settings_need_host(hosts, hostvars):
    """The hosts whose scrape settings only their own context can render (see the module's docstring)."""
    hostvars = inventory.HostVarsView(hostvars)
    need = []
    for host in hosts:
        try:
            for name in _SCRAPE_DEFAULTS:
                _rendered(hostvars[host].get(name))
        except (AnsibleError, TemplateError):
            need.append(host)
    return need


def _rendered(value):
    """``value`` as plain lists and dicts: every template inside it rendered now (a variable read
    through hostvars renders its items only when they are read)."""
    if isinstance(value, dict):
        return {key: _rendered(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_rendered(item) for item in value]
    if isinstance(value, Undefined):
        # ansible-core 2.19 hands out a template that failed as a marker object.
        raise AnsibleFilterError("an undefined variable")
    return value


def _rendered_setting(hostvars, host, name, problems):
    """A host's scrape setting read through hostvars, rendered whole; a template that fails is a problem."""
    try:
        return _rendered(hostvars[host].get(name, _UNSET))
    except (AnsibleError, TemplateError) as error:
        problems.append(f"host {host}: {name} cannot be rendered: {str(getattr(error, 'message', error)).strip()}")
        return _UNSET


def _prometheus_problems(groups, hostvars, problems):
    hosts = groups.get("prometheus", [])
    if not hosts:
        return
    minimum = _get(hostvars, hosts[0], "prometheus_min_replicas")
    layout = _check(problems, inventory.prometheus_shards, hosts, hostvars,
                    min_replicas=model.DEFAULT_MIN_REPLICAS if minimum is _UNSET else minimum)
    _scrape_job_problems(groups, hostvars, sorted(hosts), len(layout) if layout else None, problems)


# Variables the prometheus role no longer reads, and what to set instead.
_RETIRED = {
    "prometheus_scrape_configs": "move its jobs to prometheus_scrape_jobs (shard: all keeps a job on every shard, "
                                 "as before)",
    "prometheus_remote_storage_port": "the replicas write to the port each remote_storage host listens on: set "
                                      "remote_storage_port for those hosts",
}
# The ports the stack's own jobs scraped where a host set none: the jobs now scrape the
# port each host serves on (the stack model's endpoints: its setting, else the role's default).
_RETIRED.update((f"prometheus_{tier}_port", f"the replicas scrape the port each host serves on: set {serving} "
                 "for those hosts") for tier, serving in (
    ("node_exporter", "node_exporter_port"), ("mysql_exporter", "mysql_exporter_port"),
    ("nginx_exporter", "nginx_exporter_port"), ("grafana", "grafana_http_port")))


def _scrape_job_problems(groups, hostvars, hosts, shard_count, problems):
    """The site's scrape jobs: one setting for every shard, and jobs the filters accept."""
    for host in hosts:
        problems += [f"host {host}: {name} is no longer read; {instead}" for name, instead in _RETIRED.items()
                     if _get(hostvars, host, name) is not _UNSET]
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
            value = (rendered[host] or {}).get(name) if rendered[host] is not _UNSET else _rendered_setting(
                hostvars, host, name, problems)
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
    jobs = _check(found, inventory.inventory_scrape_jobs, settings["prometheus_scrape_jobs"], groups, hostvars)
    problems += [f"host {first}: prometheus_scrape_jobs: {problem}" for problem in found]
    if jobs is None or not shard_count:
        return
    for problem in shards.scrape_job_problems(jobs, shard_count, settings["prometheus_shard_replicas"],
                                              reserved=shards.TOOLKIT_JOB_NAMES):
        problems.append(f"host {first}: prometheus_scrape_jobs: {problem}")


# roles/alertmanager's gossip defaults (a unit test keeps them equal).
GOSSIP_DEFAULTS = {"alertmanager_cluster_peer_timeout": "15s", "alertmanager_cluster_gossip_interval": "200ms",
                   "alertmanager_cluster_pushpull_interval": "10s", "alertmanager_cluster_probe_interval": "1s",
                   "alertmanager_cluster_probe_timeout": "500ms", "alertmanager_cluster_settle_timeout": "1m0s",
                   "alertmanager_cluster_tcp_timeout": "10s"}


def _alertmanager_problems(groups, hostvars, problems):
    hosts = groups.get("alertmanager", [])
    instances = _check(problems, alertmanager.alertmanager_instances, hosts, hostvars) if hosts else []
    for instance in instances or []:
        _check(problems, alertmanager.alertmanager_advertise_address, instances, instance["host"], instance["name"])
    for host in hosts:
        settings = {name: _setting(hostvars, host, name, default) for name, default in GOSSIP_DEFAULTS.items()}
        problems += [f"host {host}: {line}" for line in flags.gossip_problems(settings)]


def _front_probe_problems(groups, hostvars, problems):
    """The front's probes (roles/prometheus) on each shard replica: the front's URL, the probe's
    timeout and blackbox_exporter's port, where they are set."""
    if not groups.get("loadbalancer"):
        return
    for host in groups.get("prometheus", []):
        url = _setting(hostvars, host, "prometheus_front_url", "")
        if url and not re.fullmatch(r"https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?/?", str(url)):
            problems.append(f"host {host}: prometheus_front_url {url!r} must be http(s)://address[:port] (the front "
                            "as users reach it, no path); leave it empty for the balancers' floating address")
        timeout = _setting(hostvars, host, "prometheus_front_probe_timeout", "5s")
        if not re.fullmatch(r"[0-9]+(ms|s|m)", str(timeout)) or not flags.go_seconds(timeout):
            problems.append(f"host {host}: prometheus_front_probe_timeout {timeout!r} must be a duration above zero "
                            "such as 5s, shorter than the scrape timeout")
        port = _setting(hostvars, host, "prometheus_blackbox_port", 9115)
        if not str(port).isdigit() or not 0 < int(port) < 65536:
            problems.append(f"host {host}: prometheus_blackbox_port {port!r} must be a port number (1-65535)")


def _port(value):
    return str(value).isdigit() and 0 < int(value) < 65536


def _metrics_problems(groups, hostvars, problems):
    """nginx's metrics server on each balancer and Grafana's /metrics: ports of their own, and the
    exporters' account with a password nginx can check cheaply (16 characters or more)."""
    for host in groups.get("loadbalancer", []):
        if flows.switched_off(hostvars, host, "nginx_exporter"):  # the model's rule: no endpoint, no flow
            continue
        ports = {name: _setting(hostvars, host, name, default) for name, default in (
            ("nginx_exporter_port", 9113), ("nginx_exporter_local_port", 19113), ("nginx_listen_port", 80),
            ("nginx_tls_port", 443), ("nginx_status_port", 8080), ("node_exporter_port", 9100))}
        for name in ("nginx_exporter_port", "nginx_exporter_local_port"):
            if not _port(ports[name]):
                problems.append(f"host {host}: {name} {ports[name]!r} must be a port number (1-65535)")
            else:
                taken = [other for other, value in ports.items() if other != name and str(value) == str(ports[name])]
                if taken:
                    problems.append(f"host {host}: {name} {ports[name]} is also {', '.join(taken)}; nginx's metrics "
                                    "server and its exporter each need a port of their own")
    for group, variable in (("loadbalancer", "nginx_exporter_basic_auth_password"),
                            ("grafana", "grafana_metrics_basic_auth_password")):
        for host in groups.get(group, []):
            password = _get(hostvars, host, variable)
            if isinstance(password, str) and "{{" not in password and len(password) < 16:
                problems.append(f"host {host}: {variable} has {len(password)} characters; it needs 16 or more "
                                "(leave it unset for the generated credentials/node_exporter_web)")


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


def _database_cluster_problems(groups, hostvars, problems):
    """Two or more database hosts form a Galera cluster: its votes and the settings it needs."""
    members = groups.get("mysql", [])
    arbitrators = groups.get("mysql_arbitrator", [])
    for line in galera.galera_voters_problems(members, arbitrators):
        problems.append(f"groups mysql and mysql_arbitrator: {line}")
    if arbitrators:
        problems.append(f"group mysql_arbitrator ({', '.join(arbitrators)}): the mysql role does not install garbd "
                        "arbitrators yet; make every vote a database member (group mysql)")
    if len(members) < 2:
        return
    for host in members:
        settings = _setting(hostvars, host, "mysql_server_extra_config", {})
        if not isinstance(settings, dict):
            continue  # _extra_problems names it
        for line in galera.galera_setting_problems(settings):
            problems.append(f"host {host}: mysql_server_extra_config {line}")


# Each tier's extra flags or settings, by the group whose hosts run it.
_EXTRA = (("prometheus", "prometheus", "prometheus_extra_args", flags.extra_args_problems),
          ("alertmanager", "alertmanager", "alertmanager_extra_args", flags.extra_args_problems),
          ("all", "node_exporter", "node_exporter_extra_args", flags.extra_args_problems),
          ("remote_storage", "remote_storage", "remote_storage_extra_args", flags.extra_args_problems),
          ("mysql", "mysql", "mysql_server_extra_config", flags.extra_settings_problems),
          ("grafana", "grafana", "grafana_extra_config", flags.extra_settings_problems))


def _extra_problems(groups, hostvars, problems):
    """Extra flags and settings: plain words, nothing the role sets, no secure default undone."""
    for group, tier, variable, check in _EXTRA:
        for host in groups.get(group, []):
            for line in check(_setting(hostvars, host, variable, {}), tier):
                problems.append(f"host {host}: {line}")


def _truthy(value):
    return str(value).strip().lower() in ("true", "yes", "1", "on")


def _database_tls_problems(groups, hostvars, problems):
    """Grafana's ssl_mode and the database's TLS must agree, or Grafana can never log in.

    Unset settings take the roles' defaults: the database serves and requires TLS, and
    Grafana uses it with the certificate checked, unless stack_plain_http.
    """
    databases = groups.get("mysql", [])
    if not databases:
        return
    database = databases[0]
    plain, _secrets = _stack(hostvars, database)
    enabled = _truthy(_setting(hostvars, database, "mysql_tls_enabled", not plain))
    required = enabled and _truthy(_setting(hostvars, database, "mysql_tls_required", enabled))
    for host in groups.get("grafana", []):
        plain, _secrets = _stack(hostvars, host)
        mode = str(_setting(hostvars, host, "grafana_database_ssl_mode", "false" if plain else "true")).strip().lower()
        if required and mode in ("false", "disable", "disabled", "no", "off", "0"):
            problems.append(f"host {host}: grafana_database_ssl_mode is {mode!r}, but {database} requires TLS of the "
                            "grafana account (mysql_tls_required): Grafana could never log in; set "
                            "grafana_database_ssl_mode to true, or mysql_tls_required to false")
        elif not enabled and mode not in ("false", "disable", "disabled", "no", "off", "0"):
            problems.append(f"host {host}: grafana_database_ssl_mode is {mode!r}, but {database} serves no TLS "
                            "(mysql_tls_enabled is false): Grafana could never connect; set "
                            "grafana_database_ssl_mode to false, or mysql_tls_enabled to true")


def _read(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read(), ""
    except OSError as error:
        return None, error.strerror or str(error)


def _tls_file_problems(host, hostvars, prefix, names, defaults=None):
    """Problems of one host's ``<prefix>_{cert,key,ca}_src`` files (``defaults``: the roles' paths when unset).

    With none of the three set, the files are the stack's own, which site.yml's PKI step
    issues after preflight (and issues again when they no longer fit): nothing to read.
    """
    variables = {kind: f"{prefix}_{kind}_src" for kind in ("cert", "key", "ca")}
    if defaults and all(_get(hostvars, host, name) is _UNSET for name in variables.values()):
        return []
    paths = {}
    for kind, name in variables.items():
        path = _get(hostvars, host, name)
        if path is _UNSET and defaults:
            path = defaults[kind]
        paths[name] = None if path is _UNSET else path
    contents, problems = webaccess.read_tls_files(paths, unset=f" ({prefix}_enabled is true)")
    if problems:
        return [f"host {host}: {problem}" for problem in problems]
    cert, key, ca = (contents[name] for name in variables.values())
    return [f"host {host}: {variables['cert']} / {variables['key']}: {problem}"
            for problem in webaccess.tls_problems(cert, key, names=names, ca_pem=ca)]


def _stack(hostvars, host):
    """``(plain, secrets_dir)``: the stack-wide switch and where the toolkit's own secrets are."""
    found = _access(hostvars, host)
    return found["plain"], found["secrets"]


def _access(hostvars, host):
    """The host's access settings (the stack model's one rule, plugin_utils/access.py)."""
    return access.stack_access(*(_secret(hostvars, host, name)
                                 for name in ("stack_plain_http", "stack_secrets_dir", "inventory_dir")))


def _setting(hostvars, host, name, default):
    value = _get(hostvars, host, name)
    return default if value is _UNSET else value


def _web_problems(groups, hostvars, problems):
    """TLS files and basic-auth passwords of the Prometheus and Alertmanager web ports, and of gossip.

    Unset settings take the roles' defaults: TLS and basic auth on (user promha) unless
    stack_plain_http, files and generated passwords under stack_secrets_dir.
    """
    tiers = (("prometheus", groups.get("prometheus", []) + groups.get("prometheus_global", [])),
             ("alertmanager", groups.get("alertmanager", [])))
    for component, hosts in tiers:
        tier = access.TIERS[component]
        for host in dict.fromkeys(hosts):
            plain, secrets = _stack(hostvars, host)
            username = _setting(hostvars, host, tier.user, "" if plain else access.USER)
            if username:
                password = tier.password
                value = _get(hostvars, host, password)
                generated = value is _UNSET
                if generated:
                    # The generated one: the PKI step makes it after preflight when it is missing.
                    value, _error = _read(access.credential_path(_access(hostvars, host), tier.credential))
                problem = not (generated and value is None) and frontend.secret_problem(value)
                if problem:
                    problems.append(f"host {host}: {password} {problem} (set it in the inventory's vault file, or "
                                    f"leave it unset for the generated one under {secrets}/credentials)")
            if _setting(hostvars, host, tier.tls, not plain) is True:
                server_name = _get(hostvars, host, f"{component}_web_tls_server_name")
                address = _check(problems, inventory.host_address, host, hostvars)
                names = [address, component if server_name is _UNSET else server_name]
                problems.extend(_tls_file_problems(host, hostvars, f"{component}_web_tls", names,
                                                   access.web_files(_access(hostvars, host), host, component)))
            if component == "alertmanager" and _setting(hostvars, host, "alertmanager_cluster_tls_enabled",
                                                        not plain) is True:
                address = _check(problems, inventory.host_address, host, hostvars)
                problems.extend(_tls_file_problems(host, hostvars, "alertmanager_cluster_tls", [address],
                                                   access.gossip_files(_access(hostvars, host), host)))


# Settings every host of a group must read alike: a tier's clients (other tiers' roles)
# read its server's TLS switch, CA, user and password (access.TIERS), so those are read
# by every host.
_STACK_WIDE = {name: "all" for name in ("stack_plain_http", "stack_secrets_dir", "stack_environment")}
_STACK_WIDE.update((name, "all") for tier in access.TIERS.values() for name in (tier.tls, tier.ca, tier.user) if name)
_STACK_WIDE.update(alertmanager_cluster_tls_enabled="alertmanager", alertmanager_cluster_label="alertmanager")
# The same for the passwords; a problem names the hosts, never the values.
_STACK_WIDE_SECRETS = tuple(dict.fromkeys(tier.password for tier in access.TIERS.values() if tier.password)) + (
    "remote_storage_metrics_auth_key",)
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_CLUSTER_LABEL = re.compile(r"^[A-Za-z0-9_.-]*$")


def _stack_problems(groups, hostvars, problems):
    """Stack-wide settings: one value everywhere, plain HTTP refused in production, safe label values."""
    names = [(name, group, False) for name, group in _STACK_WIDE.items()]
    names += [(name, "all", True) for name in _STACK_WIDE_SECRETS]
    for name, group, secret in names:
        values = {}
        for host in sorted(groups.get(group, [])):
            value = _get(hostvars, host, name)
            values.setdefault(json.dumps(None if value is _UNSET else value, sort_keys=True, default=str), []).append(host)
        if len(values) > 1:
            shown = "; ".join(f"{', '.join(h[:3])}{' ...' if len(h) > 3 else ''}"
                              + ("" if secret else f": {v}") for v, h in values.items())
            problems.append(f"{name} differs between hosts ({shown}); every tier and its clients must read one "
                            f"value: set it once, in group_vars/{group}")
    for host in sorted(groups.get("all", [])):
        plain, _secrets = _stack(hostvars, host)
        if plain and str(_get(hostvars, host, "stack_environment")) == "production":
            problems.append(f"host {host}: stack_plain_http is true in an inventory whose stack_environment is "
                            "production; plain HTTP and no credentials are refused there")
    for host in groups.get("prometheus", []) + groups.get("prometheus_global", []):
        labels = {"replica": _get(hostvars, host, "prometheus_replica_label"),
                  "cluster": _get(hostvars, host, "prometheus_cluster_label")}
        extra = _get(hostvars, host, "prometheus_external_labels_extra")
        variables = {"replica": "prometheus_replica_label", "cluster": "prometheus_cluster_label"}
        if isinstance(extra, dict):
            labels.update(extra)
            variables.update({key: "prometheus_external_labels_extra" for key in extra})
        for label, value in labels.items():
            if value is _UNSET:
                continue
            if not _LABEL_NAME.fullmatch(str(label)):
                problems.append(f"host {host}: {variables[label]}: {label!r} is not a valid label name "
                                "([a-zA-Z_][a-zA-Z0-9_]*)")
            if any(ch in str(value) for ch in "\n\r\x00") or not str(value).strip():
                problems.append(f"host {host}: {variables[label]}: the value of label {label} must be one "
                                f"non-empty line, got {value!r}")
    for host in groups.get("alertmanager", []):
        label = _get(hostvars, host, "alertmanager_cluster_label")
        if label is not _UNSET and not _CLUSTER_LABEL.fullmatch(str(label)):
            problems.append(f"host {host}: alertmanager_cluster_label {label!r} may hold only letters, digits, "
                            "'.', '_' and '-'")


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


def _firewall_problems(groups, hostvars, problems, stack):
    """Each host's firewall plan can be computed (roles/firewall): admin sources set, callers with IP addresses."""
    for host in sorted(groups.get("all", [])):
        enabled = _get(hostvars, host, "firewall_enabled")
        if enabled is not _UNSET and str(enabled).lower() not in ("true", "yes", "1", "on"):
            continue
        settings = {name: _get(hostvars, host, f"firewall_{name}") for name in
                    ("admin_sources", "operator_sources", "client_sources")}
        kwargs = {name: value for name, value in settings.items() if value is not _UNSET}
        port = _get(hostvars, host, "ansible_port")
        _check(problems, firewall.firewall_rules, host, groups, hostvars, ssh_port=22 if port is _UNSET else port,
               model=stack, **kwargs)


# Groups whose members stand in for each other: losing one failure domain (a rack,
# zone or hypervisor, stack_failure_domain) must leave one of them. Each shard's
# replicas are such a group too. A quorum needs a majority outside any one domain.
_REDUNDANT_GROUPS = ("remote_storage", "loadbalancer", "alertmanager", "prometheus_global", "grafana")
_QUORUM_GROUPS = ("mysql",)
# In production these must have two members: each is the only copy of something.
_PAIRED_GROUPS = ("remote_storage", "loadbalancer", "alertmanager")


def _production(groups, hostvars):
    return any(str(_get(hostvars, host, "stack_environment")) == "production" for host in groups.get("all", []))


def failure_domain_problems(groups, hostvars):
    """What one lost failure domain (``stack_failure_domain``) would take down whole, one line each.

    Each shard's replicas, every group of ``_REDUNDANT_GROUPS`` with two or more members,
    and a majority of every quorum group must not share one domain; a host of those groups
    without a domain is named, as is a group of ``_PAIRED_GROUPS`` with one member.
    Preflight refuses these where ``stack_environment`` is production and warns elsewhere.
    """
    if not hasattr(groups, "get"):
        raise AnsibleFilterError(f"failure_domain_problems: expected the groups mapping, got {groups!r}")
    sets = []
    shard_hosts = groups.get("prometheus", [])
    try:
        layout = inventory.prometheus_shards(shard_hosts, hostvars) if shard_hosts else {}
    except AnsibleError:
        layout = {}  # named by the shard check
    sets += [(f"the replicas of shard {shard}", replicas, False) for shard, replicas in layout.items()]
    sets += [(f"the {group} hosts", sorted(groups.get(group, [])), False) for group in _REDUNDANT_GROUPS]
    sets += [(f"the {group} quorum", sorted(groups.get(group, [])), True) for group in _QUORUM_GROUPS]
    problems, unnamed = [], set()
    for what, hosts, quorum in sets:
        if len(hosts) < (3 if quorum else 2):
            continue
        domains = {}
        for host in hosts:
            domain = _get(hostvars, host, "stack_failure_domain")
            if domain is _UNSET or not str(domain).strip():
                unnamed.add(host)
                continue
            domains.setdefault(str(domain), []).append(host)
        for domain, members in sorted(domains.items()):
            whole = len(members) == len(hosts)
            if whole or (quorum and len(members) > len(hosts) // 2):
                share = "all" if whole else f"{len(members)} of {len(hosts)}, a majority"
                problems.append(f"hosts {', '.join(members)}: {what} ({share}) share stack_failure_domain "
                                f"{domain!r}; losing it loses them together: put them in different domains")
    for group in _PAIRED_GROUPS:
        members = groups.get(group, [])
        if len(members) == 1:
            problems.append(f"host {members[0]}: the only {group} host; one lost host would take the tier down: "
                            f"add a second {group} host in another stack_failure_domain")
    if unnamed:
        problems.append(f"hosts {', '.join(sorted(unnamed))}: stack_failure_domain is not set; name each host's "
                        "rack, zone or hypervisor so that preflight can check that no one domain holds a whole tier")
    return problems


def inventory_check(groups, hostvars):
    """``{problems, model}``: every problem of the inventory, one line each, naming the host and
    the variable, and the stack model (plugin_utils/model.py), whole when there is no problem."""
    if not hasattr(groups, "get"):
        raise AnsibleFilterError(f"inventory_problems: expected the groups mapping, got {groups!r}")
    groups, hostvars = inventory.plain_groups(groups), inventory.HostVarsView(hostvars)
    problems = []
    for check in (_address_problems, _stack_problems, _prometheus_problems, _alertmanager_problems,
                  _front_probe_problems, _metrics_problems, _secret_problems, _database_tls_problems,
                  _database_cluster_problems, _web_problems, _balancer_problems):
        check(groups, hostvars, problems)
    # What the model cannot be built from (an address, the shards, ...): most are named
    # above already, in the same words, and listed once.
    stack = model.stack_model(groups, hostvars, problems=problems)
    _firewall_problems(groups, hostvars, problems, stack)
    _extra_problems(groups, hostvars, problems)
    if _production(groups, hostvars):
        problems += failure_domain_problems(groups, hostvars)
    return {"problems": list(dict.fromkeys(problems)), "model": stack}


def inventory_problems(groups, hostvars):
    """Every problem of the inventory, one line each, naming the host and the variable."""
    return inventory_check(groups, hostvars)["problems"]


def inventory_warnings(groups, inventory_dir, hostvars=None):
    """Names under ``inventory_dir/group_vars`` (files or directories) that are not groups; with
    ``hostvars``, outside production, what ``failure_domain_problems`` finds."""
    domains = []
    if hostvars is not None:
        groups, hostvars = inventory.plain_groups(groups), inventory.HostVarsView(hostvars)
    if hostvars is not None and not _production(groups, hostvars):
        domains = [f"{line} (refused in production)" for line in failure_domain_problems(groups, hostvars)]
    directory = os.path.join(str(inventory_dir or ""), "group_vars")
    if not inventory_dir or not os.path.isdir(directory):
        return domains
    names = {re.sub(r"\.(ya?ml|json)$", "", entry) for entry in os.listdir(directory) if not entry.startswith(".")}
    known = set(groups) | {"all", "ungrouped"}
    return [f"group_vars/{name} names no group of this inventory (a typo? its variables apply to no host)"
            for name in sorted(names - known)] + domains


FilterModule = filter_module(
    inventory_check, inventory_problems, inventory_warnings, failure_domain_problems, scrape_settings_need_host)
