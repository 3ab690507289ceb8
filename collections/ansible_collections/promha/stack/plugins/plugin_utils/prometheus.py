"""The parts of a Prometheus server's configuration the prometheus role computes.

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
"""

from __future__ import annotations

import os
import re

from ansible.errors import AnsibleFilterError
from ansible_collections.promha.stack.plugins.plugin_utils.access import truthy
from ansible_collections.promha.stack.plugins.plugin_utils.filters import filter_module
from ansible_collections.promha.stack.plugins.plugin_utils.webaccess import client_blocks, client_settings, tier_clients

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


FilterModule = filter_module(rule_file_specs, remote_write_configs, retention_size, prometheus_called_tiers,
                             prometheus_clients)
