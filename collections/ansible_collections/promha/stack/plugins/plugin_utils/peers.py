"""Peer-list filters: turn inventory groups and hostvars into addresses and peers,
and the names each host's certificates must carry.

Every filter takes the group's host names and ``hostvars`` and returns sorted,
de-duplicated output, so re-rendering a file from the same inventory gives the
same bytes.

Address resolution, per host: the variable named by ``address_var`` (default
``stack_address``), else ``ansible_host``, else ``inventory_hostname``. An
Alertmanager instance may carry its own ``address``. IPv6 addresses are bracketed
whenever a port is appended.

Filters
-------
``host_address``
    ``hostname | host_address(hostvars)`` -> the address of one host.
``join_host_port``
    ``address | join_host_port(port)`` -> ``'10.0.0.1:9090'``, ``'[fd00::1]:9090'``.
``split_host_port``
    ``'host:port' | split_host_port`` -> ``{'host': ..., 'port': ...}``; a clear
    error for a malformed value.
``host_ports``
    ``groups['grafana'] | host_ports(hostvars, 3000)`` -> sorted ``address:port``
    list (nginx upstream servers, scrape targets, Grafana ``ha_peers``).
    ``port_var`` names a per-host variable that overrides the port; ``exclude``
    leaves one host out (a member's own entry in a peer list).
``inventory_scrape_jobs``
    ``prometheus_scrape_jobs | inventory_scrape_jobs(groups, hostvars)`` -> the
    same jobs with each ``inventory: {group, port, port_var, path, scheme, labels}``
    turned into a ``static_configs`` group of that group's ``address:port`` targets
    (``host_ports``); an error names the job when the group does not exist or is
    empty. Example: ``{job_name: web, inventory: {group: web, port: 8080}}``.
``alertmanager_instances``
    ``groups['alertmanager'] | alertmanager_instances(hostvars)`` -> one dict per
    instance: ``host, name, peer_name, address, web_port, cluster_port, web,
    cluster``. A host lists its instances in ``alertmanager_instances``
    (``[{name, web_port, cluster_port, address}]``); without it, one instance on
    the default ports.
``alertmanager_peers``
    ``instances | alertmanager_peers(inventory_hostname, name)`` -> the
    ``--cluster.peer`` list of that instance: the cluster address of every other
    instance.
``alertmanager_advertise_address``
    ``instances | alertmanager_advertise_address(inventory_hostname, name)`` ->
    ``ip:cluster_port``; an error when only a host name is known, since
    Alertmanager does not accept names there.
``alertmanager_targets``
    ``instances | alertmanager_targets`` -> the web address of every instance, for
    Prometheus' ``alerting.alertmanagers`` (never a load balancer).
``prometheus_shards``
    ``groups['prometheus'] | prometheus_shards(hostvars, min_replicas=2)`` ->
    ``{shard: [hosts]}``, checking that shard indices run 0..N-1 without gaps
    and that every shard has enough replicas.
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
``firewall_rules``
    ``inventory_hostname | firewall_rules(groups, hostvars, admin_sources=[...],
    operator_sources=[...])`` -> the inbound flows this host must accept, one
    ``{name, proto, ports, v4, v6, anywhere}`` per flow: SSH from the admin
    sources; each daemon's port from the hosts that call it (node_exporter from
    the scraping replicas, a Prometheus from its own shard's other replicas, the
    global tier and the balancers, Alertmanager's web ports from Prometheus and
    the balancers, gossip from the other instances (TCP only under gossip TLS),
    remote storage from Prometheus, Grafana and the balancers, MySQL from
    Grafana, Grafana from the balancers, the front from ``client_sources``, VRRP
    between balancers and between database members, as proto ``ah`` when keepalived
    authenticates it, the default, else ``vrrp``, with ``macs``: each peer's
    link-layer address where its gathered facts give it); every HTTP port from the operator sources too; the host's
    ``firewall_extra_rules``; and the ICMP types a host needs (``icmp`` and
    ``icmpv6`` entries with ``types``: echo requests, errors, IPv6 neighbour
    discovery; no timestamps, redirects or router advertisements). Ports follow the same
    settings as the roles (``node_exporter_port``, ``prometheus_port``, an
    instance's ``web_port``...). An address that is not an IP is refused, naming
    the host. Example: ``'vm-1' | firewall_rules(groups, hostvars,
    admin_sources=['10.0.0.0/24'])``
``san_name``
    ``'10.0.0.1' | san_name`` -> ``'IP:10.0.0.1'``; ``'prom-a' | san_name`` ->
    ``'DNS:prom-a'``; an error for a value that is neither.
"""

from __future__ import annotations

import functools
import ipaddress
import re

from ansible.errors import AnsibleFilterError

DEFAULT_ADDRESS_VAR = "stack_address"
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?$")


_MISSING = object()


class _Failed:
    """A variable whose template failed: the error, raised again at every read."""

    def __init__(self, error):
        self.error = error


class _HostView:
    """One host's variables, each templated at most once."""

    def __init__(self, variables):
        self._variables = variables
        self._read = {}

    def get(self, name, default=None):
        try:
            value = self._read[name]
        except KeyError:
            try:
                value = self._variables.get(name, _MISSING)
            except Exception as error:  # noqa: BLE001 - kept and raised again at each read, as hostvars does
                value = _Failed(error)
            self._read[name] = value
        if isinstance(value, _Failed):
            raise value.error
        return default if value is _MISSING else value

    def __getitem__(self, name):
        value = self.get(name, _MISSING)
        if value is _MISSING:
            raise KeyError(name)
        return value

    def __contains__(self, name):
        return self.get(name, _MISSING) is not _MISSING


class HostVarsView:
    """``hostvars`` read once: each host's variables computed once, each variable templated once.

    Ansible's ``hostvars[host]`` computes the host's whole variable set at every
    access, and a variable is templated at every read; a check over the whole
    inventory makes tens of thousands of such reads. Wrap ``hostvars`` for one
    computation (one filter call), never across tasks: a task may change a host's
    variables. Wrapping a view returns it unchanged.
    """

    def __new__(cls, hostvars):
        if isinstance(hostvars, cls):
            return hostvars
        view = super().__new__(cls)
        view._hostvars = hostvars
        view._hosts = {}
        return view

    def __getitem__(self, host):
        try:
            return self._hosts[host]
        except KeyError:
            view = self._hosts[host] = _HostView(self._hostvars[host])
            return view

    def __contains__(self, host):
        return host in self._hosts or host in self._hostvars

    def __iter__(self):
        return iter(self._hostvars)

    def __len__(self):
        return len(self._hostvars)


def plain_groups(groups):
    """The groups mapping as plain lists (Jinja hands filters a lazy mapping whose every
    ``in`` renders the whole list again)."""
    if type(groups) is dict and all(type(hosts) is list for hosts in groups.values()):
        return groups
    return {name: list(hosts) for name, hosts in groups.items()}


def _vars_of(filter_name, hostvars, host):
    try:
        found = hostvars[host]
    except (KeyError, TypeError):
        raise AnsibleFilterError(f"{filter_name}: host {host!r} is not in the inventory") from None
    return found


def _hosts(filter_name, hosts, what="group"):
    if isinstance(hosts, str) or not hasattr(hosts, "__iter__"):
        raise AnsibleFilterError(
            f"{filter_name}: expected a list of inventory host names (e.g. groups['{what}']), got {hosts!r}"
        )
    hosts = list(hosts)
    if not hosts:
        raise AnsibleFilterError(
            f"{filter_name}: the {what} group is empty; add at least one host to it in the inventory"
        )
    return sorted(set(hosts))


def is_ip(value):
    """Whether ``value`` is an IPv4 or IPv6 address (no brackets, no port)."""
    return _is_ip(value) if isinstance(value, str) else _is_ip_uncached(value)


@functools.lru_cache(maxsize=65536)
def _is_ip(value):
    return _is_ip_uncached(value)


def _is_ip_uncached(value):
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _clean_address(filter_name, host, value, source):
    if not isinstance(value, str) or not value.strip():
        raise AnsibleFilterError(
            f"{filter_name}: host {host!r} has no usable address ({source} is {value!r}); "
            f"set {DEFAULT_ADDRESS_VAR} or ansible_host for it"
        )
    value = value.strip()
    if value.startswith("[") and value.endswith("]"):
        value = value[1:-1]
    if not (is_ip(value) or _HOSTNAME.match(value)):
        raise AnsibleFilterError(
            f"{filter_name}: host {host!r} has address {value!r} ({source}), which is neither an IP "
            "address nor a host name"
        )
    return value


def host_address(host, hostvars, address_var=DEFAULT_ADDRESS_VAR):
    """Return a host's address: ``address_var``, else ``ansible_host``, else its name."""
    hvars = _vars_of("host_address", hostvars, host)
    for source in (address_var, "ansible_host"):
        if source in hvars and hvars[source] not in (None, ""):
            return _clean_address("host_address", host, hvars[source], source)
    return _clean_address("host_address", host, host, "inventory_hostname")


def join_host_port(address, port):
    """Join an address and a port; IPv6 addresses are bracketed."""
    port = _port("join_host_port", port, f"address {address!r}")
    if not isinstance(address, str) or not address:
        raise AnsibleFilterError(f"join_host_port: address must be a non-empty string, got {address!r}")
    bare = address[1:-1] if address.startswith("[") and address.endswith("]") else address
    if ":" in bare:
        if not is_ip(bare):
            raise AnsibleFilterError(f"join_host_port: {address!r} is not an IPv6 address nor a host name")
        return f"[{bare}]:{port}"
    return f"{bare}:{port}"


def _port(filter_name, value, where):
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise AnsibleFilterError(f"{filter_name}: port {value!r} of {where} is not a number") from None
    if isinstance(value, bool) or not 1 <= port <= 65535:
        raise AnsibleFilterError(f"{filter_name}: port {value!r} of {where} is outside 1..65535")
    return port


def split_host_port(value):
    """Split ``host:port`` (or ``[v6]:port``) into ``{'host', 'port'}``."""
    if not isinstance(value, str):
        raise AnsibleFilterError(f"split_host_port: expected 'host:port', got {value!r}")
    match = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d+)|([^:\[\]\s]+):(\d+)", value.strip())
    if not match:
        raise AnsibleFilterError(
            f"split_host_port: {value!r} is not host:port (IPv6 needs brackets: [fd00::1]:9093)"
        )
    host = match.group(1) or match.group(3)
    port = _port("split_host_port", match.group(2) or match.group(4), repr(value))
    if match.group(1) and not is_ip(host):
        raise AnsibleFilterError(f"split_host_port: {host!r} in {value!r} is not an IPv6 address")
    return {"host": host, "port": port}


def host_ports(hosts, hostvars, port, port_var=None, exclude=None,
               address_var=DEFAULT_ADDRESS_VAR):
    """Return the sorted ``address:port`` list of a group (upstreams, targets, peers)."""
    members = _hosts("host_ports", hosts)
    result = set()
    for host in members:
        if host == exclude:
            continue
        hvars = _vars_of("host_ports", hostvars, host)
        chosen = hvars.get(port_var, port) if port_var else port
        number = _port("host_ports", chosen, f"host {host!r}" + (f" ({port_var})" if port_var else ""))
        result.add(join_host_port(host_address(host, hostvars, address_var), number))
    return sorted(result)


_INVENTORY_KEYS = {"group", "port", "port_var", "path", "scheme", "labels"}


def inventory_scrape_jobs(jobs, groups, hostvars, address_var=DEFAULT_ADDRESS_VAR):
    """Turn each job's ``inventory`` entries into ``static_configs`` targets from the inventory.

    A job may carry ``inventory: {group, port, port_var, path, scheme, labels}`` (or a
    list of them) instead of, or beside, ``static_configs``. Each entry becomes one
    static group of ``address:port`` targets (``host_ports``: the same addresses as the
    node job), with ``path`` and ``scheme`` as that group's ``__metrics_path__`` and
    ``__scheme__``. Jobs without ``inventory`` pass through unchanged.
    """
    if isinstance(jobs, (str, dict)) or not hasattr(jobs, "__iter__"):
        raise AnsibleFilterError(f"inventory_scrape_jobs: expected a list of scrape jobs, got {jobs!r}")
    result = []
    for job in jobs:
        if not isinstance(job, dict) or "inventory" not in job:
            result.append(job)
            continue
        where = f"job {job.get('job_name')!r}"
        entries = job["inventory"]
        entries = [entries] if isinstance(entries, dict) else entries
        if isinstance(entries, str) or not hasattr(entries, "__iter__") or not list(entries):
            raise AnsibleFilterError(
                f"inventory_scrape_jobs: {where} has inventory={job['inventory']!r}; give "
                "{group, port} (or a list of them)"
            )
        added = []
        for position, entry in enumerate(entries):
            spot = f"{where} inventory[{position}]"
            if not isinstance(entry, dict) or "group" not in entry or "port" not in entry:
                raise AnsibleFilterError(f"inventory_scrape_jobs: {spot} must be a mapping with group and port, "
                                         f"got {entry!r}")
            unknown = set(entry) - _INVENTORY_KEYS
            if unknown:
                raise AnsibleFilterError(f"inventory_scrape_jobs: {spot} has unknown key(s) {sorted(unknown)}; "
                                         f"allowed: {', '.join(sorted(_INVENTORY_KEYS))}")
            group = entry["group"]
            if group not in groups:
                raise AnsibleFilterError(f"inventory_scrape_jobs: {spot} names inventory group {group!r}, which "
                                         "does not exist; add the group to the inventory or fix the name")
            if not list(groups[group]):
                raise AnsibleFilterError(f"inventory_scrape_jobs: {spot} names inventory group {group!r}, which "
                                         "has no hosts; add hosts to it or remove the job")
            labels = dict(entry.get("labels") or {})
            if entry.get("path"):
                labels["__metrics_path__"] = str(entry["path"])
            if entry.get("scheme"):
                if entry["scheme"] not in ("http", "https"):
                    raise AnsibleFilterError(f"inventory_scrape_jobs: {spot} has scheme {entry['scheme']!r}; "
                                             "use http or https")
                labels["__scheme__"] = entry["scheme"]
            group_entry = {"targets": host_ports(groups[group], hostvars, entry["port"],
                                                 port_var=entry.get("port_var"), address_var=address_var)}
            if labels:
                group_entry["labels"] = labels
            added.append(group_entry)
        resolved = {key: value for key, value in job.items() if key != "inventory"}
        resolved["static_configs"] = [*(job.get("static_configs") or []), *added]
        result.append(resolved)
    return result


def alertmanager_instances(hosts, hostvars, default_web_port=9093, default_cluster_port=9094,
                           instances_var="alertmanager_instances", address_var=DEFAULT_ADDRESS_VAR):
    """Return every Alertmanager instance of the group, with addresses and peer names."""
    members = _hosts("alertmanager_instances", hosts, "alertmanager")
    result = []
    for host in members:
        hvars = _vars_of("alertmanager_instances", hostvars, host)
        declared = hvars.get(instances_var)
        if declared is None:
            declared = [{"web_port": default_web_port, "cluster_port": default_cluster_port}]
        if isinstance(declared, (str, dict)) or not hasattr(declared, "__iter__") or not list(declared):
            raise AnsibleFilterError(
                f"alertmanager_instances: host {host!r} has {instances_var}={declared!r}; it must be a "
                "non-empty list of {name, web_port, cluster_port}"
            )
        seen_ports, seen_names = {}, set()
        for position, spec in enumerate(declared):
            where = f"host {host!r} {instances_var}[{position}]"
            if not isinstance(spec, dict):
                raise AnsibleFilterError(f"alertmanager_instances: {where} must be a mapping, got {spec!r}")
            unknown = set(spec) - {"name", "web_port", "cluster_port", "address"}
            if unknown:
                raise AnsibleFilterError(
                    f"alertmanager_instances: {where} has unknown key(s) {sorted(unknown)}; "
                    "allowed: name, web_port, cluster_port, address"
                )
            web = _port("alertmanager_instances", spec.get("web_port", default_web_port), f"{where}.web_port")
            cluster = _port("alertmanager_instances", spec.get("cluster_port", default_cluster_port),
                            f"{where}.cluster_port")
            name = str(spec.get("name", web))
            if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
                raise AnsibleFilterError(
                    f"alertmanager_instances: {where}.name {name!r} may hold only letters, digits, '.', '_' and '-'"
                )
            if name in seen_names:
                raise AnsibleFilterError(f"alertmanager_instances: {where}.name {name!r} is used twice on {host!r}")
            seen_names.add(name)
            for kind, number in (("web_port", web), ("cluster_port", cluster)):
                if number in seen_ports:
                    raise AnsibleFilterError(
                        f"alertmanager_instances: {where}.{kind} {number} is already the "
                        f"{seen_ports[number]} on {host!r}; every instance on a host needs its own ports"
                    )
                seen_ports[number] = f"{kind} of instance {name!r}"
            if "address" in spec:
                address = _clean_address("alertmanager_instances", host, spec["address"], f"{where}.address")
            else:
                address = host_address(host, hostvars, address_var)
            result.append({
                "host": host,
                "name": name,
                "peer_name": f"{host}-{name}",
                "address": address,
                "web_port": web,
                "cluster_port": cluster,
                "web": join_host_port(address, web),
                "cluster": join_host_port(address, cluster),
            })
    clusters = {}
    for instance in result:
        other = clusters.setdefault(instance["cluster"], instance)
        if other is not instance:
            raise AnsibleFilterError(
                f"alertmanager_instances: {instance['host']}/{instance['name']} and "
                f"{other['host']}/{other['name']} both use cluster address {instance['cluster']}"
            )
    return sorted(result, key=lambda item: (item["host"], item["web_port"]))


def _find_instance(filter_name, instances, host, name):
    if not isinstance(instances, list) or not instances:
        raise AnsibleFilterError(f"{filter_name}: expected the list from alertmanager_instances, got {instances!r}")
    for instance in instances:
        if instance.get("host") == host and (name is None or str(instance.get("name")) == str(name)):
            return instance
    known = ", ".join(f"{i.get('host')}/{i.get('name')}" for i in instances)
    raise AnsibleFilterError(f"{filter_name}: no Alertmanager instance {host}/{name}; known: {known}")


def alertmanager_peers(instances, host, name=None):
    """Return the ``--cluster.peer`` list for one instance: every other member's cluster address."""
    me = _find_instance("alertmanager_peers", instances, host, name)
    return sorted({i["cluster"] for i in instances if i is not me and i["cluster"] != me["cluster"]})


def alertmanager_advertise_address(instances, host, name=None):
    """Return ``ip:cluster_port`` for ``--cluster.advertise-address``; names are refused."""
    me = _find_instance("alertmanager_advertise_address", instances, host, name)
    if not is_ip(me["address"]):
        raise AnsibleFilterError(
            f"alertmanager_advertise_address: host {host!r} instance {me['name']!r} only has the name "
            f"{me['address']!r}; Alertmanager's --cluster.advertise-address needs an IP:port. Set "
            f"{DEFAULT_ADDRESS_VAR} (or the instance's address) to the host's IP"
        )
    return me["cluster"]


def alertmanager_targets(instances):
    """Return the web address of every Alertmanager instance (Prometheus ``alerting`` targets)."""
    if not isinstance(instances, list) or not instances:
        raise AnsibleFilterError(
            f"alertmanager_targets: expected the non-empty list from alertmanager_instances, got {instances!r}"
        )
    return sorted({instance["web"] for instance in instances})


def prometheus_shards(hosts, hostvars, min_replicas=1, shard_var="prometheus_shard"):
    """Group Prometheus hosts by shard and check shards 0..N-1 all exist with enough replicas."""
    members = _hosts("prometheus_shards", hosts, "prometheus")
    shards = {}
    for host in members:
        hvars = _vars_of("prometheus_shards", hostvars, host)
        if shard_var not in hvars:
            raise AnsibleFilterError(
                f"prometheus_shards: host {host!r} has no {shard_var}; set it to its shard index (0, 1, ...)"
            )
        value = hvars[shard_var]
        try:
            index = int(value)
        except (TypeError, ValueError):
            index = -1
        if isinstance(value, bool) or index < 0 or str(value).strip() != str(index):
            raise AnsibleFilterError(
                f"prometheus_shards: host {host!r} has {shard_var}={value!r}; it must be a whole number >= 0"
            )
        shards.setdefault(index, []).append(host)
    missing = [i for i in range(max(shards) + 1) if i not in shards]
    if missing:
        raise AnsibleFilterError(
            f"prometheus_shards: shard index(es) {missing} have no host; shards must run 0..{max(shards)} "
            "without gaps (renumber the prometheus_shard host variables)"
        )
    for index, replicas in sorted(shards.items()):
        if len(replicas) < int(min_replicas):
            raise AnsibleFilterError(
                f"prometheus_shards: shard {index} has {len(replicas)} replica(s) ({', '.join(replicas)}); "
                f"this environment requires at least {min_replicas}"
            )
    return {index: sorted(replicas) for index, replicas in sorted(shards.items())}


# Names every web certificate carries: clients that reach a tier through a shared
# name (nginx upstreams, Prometheus' alerting) check the certificate against it.
_LABEL = r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?"
_DNS = re.compile(rf"(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*")


def san_name(value):
    """``IP:`` or ``DNS:`` subjectAltName of an address or a host name."""
    text = str(value).strip("[]") if value is not None else ""
    if is_ip(text):
        return f"IP:{text}"
    if _DNS.fullmatch(text):
        return f"DNS:{text}"
    raise AnsibleFilterError(f"san_name: {value!r} is neither an IP address nor a DNS name")


def _truthy(value):
    """A boolean from an inventory value (true, "yes", "1", ...)."""
    return value if isinstance(value, bool) else str(value).strip().lower() in ("true", "yes", "on", "1")


def _setting(hostvars, host, name, default):
    value = hostvars[host].get(name)
    return default if value is None or value == "" else value


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


def stack_certificates(groups, hostvars):
    """Every certificate the stack's CAs issue, ``{host, kind, service, path, names, client}``: the web
    certificates by host and service, then the gossip certificates by host."""
    if not isinstance(groups, dict) or "all" not in groups:
        raise AnsibleFilterError("stack_certificates: expects the groups mapping (with 'all')")
    certificates = []
    for host in sorted(set(groups["all"])):
        own = [san_name(host_address(host, hostvars))] + ([f"DNS:{host}"] if _DNS.fullmatch(host) else [])
        for service, serving, shared, client in WEB_SERVICES:
            if not any(host in groups.get(group, []) for group in serving):
                continue
            if service == "blackbox-exporter" and not groups.get("loadbalancer"):
                continue
            names = list(own)
            if service == "blackbox-exporter":
                names.append("IP:127.0.0.1")
            if shared:
                names.append(f"DNS:{_setting(hostvars, host, *shared)}")
            if service == "nginx":
                vip = _setting(hostvars, host, "keepalived_virtual_ipaddress", "")
                if vip:
                    names.append(san_name(str(vip).split("/")[0]))
                server_name = _setting(hostvars, host, "nginx_server_name", "_")
                if server_name != "_":
                    names.append(san_name(server_name))
            if service == "mysql":
                # The database's stable address, which Grafana connects to and checks.
                vip = _setting(hostvars, host, "mysql_virtual_ipaddress", "")
                if vip:
                    names.append(san_name(str(vip).split("/")[0]))
            certificates.append({"host": host, "kind": "web", "service": service, "path": f"web/{host}/{service}",
                                 "names": list(dict.fromkeys(names)), "client": client})
    for host in sorted(set(groups.get("alertmanager", []))):
        names = [san_name(host_address(host, hostvars))] + ([f"DNS:{host}"] if _DNS.fullmatch(host) else [])
        certificates.append({"host": host, "kind": "gossip", "service": "gossip", "path": f"gossip/{host}",
                             "names": list(dict.fromkeys(names)), "client": True})
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


def stack_pki_plan(groups, hostvars, present, credentials, secrets_dir=None, renew_days=30):
    """The CAs, certificates and credentials missing from the secrets directory.

    With ``secrets_dir``, a certificate that is there but no longer covers every name its
    host needs (a new address, a new service name), cannot be read, or ends within
    ``renew_days`` is planned again with ``reissue: true`` (same key, new certificate).
    """
    if not isinstance(present, (list, tuple)) or not isinstance(credentials, (list, tuple)):
        raise AnsibleFilterError("stack_pki_plan: present and credentials must be lists of names")
    have = set(present)
    cas = [kind for kind in ("web", "gossip") if f"{kind}/ca.crt" not in have]
    certificates = []
    for cert in stack_certificates(groups, hostvars):
        name = f"{cert['path']}.crt"
        if cert["kind"] in cas or name not in have:
            certificates.append(cert)
        elif secrets_dir:
            names = _certificate_names(f"{secrets_dir}/{name}", int(renew_days))
            if names is None or not set(cert["names"]) <= names:
                certificates.append(dict(cert, reissue=True))
    return {"cas": cas, "certificates": certificates,
            "credentials": [name for name in credentials if f"credentials/{name}" not in have]}


# (flow, serving group, protocols, (port setting, default) or None, calling groups, operators too)
_FLOWS = (
    # The global tier only federates: the shards' replicas scrape every node_exporter.
    ("node_exporter", "all", ("tcp",), ("node_exporter_port", 9100), ("prometheus",), True),
    # A replica is called by its own shard's other replicas (the pair job), added in firewall_rules.
    ("prometheus", "prometheus", ("tcp",), ("prometheus_port", 9090), ("prometheus_global", "loadbalancer"), True),
    ("prometheus", "prometheus_global", ("tcp",), ("prometheus_port", 9090),
     ("prometheus_global", "loadbalancer"), True),
    ("remote_storage", "remote_storage", ("tcp",), ("remote_storage_port", 8428),
     ("prometheus", "prometheus_global", "grafana", "loadbalancer"), True),
    ("mysql", "mysql", ("tcp",), ("mysql_port", 3306), ("grafana",), False),
    ("mysql_exporter", "mysql", ("tcp",), ("mysql_exporter_port", 9104), ("prometheus",), True),
    # A Galera cluster's replication, incremental and snapshot state transfers (members only).
    ("galera", "mysql", ("tcp",), ("mysql_galera_port", 4567), ("mysql", "mysql_arbitrator"), False),
    ("galera_ist", "mysql", ("tcp",), ("mysql_galera_ist_port", 4568), ("mysql",), False),
    ("galera_sst", "mysql", ("tcp",), ("mysql_galera_sst_port", 4444), ("mysql",), False),
    ("galera", "mysql_arbitrator", ("tcp",), ("mysql_galera_port", 4567), ("mysql", "mysql_arbitrator"), False),
    # The balancers proxy to Grafana; the shards' replicas scrape its /metrics.
    ("grafana", "grafana", ("tcp",), ("grafana_http_port", 3000), ("loadbalancer", "prometheus"), True),
    ("grafana_ha", "grafana", ("tcp", "udp"), ("grafana_ha_port", 9094), ("grafana",), False),
    ("nginx_exporter", "loadbalancer", ("tcp",), ("nginx_exporter_port", 9113), ("prometheus",), True),
    ("vrrp", "loadbalancer", ("vrrp",), None, ("loadbalancer",), False),
    ("vrrp", "mysql", ("vrrp",), None, ("mysql",), False),
)
_EXTRA_KEYS = {"name", "proto", "ports", "from_groups", "sources"}
# The ICMP a host answers or needs: echo requests, the errors path MTU discovery and
# clients rely on, and IPv6 neighbour discovery. Not timestamps, redirects, router
# advertisements or solicitations.
ICMP_TYPES = ("echo-request", "destination-unreachable", "time-exceeded", "parameter-problem")
ICMPV6_TYPES = ("echo-request", "destination-unreachable", "packet-too-big", "time-exceeded", "parameter-problem",
                "nd-neighbor-solicit", "nd-neighbor-advert")


def _networks(filter_name, values, where):
    """Split IP addresses and networks into (IPv4, IPv6) lists; a clear error for anything else."""
    if isinstance(values, str) or not hasattr(values, "__iter__"):
        raise AnsibleFilterError(f"{filter_name}: {where} must be a list of IP addresses or networks, got {values!r}")
    v4, v6 = {}, {}
    for value in values:
        parsed = _network(str(value).strip())
        if parsed is None:
            raise AnsibleFilterError(f"{filter_name}: {where} holds {value!r}, which is not an IP address or "
                                     "network")
        version, key, text = parsed
        (v4 if version == 4 else v6)[text] = key
    return sorted(v4, key=v4.__getitem__), sorted(v6, key=v6.__getitem__)


def _network_key(text):
    return _network(text)[1]


@functools.lru_cache(maxsize=65536)
def _network(text):
    """``(version, sort key, text)`` of an address or network, the text of a host address
    without its /32 or /128; None when ``text`` is neither. Cached: a firewall plan over
    many hosts parses each caller again for every host it calls."""
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None
    host = network.prefixlen == network.max_prefixlen
    return (network.version, (int(network.network_address), network.prefixlen),
            str(network.network_address) if host else str(network))


def _vrrp_protocol(hostvars, host):
    """VRRP's IP protocol on ``host``: ``ah`` (51) when keepalived authenticates advertisements
    (``keepalived_authentication``, default ah, none under ``stack_plain_http``), ``vrrp`` (112)
    when it does not."""
    plain = _truthy(_setting(hostvars, host, "stack_plain_http", False))
    mode = _setting(hostvars, host, "keepalived_authentication", "none" if plain else "ah")
    if mode not in ("ah", "none"):
        raise AnsibleFilterError(f"firewall_rules: keepalived_authentication of {host!r} must be ah or none, "
                                 f"got {mode!r}")
    return "ah" if mode == "ah" else "vrrp"


def _link_address(hostvars, host, address):
    """The MAC address of ``host``'s interface that holds ``address``, from its gathered facts
    (``interfaces`` and each interface's ``ipv4`` and ``macaddress``); None when unknown."""
    facts = hostvars[host].get("ansible_facts") or {}
    names = list(facts.get("interfaces") or [])
    for candidate in [facts.get(n.replace("-", "_")) or {} for n in names] + [facts.get("default_ipv4") or {}]:
        ipv4 = candidate.get("ipv4") if "ipv4" in candidate else candidate
        mac = candidate.get("macaddress")
        if isinstance(ipv4, dict) and ipv4.get("address") == address and isinstance(mac, str) \
                and re.fullmatch(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}", mac.lower()) and mac != "00:00:00:00:00:00":
            return mac.lower()
    return None


def _ip_of(host, hostvars, known=None):
    address = known[host] if known and host in known else host_address(host, hostvars)
    if not is_ip(address):
        raise AnsibleFilterError(f"firewall_rules: host {host!r} has address {address!r}, a name; the firewall "
                                 f"needs an IP address: set {DEFAULT_ADDRESS_VAR} for it")
    return address


def firewall_rules(host, groups, hostvars, admin_sources=(), operator_sources=(),
                   client_sources=("0.0.0.0/0", "::/0"), ssh_port=22, addresses=None):
    """The inbound flows ``host`` accepts: ``[{name, proto, ports, v4, v6, anywhere}]``, the ICMP
    entries (with ``types``) first, then the flows sorted by name.

    ``addresses`` (host -> address, optional) saves looking each caller up again when
    the plans of many hosts are computed at once (site.yml's preflight).
    """
    if not isinstance(groups, dict) or "all" not in groups:
        raise AnsibleFilterError("firewall_rules: expects the groups mapping (with 'all')")
    if host not in groups["all"]:
        raise AnsibleFilterError(f"firewall_rules: host {host!r} is not in the inventory")
    groups, hostvars = plain_groups(groups), HostVarsView(hostvars)
    admin = _networks("firewall_rules", admin_sources, "firewall_admin_sources")
    if not admin[0] and not admin[1]:
        raise AnsibleFilterError(f"firewall_rules: firewall_admin_sources of {host!r} is empty: SSH would be "
                                 "closed to everyone; list the addresses or networks the controller connects from")
    operators = _networks("firewall_rules", operator_sources, "firewall_operator_sources")
    flows = {}

    def allow(name, protos, ports, sources, anywhere=False):
        for proto in protos:
            entry = flows.setdefault((name, proto), {"name": name, "proto": proto, "ports": set(),
                                                     "v4": set(), "v6": set(), "anywhere": False})
            entry["ports"].update(ports)
            entry["v4"].update(sources[0])
            entry["v6"].update(sources[1])
            entry["anywhere"] = entry["anywhere"] or anywhere

    def callers(names):
        found = sorted({_ip_of(h, hostvars, addresses) for g in names for h in groups.get(g, []) if h != host})
        return _networks("firewall_rules", found, "a caller's address")

    def member(group):
        return host in groups.get(group, [])

    macs = {}
    allow("ssh", ("tcp",), {_port("firewall_rules", ssh_port, "ssh_port")}, admin)
    if member("prometheus"):
        shard = str(_setting(hostvars, host, "prometheus_shard", ""))
        pair = [h for h in groups["prometheus"] if str(_setting(hostvars, h, "prometheus_shard", "")) == shard]
        port = _port("firewall_rules", _setting(hostvars, host, "prometheus_port", 9090), f"host {host!r} (prometheus_port)")
        allow("prometheus", ("tcp",), {port}, _networks(
            "firewall_rules", sorted({_ip_of(h, hostvars, addresses) for h in pair if h != host}), "a caller's address"))
    for name, group, protos, port, calling, operated in _FLOWS:
        if not member(group):
            continue
        if name == "vrrp":
            protos = (_vrrp_protocol(hostvars, host),)
            # Each peer's advertisements only from its own link-layer address, where its facts
            # give it: a stranger sending with a peer's IP address is dropped before keepalived.
            for peer in groups.get(group, []):
                address = _ip_of(peer, hostvars, addresses) if peer != host else None
                mac = address and _link_address(hostvars, peer, address)
                if mac:
                    macs[address] = mac
        ports = set()
        if port:
            setting, default = port
            ports = {_port("firewall_rules", _setting(hostvars, host, setting, default), f"host {host!r} ({setting})")}
        allow(name, protos, ports, callers(calling))
        if operated:
            allow(name, protos, ports, operators)
    if member("alertmanager"):
        instances = alertmanager_instances(groups["alertmanager"], hostvars)
        mine = [i for i in instances if i["host"] == host]
        gossip = _networks("firewall_rules", sorted({i["address"] for i in instances if i["host"] != host}
                                                    | {_ip_of(h, hostvars, addresses) for h in groups["alertmanager"]
                                                       if h != host}),
                           "an Alertmanager instance's address")
        web_ports = {i["web_port"] for i in mine}
        allow("alertmanager", ("tcp",), web_ports, callers(("prometheus", "prometheus_global", "loadbalancer")))
        allow("alertmanager", ("tcp",), web_ports, operators)
        tls = _setting(hostvars, host, "alertmanager_cluster_tls_enabled", None)
        if tls is None:
            tls = not _truthy(_setting(hostvars, host, "stack_plain_http", False))
        # Gossip over TLS is TCP only (memberlist's packets ride the TLS streams).
        allow("alertmanager_gossip", ("tcp",) if _truthy(tls) else ("tcp", "udp"), {i["cluster_port"] for i in mine}, gossip)
    if member("loadbalancer"):
        front_ports = {_port("firewall_rules", _setting(hostvars, host, var, default), f"host {host!r} ({var})")
                       for var, default in (("nginx_listen_port", 80), ("nginx_tls_port", 443))}
        clients = _networks("firewall_rules", client_sources, "firewall_client_sources")
        anywhere = "0.0.0.0/0" in clients[0] and "::/0" in clients[1]
        allow("front", ("tcp",), front_ports, ([], []) if anywhere else clients, anywhere=anywhere)
        if not anywhere:
            # The shard replicas probe the front's paths as users do (the front job).
            allow("front", ("tcp",), front_ports, callers(("prometheus",)))
    extra = _setting(hostvars, host, "firewall_extra_rules", [])
    if isinstance(extra, (str, dict)) or not hasattr(extra, "__iter__"):
        raise AnsibleFilterError(f"firewall_rules: firewall_extra_rules of {host!r} must be a list, got {extra!r}")
    for position, rule in enumerate(extra):
        where = f"firewall_extra_rules[{position}] of {host!r}"
        if not isinstance(rule, dict) or not {"name", "proto", "ports"} <= set(rule) or set(rule) - _EXTRA_KEYS:
            raise AnsibleFilterError(f"firewall_rules: {where} must be a mapping with name, proto, ports and "
                                     f"from_groups and/or sources (allowed keys: {', '.join(sorted(_EXTRA_KEYS))}), "
                                     f"got {rule!r}")
        if rule["proto"] not in ("tcp", "udp") or not re.fullmatch(r"[a-z0-9_]+", str(rule["name"])):
            raise AnsibleFilterError(f"firewall_rules: {where}: proto must be tcp or udp and name [a-z0-9_], "
                                     f"got {rule['proto']!r} and {rule['name']!r}")
        ports = set()
        for value in ([rule["ports"]] if isinstance(rule["ports"], (str, int)) else rule["ports"]):
            low, _, high = str(value).partition("-")
            first = _port("firewall_rules", low, where)
            last = _port("firewall_rules", high, where) if high else first
            if last < first:
                raise AnsibleFilterError(f"firewall_rules: {where}: port range {value!r} runs backwards")
            ports.add(first if first == last else f"{first}-{last}")
        unknown = [g for g in rule.get("from_groups", []) if g not in groups]
        if unknown:
            raise AnsibleFilterError(f"firewall_rules: {where} names group(s) {unknown} the inventory does not have")
        sources = _networks("firewall_rules", rule.get("sources", []), where)
        from_groups = callers(rule.get("from_groups", []))
        allow(str(rule["name"]), (rule["proto"],), ports,
              (sources[0] + from_groups[0], sources[1] + from_groups[1]))
    result = [{"name": "icmp", "proto": "icmp", "types": list(ICMP_TYPES), "ports": [], "v4": [], "v6": [],
               "anywhere": True},
              {"name": "icmpv6", "proto": "icmpv6", "types": list(ICMPV6_TYPES), "ports": [], "v4": [], "v6": [],
               "anywhere": True}]
    for (name, proto), entry in sorted(flows.items()):
        if not (entry["v4"] or entry["v6"] or entry["anywhere"]):
            continue  # nobody calls it: the port stays closed
        result.append({"name": name, "proto": proto,
                       "ports": sorted(entry["ports"], key=lambda p: int(str(p).split("-")[0])),
                       "v4": sorted(entry["v4"], key=_network_key),
                       "v6": sorted(entry["v6"], key=_network_key), "anywhere": entry["anywhere"]})
        if name == "vrrp":
            result[-1]["macs"] = {a: macs[a] for a in result[-1]["v4"] if a in macs}
    return result


class FilterModule:
    """Peer-list filters."""

    def filters(self):
        return {
            "host_address": host_address,
            "join_host_port": join_host_port,
            "split_host_port": split_host_port,
            "host_ports": host_ports,
            "inventory_scrape_jobs": inventory_scrape_jobs,
            "alertmanager_instances": alertmanager_instances,
            "alertmanager_peers": alertmanager_peers,
            "alertmanager_advertise_address": alertmanager_advertise_address,
            "alertmanager_targets": alertmanager_targets,
            "prometheus_shards": prometheus_shards,
            "stack_certificates": stack_certificates,
            "stack_pki_plan": stack_pki_plan,
            "san_name": san_name,
            "firewall_rules": firewall_rules,
        }
