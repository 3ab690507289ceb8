"""The certificates the stack's own CAs issue, and what the secrets directory lacks.

Filters
-------
``stack_certificates``
    ``groups | stack_certificates(hostvars)`` -> one entry per certificate,
    ``{host, kind, service, path, names, client}``. ``kind`` ``web``: one per
    service a host runs (``node-exporter`` on every host, ``prometheus``,
    ``alertmanager``, ``remote-storage``, ``grafana``, ``mysql``,
    ``mysqld-exporter``, ``nginx``, ``nginx-exporter``, ``blackbox-exporter``), at ``web/<host>/<service>`` under the
    secrets directory, each with its own key, so one daemon's key opens no other
    service. ``names`` are subjectAltNames (``IP:10.0.0.1``, ``DNS:prometheus``):
    the host's address, its inventory name, the shared name that service's clients
    check (``prometheus_web_tls_server_name`` and the like), on ``nginx`` the
    floating address and ``nginx_server_name``, on ``mysql`` the database's stable
    address. Only ``mysql`` (Galera members call each other with it) is also a
    client certificate (``client``). ``kind`` ``gossip``: one per Alertmanager
    host, at ``gossip/<host>``, covering the address and the name only, client and
    server.
``stack_pki_plan``
    ``groups | stack_pki_plan(hostvars, present, credentials)`` -> what is
    missing from the secrets directory, ``{cas, certificates, credentials}``.
    ``present`` lists the files there, relative to it (``web/ca.crt``,
    ``web/prom-a/prometheus.crt``, ``credentials/prometheus_web``). A CA issued now
    reissues every certificate of its kind (the old ones would not verify);
    otherwise only hosts without a certificate get one.
    Example: ``groups | stack_pki_plan(hostvars, ['web/ca.crt'], ['prometheus_web'])``
``san_name``
    ``'10.0.0.1' | san_name`` -> ``'IP:10.0.0.1'``; ``'prom-a' | san_name`` ->
    ``'DNS:prom-a'``; an error for a value that is neither.
"""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError
from ansible_collections.promha.stack.plugins.plugin_utils import inventory
from ansible_collections.promha.stack.plugins.plugin_utils.filters import filter_module

# Names every web certificate carries: clients that reach a tier through a shared
# name (nginx upstreams, Prometheus' alerting) check the certificate against it.
_LABEL = r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?"
_DNS = re.compile(rf"(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*")


def san_name(value):
    """``IP:`` or ``DNS:`` subjectAltName of an address or a host name."""
    text = str(value).strip("[]") if value is not None else ""
    if inventory.is_ip(text):
        return f"IP:{text}"
    if _DNS.fullmatch(text):
        return f"DNS:{text}"
    raise AnsibleFilterError(f"san_name: {value!r} is neither an IP address nor a DNS name")


# One web certificate per service a host runs: (service, the groups that run it, the
# setting naming the shared name its clients check and that name's default, or None,
# whether it is also a client certificate). A service's key opens that service only.
WEB_SERVICES = (
    ("node-exporter", ("all",), ("node_exporter_web_tls_server_name", "node-exporter"), False),
    ("prometheus", ("prometheus", "prometheus_global"), ("prometheus_web_tls_server_name", "prometheus"), False),
    ("alertmanager", ("alertmanager",), ("alertmanager_web_tls_server_name", "alertmanager"), False),
    ("remote-storage", ("remote_storage",), ("remote_storage_tls_server_name", "remote-storage"), False),
    ("grafana", ("grafana",), ("grafana_tls_server_name", "grafana"), False),
    # Galera members present it to each other too.
    ("mysql", ("mysql",), None, True),
    ("mysqld-exporter", ("mysql",), None, False),
    ("nginx", ("loadbalancer",), None, False),
    # nginx's own metrics port (prometheus-nginx-exporter behind it, on the loopback address).
    ("nginx-exporter", ("loadbalancer",), None, False),
    # The front's probes: each shard replica's blackbox_exporter, called on the loopback
    # address by its own Prometheus (only where there is a front to probe).
    ("blackbox-exporter", ("prometheus",), None, False),
)


# The setting that holds the floating address a service is reached at.
_FLOATING = {"nginx": "keepalived_virtual_ipaddress", "mysql": "mysql_virtual_ipaddress"}


def _own_names(host, hostvars):
    """The names every certificate of ``host`` carries: its address, and its name when a DNS name."""
    names = [san_name(inventory.host_address(host, hostvars))] + ([f"DNS:{host}"] if _DNS.fullmatch(host) else [])
    return list(dict.fromkeys(names))


def stack_certificates(groups, hostvars):
    """Every certificate the stack's CAs issue, ``{host, kind, service, path, names, client}``: the web
    certificates by host and service, then the gossip certificates by host."""
    if not isinstance(groups, dict) or "all" not in groups:
        raise AnsibleFilterError("stack_certificates: expects the groups mapping (with 'all')")
    certificates = []
    for host in sorted(set(groups["all"])):
        own = _own_names(host, hostvars)
        for service, serving, shared, client in WEB_SERVICES:
            if not any(host in groups.get(group, []) for group in serving):
                continue
            if service == "blackbox-exporter" and not groups.get("loadbalancer"):
                continue
            names = list(own)
            if service == "blackbox-exporter":
                names.append("IP:127.0.0.1")
            if shared:
                names.append(f"DNS:{inventory.setting(hostvars, host, *shared)}")
            # The floating address a service is reached at: the front's, and the database's
            # stable address, which Grafana connects to and checks.
            vip = inventory.setting(hostvars, host, _FLOATING[service], "") if service in _FLOATING else ""
            if vip:
                names.append(san_name(str(vip).split("/")[0]))
            if service == "nginx":
                server_name = inventory.setting(hostvars, host, "nginx_server_name", "_")
                if server_name != "_":
                    names.append(san_name(server_name))
            certificates.append({"host": host, "kind": "web", "service": service, "path": f"web/{host}/{service}",
                                 "names": list(dict.fromkeys(names)), "client": client})
    for host in sorted(set(groups.get("alertmanager", []))):
        certificates.append({"host": host, "kind": "gossip", "service": "gossip", "path": f"gossip/{host}",
                             "names": _own_names(host, hostvars), "client": True})
    return certificates


def _certificate_names(path, renew_days):
    """The subjectAltNames (``IP:``/``DNS:``) of the certificate at ``path``; None when it cannot be read
    or ends within ``renew_days``."""
    import datetime

    from cryptography import x509
    try:
        with open(path, "rb") as handle:
            cert = x509.load_pem_x509_certificate(handle.read())
    except (OSError, ValueError):
        return None
    if cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC) < datetime.timedelta(days=renew_days):
        return None
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return ({f"IP:{a}" for a in sans.get_values_for_type(x509.IPAddress)}
            | {f"DNS:{d}" for d in sans.get_values_for_type(x509.DNSName)})


def stack_pki_plan(groups, hostvars, present, credentials, secrets_dir=None, renew_days=30, certificates=None):
    """The CAs, certificates and credentials missing from the secrets directory.

    With ``secrets_dir``, a certificate that is there but no longer covers every name its
    host needs (a new address, a new service name), cannot be read, or ends within
    ``renew_days`` is planned again with ``reissue: true`` (same key, new certificate).
    ``certificates`` are the stack model's (what :func:`stack_certificates` gives),
    computed here when not given.
    """
    if not isinstance(present, (list, tuple)) or not isinstance(credentials, (list, tuple)):
        raise AnsibleFilterError("stack_pki_plan: present and credentials must be lists of names")
    have = set(present)
    cas = [kind for kind in ("web", "gossip") if f"{kind}/ca.crt" not in have]
    missing = []
    for cert in stack_certificates(groups, hostvars) if certificates is None else certificates:
        name = f"{cert['path']}.crt"
        if cert["kind"] in cas or name not in have:
            missing.append(cert)
        elif secrets_dir:
            names = _certificate_names(f"{secrets_dir}/{name}", int(renew_days))
            if names is None or not set(cert["names"]) <= names:
                missing.append(dict(cert, reissue=True))
    return {"cas": cas, "certificates": missing,
            "credentials": [name for name in credentials if f"credentials/{name}" not in have]}


FilterModule = filter_module(stack_certificates, stack_pki_plan, san_name)
