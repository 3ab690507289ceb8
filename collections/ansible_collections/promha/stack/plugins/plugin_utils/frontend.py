"""Front-end filters: secrets, database accounts, nginx upstreams, Grafana config checks.

Each filter returns data (or a list of problems) so the roles can validate
everything on the controller before a host is touched, and unit tests can cover
the logic without any service running.

Filters
-------
``secret_problem``
    ``mysql_grafana_password | secret_problem`` -> ``''`` when the value can be a
    real secret, else what is wrong (``'is not set'``, ``'is a placeholder ...'``,
    ``'is shorter than 12 characters'``).
``secret_problems``
    ``{'grafana_secret_key': grafana_secret_key | default(none)} | secret_problems`` ->
    ``['grafana_secret_key is not set']``: one line per variable with a problem.
``not_ip_addresses``
    ``['10.0.0.5', 'grafana-1', '10.0.%']  | not_ip_addresses`` -> ``['grafana-1']``:
    entries that are neither IP addresses nor MySQL host patterns.
``mysql_stale_accounts``
    ``mysql_info.users | mysql_stale_accounts('grafana', ['10.0.0.5'])`` ->
    ``[{'user': ..., 'host': ...}]``: root outside localhost, anonymous accounts,
    and grafana accounts for addresses that are no longer Grafana hosts.
``prometheus_upstreams``
    ``_nginx_view | prometheus_upstreams`` (the stack model's, or a host's view's, shards,
    global tier and Prometheus endpoints) -> ``[{'name': 'prometheus_shard_0', 'path': '/prometheus/shard-0/',
    'servers': ['10.0.0.21:9090', ...]}, ..., {'name': 'prometheus_global', ...}]``.
``front_probes``
    ``'https://10.0.0.70' | front_probes(upstreams, alertmanager=true, storage=true, grafana=false)``
    -> ``[{'targets': ['https://10.0.0.70/prometheus/shard-0/-/ready', ...],
    'labels': {'module': 'front_prometheus'}}, ...]``: every path of the front, as a
    user calls it, grouped by the blackbox module (credentials) that probes it.
``front_url``
    ``'lb-1' | front_url(hostvars, tls=true)`` -> ``'https://10.0.0.70'``: the front
    as users reach it, from that balancer's settings: its floating address
    (``keepalived_virtual_ipaddress`` without the prefix length), else its own
    address, on ``nginx_tls_port`` (default 443) with TLS or ``nginx_listen_port``
    (default 80) without. ``url``, when set, wins (trailing slashes dropped).
    ``short=true`` leaves out a port that is the scheme's default (Grafana's
    ``root_url``, the address users type). Example: ``'lb-1' | front_url(hostvars,
    tls=false, url='')``
``grafana_prometheus_datasources``
    ``upstreams | grafana_prometheus_datasources('http://10.0.0.70')`` -> one Grafana
    data source per upstream, through the front; the global tier is the default
    (shard 0 when there is no global tier).
``ini_problems``
    ``rendered_text | ini_problems({'database': ['type', 'host']})`` -> a list of
    problems: parse errors, missing sections, missing or empty keys.
``grafana_provisioning_problems``
    ``datasources_doc | grafana_provisioning_problems('datasources')`` -> a list of
    problems with a Grafana provisioning document (``datasources`` or
    ``dashboards``).

:func:`frontend_problems` is preflight's check of the front end's settings: the
secrets, Grafana's database TLS, the balancers' floating address and the metrics
ports and passwords of nginx and Grafana.
"""

from __future__ import annotations

import configparser
import re

from ansible.errors import AnsibleFilterError
from ansible_collections.promha.stack.plugins.plugin_utils import inventory
from ansible_collections.promha.stack.plugins.plugin_utils.access import host_access, truthy
from ansible_collections.promha.stack.plugins.plugin_utils.filters import filter_module
from ansible_collections.promha.stack.plugins.plugin_utils.flows import switched_off
from ansible_collections.promha.stack.plugins.plugin_utils.inventory import UNSET, variable

PLACEHOLDERS = {
    "", "changeme", "change-me", "change_me", "changeit", "password", "passw0rd", "secret",
    "admin", "grafana", "root", "placeholder", "todo", "tbd", "xxx", "default", "example",
}
MIN_SECRET_LENGTH = 12


def secret_problem(value, min_length=MIN_SECRET_LENGTH):
    """Return ``''`` if ``value`` can be a real secret, else a phrase saying what is wrong."""
    if value is None:
        return "is not set"
    if not isinstance(value, str):
        return f"must be a string, got {type(value).__name__}"
    text = value.strip().lower()
    if text in PLACEHOLDERS or any(word in text for word in ("changeme", "change_me", "change-me", "replace")) \
            or (text.startswith("<") and text.endswith(">")):
        return "is a placeholder; set a real value through ansible-vault"
    if len(value) < int(min_length):
        return f"is shorter than {min_length} characters"
    if any(c in value for c in "\r\n\0") or '"""' in value:
        return "holds a line break, a NUL or three double quotes, which would end its quoted value in a config file"
    return ""


def secret_problems(secrets, min_length=MIN_SECRET_LENGTH):
    """Check a ``{variable name: value}`` mapping; return ``'<name> <problem>'`` per bad value."""
    if not isinstance(secrets, dict):
        raise AnsibleFilterError(f"secret_problems: expected a mapping of variable names to values, got {secrets!r}")
    problems = []
    for name, value in secrets.items():
        if problem := secret_problem(value, min_length):
            problems.append(f"{name} {problem}")
    return problems


def not_ip_addresses(values):
    """Return the entries of ``values`` that are neither IP addresses nor ``%``/``_`` patterns."""
    if not isinstance(values, (list, tuple)):
        raise AnsibleFilterError(f"not_ip_addresses: expected a list, got {values!r}")
    return [v for v in values if not inventory.is_ip(str(v).strip("[]")) and "%" not in str(v)]


def mysql_stale_accounts(users, grafana_user, client_hosts):
    """Accounts to remove, from ``mysql_info``'s ``users`` (``{host: {user: {...}}}``)."""
    if not isinstance(users, dict):
        raise AnsibleFilterError(f"mysql_stale_accounts: expected mysql_info users, got {users!r}")
    wanted = set(client_hosts)
    stale = []
    for host, accounts in sorted(users.items()):
        for user in sorted(accounts):
            if (user == "root" and host != "localhost") or user == "" \
                    or (user == grafana_user and host not in wanted):
                stale.append({"user": user, "host": host})
    return stale


def prometheus_upstreams(model):
    """One upstream per Prometheus shard (its replicas), plus one for the global tier, from the
    stack model (or a host's view of it): its shards, global tier and Prometheus endpoints."""
    if not isinstance(model, dict) or not isinstance(model.get("shards", {}), dict) \
            or not isinstance((model.get("endpoints") or {}).get("prometheus"), dict):
        raise AnsibleFilterError("prometheus_upstreams: expects the stack model (shards, global, endpoints), "
                                 f"got {model!r}")
    served = model["endpoints"]["prometheus"]

    def servers(hosts):
        missing = [host for host in hosts if host not in served]
        if missing:
            raise AnsibleFilterError(f"prometheus_upstreams: no Prometheus endpoint for {', '.join(missing)}")
        return sorted({served[host] for host in hosts})

    upstreams = [{"name": f"prometheus_shard_{shard}", "path": f"/prometheus/shard-{shard}/", "servers": servers(replicas)}
                 for shard, replicas in sorted(model.get("shards", {}).items(), key=lambda item: int(item[0]))]
    global_hosts = model.get("global") or []
    if global_hosts:
        upstreams.append({"name": "prometheus_global", "path": "/prometheus/global/", "servers": servers(global_hosts)})
    return upstreams


# What a user calls on each path of the front: a cheap call that needs the tier's
# credentials (nginx passes them through), or Grafana's health check.
FRONT_PROBE_CALLS = {"prometheus": "-/ready", "alertmanager": "/alertmanager/-/ready",
                     "storage": "/storage/api/v1/query?query=1", "grafana": "/grafana/api/health"}


def front_url(balancer, hostvars, tls=True, url="", short=False):
    """The front's base URL as users reach it, from one balancer's settings (see the module doc)."""
    if url:
        return str(url).rstrip("/")
    vip = str(inventory.setting(hostvars, balancer, "keepalived_virtual_ipaddress", "")).split("/")[0]
    address = vip or inventory.host_address(balancer, hostvars)
    tls = truthy(tls)
    port = (inventory.setting(hostvars, balancer, "nginx_tls_port", 443) if tls
            else inventory.setting(hostvars, balancer, "nginx_listen_port", 80))
    port = inventory.port_number("front_url", port, f"host {balancer!r}")
    joined = inventory.join_host_port(address, port)
    if truthy(short) and port == (443 if tls else 80):
        joined = joined.rsplit(":", 1)[0]  # "[fd00::70]:443" -> "[fd00::70]"
    return f"{'https' if tls else 'http'}://{joined}"


def front_probes(front_url, upstreams, alertmanager=True, storage=True, grafana=True):
    """The front's paths to probe through ``front_url`` (the floating address), as file_sd groups
    labelled with the blackbox module of the credentials each needs (``front_<tier>``).

    ``upstreams`` are ``prometheus_upstreams`` (one path per shard and the global tier); the
    other tiers' paths are probed when the front serves them.
    """
    if not isinstance(front_url, str) or not front_url.startswith(("http://", "https://")):
        raise AnsibleFilterError(f"front_probes: the front's URL must be http(s)://address[:port], got {front_url!r}")
    if not isinstance(upstreams, list) or any(not isinstance(u, dict) or "path" not in u for u in upstreams):
        raise AnsibleFilterError(f"front_probes: expects prometheus_upstreams' list, got {upstreams!r}")
    base = front_url.rstrip("/")
    groups = [("prometheus", [base + u["path"] + FRONT_PROBE_CALLS["prometheus"] for u in upstreams])]
    for tier, wanted in (("alertmanager", alertmanager), ("storage", storage), ("grafana", grafana)):
        if wanted:
            groups.append((tier, [base + FRONT_PROBE_CALLS[tier]]))
    return [{"targets": targets, "labels": {"module": f"front_{tier}"}} for tier, targets in groups if targets]


def grafana_prometheus_datasources(upstreams, frontend_url, basic_auth_user="", basic_auth_password="", ca_pem="",
                                   default=None):
    """Grafana data sources for the Prometheus upstreams, reached through the nginx front.

    ``default`` names the upstream marked as the default source (``prometheus_global`` if
    there is one, else ``prometheus_shard_0``); ``''`` marks none (another source, such
    as the storage read endpoint, is the default).

    With ``basic_auth_user`` each source sends basic auth (the password in
    ``secureJsonData``, which Grafana stores encrypted); nginx passes it through to
    the replicas' ``--web.config.file``. With ``ca_pem`` and an https front, each
    source checks the front's certificate against that CA.
    """
    if not isinstance(upstreams, list):
        raise AnsibleFilterError(f"grafana_prometheus_datasources: expected prometheus_upstreams, got {upstreams!r}")
    if default is None:
        default = "prometheus_global" if any(u["name"] == "prometheus_global" for u in upstreams) \
            else "prometheus_shard_0"
    sources = []
    for upstream in upstreams:
        label = upstream["name"].replace("prometheus_", "").replace("_", " ")
        sources.append({
            "name": f"Prometheus {label}",
            "uid": "promha-" + upstream["name"].replace("_", "-"),
            "type": "prometheus",
            "access": "proxy",
            "url": frontend_url.rstrip("/") + upstream["path"].rstrip("/"),
            "isDefault": upstream["name"] == default,
            "editable": False,
            "jsonData": {"httpMethod": "POST"},
        })
        secure = {}
        if basic_auth_user:
            sources[-1].update(basicAuth=True, basicAuthUser=basic_auth_user)
            secure["basicAuthPassword"] = basic_auth_password
        if ca_pem and frontend_url.startswith("https://"):
            sources[-1]["jsonData"]["tlsAuthWithCACert"] = True
            secure["tlsCACert"] = ca_pem
        if secure:
            sources[-1]["secureJsonData"] = secure
    return sources


def ini_problems(text, required):
    """Parse ``text`` as an INI file; list what is unparseable, missing or empty in ``required``."""
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    try:
        parser.read_string(text)
    except configparser.Error as error:
        return [f"does not parse: {error}".replace("\n", " ")]
    problems = []
    for section, keys in required.items():
        if not parser.has_section(section):
            problems.append(f"section [{section}] is missing")
            continue
        for key in keys:
            if not parser.get(section, key, fallback="").strip():
                problems.append(f"[{section}] {key} is missing or empty")
    return problems


_DATASOURCE_TYPES = {"prometheus", "mysql", "loki", "alertmanager", "tempo", "elasticsearch", "postgres"}


def _entries(doc, key, problems):
    """Yield ``(place, entry)`` for each mapping of the list ``doc[key]`` (place: ``key[i]``); add a
    problem for a missing or empty list, and for each entry that is not a mapping, in its turn."""
    entries = doc.get(key)
    if not isinstance(entries, list) or not entries:
        problems.append(f"{key}: a non-empty list is required")
        return
    for index, entry in enumerate(entries):
        if isinstance(entry, dict):
            yield f"{key}[{index}]", entry
        else:
            problems.append(f"{key}[{index}]: must be a mapping")


def _datasource_problems(doc):
    problems = []
    names, uids, defaults = set(), set(), 0
    for where, source in _entries(doc, "datasources", problems):
        for key in ("name", "type", "access", "url"):
            if not source.get(key):
                problems.append(f"{where}: {key} is required")
        if source.get("type") and source["type"] not in _DATASOURCE_TYPES:
            problems.append(f"{where}: type {source['type']!r} is not one this stack provisions")
        if source.get("access") not in (None, "proxy", "direct"):
            problems.append(f"{where}: access must be proxy or direct")
        if source.get("name") in names:
            problems.append(f"{where}: name {source['name']!r} is used twice")
        if source.get("uid") and source["uid"] in uids:
            problems.append(f"{where}: uid {source['uid']!r} is used twice")
        names.add(source.get("name"))
        uids.add(source.get("uid"))
        defaults += bool(source.get("isDefault"))
    if defaults > 1:
        problems.append(f"datasources: {defaults} are marked isDefault; at most one may be")
    return problems


def _dashboard_provider_problems(doc):
    problems = []
    for where, provider in _entries(doc, "providers", problems):
        if not provider.get("name"):
            problems.append(f"{where}: name is required")
        if provider.get("type", "file") != "file":
            problems.append(f"{where}: type must be file")
        path = (provider.get("options") or {}).get("path")
        if not path or not str(path).startswith("/"):
            problems.append(f"{where}: options.path must be an absolute directory")
    return problems


def grafana_provisioning_problems(doc, kind):
    """Check a provisioning document of ``kind`` (``datasources`` or ``dashboards``)."""
    if kind not in ("datasources", "dashboards"):
        raise AnsibleFilterError(f"grafana_provisioning_problems: unknown kind {kind!r}")
    if not isinstance(doc, dict):
        return [f"{kind}: the document must be a mapping"]
    problems = [] if doc.get("apiVersion") == 1 else ["apiVersion must be 1"]
    checker = _datasource_problems if kind == "datasources" else _dashboard_provider_problems
    return problems + checker(doc)


def _port(value):
    return str(value).isdigit() and 0 < int(value) < 65536


def _metrics_problems(groups, hostvars, problems):
    """nginx's metrics server on each balancer and Grafana's /metrics: ports of their own, and the
    exporters' account with a password nginx can check cheaply (16 characters or more)."""
    for host in groups.get("loadbalancer", []):
        if switched_off(hostvars, host, "nginx_exporter"):  # the model's rule: no endpoint, no flow
            continue
        ports = {name: variable(hostvars, host, name, default) for name, default in (
            ("nginx_exporter_port", 9113), ("nginx_exporter_local_port", 19113), ("nginx_listen_port", 80),
            ("nginx_tls_port", 443), ("nginx_status_port", 8080), ("node_exporter_port", 9100))}
        for name in ("nginx_exporter_port", "nginx_exporter_local_port"):
            if not _port(ports[name]):
                # The exporter's port is an endpoint of the stack model, which names it.
                if name == "nginx_exporter_local_port":
                    problems.append(f"host {host}: {name} {ports[name]!r} must be a port number (1-65535)")
            else:
                taken = [other for other, value in ports.items() if other != name and str(value) == str(ports[name])]
                if taken:
                    problems.append(f"host {host}: {name} {ports[name]} is also {', '.join(taken)}; nginx's metrics "
                                    "server and its exporter each need a port of their own")
    for group, name in (("loadbalancer", "nginx_exporter_basic_auth_password"),
                        ("grafana", "grafana_metrics_basic_auth_password")):
        for host in groups.get(group, []):
            password = variable(hostvars, host, name)
            if isinstance(password, str) and "{{" not in password and len(password) < 16:
                problems.append(f"host {host}: {name} has {len(password)} characters; it needs 16 or more "
                                "(leave it unset for the generated credentials/node_exporter_web)")


def _secret_problems(groups, hostvars, problems):
    """The database's and Grafana's secrets: set, not placeholders, one Grafana key, one database password."""
    def secret(host, name):
        return variable(hostvars, host, name, None)

    for host in groups.get("mysql", []):
        for line in secret_problems({"mysql_grafana_password": secret(host, "mysql_grafana_password")}):
            problems.append(f"host {host}: {line} (set it in the inventory's vault file)")
    grafana = groups.get("grafana", [])
    for host in grafana:
        for line in secret_problems({name: secret(host, name) for name in (
                "grafana_database_password", "grafana_admin_password", "grafana_secret_key")}):
            problems.append(f"host {host}: {line} (set it in the inventory's vault file)")
    if not grafana:
        return
    if len({secret(host, "grafana_secret_key") for host in grafana}) > 1:
        problems.append(f"grafana hosts ({', '.join(grafana)}): grafana_secret_key must be identical on every "
                        "instance; set it once, for the whole group (group_vars/grafana or the vault file)")
    databases = groups.get("mysql", [])
    wanted = secret(databases[0], "mysql_grafana_password") if databases else None
    # Compared only when the database's own password is usable (else that is the problem reported).
    if databases and not secret_problem(wanted):
        differ = [host for host in grafana if secret(host, "grafana_database_password") != wanted]
        if differ:
            problems.append(f"hosts {', '.join(differ)}: grafana_database_password must equal mysql_grafana_password "
                            f"of {databases[0]}; set both from the same vault variable")


_OFF = ("false", "disable", "disabled", "no", "off", "0")


def _database_tls_problems(groups, hostvars, problems):
    """Grafana's ssl_mode and the database's TLS must agree, or Grafana can never log in.

    Unset settings take the roles' defaults: the database serves and requires TLS, and
    Grafana uses it with the certificate checked, unless stack_plain_http.
    """
    databases = groups.get("mysql", [])
    if not databases:
        return
    database = databases[0]
    enabled = truthy(variable(hostvars, database, "mysql_tls_enabled", not host_access(hostvars, database)["plain"]))
    required = enabled and truthy(variable(hostvars, database, "mysql_tls_required", enabled))
    for host in groups.get("grafana", []):
        plain = host_access(hostvars, host)["plain"]
        mode = str(variable(hostvars, host, "grafana_database_ssl_mode", "false" if plain else "true")).strip().lower()
        if required and mode in _OFF:
            problems.append(f"host {host}: grafana_database_ssl_mode is {mode!r}, but {database} requires TLS of the "
                            "grafana account (mysql_tls_required): Grafana could never log in; set "
                            "grafana_database_ssl_mode to true, or mysql_tls_required to false")
        elif not enabled and mode not in _OFF:
            problems.append(f"host {host}: grafana_database_ssl_mode is {mode!r}, but {database} serves no TLS "
                            "(mysql_tls_enabled is false): Grafana could never connect; set "
                            "grafana_database_ssl_mode to false, or mysql_tls_enabled to true")


_VIP = re.compile(r"^[0-9a-fA-F:.]+/[0-9]{1,3}$")


def _balancer_problems(groups, hostvars, problems):
    """Two or more balancers share one floating address, set with its prefix length."""
    balancers = groups.get("loadbalancer", [])
    if len(balancers) < 2:
        return
    addresses = set()
    for host in balancers:
        vip = variable(hostvars, host, "keepalived_virtual_ipaddress")
        if vip is UNSET or not _VIP.match(str(vip)):
            problems.append(f"host {host}: keepalived_virtual_ipaddress must be the floating address with its prefix "
                            "length (for example 10.0.0.70/24); set it in group_vars/loadbalancer")
        else:
            addresses.add(str(vip))
    if len(addresses) > 1:
        problems.append(f"loadbalancer hosts: keepalived_virtual_ipaddress differs ({', '.join(sorted(addresses))}); "
                        "the balancers share one floating address")


def frontend_problems(groups, hostvars, model=None):
    """Preflight's check of the front end (see the module's docstring), one line per problem."""
    problems = []
    for check in (_metrics_problems, _secret_problems, _database_tls_problems, _balancer_problems):
        check(groups, hostvars, problems)
    return problems


FilterModule = filter_module(
    secret_problem, secret_problems, not_ip_addresses, mysql_stale_accounts, prometheus_upstreams, front_probes,
    front_url, grafana_prometheus_datasources, ini_problems, grafana_provisioning_problems)
