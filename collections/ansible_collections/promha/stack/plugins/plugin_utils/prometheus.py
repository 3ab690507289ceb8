"""The parts of a Prometheus server's configuration the prometheus role computes.

Filters
-------
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


FilterModule = filter_module(rule_file_specs, remote_write_configs, retention_size)
