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
"""

from __future__ import annotations

try:
    from ansible.errors import AnsibleFilterError
except ImportError:  # pragma: no cover - benchmarks without Ansible
    class AnsibleFilterError(Exception):
        """Stand-in used when Ansible is not importable."""

UNITS_MARK = "--units--"
STOPPED = ("inactive", "failed")


def _installed(output):
    head = output.split(UNITS_MARK, 1)[0]
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


class FilterModule:
    """Package and unit state filters."""

    def filters(self):
        return {"dpkg_missing": dpkg_missing, "units_to_mask": units_to_mask}
