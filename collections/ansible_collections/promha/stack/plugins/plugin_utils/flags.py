"""Extra flags and settings: what an inventory may add to a daemon's command line or config.

Every tier takes a mapping of extra flags (``prometheus_extra_args``,
``alertmanager_extra_args``, ``node_exporter_extra_args``, ``remote_storage_extra_args``)
or of extra settings (``mysql_server_extra_config``, ``grafana_extra_config``). The roles
render them as they are into a unit's command line, an environment file or an ini file,
so these checks come first: a name must be a plain flag name, a value one word with
nothing a shell, systemd or an ini reader would split or expand, and no entry may set
what the role already sets (its own variable is the place) or switch off a secure
default (the admin API, the lifecycle endpoints, TLS, authentication).

Filters
-------
``extra_args_problems``
    ``prometheus_extra_args | extra_args_problems('prometheus')`` -> one line per refused
    flag, each naming it and saying why; empty when every flag may be passed.
``extra_args_words``
    ``prometheus_extra_args | extra_args_words('--')`` -> ``['--query.timeout=1m']``, sorted,
    booleans as true/false, and ``$`` and ``%`` doubled for a unit's ExecStart line
    (``unit=False`` for an environment file, which systemd does not expand). Only for
    flags ``extra_args_problems`` passed.
``extra_settings_problems``
    ``grafana_extra_config | extra_settings_problems('grafana')`` -> the same for a
    tier's extra ini settings (Grafana's: a mapping of sections to settings; MariaDB's:
    one mapping of server settings).
``gossip_problems``
    ``{'alertmanager_cluster_probe_interval': '1s', ...} | gossip_problems`` -> one line
    per refused Alertmanager gossip setting, naming its variable: each must be a Go
    duration above zero, and the probe timeout shorter than the probe interval.

:func:`extra_problems` is preflight's check of every host's extra flags and settings.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from ansible.errors import AnsibleFilterError
from ansible_collections.promha.stack.plugins.plugin_utils import inventory
from ansible_collections.promha.stack.plugins.plugin_utils.filters import filter_module

# A flag's name without its leading dashes; a value is one word without quotes or
# backslashes (systemd's $ and % are escaped by extra_args_words).
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_BAD_VALUE = re.compile(r"[\s\"'\\]")
_INI_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_INI_BAD_VALUE = re.compile(r"[\r\n\x00-\x08\x0b\x0c\x0e-\x1f]")

# Per tier (flags.yml): the flags and ini settings the role sets itself, with the
# variable to use instead, and those that undo a secure default, with what they
# would open.
_POLICY = yaml.safe_load(Path(__file__).with_name("flags.yml").read_text())
_OWNED = {tier: rules["owned"] for tier, rules in _POLICY["flags"].items()}
_INSECURE = {tier: rules["insecure"] for tier, rules in _POLICY["flags"].items()}
_INI_OWNED = {tier: {section: set(names) for section, names in rules["owned"].items()}
              for tier, rules in _POLICY["settings"].items()}
_INI_INSECURE = {tier: {(section, name): why for section, settings in rules["insecure"].items()
                        for name, why in settings.items()}
                 for tier, rules in _POLICY["settings"].items()}

# node_exporter's collectors are switched through the role's two lists, which the
# collector check and the README name; a bare --collector.NAME here would bypass them.
_COLLECTOR_SWITCH = re.compile(r"^(no-)?collector\.[a-z0-9_]+$")

_VARIABLES = {"prometheus": "prometheus_extra_args", "alertmanager": "alertmanager_extra_args",
              "node_exporter": "node_exporter_extra_args", "remote_storage": "remote_storage_extra_args",
              "grafana": "grafana_extra_config", "mysql": "mysql_server_extra_config"}


def _tier(tier, tables):
    if tier not in tables:
        raise AnsibleFilterError(f"unknown tier {tier!r}; one of {', '.join(sorted(tables))}")
    return _VARIABLES[tier]


def _scalar_problem(value, bad):
    if isinstance(value, bool) or isinstance(value, (int, float)):
        return None
    if not isinstance(value, str):
        return f"must be one word, got {type(value).__name__}"
    if value == "" or bad.search(value):
        return "must be one word without spaces, line breaks, quotes or backslashes"
    return None


def _mapping(value, refusal):
    """``(value, [])`` for a mapping, ``({}, [])`` when unset, ``({}, [refusal, got <type>])`` otherwise."""
    if value in (None, ""):
        return {}, []
    if not isinstance(value, dict):
        return {}, [f"{refusal}, got {type(value).__name__}"]
    return value, []


def _key(name):
    return name.replace("-", "_").lower()


def extra_args_problems(args, tier):
    """Return one line per flag of ``args`` that ``tier``'s command line must not take."""
    variable = _tier(tier, _OWNED)
    args, problems = _mapping(args, f"{variable} must be a mapping of flag names to values")
    for flag in sorted(args, key=str):
        name = str(flag)
        bare = name.lstrip("-")
        value = args[flag]
        if not _NAME.match(bare):
            problems.append(f"{variable}: {name!r} is not a flag name (letters, digits, '.', '_' and '-')")
            continue
        if bare in _OWNED[tier]:
            problems.append(f"{variable}: {bare} is set by the role; use {_OWNED[tier][bare]}")
        elif bare in _INSECURE[tier]:
            problems.append(f"{variable}: {bare} is refused: it would open {_INSECURE[tier][bare]}")
        elif tier == "node_exporter" and _COLLECTOR_SWITCH.match(bare):
            problems.append(f"{variable}: {bare} switches a collector; list it in node_exporter_enabled_collectors "
                            "or node_exporter_disabled_collectors")
        if problem := _scalar_problem(value, _BAD_VALUE):
            problems.append(f"{variable}: {bare}: the value {problem}")
    return problems


def extra_args_words(args, dashes="--", unit=True):
    """Return ``args`` as command-line words, each ``<dashes><name>=<value>``."""
    words = []
    for flag in sorted(args or {}, key=str):
        value = args[flag]
        text = str(value).lower() if isinstance(value, bool) else str(value)
        word = f"{dashes}{str(flag).lstrip('-')}={text}"
        words.append(word.replace("%", "%%").replace("$", "$$") if unit else word)
    return words


def _settings_problems(tier, section, settings, problems):
    variable = _VARIABLES[tier]
    where = f"[{section}] " if section else ""
    if not isinstance(settings, dict):
        problems.append(f"{variable}: {where}must be a mapping of settings, got {type(settings).__name__}")
        return
    for key in sorted(settings, key=str):
        name = str(key)
        if not _INI_KEY.match(name):
            problems.append(f"{variable}: {where}{name!r} is not a setting name (letters, digits, '.', '_' and '-')")
            continue
        value = settings[key]
        if _key(name) in {_key(owned) for owned in _INI_OWNED[tier].get(section, ())}:
            problems.append(f"{variable}: {where}{name} is set by the role; use its variable")
        why = _INI_INSECURE[tier].get((section, _key(name)))
        if why and str(value).strip().lower() not in ("false", "0", "off", "no"):
            problems.append(f"{variable}: {where}{name} is refused: it would allow {why}")
        if not isinstance(value, (str, int, float, bool)) or (isinstance(value, str) and _INI_BAD_VALUE.search(value)):
            problems.append(f"{variable}: {where}{name}: the value must be one line of text")


def extra_settings_problems(settings, tier):
    """Return one line per extra ini setting that ``tier``'s configuration must not take."""
    variable = _tier(tier, _INI_OWNED)
    settings, problems = _mapping(settings, f"{variable} must be a mapping")
    if tier == "mysql" and settings:
        _settings_problems(tier, "", settings, problems)
        return problems
    for section in sorted(settings, key=str):
        if not _INI_KEY.match(str(section)):
            problems.append(f"{variable}: {str(section)!r} is not a section name")
            continue
        _settings_problems(tier, str(section), settings[section], problems)
    return problems


# A Go duration as Alertmanager's flags take it: 1s, 500ms, 1m30s.
_GO_DURATION = re.compile(r"^(?:[0-9]+(?:\.[0-9]+)?(?:ns|us|µs|ms|s|m|h))+$")
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def go_seconds(duration):
    """Seconds of a Go duration such as ``1m30s`` or ``500ms``; None when it is not one."""
    text = str(duration)
    if not _GO_DURATION.match(text):
        return None
    return sum(float(number) * _GO_UNITS[unit]
               for number, unit in re.findall(r"([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)", text))


def gossip_problems(settings):
    """One line per refused Alertmanager gossip setting (``settings``: variable -> value).

    Each value goes to a ``--cluster.*`` flag, so it must be a Go duration above zero.
    memberlist waits ``alertmanager_cluster_probe_timeout`` for a peer's direct answer and
    then asks other peers within the same ``alertmanager_cluster_probe_interval``: a timeout
    not shorter than the interval leaves no time for those indirect probes, and every
    slow answer becomes a suspicion.
    """
    if not isinstance(settings, dict):
        raise AnsibleFilterError(f"gossip_problems expects a mapping of variables to durations, got {settings!r}")
    problems, seconds = [], {}
    for variable, value in sorted(settings.items()):
        seconds[variable] = go_seconds(value)
        if not seconds[variable]:
            problems.append(f"{variable} is {value!r}: a duration above zero such as 500ms, 1s or 1m30s is needed")
    interval = seconds.get("alertmanager_cluster_probe_interval")
    timeout = seconds.get("alertmanager_cluster_probe_timeout")
    if interval and timeout and timeout >= interval:
        problems.append(f"alertmanager_cluster_probe_timeout ({settings['alertmanager_cluster_probe_timeout']}) must "
                        f"be shorter than alertmanager_cluster_probe_interval "
                        f"({settings['alertmanager_cluster_probe_interval']}): memberlist asks other peers within "
                        f"the interval once the timeout has passed")
    return problems


# Each tier's extra flags or settings, by the group whose hosts run it.
_EXTRA = (("prometheus", "prometheus", extra_args_problems), ("alertmanager", "alertmanager", extra_args_problems),
          ("all", "node_exporter", extra_args_problems), ("remote_storage", "remote_storage", extra_args_problems),
          ("mysql", "mysql", extra_settings_problems), ("grafana", "grafana", extra_settings_problems))


def extra_problems(groups, hostvars, model=None):
    """Preflight's check of every host's extra flags and settings (one tier's variable per group)."""
    problems = []
    for group, tier, check in _EXTRA:
        for host in groups.get(group, []):
            value = inventory.variable(hostvars, host, _VARIABLES[tier], {})
            problems += [f"host {host}: {line}" for line in check(value, tier)]
    return problems


FilterModule = filter_module(extra_args_problems, extra_args_words, gossip_problems, extra_settings_problems)
