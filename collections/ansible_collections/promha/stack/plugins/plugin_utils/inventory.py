"""The inventory as the stack reads it: host variables, addresses, ports, shard layout.

Every filter takes the group's host names and ``hostvars`` and returns sorted,
de-duplicated output, so re-rendering a file from the same inventory gives the
same bytes. The other modules of the stack model (alertmanager, pki, firewall,
frontend, the checks) read hosts through this one.

Address resolution, per host: the variable named by ``address_var`` (default
``stack_address``), else ``ansible_host``, else ``inventory_hostname``. IPv6
addresses are bracketed whenever a port is appended.

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
``prometheus_shards``
    ``groups['prometheus'] | prometheus_shards(hostvars, min_replicas=2)`` ->
    ``{shard: [hosts]}``, checking that shard indices run 0..N-1 without gaps
    and that every shard has enough replicas.
"""

from __future__ import annotations

import functools
import ipaddress
import re

from ansible.errors import AnsibleError, AnsibleFilterError
from ansible_collections.promha.stack.plugins.plugin_utils.filters import filter_module, listed, whole_number
from jinja2 import Undefined

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


def vars_of(filter_name, hostvars, host):
    """A host's variables; an error naming ``filter_name`` when the host is not in the inventory."""
    try:
        found = hostvars[host]
    except (KeyError, TypeError):
        raise AnsibleFilterError(f"{filter_name}: host {host!r} is not in the inventory") from None
    return found


def group_hosts(filter_name, hosts, what="group"):
    """A group's host names, sorted and de-duplicated; an error for anything else or an empty group."""
    hosts = listed(hosts, lambda: f"{filter_name}: expected a list of inventory host names (e.g. groups['{what}']), "
                   f"got {hosts!r}")
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


def clean_address(filter_name, host, value, source):
    """``value`` as an address (brackets dropped); an error naming the host and ``source`` unless IP or name."""
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
    hvars = vars_of("host_address", hostvars, host)
    for source in (address_var, "ansible_host"):
        if source in hvars and hvars[source] not in (None, ""):
            return clean_address("host_address", host, hvars[source], source)
    return clean_address("host_address", host, host, "inventory_hostname")


def join_host_port(address, port):
    """Join an address and a port; IPv6 addresses are bracketed."""
    port = port_number("join_host_port", port, f"address {address!r}")
    if not isinstance(address, str) or not address:
        raise AnsibleFilterError(f"join_host_port: address must be a non-empty string, got {address!r}")
    bare = address[1:-1] if address.startswith("[") and address.endswith("]") else address
    if ":" in bare:
        if not is_ip(bare):
            raise AnsibleFilterError(f"join_host_port: {address!r} is not an IPv6 address nor a host name")
        return f"[{bare}]:{port}"
    return f"{bare}:{port}"


def port_number(filter_name, value, where):
    """``value`` as a port number; an error naming ``where`` outside 1..65535."""
    port = whole_number(value, f"{filter_name}: port {value!r} of {where} is not a number")
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
    port = port_number("split_host_port", match.group(2) or match.group(4), repr(value))
    if match.group(1) and not is_ip(host):
        raise AnsibleFilterError(f"split_host_port: {host!r} in {value!r} is not an IPv6 address")
    return {"host": host, "port": port}


def host_ports(hosts, hostvars, port, port_var=None, exclude=None,
               address_var=DEFAULT_ADDRESS_VAR):
    """Return the sorted ``address:port`` list of a group (upstreams, targets, peers)."""
    members = group_hosts("host_ports", hosts)
    result = set()
    for host in members:
        if host == exclude:
            continue
        hvars = vars_of("host_ports", hostvars, host)
        chosen = hvars.get(port_var, port) if port_var else port
        number = port_number("host_ports", chosen, f"host {host!r}" + (f" ({port_var})" if port_var else ""))
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
    jobs = listed(jobs, lambda: f"inventory_scrape_jobs: expected a list of scrape jobs, got {jobs!r}")
    result = []
    for job in jobs:
        if not isinstance(job, dict) or "inventory" not in job:
            result.append(job)
            continue
        where = f"job {job.get('job_name')!r}"
        entries = job["inventory"]
        entries = [entries] if isinstance(entries, dict) else entries
        entries = listed(entries, f"inventory_scrape_jobs: {where} has inventory={job['inventory']!r}; give "
                         "{group, port} (or a list of them)", empty=False)
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


def prometheus_shards(hosts, hostvars, min_replicas=1, shard_var="prometheus_shard"):
    """Group Prometheus hosts by shard and check shards 0..N-1 all exist with enough replicas."""
    members = group_hosts("prometheus_shards", hosts, "prometheus")
    shards = {}
    for host in members:
        hvars = vars_of("prometheus_shards", hostvars, host)
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


def setting(hostvars, host, name, default):
    """A host's variable, ``default`` when it is unset or empty."""
    value = hostvars[host].get(name)
    return default if value is None or value == "" else value


# What a host does not define (or whose template is undefined): unlike None and ''.
UNSET = object()


def variable(hostvars, host, name, default=UNSET):
    """A host's variable as the inventory sets it (None and '' included), ``default`` where the
    host does not define it or its template is undefined (:data:`UNSET` unless given)."""
    try:
        value = hostvars[host].get(name, UNSET)
    except AnsibleError:
        return default
    # ansible-core 2.19 hands out an undefined template result as a marker object.
    return default if value is UNSET or isinstance(value, Undefined) else value


def collect(problems, call, *args, **kwargs):
    """``call(*args, **kwargs)``; where it raises, its message joins ``problems`` and None is returned."""
    try:
        return call(*args, **kwargs)
    except AnsibleError as error:
        problems.append(message(error))
        return None


def message(error):
    """An error's message as a problem line: Ansible's message without its context, stripped."""
    return str(getattr(error, "message", error)).strip()


FilterModule = filter_module(
    host_address, join_host_port, split_host_port, host_ports, inventory_scrape_jobs, prometheus_shards)
