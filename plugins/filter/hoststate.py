"""Read a host's package and unit state from one command's output.

Roles run one cheap command per host (``dpkg-query`` for the packages, then a
``--units--`` line, then ``systemctl show`` for the units) and decide from its
output whether the slower modules (apt, systemd) need to run at all. A converged
host then costs one command instead of an apt cache load and a systemd call per
unit.

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
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

UNITS_MARK = "--units--"
ACCOUNTS_MARK = "--accounts--"
STOPPED = ("inactive", "failed")


def _installed(output):
    head = output.split(UNITS_MARK, 1)[0].split(ACCOUNTS_MARK, 1)[0]
    names = set()
    for line in head.splitlines():
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
    if method != "package" or ACCOUNTS_MARK not in output:
        return True
    if dpkg_missing(output, list(packages)):
        return True
    accounts = {line.strip() for line in output.split(ACCOUNTS_MARK, 1)[1].split(UNITS_MARK, 1)[0].splitlines()}
    return bool(user) and user not in accounts


class FilterModule:
    """Package and unit state filters."""

    def filters(self):
        return {"dpkg_missing": dpkg_missing, "units_to_mask": units_to_mask, "install_needed": install_needed}
