"""Answer the roles' questions from a host's one read (the host_state module).

Roles read a host once (``plugins/modules/host_state.py``: the installed packages,
the services running and enabled, the groups and accounts, and, when asked, the
state of some units) and decide from that read whether the slower modules (apt,
user, systemd) need to run at all. common registers its read as
``common_host_state`` for every later role; binary_install reads the packaged
units it masks. A read that is missing (a role run without common, a skipped
task) answers "everything is to do", so a task is skipped only where the read
shows it has nothing to do.

Filters
-------
``dpkg_missing``
    ``{'installed': ['curl']} | dpkg_missing(['curl', 'nginx'])`` -> ``['nginx']``: the
    wanted packages the read does not show installed (state ``ii``). Order follows
    the wanted list.
``units_to_mask``
    ``{'units': [{'id': 'a.service', 'unit_file_state': 'masked', 'active_state': 'inactive'},
    {'id': 'b.service', 'unit_file_state': 'enabled', 'active_state': 'active'}]} | units_to_mask``
    -> ``['b.service']``: the units that are not both masked and stopped
    (``inactive`` or ``failed``). A unit systemd does not know (``unit_file_state``
    empty) is listed too: masking it keeps a later package install from starting it.
``install_needed``
    ``common_host_state | install_needed(method, packages, user)`` -> whether the
    ``binary_install`` role has anything to do on a host: true unless the state was
    read, the method is ``package``, every package is installed and ``user`` (if any)
    exists. On a converged host the whole install step is then one skipped task.

    Example: ``{'installed': ['nginx'], 'accounts': ['www']} | install_needed('package', ['nginx'], 'www')`` -> ``False``
``units_to_start``
    ``common_host_state | units_to_start(['node_exporter'])`` -> the units of the list
    that the read did not show both running and enabled. A name without a suffix
    means ``<name>.service``. With ``stopped=true``, the units shown running or
    enabled (to stop and disable).

    Example: ``{'services': {'active': ['a.service'], 'enabled': []}} | units_to_start(['a'])`` -> ``['a.service']``
``accounts_missing``
    ``common_host_state | accounts_missing(users=['prometheus'], groups=['monitoring'])``
    -> the names of the lists that the read did not show, users first.

    Example: ``{'groups': ['monitoring'], 'accounts': ['root']} | accounts_missing(['promha'], ['monitoring'])`` -> ``['promha']``
"""

from __future__ import annotations

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible_collections.promha.stack.plugins.plugin_utils.filters import filter_module

STOPPED = ("inactive", "failed")


def _read(state, caller, key):
    """The ``key`` part of a read, or None where the read is missing or lacks it."""
    if state is None or state == "":
        return None
    if not isinstance(state, Mapping):
        raise AnsibleFilterError(f"{caller}: expects the host_state module's result (a dict), got {type(state).__name__}")
    return state.get(key)


def _names(value, caller, what):
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise AnsibleFilterError(f"{caller}: {what} must be a list, got {value!r}")
    return list(value)


def dpkg_missing(state, wanted):
    """Return the packages of ``wanted`` the read does not show installed."""
    wanted = _names(wanted, "dpkg_missing", "the wanted packages")
    installed = set(_read(state, "dpkg_missing", "installed") or ())
    return [name for name in wanted if name not in installed]


def units_to_mask(state):
    """Return the units of the read that are not masked and stopped."""
    units = _read(state, "units_to_mask", "units")
    if units is None:
        raise AnsibleFilterError("units_to_mask: the read has no units (was host_state given units=?)")
    return [u["id"] for u in units
            if not (u.get("unit_file_state") == "masked" and u.get("active_state") in STOPPED)]


def install_needed(state, method, packages, user=""):
    """Whether the install step has work on a host whose state was read (see the module doc)."""
    accounts = _read(state, "install_needed", "accounts")
    if method != "package" or accounts is None:
        return True
    if dpkg_missing(state, list(packages)):
        return True
    return bool(user) and user not in accounts


def units_to_start(state, names, stopped=False):
    """Return the units of ``names`` that the read did not show running and enabled (see the module doc)."""
    units = [n if "." in n else f"{n}.service" for n in _names(names, "units_to_start", "the units")]
    seen = _read(state, "units_to_start", "services")
    if seen is None:
        return units
    active = set(seen.get("active", ()))
    enabled = set(seen.get("enabled", ()))
    if stopped:
        return [u for u in units if u in active or u in enabled]
    return [u for u in units if not (u in active and u in enabled)]


def accounts_missing(state, users=(), groups=()):
    """Return the users, then the groups, that the read did not show (see the module doc)."""
    users = _names(users, "accounts_missing", "users")
    groups = _names(groups, "accounts_missing", "groups")
    have_users = _read(state, "accounts_missing", "accounts")
    have_groups = _read(state, "accounts_missing", "groups")
    return ([u for u in users if have_users is None or u not in have_users]
            + [g for g in groups if have_groups is None or g not in have_groups])


FilterModule = filter_module(dpkg_missing, units_to_mask, install_needed, units_to_start, accounts_missing)
