"""The stack's own certificates: which host gets which names, from the inventory.

Unless a host's certificate files are given (``*_tls_cert_src``), the toolkit
issues them on the controller from two CAs of its own (playbooks/pki.yml): one
for every HTTP port, one for Alertmanager gossip only, so a certificate that can
call a web port can never join the gossip cluster. These filters say what each
certificate must cover; the playbook only writes the files.

Filters
-------
``stack_certificates``
    ``groups | stack_certificates(hostvars)`` -> one entry per certificate,
    ``{host, kind, names}``: ``kind`` is ``web`` for every inventory host and
    ``gossip`` for every Alertmanager host; ``names`` are subjectAltNames
    (``IP:10.0.0.1``, ``DNS:prometheus``): the host's address, its inventory
    name, the shared names clients check (``prometheus_web_tls_server_name``,
    ``alertmanager_web_tls_server_name``, ``node-exporter``, ``remote-storage``)
    and, on a balancer, the floating address and ``nginx_server_name``.
    Gossip certificates cover the address and the name only.
    Example: ``groups | stack_certificates(hostvars) | selectattr('kind', 'eq', 'gossip')``
``stack_pki_plan``
    ``groups | stack_pki_plan(hostvars, present, credentials)`` -> what is
    missing from the secrets directory, ``{cas, certificates, credentials}``.
    ``present`` lists the files there, relative to it (``web/ca.crt``,
    ``web/prom-a.crt``, ``credentials/prometheus_web``). A CA issued now
    reissues every certificate of its kind (the old ones would not verify);
    otherwise only hosts without a certificate get one.
    Example: ``groups | stack_pki_plan(hostvars, ['web/ca.crt'], ['prometheus_web'])``
``san_name``
    ``'10.0.0.1' | san_name`` -> ``'IP:10.0.0.1'``; ``'prom-a' | san_name`` ->
    ``'DNS:prom-a'``; an error for a value that is neither.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys

from ansible.errors import AnsibleFilterError


def _sibling(name):
    """Load plugins/filter/<name>.py once (Ansible loads each filter file on its own)."""
    key = f"promha_filter_{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                                         f"{name}.py"))
        sys.modules[key] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[key])
    return sys.modules[key]


peers = _sibling("peers")

# Names every web certificate carries: clients that reach a tier through a shared
# name (nginx upstreams, Prometheus' alerting) check the certificate against it.
SERVICE_NAMES = {"prometheus_web_tls_server_name": "prometheus",
                 "alertmanager_web_tls_server_name": "alertmanager",
                 "node_exporter_web_tls_server_name": "node-exporter",
                 "remote_storage_tls_server_name": "remote-storage"}
_LABEL = r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?"
_DNS = re.compile(rf"(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*")


def san_name(value):
    """``IP:`` or ``DNS:`` subjectAltName of an address or a host name."""
    text = str(value).strip("[]") if value is not None else ""
    if peers.is_ip(text):
        return f"IP:{text}"
    if _DNS.fullmatch(text):
        return f"DNS:{text}"
    raise AnsibleFilterError(f"san_name: {value!r} is neither an IP address nor a DNS name")


def _setting(hostvars, host, name, default):
    value = hostvars[host].get(name)
    return default if value is None or value == "" else value


def stack_certificates(groups, hostvars):
    """Every certificate the stack's CAs issue, ``{host, kind, names}``, sorted by kind then host."""
    if not isinstance(groups, dict) or "all" not in groups:
        raise AnsibleFilterError("stack_certificates: expects the groups mapping (with 'all')")
    balancers = set(groups.get("loadbalancer", []))
    certificates = []
    for host in sorted(set(groups["all"])):
        names = [san_name(peers.host_address(host, hostvars))]
        if _DNS.fullmatch(host):
            names.append(f"DNS:{host}")
        names += [f"DNS:{_setting(hostvars, host, var, default)}" for var, default in SERVICE_NAMES.items()]
        if host in balancers:
            vip = _setting(hostvars, host, "keepalived_virtual_ipaddress", "")
            if vip:
                names.append(san_name(str(vip).split("/")[0]))
            server_name = _setting(hostvars, host, "nginx_server_name", "_")
            if server_name != "_":
                names.append(san_name(server_name))
        certificates.append({"host": host, "kind": "web", "names": list(dict.fromkeys(names))})
    for host in sorted(set(groups.get("alertmanager", []))):
        names = [san_name(peers.host_address(host, hostvars))] + ([f"DNS:{host}"] if _DNS.fullmatch(host) else [])
        certificates.append({"host": host, "kind": "gossip", "names": list(dict.fromkeys(names))})
    return certificates


def stack_pki_plan(groups, hostvars, present, credentials):
    """The CAs, certificates and credentials missing from the secrets directory."""
    if not isinstance(present, (list, tuple)) or not isinstance(credentials, (list, tuple)):
        raise AnsibleFilterError("stack_pki_plan: present and credentials must be lists of names")
    have = set(present)
    cas = [kind for kind in ("web", "gossip") if f"{kind}/ca.crt" not in have]
    certificates = [c for c in stack_certificates(groups, hostvars)
                    if c["kind"] in cas or f"{c['kind']}/{c['host']}.crt" not in have]
    return {"cas": cas, "certificates": certificates,
            "credentials": [name for name in credentials if f"credentials/{name}" not in have]}


class FilterModule:
    """Certificate filters."""

    def filters(self):
        return {"stack_certificates": stack_certificates, "stack_pki_plan": stack_pki_plan, "san_name": san_name}
