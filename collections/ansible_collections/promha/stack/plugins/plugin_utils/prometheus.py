"""The parts of a Prometheus server's configuration the prometheus role computes, and
preflight's checks of the Prometheus settings (:func:`prometheus_problems`).

Filters
-------
``prometheus_called_tiers``
    ``_prometheus_view | prometheus_called_tiers(grafana=true, front=true)`` -> the
    tiers (access.TIERS names) a replica calls: the Alertmanagers, node_exporter and
    the storage; the database's and the balancers' exporters where a host serves them
    (the view's endpoints); Grafana's /metrics (``grafana_metrics``) and the front
    when asked. Example: ``['alertmanager', 'node_exporter', 'remote_storage',
    'mysql_exporter', 'front']``
``prometheus_clients``
    ``lookup('promha.stack.access', 'tiers', *called) | prometheus_clients(own,
    '/etc/prometheus/web', 'prometheus', blackbox_ca='/etc/prometheus/blackbox/ca.crt')``
    -> how a Prometheus server calls every tier, and the files that takes:
    ``{tiers, blocks, files, front_modules}``. ``own`` is the server's own access
    ``{tls, user, password}``, which the pair's and the global tier's scrapes of each
    other send, and the front job towards blackbox_exporter on the loopback address.
    ``tiers`` are ``tier_clients``' clients (``{tls, user, auth, client}``) by the
    name of their client files (:data:`CLIENT_NAMES`: the tier's, ``grafana`` for
    ``grafana_metrics``); ``blocks`` the client block each job's ``tier:`` names
    (those, ``prometheus``, ``blackbox``; ``with_clients``); ``files`` the
    ``stack_files`` entries: the server's own password file, then each tier's CA and
    password files; ``front_modules`` the basic auth each of the front's probe
    modules sends (``{}``: none).
``remote_write_configs``
    ``['10.0.0.41:8428'] | remote_write_configs(tls=true, auth=block, queue=queue,
    relabel=rules, extra=[...])`` -> one ``remote_write`` entry per storage node
    (``<scheme>://<node>/api/v1/write`` with the queue settings, the write
    relabelling and the storage tier's TLS and basic auth), then ``extra`` as given.
``retention_size``
    ``'auto' | retention_size(30, fs_bytes)`` -> ``--storage.tsdb.retention.size``:
    a set size as it is, or with ``auto`` that share (percent) of the data
    filesystem's size in bytes, in MB as Prometheus reads them (2**20 bytes).
    Example: ``'auto' | retention_size(80, '107374182400')`` -> ``'81920MB'``
``rule_file_specs``
    ``prometheus_rule_files | rule_file_specs('/etc/prometheus/rules', 'prometheus',
    validate='/usr/bin/promtool check rules %s', default=text)`` -> the ``stack_files``
    entries (plugins/modules/stack_files.py) of the rules directory: ``promha.yml``
    with ``default`` (the stack's rules; none when empty), then each file of the list,
    read on the controller as it is, under its base name with ``.yaml`` written
    ``.yml``. Each entry is checked by ``validate`` before it replaces the live file.
    Two files that would land on one name are an error naming both.
``scrape_settings_need_host``
    ``groups['prometheus'] | scrape_settings_need_host(hostvars)`` -> the hosts whose
    ``prometheus_scrape_jobs``, ``prometheus_shard_mode`` or ``prometheus_shard_replicas``
    cannot be rendered through ``hostvars`` (a template that reads ``hostvars`` itself, or
    a broken one): only those render them in their own context, in a play of their own
    (playbooks/preflight.yml), as ``_preflight_scrape``.
"""

from __future__ import annotations

import json
import os
import re

from ansible.errors import AnsibleError, AnsibleFilterError
from ansible_collections.promha.stack.plugins.plugin_utils import inventory, shards
from ansible_collections.promha.stack.plugins.plugin_utils.access import truthy
from ansible_collections.promha.stack.plugins.plugin_utils.filters import filter_module
from ansible_collections.promha.stack.plugins.plugin_utils.flags import go_seconds
from ansible_collections.promha.stack.plugins.plugin_utils.inventory import UNSET, collect, variable
from ansible_collections.promha.stack.plugins.plugin_utils.webaccess import client_blocks, client_settings, tier_clients
from jinja2 import Undefined
from jinja2.exceptions import TemplateError

DEFAULT_NAME = "promha.yml"
_SUFFIX = re.compile(r"[.]ya?ml$")


def rule_file_specs(paths, directory, group, validate="", default=""):
    """``stack_files`` entries of the rules directory (see the module doc)."""
    if not isinstance(paths, (list, tuple)):
        raise AnsibleFilterError(f"prometheus_rule_files must be a list of files on the controller, got {paths!r}")
    contents = {DEFAULT_NAME: (str(default), "the stack's default rules")} if default else {}
    for path in paths:
        name = _SUFFIX.sub("", os.path.basename(str(path))) + ".yml"
        if name in contents:
            raise AnsibleFilterError(f"prometheus_rule_files: {path} and {contents[name][1]} would both be "
                                     f"written as {directory}/{name}; rename one")
        try:
            with open(str(path), encoding="utf-8") as handle:
                contents[name] = (handle.read(), str(path))
        except OSError as error:
            raise AnsibleFilterError(f"prometheus_rule_files: {path} cannot be read: "
                                     f"{error.strerror or error}") from error
    entry = {"group": group, "mode": "0644"}
    if validate:
        entry["validate"] = validate
    return [dict(entry, path=f"{directory.rstrip('/')}/{name}", content=content)
            for name, (content, _source) in contents.items()]


def remote_write_configs(targets, tls=True, auth=None, queue=None, relabel=None, extra=None):
    """``remote_write`` entries towards each storage node, then ``extra`` (see the module doc)."""
    scheme = "https" if truthy(tls) else "http"
    entries = []
    for target in targets:
        entry = {"url": f"{scheme}://{target}/api/v1/write"}
        if queue:
            entry["queue_config"] = queue
        if relabel:
            entry["write_relabel_configs"] = relabel
        entry.update(auth or {})
        entries.append(entry)
    return entries + list(extra or [])


def retention_size(setting, percent, fs_bytes=None):
    """``--storage.tsdb.retention.size`` from the setting, or with ``auto`` a share of the filesystem (see the module doc)."""
    if str(setting) != "auto":
        return setting
    try:
        size = int(str(fs_bytes).strip())
    except ValueError:
        raise AnsibleFilterError(f"retention_size: prometheus_retention_size is auto, and the data filesystem's size "
                                 f"could not be read (got {fs_bytes!r})") from None
    return f"{size * int(percent) // 100 // 1048576}MB"


# The name of each called tier's client files (<name>-ca.crt, <name>.password), which the
# toolkit's jobs name as their ``tier:``: the tier's, but Grafana's /metrics.
CLIENT_NAMES = {"alertmanager": "alertmanager", "node_exporter": "node_exporter", "remote_storage": "remote_storage",
                "mysql_exporter": "mysql_exporter", "nginx_exporter": "nginx_exporter", "grafana_metrics": "grafana",
                "front": "front"}


def prometheus_called_tiers(view, grafana=False, front=False):
    """The tiers a Prometheus replica calls (see the module doc)."""
    served = view.get("endpoints") if isinstance(view, dict) else None
    if not isinstance(served, dict):
        raise AnsibleFilterError(f"prometheus_called_tiers: expects the stack model or a host's view, got {view!r}")
    called = ["alertmanager", "node_exporter", "remote_storage"]
    called += [tier for tier in ("mysql_exporter", "nginx_exporter") if served.get(tier)]
    return called + (["grafana_metrics"] if truthy(grafana) else []) + (["front"] if truthy(front) else [])


def prometheus_clients(tiers, own, directory, group, blackbox_ca=""):
    """How a Prometheus server calls every tier, and the files that takes (see the module doc)."""
    if not isinstance(tiers, dict) or set(tiers) - set(CLIENT_NAMES):
        raise AnsibleFilterError(f"prometheus_clients: expects {{tier: access}} of the tiers {', '.join(CLIENT_NAMES)} "
                                 f"(lookup('promha.stack.access', 'tiers', ...)), got {tiers!r}")
    found = tier_clients({CLIENT_NAMES[tier]: access for tier, access in tiers.items()}, directory, group)
    own_tls, own_user = truthy(own.get("tls")), str(own.get("user") or "")
    pair = client_settings(own_tls, own_user, f"{directory}/ca.crt", f"{directory}/client.password")
    blackbox = dict(pair, tls_config={"ca_file": blackbox_ca}) if own_tls else pair
    own_files = [{"path": f"{directory}/client.password", "secret_content": str(own.get("password") or ""),
                  "group": group, "mode": "0640"}] if own_user else []
    clients = found["clients"]

    def basic_auth(name):
        return (clients[name]["auth"].get("basic_auth") or {}) if name in clients else {}
    return {
        "tiers": clients,
        "blocks": client_blocks(clients, prometheus=pair, blackbox=blackbox),
        "files": own_files + found["files"],
        "front_modules": {"prometheus": pair.get("basic_auth") or {}, "alertmanager": basic_auth("alertmanager"),
                          "storage": basic_auth("remote_storage"), "grafana": {}},
    }


# Role defaults, for hosts that do not set these (preflight does not see role defaults).
SCRAPE_DEFAULTS = {"prometheus_scrape_jobs": [], "prometheus_shard_mode": "rendezvous",
                   "prometheus_shard_replicas": 1}


def scrape_settings_need_host(hosts, hostvars):
    """The hosts whose scrape settings only their own context can render (see the module's docstring)."""
    hostvars = inventory.HostVarsView(hostvars)
    need = []
    for host in hosts:
        try:
            for name in SCRAPE_DEFAULTS:
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
        return _rendered(hostvars[host].get(name, UNSET))
    except (AnsibleError, TemplateError) as error:
        problems.append(f"host {host}: {name} cannot be rendered: {inventory.message(error)}")
        return UNSET


# Variables the prometheus role no longer reads, and what to set instead.
RETIRED = {
    "prometheus_scrape_configs": "move its jobs to prometheus_scrape_jobs (shard: all keeps a job on every shard, "
                                 "as before)",
    "prometheus_remote_storage_port": "the replicas write to the port each remote_storage host listens on: set "
                                      "remote_storage_port for those hosts",
}
# The ports the stack's own jobs scraped where a host set none: the jobs now scrape the
# port each host serves on (the stack model's endpoints: its setting, else the role's default).
RETIRED.update((f"prometheus_{tier}_port", f"the replicas scrape the port each host serves on: set {serving} "
                "for those hosts") for tier, serving in (
    ("node_exporter", "node_exporter_port"), ("mysql_exporter", "mysql_exporter_port"),
    ("nginx_exporter", "nginx_exporter_port"), ("grafana", "grafana_http_port")))


def _scrape_problems(groups, hostvars, hosts, shard_count, problems):
    """The site's scrape jobs: one setting for every shard, and jobs the filters accept."""
    for host in hosts:
        problems += [f"host {host}: {name} is no longer read; {instead}" for name, instead in RETIRED.items()
                     if variable(hostvars, host, name) is not UNSET]
    first = hosts[0]
    rendered = {host: variable(hostvars, host, "_preflight_scrape") for host in hosts}
    for host, value in rendered.items():
        if isinstance(value, dict) and "error" in value:
            problems.append(f"host {host}: prometheus_scrape_jobs, prometheus_shard_mode or prometheus_shard_replicas "
                            f"cannot be rendered: {value['error']}")
            return
    settings = {}
    for name, default in SCRAPE_DEFAULTS.items():
        values = {}
        for host in hosts:
            # Rendered in each host's own context by the play before (playbooks/preflight.yml);
            # without it (the check called on its own), read through hostvars.
            value = (rendered[host] or {}).get(name) if rendered[host] is not UNSET else _rendered_setting(
                hostvars, host, name, problems)
            values[host] = default if value in (None, UNSET) else value
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
    jobs = collect(found, inventory.inventory_scrape_jobs, settings["prometheus_scrape_jobs"], groups, hostvars)
    problems += [f"host {first}: prometheus_scrape_jobs: {problem}" for problem in found]
    if jobs is None or not shard_count:
        return
    for problem in shards.scrape_job_problems(jobs, shard_count, settings["prometheus_shard_replicas"],
                                              reserved=shards.TOOLKIT_JOB_NAMES):
        problems.append(f"host {first}: prometheus_scrape_jobs: {problem}")


_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def _label_problems(hostvars, host, problems):
    """The external labels a server sets: valid names, each value one line."""
    labels = {"replica": variable(hostvars, host, "prometheus_replica_label"),
              "cluster": variable(hostvars, host, "prometheus_cluster_label")}
    extra = variable(hostvars, host, "prometheus_external_labels_extra")
    variables = {"replica": "prometheus_replica_label", "cluster": "prometheus_cluster_label"}
    if isinstance(extra, dict):
        labels.update(extra)
        variables.update({key: "prometheus_external_labels_extra" for key in extra})
    for label, value in labels.items():
        if value is UNSET:
            continue
        if not _LABEL_NAME.fullmatch(str(label)):
            problems.append(f"host {host}: {variables[label]}: {label!r} is not a valid label name "
                            "([a-zA-Z_][a-zA-Z0-9_]*)")
        if any(ch in str(value) for ch in "\n\r\x00") or not str(value).strip():
            problems.append(f"host {host}: {variables[label]}: the value of label {label} must be one "
                            f"non-empty line, got {value!r}")


def _front_probe_problems(hostvars, host, problems):
    """The front's probes a shard replica runs: the front's URL, the probe's timeout and
    blackbox_exporter's port, where they are set."""
    url = variable(hostvars, host, "prometheus_front_url", "")
    if url and not re.fullmatch(r"https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?/?", str(url)):
        problems.append(f"host {host}: prometheus_front_url {url!r} must be http(s)://address[:port] (the front "
                        "as users reach it, no path); leave it empty for the balancers' floating address")
    timeout = variable(hostvars, host, "prometheus_front_probe_timeout", "5s")
    if not re.fullmatch(r"[0-9]+(ms|s|m)", str(timeout)) or not go_seconds(timeout):
        problems.append(f"host {host}: prometheus_front_probe_timeout {timeout!r} must be a duration above zero "
                        "such as 5s, shorter than the scrape timeout")
    port = variable(hostvars, host, "prometheus_blackbox_port", 9115)
    if not str(port).isdigit() or not 0 < int(port) < 65536:
        problems.append(f"host {host}: prometheus_blackbox_port {port!r} must be a port number (1-65535)")


def prometheus_problems(groups, hostvars, model):
    """Preflight's check of the Prometheus settings: retired variables, the scrape settings (one
    value for every shard, jobs that fit ``model``'s shards), the external labels, and the
    front's probes where there are balancers."""
    problems = []
    hosts = sorted(groups.get("prometheus", []))
    if hosts:
        _scrape_problems(groups, hostvars, hosts, len(model.get("shards") or {}) or None, problems)
    for host in dict.fromkeys(groups.get("prometheus", []) + groups.get("prometheus_global", [])):
        _label_problems(hostvars, host, problems)
    if groups.get("loadbalancer"):
        for host in groups.get("prometheus", []):
            _front_probe_problems(hostvars, host, problems)
    return problems


FilterModule = filter_module(rule_file_specs, remote_write_configs, retention_size, prometheus_called_tiers,
                             prometheus_clients, scrape_settings_need_host)
