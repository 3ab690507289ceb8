"""Whether a configuration carries a secret, so the task writing it hides its diff and log.

A template task prints the whole file under ``--diff`` and, on failure, in its result.
Prometheus' and Alertmanager's files hold whatever the inventory puts in a receiver or a
scrape job (a PagerDuty routing key, webhook credentials, a job's basic auth password,
an OAuth2 client secret, the storage's metrics key), so their tasks set
``no_log: "{{ config | carries_secrets }}"``: the diff is shown only when nothing in the
file is a secret.

Filters
-------
``carries_secrets``
    ``{'receivers': [{'name': 'pd', 'pagerduty_configs': [{'routing_key': 'R0'}]}]} | carries_secrets``
    -> ``True``; ``{'route': {'receiver': 'x'}} | carries_secrets`` -> ``False``. A key counts
    when its name is one of Prometheus' or Alertmanager's secret fields (any ``password``,
    ``token``, ``secret``, ``key``, ``credentials``, the Slack, Webex and webhook URLs, a
    ``params`` mapping) and its value is not empty; ``*_file`` names a file, not a secret.
"""

from __future__ import annotations

import re

from ansible_collections.promha.stack.plugins.plugin_utils.filters import filter_module

# Field names that hold a secret in Prometheus' and Alertmanager's configuration.
_SECRET = re.compile(r"(password|passphrase|token|secret|credentials|(^|_)key$|^authkey$|^authorization$|api_url$|"
                     r"webhook_url$|^headers$|^http_headers$|^proxy_connect_header$)", re.I)
# Fields ending in _file name a file, token_url an endpoint; these name no secret.
_NOT_SECRET = re.compile(r"(_file|_files)$|^token_url$", re.I)
# Alertmanager reads these lists' url as a secret (a webhook's address carries its token).
_SECRET_URL_PARENTS = {"webhook_configs", "msteams_configs", "msteamsv2_configs", "discord_configs",
                       "rocketchat_configs", "jira_configs", "incidentio_configs", "mattermost_configs"}


def _secret_field(name, parent):
    if name.lower() == "url":
        return parent in _SECRET_URL_PARENTS
    return bool(_SECRET.search(name)) and not _NOT_SECRET.search(name)


def carries_secrets(data):
    """Return True when ``data`` (a configuration mapping) holds a non-empty secret field."""
    stack = [(data, "")]
    while stack:
        value, parent = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                if _secret_field(str(key), parent) and item not in (None, "", [], {}):
                    return True
                stack.append((item, str(key)))
        elif isinstance(value, (list, tuple)):
            stack.extend((item, parent) for item in value)
    return False


FilterModule = filter_module(carries_secrets)
