"""Web access filters: basic-auth users and TLS files for Prometheus and Alertmanager.

Both servers read ``--web.config.file`` (the exporter-toolkit format) on every
request: ``tls_server_config`` with a certificate and key, and
``basic_auth_users`` mapping a user name to a **bcrypt hash**. The inventory
holds the plain passwords (vault); these filters hash them on the controller,
and check the certificate files before anything is copied to a host.

Filters
-------
``web_users``
    ``{'promha': 'plain'} | web_users(seed=inventory_hostname, hash_key=key)`` ->
    ``{'promha': '$2b$...'}``. With ``seed`` the salt is HMAC-SHA256 under
    ``hash_key`` (the stack's ``credentials/web_hash_key``, which only the
    controller holds) of the seed, the user and the password: the same password
    gives the same hash on the same host, so re-rendering the file changes nothing
    without reading the host first, and another host or user gets another salt.
    Without the key the salt is unpredictable: a guess at the password cannot be
    checked against the salt in web.yml, only through bcrypt's full cost. Without a
    seed, a hash in ``existing`` (the file's text) is kept while it still matches,
    and a new password gets a random salt. ``rounds`` (default 10) is bcrypt's
    cost: lower only for a generated password checked on every request without
    a cache (nginx's auth_basic).
``tls_problems``
    ``cert_pem | tls_problems(key_pem, names=['10.0.0.1', 'prometheus'],
    ca_pem=ca_pem)`` -> ``['the key does not belong to the certificate', ...]``;
    empty when the pair can serve those names and was signed by that CA.
``web_access_files``
    ``web_dir | web_access_files('prometheus', 'prometheus', tls=true,
    cert_src=..., key_src=..., ca_src=..., users={'promha': 'plain'},
    seed=inventory_hostname, hash_key=key)`` -> the entries of a ``stack_files`` task
    (plugins/modules/stack_files.py): the TLS pair and the CA, read from these
    controller paths, and web.yml with the hashed users; the key and a web.yml
    with users are secret (never shown in a diff or a log).
``tls_server_settings``
    ``{'cert_file': ..., 'key_file': ...} | tls_server_settings`` -> the same
    mapping with ``min_version: TLS12`` and ``cipher_suites``: the forward-secret
    AEAD suites only (no CBC, no SHA-1 MAC), for every Go daemon's TLS server
    (exporter-toolkit's ``tls_server_config``, VictoriaMetrics'
    ``-tlsCipherSuites``). TLS 1.3's suites are not configurable in Go and are
    all AEAD.
``tls_file_problems``
    ``cert_path | tls_file_problems(key_path, ca_path, names=[...])`` -> the same
    for files on the controller, naming a file that is not set or cannot be read.
    Example: ``cert_src | tls_file_problems(key_src, ca_src,
    names=['10.0.0.1', 'prometheus'])``
``client_settings``
    ``tls | client_settings(username, ca_file, password_file)`` -> what a
    Prometheus client block (a scrape job, ``alerting``, ``remote_write``) adds
    to reach a server of the stack: ``scheme: https`` and ``tls_config.ca_file``
    when ``tls``, ``basic_auth`` with ``password_file`` when there is a user;
    ``{}`` for neither. ``scheme=false`` leaves the scheme out (a URL carries it).
    Example: ``true | client_settings('promha', '/etc/prometheus/web/ca.crt',
    '/etc/prometheus/web/client.password')``
``tier_clients``
    ``{'alertmanager': lookup('promha.stack.access', 'tier', 'alertmanager')} |
    tier_clients('/etc/prometheus/web', 'prometheus')`` -> ``{'clients': {name:
    {tls, user, auth, client}}, 'files': [...]}``: for each tier a client calls
    (named as the client's files are), ``client`` is ``client_settings`` naming
    ``<directory>/<name>-ca.crt`` and ``<directory>/<name>.password``, ``auth`` the
    same without the scheme (``remote_write``, whose URL carries it); ``files`` are
    the ``stack_files`` entries that write them, the CA read on the controller and
    the password secret, readable by ``group`` only. A CA that cannot be read is an
    error naming the tier and the file.
``client_blocks``
    ``tier_clients(...).clients | client_blocks(prometheus=own_block)`` -> ``{name:
    client block}``: each tier's ``client``, and the blocks given by name beside them.
``with_clients``
    ``jobs | with_clients(blocks)`` -> the scrape jobs with each ``tier: <name>``
    replaced by that tier's client block (its keys over the job's); a job without
    ``tier`` is left as it is, a tier without a block is an error naming the job.
    Example: ``[{'job_name': 'node', 'tier': 'node_exporter'}] | with_clients(blocks)``

:func:`web_problems` is preflight's check of the Prometheus and Alertmanager web
ports and of Alertmanager's gossip: their passwords and their TLS files.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import ipaddress
import os

import yaml
from ansible.errors import AnsibleFilterError
from ansible_collections.promha.stack.plugins.plugin_utils import access
from ansible_collections.promha.stack.plugins.plugin_utils.access import truthy
from ansible_collections.promha.stack.plugins.plugin_utils.filters import filter_module
from ansible_collections.promha.stack.plugins.plugin_utils.frontend import secret_problem
from ansible_collections.promha.stack.plugins.plugin_utils.inventory import UNSET, variable

BCRYPT_ROUNDS = 10
# bcrypt's base64 alphabet, from the standard one.
_BCRYPT_ALPHABET = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
                                 "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
# bcrypt reads at most 72 bytes of a password; a longer one would be cut silently.
BCRYPT_MAX_BYTES = 72


def _bcrypt():
    try:
        import bcrypt
    except ImportError as error:  # pragma: no cover - depends on the controller
        raise AnsibleFilterError("web_users needs the Python 'bcrypt' package on the controller "
                                 "(pip install -r requirements.txt)") from error
    return bcrypt


def _existing_hashes(existing):
    """``basic_auth_users`` of a web config given as text or a mapping; {} when absent or unreadable."""
    if not existing:
        return {}
    if isinstance(existing, str):
        try:
            existing = yaml.safe_load(existing)
        except yaml.YAMLError:
            return {}
    users = existing.get("basic_auth_users") if isinstance(existing, dict) else None
    return users if isinstance(users, dict) else {}


def _derived_salt(key, seed, name, password, rounds=BCRYPT_ROUNDS):
    """A bcrypt salt from HMAC-SHA256(key, seed, user and password): stable, distinct per host and user,
    and unpredictable without the key."""
    digest = hmac.new(key.encode(), b"\0".join((seed.encode(), name.encode(), password)), hashlib.sha256).digest()[:16]
    standard = base64.b64encode(digest).decode()[:22]
    return f"$2b${rounds:02d}${standard.translate(_BCRYPT_ALPHABET)}".encode()


def web_users(users, existing="", seed="", hash_key="", rounds=BCRYPT_ROUNDS):
    """Hash ``{name: plain password}`` with bcrypt: a salt keyed by ``hash_key`` and ``seed``, else keep matching
    hashes. ``rounds`` is bcrypt's cost (4 to 31)."""
    if not isinstance(users, dict):
        raise AnsibleFilterError(f"web_users: expected a mapping of user name to password, got {type(users).__name__}")
    if seed and users and (not isinstance(hash_key, str) or len(hash_key) < 16):
        raise AnsibleFilterError("web_users: the hash key is missing or shorter than 16 characters: "
                                 "credentials/web_hash_key under stack_secrets_dir, made by roles/pki "
                                 "(playbooks/pki.yml, the first step of site.yml)")
    if isinstance(rounds, bool) or not isinstance(rounds, int) or not 4 <= rounds <= 31:
        raise AnsibleFilterError(f"web_users: rounds must be an integer from 4 to 31 (bcrypt's cost), got {rounds!r}")
    bcrypt = _bcrypt()
    old = _existing_hashes(existing)
    hashed = {}
    for name, password in sorted(users.items()):
        if not isinstance(name, str) or not name or ":" in name:
            raise AnsibleFilterError(f"web_users: user name {name!r} must be a non-empty string without ':'")
        if not isinstance(password, str) or not password:
            raise AnsibleFilterError(f"web_users: the password of user {name!r} is empty or not a string")
        secret = password.encode()
        if len(secret) > BCRYPT_MAX_BYTES:
            raise AnsibleFilterError(f"web_users: the password of user {name!r} is longer than "
                                     f"{BCRYPT_MAX_BYTES} bytes, which bcrypt cannot use whole")
        if seed:
            hashed[name] = bcrypt.hashpw(secret, _derived_salt(hash_key, seed, name, secret, rounds)).decode()
            continue
        current = old.get(name)
        if isinstance(current, str):
            try:
                if bcrypt.checkpw(secret, current.encode()):
                    hashed[name] = current
                    continue
            except ValueError:
                pass  # not a bcrypt hash: replace it
        hashed[name] = bcrypt.hashpw(secret, bcrypt.gensalt(rounds=rounds)).decode()
    return hashed


_WEB_HEADER = ("# Managed by Ansible (promha): changes made here are overwritten.\n"
               "# --web.config.file of {name}: read on every request, no reload needed.\n")


def _read_pem(name, what, path, caller="web_access_files"):
    try:
        with open(str(path), encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, TypeError) as error:
        raise AnsibleFilterError(f"{caller} ({name}): the TLS {what} file {path!r} cannot be read") from error
    if "-----BEGIN" not in text:
        raise AnsibleFilterError(f"{caller} ({name}): the TLS {what} file {path} is not PEM")
    return text


# Go's names (crypto/tls CipherSuites()), ECDSA keys (the stack's CAs) and RSA keys (a site's own PKI).
AEAD_CIPHER_SUITES = (
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
)


def tls_server_settings(config=None):
    """``config`` (a ``tls_server_config`` mapping) with TLS 1.2 as the minimum and the AEAD suites only."""
    if config is not None and not isinstance(config, dict):
        raise AnsibleFilterError(f"tls_server_settings: expected a mapping, got {type(config).__name__}")
    return {**(config or {}), "min_version": "TLS12", "cipher_suites": list(AEAD_CIPHER_SUITES)}


def web_access_files(directory, group, name, tls=False, cert_src="", key_src="", ca_src="", users=None, seed="",
                     hash_key="", validate=None):
    """``stack_files`` entries of a --web.config.file and its TLS files, in ``directory`` owned by root:``group``."""
    if not directory or not str(directory).startswith("/"):
        raise AnsibleFilterError(f"web_access_files ({name}): the directory must be an absolute path, got {directory!r}")
    users = users or {}
    config, files = {}, []
    if tls:
        files += [
            {"path": f"{directory}/server.crt", "content": _read_pem(name, "certificate", cert_src),
             "group": group, "mode": "0644"},
            {"path": f"{directory}/server.key", "secret_content": _read_pem(name, "key", key_src),
             "group": group, "mode": "0640"},
            {"path": f"{directory}/ca.crt", "content": _read_pem(name, "CA", ca_src), "group": group, "mode": "0644"},
        ]
        config["tls_server_config"] = tls_server_settings({"cert_file": f"{directory}/server.crt",
                                                           "key_file": f"{directory}/server.key"})
    if users:
        # Plain str: Ansible's tagged strings are not something yaml.safe_dump represents.
        hashed = web_users(users, seed=seed, hash_key=hash_key)
        config["basic_auth_users"] = {str(user): str(digest) for user, digest in hashed.items()}
    text = _WEB_HEADER.format(name=name) + yaml.safe_dump(config, indent=2, sort_keys=True, default_flow_style=False)
    web = {"path": f"{directory}/web.yml", ("secret_content" if users else "content"): text,
           "group": group, "mode": "0640"}
    if validate:
        web["validate"] = validate
    return files + [web]


def _load(what, pem, loader):
    if not isinstance(pem, (str, bytes)) or not pem:
        return None, f"the {what} is empty"
    try:
        return loader(pem.encode() if isinstance(pem, str) else pem), ""
    except (ValueError, TypeError) as error:
        return None, f"the {what} is not PEM ({str(error).splitlines()[0]})"


def _covers(cert, name, x509):
    """Does the certificate's subjectAltName cover ``name`` (an IP address or a DNS name)?"""
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    try:
        address = ipaddress.ip_address(str(name).strip("[]"))
    except ValueError:
        wanted = str(name).lower().rstrip(".")
        for dns in sans.get_values_for_type(x509.DNSName):
            dns = dns.lower().rstrip(".")
            if dns == wanted or (dns.startswith("*.") and wanted.split(".", 1)[-1] == dns[2:] and "." in wanted):
                return True
        return False
    return address in sans.get_values_for_type(x509.IPAddress)


def tls_problems(cert_pem, key_pem, names=(), ca_pem=None, now=None):
    """What keeps ``cert_pem``/``key_pem`` from serving ``names`` to clients that trust ``ca_pem``."""
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    cert, cert_problem = _load("certificate", cert_pem, x509.load_pem_x509_certificate)
    key, key_problem = _load("key", key_pem, lambda data: serialization.load_pem_private_key(data, password=None))
    problems = [p for p in (cert_problem, key_problem) if p]
    if cert is None:
        return problems
    if key is not None:
        def public(k):
            return k.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        if public(key.public_key()) != public(cert.public_key()):
            problems.append("the key does not belong to the certificate")
    moment = now or datetime.datetime.now(datetime.UTC)
    if moment < cert.not_valid_before_utc:
        problems.append(f"the certificate is not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC")
    if moment > cert.not_valid_after_utc:
        problems.append(f"the certificate expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
    missing = [str(n) for n in names if n and not _covers(cert, n, x509)]
    if missing:
        problems.append(f"the certificate's subjectAltName does not cover {', '.join(missing)}")
    if ca_pem:
        ca, ca_problem = _load("CA certificate", ca_pem, x509.load_pem_x509_certificate)
        if ca is None:
            problems.append(ca_problem)
        elif ca.fingerprint(ca.signature_hash_algorithm) != cert.fingerprint(cert.signature_hash_algorithm):
            try:
                cert.verify_directly_issued_by(ca)
            except (ValueError, TypeError, InvalidSignature):
                problems.append("the certificate was not issued by that CA")
    return problems


def read_tls_files(files, unset=""):
    """The contents of the files at these controller paths (``files``: ``{label: path}``), and
    the problems: ``<label> is not set<unset>``, ``<label> <path> cannot be read: <why>``."""
    contents, problems = {}, []
    for label, path in files.items():
        if path is None or not str(path).strip():
            problems.append(f"{label} is not set{unset}")
            continue
        try:
            with open(str(path), encoding="utf-8") as handle:
                contents[label] = handle.read()
        except OSError as error:
            problems.append(f"{label} {path} cannot be read: {error.strerror or error}")
    return contents, problems


def tls_file_problems(cert_path, key_path, ca_path, names=()):
    """``tls_problems`` of the certificate, key and CA files at these controller paths."""
    labels = ("the certificate file", "the key file", "the CA file")
    contents, problems = read_tls_files(dict(zip(labels, (cert_path, key_path, ca_path), strict=True)))
    if problems:
        return problems
    cert, key, ca = (contents[label] for label in labels)
    return tls_problems(cert, key, names=names, ca_pem=ca)


def client_settings(tls, username, ca_file, password_file, scheme=True):
    """A Prometheus client block's TLS and basic-auth settings for one server (see the module doc)."""
    settings = {}
    if truthy(tls):
        if truthy(scheme):
            settings["scheme"] = "https"
        settings["tls_config"] = {"ca_file": str(ca_file)}
    if username:
        settings["basic_auth"] = {"username": str(username), "password_file": str(password_file)}
    return settings


def tier_clients(tiers, directory, group, mode="0640"):
    """Each tier's client block and the files it names, for a client of several tiers (see the module doc)."""
    clients, files = {}, []
    for name, tier in sorted(tiers.items()):
        tls, user = truthy(tier["tls"]), str(tier.get("user") or "")
        ca_file, password_file = f"{directory}/{name}-ca.crt", f"{directory}/{name}.password"
        auth = client_settings(tls, user, ca_file, password_file, scheme=False)
        clients[name] = {"tls": tls, "user": user, "auth": auth,
                         "client": client_settings(tls, user, ca_file, password_file)}
        if user:
            files.append({"path": password_file, "secret_content": str(tier.get("password") or ""),
                          "group": group, "mode": mode})
        if tls:
            files.append({"path": ca_file, "content": _read_pem(f"{name}'s tier", "CA", tier["ca"], "tier_clients").rstrip(),
                          "group": group, "mode": mode})
    return {"clients": clients, "files": files}


def client_blocks(clients, **blocks):
    """``{name: client block}`` from ``tier_clients``' clients and the blocks given by name (see the module doc)."""
    found = {name: client["client"] for name, client in clients.items()}
    found.update(blocks)
    return found


def _with_client(job, blocks):
    job = dict(job)
    tier = job.pop("tier", None)
    if tier is None:
        return job
    if tier not in blocks:
        raise AnsibleFilterError(f"with_clients: job {job.get('job_name')!r} calls tier {tier!r}, which has no "
                                 f"client block here (known: {', '.join(sorted(blocks)) or 'none'})")
    job.update(blocks[tier])
    return job


def with_clients(jobs, blocks):
    """Scrape jobs with their ``tier`` replaced by that tier's client block (see the module doc)."""
    return [_with_client(job, blocks) for job in jobs]


def _host_tls_problems(hostvars, host, prefix, names, defaults):
    """Problems of one host's ``<prefix>_{cert,key,ca}_src`` files (``defaults``: the roles' paths when unset).

    With none of the three set, the files are the stack's own, which site.yml's PKI step
    issues after preflight (and issues again when they no longer fit): nothing to read.
    """
    variables = {kind: f"{prefix}_{kind}_src" for kind in ("cert", "key", "ca")}
    set_paths = {kind: variable(hostvars, host, name) for kind, name in variables.items()}
    if all(path is UNSET for path in set_paths.values()):
        return []
    paths = {variables[kind]: defaults[kind] if path is UNSET else path for kind, path in set_paths.items()}
    contents, problems = read_tls_files(paths, unset=f" ({prefix}_enabled is true)")
    if problems:
        return [f"host {host}: {problem}" for problem in problems]
    cert, key, ca = (contents[name] for name in variables.values())
    return [f"host {host}: {variables['cert']} / {variables['key']}: {problem}"
            for problem in tls_problems(cert, key, names=[name for name in names if name], ca_pem=ca)]


def web_problems(groups, hostvars, model):
    """Preflight's check of the Prometheus and Alertmanager web ports, and of gossip: the
    basic-auth passwords, and the TLS files an inventory sets (with the host's address in
    ``model`` among the names a certificate must cover).

    Unset settings take the roles' defaults: TLS and basic auth on (user promha) unless
    stack_plain_http, files and generated passwords under stack_secrets_dir.
    """
    problems = []
    addresses = model.get("addresses") or {}
    tiers = (("prometheus", groups.get("prometheus", []) + groups.get("prometheus_global", [])),
             ("alertmanager", groups.get("alertmanager", [])))
    for component, hosts in tiers:
        tier = access.TIERS[component]
        for host in dict.fromkeys(hosts):
            found = access.host_access(hostvars, host)
            if variable(hostvars, host, tier.user, found["user"]):
                value = variable(hostvars, host, tier.password)
                # The generated one: the PKI step makes it after preflight when it is missing.
                generated = value is UNSET
                if generated:
                    path = access.credential_path(found, tier.credential)
                    value = access.secret(found, tier.credential) if os.path.exists(path) else None
                problem = not (generated and value is None) and secret_problem(value)
                if problem:
                    problems.append(f"host {host}: {tier.password} {problem} (set it in the inventory's vault file, "
                                    f"or leave it unset for the generated one under {found['secrets']}/credentials)")
            if variable(hostvars, host, tier.tls, found["tls"]) is True:
                server_name = variable(hostvars, host, f"{component}_web_tls_server_name", component)
                problems += _host_tls_problems(hostvars, host, f"{component}_web_tls",
                                               [addresses.get(host), server_name],
                                               access.web_files(found, host, component))
            if component == "alertmanager" and variable(hostvars, host, "alertmanager_cluster_tls_enabled",
                                                        found["tls"]) is True:
                problems += _host_tls_problems(hostvars, host, "alertmanager_cluster_tls", [addresses.get(host)],
                                               access.gossip_files(found, host))
    return problems


FilterModule = filter_module(
    web_users, tls_problems, tls_file_problems, web_access_files, tls_server_settings, client_settings,
    tier_clients, client_blocks, with_clients)
