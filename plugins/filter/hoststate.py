"""Read a host's package and unit state from one command's output.

Roles run one cheap command per host and decide from its output whether the
slower modules (apt, user, systemd) need to run at all: ``binary_install``'s read
(``dpkg-query`` for the packages, then a ``--units--`` line and ``systemctl show``
for the units), and ``common``'s read, whose ``--firewall--``, ``--services--``,
``--groups--`` and ``--accounts--`` sections follow the packages. A converged host
then costs one command instead of an apt cache load, an account lookup and a
systemd call per unit.

Filters
-------
``dpkg_missing``
    ``"ii curl\\nrc nginx\\n" | dpkg_missing(['curl', 'nginx', 'tzdata'])`` ->
    ``['nginx', 'tzdata']``: the wanted packages that are not installed (a
    package counts as installed only in state ``ii``). Order follows the
    wanted list.
``units_to_mask``
    ``"...--units--\\nId=a.service\\nUnitFileState=masked\\nActiveState=inactive\\n\\n"
    "Id=b.service\\nUnitFileState=enabled\\nActiveState=active\\n" | units_to_mask``
    -> ``['b.service']``: the units that are not both masked and stopped
    (``inactive`` or ``failed``), read from ``systemctl show
    --property=Id,UnitFileState,ActiveState`` after the ``--units--`` line.
    A unit systemd does not know (``UnitFileState`` empty) is listed too:
    masking it keeps a later package install from starting it.
``install_needed``
    ``common_host_state.stdout | install_needed(method, packages, user)`` -> whether
    the ``binary_install`` role has anything to do on a host: true unless the
    state was read (``common``'s one read per host: the ``dpkg-query`` lines, then an
    ``--accounts--`` line and one account name per line), the method is
    ``package``, every package is installed and ``user`` (if any) exists. On a
    converged host the whole install step is then one skipped task.

    Example: ``"ii prometheus\n--accounts--\nprometheus\n" | install_needed('package', ['prometheus'], 'prometheus')``
``units_to_start``
    ``common_host_state.stdout | units_to_start(['node_exporter'])`` -> the units of
    the list that common's read did not show both running and enabled: its
    ``--services--`` section holds ``active <unit>`` lines (``systemctl list-units
    --state=active``) and ``enabled <unit>`` lines (the links in
    ``/etc/systemd/system/*.wants/``). A name without a suffix means
    ``<name>.service``. Every unit is listed when the state was not read, so a role's
    start task is skipped only where the read shows the unit settled. With
    ``stopped=true``, the units shown running or enabled (to stop and disable).

    Example: ``"--services--\nactive a.service\nenabled a.service\nactive b.service\n" | units_to_start(['a', 'b'])`` -> ``['b']``
``accounts_missing``
    ``common_host_state.stdout | accounts_missing(users=['prometheus'], groups=['monitoring'])``
    -> the names of the lists that common's read did not show (its ``--accounts--``
    and ``--groups--`` sections), users first. Every name is listed when the state
    was not read.

    Example: ``"--groups--\nmonitoring\n--accounts--\nroot\n" | accounts_missing(['promha'], ['monitoring'])`` -> ``['promha']``
"""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError

UNITS_MARK = "--units--"
STOPPED = ("inactive", "failed")
SECTION_MARK = re.compile(r"^--([a-z]+)--$")


def _sections(output, caller):
    """Split a read into its sections: ``{"": head lines, "accounts": [...], ...}``.

    A line ``--<name>--`` starts a section; lines before the first belong to ``""``.
    """
    if not isinstance(output, str):
        raise AnsibleFilterError(f"{caller}: expects the read's stdout (a string), got {type(output).__name__}")
    sections = {"": []}
    current = sections[""]
    for line in output.splitlines():
        mark = SECTION_MARK.match(line.strip())
        if mark:
            current = sections.setdefault(mark.group(1), [])
        else:
            current.append(line.strip())
    return sections


def _names(value, caller, what):
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise AnsibleFilterError(f"{caller}: {what} must be a list, got {value!r}")
    return list(value)


def _installed(output):
    names = set()
    for line in _sections(output, "dpkg_missing")[""]:
        parts = line.split()
        if len(parts) == 2 and parts[0] == "ii":
            names.add(parts[1].split(":", 1)[0])
    return names


def dpkg_missing(output, wanted):
    """Return the packages of ``wanted`` not installed according to dpkg-query output.

    ``output`` holds lines ``<status-abbrev><package>`` as printed by
    ``dpkg-query --show --showformat '${db:Status-Abbrev}${Package}\\n'``;
    anything from a ``--units--`` line on is ignored.
    """
    if not isinstance(output, str):
        raise AnsibleFilterError(f"dpkg_missing: expects the command's stdout (a string), got {type(output).__name__}")
    if isinstance(wanted, str) or not isinstance(wanted, (list, tuple)):
        raise AnsibleFilterError(f"dpkg_missing: the wanted packages must be a list, got {wanted!r}")
    installed = _installed(output)
    return [name for name in wanted if name not in installed]


def units_to_mask(output):
    """Return the unit Ids after the ``--units--`` line that are not masked and stopped."""
    if not isinstance(output, str):
        raise AnsibleFilterError(f"units_to_mask: expects the command's stdout (a string), got {type(output).__name__}")
    if UNITS_MARK not in output:
        raise AnsibleFilterError(f"units_to_mask: the output has no {UNITS_MARK} line (was the unit query run?)")
    tail = output.split(UNITS_MARK, 1)[1]
    result = []
    for block in tail.strip().split("\n\n"):
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if not props.get("Id"):
            continue
        if props.get("UnitFileState") == "masked" and props.get("ActiveState") in STOPPED:
            continue
        result.append(props["Id"])
    return result


def install_needed(output, method, packages, user=""):
    """Whether the install step has work on a host whose state ``output`` was read (see the module doc)."""
    if output is None or output == "":
        return True
    if not isinstance(output, str):
        raise AnsibleFilterError(f"install_needed: expects the read's stdout (a string), got {type(output).__name__}")
    accounts = _sections(output, "install_needed").get("accounts")
    if method != "package" or accounts is None:
        return True
    if dpkg_missing(output, list(packages)):
        return True
    return bool(user) and user not in accounts


def units_to_start(output, names, stopped=False):
    """Return the units of ``names`` that the read did not show running and enabled (see the module doc)."""
    units = [n if "." in n else f"{n}.service" for n in _names(names, "units_to_start", "the units")]
    if output is None or output == "":
        return units
    seen = _sections(output, "units_to_start").get("services")
    if seen is None:
        return units
    active = {line.split(None, 1)[1] for line in seen if line.startswith("active ")}
    enabled = {line.split(None, 1)[1] for line in seen if line.startswith("enabled ")}
    if stopped:
        return [u for u in units if u in active or u in enabled]
    return [u for u in units if not (u in active and u in enabled)]


def accounts_missing(output, users=(), groups=()):
    """Return the users, then the groups, that the read did not show (see the module doc)."""
    users = _names(users, "accounts_missing", "users")
    groups = _names(groups, "accounts_missing", "groups")
    if output is None or output == "":
        return users + groups
    sections = _sections(output, "accounts_missing")
    have_users = sections.get("accounts")
    have_groups = sections.get("groups")
    return ([u for u in users if have_users is None or u not in have_users]
            + [g for g in groups if have_groups is None or g not in have_groups])


class FilterModule:
    """Package and unit state filters."""

    def filters(self):
        return {"dpkg_missing": dpkg_missing, "units_to_mask": units_to_mask, "install_needed": install_needed,
                "units_to_start": units_to_start, "accounts_missing": accounts_missing}
