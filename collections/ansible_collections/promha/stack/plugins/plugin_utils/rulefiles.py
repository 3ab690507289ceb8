"""Prometheus rule files: the stack's own and the site's, as files for a server.

Filters
-------
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


class FilterModule:
    """Rule file filters."""

    def filters(self):
        return {"rule_file_specs": rule_file_specs}
