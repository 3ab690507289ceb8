"""Alertmanager receivers shaped from simple inventory variables.

Sites that only need email, Slack or a webhook list them in a few keys each; these
filters turn the lists into receivers in Alertmanager's own format (appended to
``alertmanager_receivers``) and the SMTP settings into ``global`` ``smtp_*`` keys.
Every entry is checked, and an error names the list, the entry and the key.

Filters
-------
``alertmanager_simple_receivers``
    ``alertmanager_slack_receivers | alertmanager_simple_receivers('slack')`` ->
    ``[{'name': 'ops', 'slack_configs': [{'api_url': ..., 'channel': '#ops',
    'send_resolved': True}]}]``. Kinds: ``email`` (name, to), ``slack`` (name,
    api_url, channel), ``webhook`` (name, url); ``send_resolved`` defaults to true,
    other keys are passed through to the receiver's config unchanged.
``alertmanager_smtp_global``
    ``{'smarthost': 'mx:587', 'from': 'am@example.org'} | alertmanager_smtp_global``
    -> ``{'smtp_smarthost': 'mx:587', 'smtp_from': 'am@example.org',
    'smtp_require_tls': True}``; ``{}`` for ``{}``.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.promha.stack.plugins.plugin_utils.filters import filter_module

# kind -> (Alertmanager config key, required keys besides name)
KINDS = {
    "email": ("email_configs", ("to",)),
    "slack": ("slack_configs", ("api_url", "channel")),
    "webhook": ("webhook_configs", ("url",)),
}
SMTP_KEYS = {"smarthost", "from", "hello", "auth_username", "auth_password", "auth_identity", "auth_secret",
             "require_tls"}


def alertmanager_simple_receivers(entries, kind):
    """Receivers in Alertmanager's format from ``[{name, ...}]`` entries of one ``kind``."""
    if kind not in KINDS:
        raise AnsibleFilterError(f"alertmanager_simple_receivers: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    variable = f"alertmanager_{kind}_receivers"
    if not isinstance(entries, list):
        raise AnsibleFilterError(f"{variable} must be a list of mappings, got {type(entries).__name__}")
    config_key, required = KINDS[kind]
    receivers, names = [], set()
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise AnsibleFilterError(f"{variable}[{index}] must be a mapping, got {type(entry).__name__}")
        name = entry.get("name")
        where = f"{variable}[{index}]" + (f" ({name})" if name else "")
        missing = [key for key in ("name", *required) if not entry.get(key)]
        if missing:
            raise AnsibleFilterError(f"{where} lacks {', '.join(missing)}")
        if name in names:
            raise AnsibleFilterError(f"{where}: the name {name!r} is used twice")
        names.add(name)
        config = {key: value for key, value in entry.items() if key != "name"}
        config.setdefault("send_resolved", True)
        receivers.append({"name": name, config_key: [config]})
    return receivers


def alertmanager_smtp_global(smtp):
    """``global`` keys for email: ``{smarthost, from, ...}`` -> ``{smtp_smarthost, smtp_from, ...}``."""
    if smtp == {}:
        return {}  # no email
    if not isinstance(smtp, dict):
        raise AnsibleFilterError(f"alertmanager_smtp must be a mapping, got {type(smtp).__name__}")
    unknown = sorted(set(smtp) - SMTP_KEYS)
    if unknown:
        raise AnsibleFilterError(f"alertmanager_smtp: unknown key(s) {', '.join(unknown)} "
                                 f"(known: {', '.join(sorted(SMTP_KEYS))})")
    missing = [key for key in ("smarthost", "from") if not smtp.get(key)]
    if missing:
        raise AnsibleFilterError(f"alertmanager_smtp lacks {', '.join(missing)}")
    if ":" not in str(smtp["smarthost"]):
        raise AnsibleFilterError(f"alertmanager_smtp.smarthost must be host:port, got {smtp['smarthost']!r}")
    result = {f"smtp_{key}": value for key, value in smtp.items()}
    result.setdefault("smtp_require_tls", True)
    return result


FilterModule = filter_module(alertmanager_simple_receivers, alertmanager_smtp_global)
