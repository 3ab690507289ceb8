"""How every tier of the stack is reached: TLS or not, the account, where the secrets are.

One rule for the whole stack, written here only. Every daemon that listens serves
TLS with a certificate of the stack's web CA and asks for the ``promha`` account,
unless the inventory sets ``stack_plain_http`` (plain HTTP, no account). The stack's
own CAs, certificates and generated passwords live under ``stack_secrets_dir``,
by default ``<inventory>/.secrets``.

Each tier's clients reach it with the tier's own settings where the inventory sets
them (``alertmanager_web_tls_enabled``, ``remote_storage_basic_auth_username``, ...),
else with the rule's: :data:`TIERS` names those variables, once, and
:func:`tier_settings` answers for one tier, read from the hosts that serve it
(preflight holds those settings alike on every host). The stack model (model.py)
holds that answer, one per tier, for the run; :func:`tier_password` adds the password.

The roles read a tier's access through the ``promha.stack.access`` lookup (the
model's settings and the password), the checks the rule through :func:`host_access`,
the tests the model. :func:`stack_setting_problems`, one of preflight's checks
(preflight.py), holds the settings every tier's clients read to one value.
"""

from __future__ import annotations

import json
import os
from typing import NamedTuple

from ansible_collections.promha.stack.plugins.plugin_utils.inventory import variable

# The account every tier's clients use, where the stack's defaults are on.
USER = "promha"
_TRUE = ("true", "yes", "on", "1")


def truthy(value):
    """A boolean from an inventory value (true, "yes", "1", ...); None is false."""
    return value if isinstance(value, bool) else str(value).strip().lower() in _TRUE


def stack_access(plain_http=None, secrets_dir=None, inventory_dir=None):
    """The stack's access settings from the three inventory values that decide them.

    Returns ``{plain, tls, user, secrets, web_ca, gossip_ca}``: ``plain`` the switch,
    ``tls`` its opposite, ``user`` ``promha`` or ``''``, ``secrets`` the secrets
    directory (``secrets_dir``, else ``<inventory_dir>/.secrets``, else ``''``) and the
    two CA files in it.
    """
    plain = plain_http is not None and truthy(plain_http)
    if secrets_dir in (None, ""):
        secrets_dir = os.path.join(str(inventory_dir), ".secrets") if inventory_dir not in (None, "") else ""
    secrets = str(secrets_dir)
    return {"plain": plain, "tls": not plain, "user": "" if plain else USER, "secrets": secrets,
            "web_ca": os.path.join(secrets, "web", "ca.crt"), "gossip_ca": os.path.join(secrets, "gossip", "ca.crt")}


def host_access(hostvars, host):
    """:func:`stack_access` from ``host``'s variables."""
    return stack_access(*(variable(hostvars, host, name, None)
                          for name in ("stack_plain_http", "stack_secrets_dir", "inventory_dir")))


def web_files(access, host, service):
    """Where the PKI step puts ``host``'s certificate and key for ``service``, and the web CA."""
    base = os.path.join(access["secrets"], "web", host, service)
    return {"cert": f"{base}.crt", "key": f"{base}.key", "ca": access["web_ca"]}


def gossip_files(access, host):
    """Where the PKI step puts ``host``'s gossip certificate and key, and the gossip CA."""
    base = os.path.join(access["secrets"], "gossip", host)
    return {"cert": f"{base}.crt", "key": f"{base}.key", "ca": access["gossip_ca"]}


def credential_path(access, name):
    """The file of the generated credential ``name`` (``prometheus_web``, ...)."""
    return os.path.join(access["secrets"], "credentials", name)


def secret(access, name):
    """The generated credential ``name``'s content, ``''`` until the PKI step has written it."""
    return _read(credential_path(access, name))


def _read(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().rstrip()
    except OSError:
        return ""


# The port each daemon serves on where the inventory does not set it: the roles' defaults
# (a unit test keeps the two equal). The tiers below and the firewall's flows name their
# ports by these variables.
PORTS = {
    "prometheus_port": 9090, "node_exporter_port": 9100, "remote_storage_port": 8428,
    "mysql_port": 3306, "mysql_exporter_port": 9104, "mysql_galera_port": 4567, "mysql_galera_ist_port": 4568,
    "mysql_galera_sst_port": 4444, "grafana_http_port": 3000, "grafana_ha_port": 9094,
    "nginx_listen_port": 80, "nginx_tls_port": 443, "nginx_exporter_port": 9113,
}


class Tier(NamedTuple):
    """The variables that say how a tier is reached, its generated credential, and the
    variable of the port it serves on (None: several ports per host, Alertmanager's)."""

    tls: str
    user: str | None
    password: str | None
    ca: str
    credential: str | None
    port: str | None = None


# Every port a client of the stack calls. The exporters on the database hosts and the
# balancers, and Grafana's /metrics, take node_exporter's generated password. Grafana's
# own port has no account of the stack's (users log in to Grafana); the front is nginx's
# TLS port, its callers pass their tier's credentials through.
TIERS = {
    "prometheus": Tier("prometheus_web_tls_enabled", "prometheus_web_basic_auth_username",
                       "prometheus_web_basic_auth_password", "prometheus_web_tls_ca_src", "prometheus_web",
                       "prometheus_port"),
    "alertmanager": Tier("alertmanager_web_tls_enabled", "alertmanager_web_basic_auth_username",
                         "alertmanager_web_basic_auth_password", "alertmanager_web_tls_ca_src", "alertmanager_web"),
    "node_exporter": Tier("node_exporter_web_tls_enabled", "node_exporter_web_basic_auth_username",
                          "node_exporter_web_basic_auth_password", "node_exporter_web_tls_ca_src", "node_exporter_web",
                          "node_exporter_port"),
    "mysql_exporter": Tier("mysql_exporter_web_tls_enabled", "mysql_exporter_web_basic_auth_username",
                           "mysql_exporter_web_basic_auth_password", "mysql_exporter_web_tls_ca_src",
                           "node_exporter_web", "mysql_exporter_port"),
    "nginx_exporter": Tier("nginx_exporter_tls_enabled", "nginx_exporter_basic_auth_username",
                           "nginx_exporter_basic_auth_password", "nginx_exporter_tls_ca_src", "node_exporter_web",
                           "nginx_exporter_port"),
    "remote_storage": Tier("remote_storage_tls_enabled", "remote_storage_basic_auth_username",
                           "remote_storage_basic_auth_password", "remote_storage_tls_ca_src", "remote_storage_web",
                           "remote_storage_port"),
    "grafana": Tier("grafana_tls_enabled", None, None, "grafana_tls_ca_src", None, "grafana_http_port"),
    "grafana_metrics": Tier("grafana_tls_enabled", "grafana_metrics_basic_auth_username",
                            "grafana_metrics_basic_auth_password", "grafana_tls_ca_src", "node_exporter_web",
                            "grafana_http_port"),
    "front": Tier("nginx_tls_enabled", None, None, "nginx_tls_ca_src", None, "nginx_tls_port"),
}


def port_tier(port_var):
    """The tier served on the port ``port_var`` names (the first in :data:`TIERS`), else None."""
    return next((name for name, tier in TIERS.items() if tier.port == port_var), None)


def tier_settings(tier, value, access):
    """How a client reaches ``tier``, its password aside: ``{tls, scheme, user, ca, password_file}``.

    ``value(name)`` gives a variable's value, None where it is unset; what it leaves
    unset comes from ``access`` (:func:`stack_access`): TLS with the stack's web CA, the
    ``promha`` account. ``ca`` is ``''`` without TLS. ``password_file`` is the generated
    credential's file where the account's password comes from it (the tier's password
    variable unset), else ``''``. The stack model holds one of these per tier.
    """
    if tier not in TIERS:
        raise KeyError(f"unknown tier {tier!r}; one of {', '.join(sorted(TIERS))}")
    names = TIERS[tier]
    tls = value(names.tls)
    tls = access["tls"] if tls is None else truthy(tls)
    user = "" if names.user is None else value(names.user)
    user = access["user"] if user is None else str(user)
    password_file = credential_path(access, names.credential) if user and value(names.password) is None else ""
    ca = ""
    if tls:
        ca = value(names.ca)
        ca = access["web_ca"] if ca in (None, "") else str(ca)
    return {"tls": tls, "scheme": "https" if tls else "http", "user": user, "ca": ca, "password_file": password_file}


def tier_password(tier, settings, value):
    """The password a client of ``tier`` sends with ``settings`` (:func:`tier_settings`): the
    generated credential's content (``''`` until the PKI step has written it), else the
    tier's password variable (``value(name)``); ``''`` without an account."""
    if not settings["user"]:
        return ""
    if settings["password_file"]:
        return _read(settings["password_file"])
    found = value(TIERS[tier].password)
    return "" if found is None else str(found)


# Settings every host of a group must read alike: a tier's clients (other tiers' roles)
# read its server's TLS switch, CA, user and password (TIERS), so those are read by
# every host.
STACK_WIDE = {name: "all" for name in ("stack_plain_http", "stack_secrets_dir", "stack_environment")}
STACK_WIDE.update((name, "all") for tier in TIERS.values() for name in (tier.tls, tier.ca, tier.user) if name)
STACK_WIDE.update(alertmanager_cluster_tls_enabled="alertmanager", alertmanager_cluster_label="alertmanager")
# The same for the passwords; a problem names the hosts, never the values.
STACK_WIDE_SECRETS = tuple(dict.fromkeys(tier.password for tier in TIERS.values() if tier.password)) + (
    "remote_storage_metrics_auth_key",)


def stack_setting_problems(groups, hostvars, model=None):
    """Preflight's check of the stack-wide settings: one value on every host (:data:`STACK_WIDE`,
    :data:`STACK_WIDE_SECRETS`), and no plain HTTP where ``stack_environment`` is production."""
    problems = []
    names = [(name, group, False) for name, group in STACK_WIDE.items()]
    names += [(name, "all", True) for name in STACK_WIDE_SECRETS]
    for name, group, hidden in names:
        values = {}
        for host in sorted(groups.get(group, [])):
            value = variable(hostvars, host, name, None)
            values.setdefault(json.dumps(value, sort_keys=True, default=str), []).append(host)
        if len(values) > 1:
            shown = "; ".join(f"{', '.join(h[:3])}{' ...' if len(h) > 3 else ''}"
                              + ("" if hidden else f": {v}") for v, h in values.items())
            problems.append(f"{name} differs between hosts ({shown}); every tier and its clients must read one "
                            f"value: set it once, in group_vars/{group}")
    for host in sorted(groups.get("all", [])):
        if host_access(hostvars, host)["plain"] and str(variable(hostvars, host, "stack_environment")) == "production":
            problems.append(f"host {host}: stack_plain_http is true in an inventory whose stack_environment is "
                            "production; plain HTTP and no credentials are refused there")
    return problems
