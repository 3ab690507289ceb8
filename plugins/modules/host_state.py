#!/usr/bin/python
# Copyright: the promha authors. Apache License 2.0 (see LICENSE at the root of the
# repository).
"""A host's packages, services, accounts and firewall state, read in one task.

The roles decide from this one read whether the slower modules (apt, user,
systemd) need to run at all; plugins/filter/hoststate.py holds the filters that
answer their questions (dpkg_missing, units_to_start, accounts_missing,
install_needed, units_to_mask). A converged host then costs one module call
instead of an apt cache load, an account lookup and a systemd call per unit.
"""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: host_state
short_description: Read a host's packages, services, accounts and firewall state in one task
description:
  - Returns the installed packages (dpkg state C(ii)), the services systemd runs and the ones
    enabled (links in the C(*.wants) directories), the groups and accounts, and the sha256 of
    the firewall's rule file beside the one recorded as loaded.
  - With I(units), also each unit's C(UnitFileState) and C(ActiveState) (C(systemctl show)).
  - With I(timezone), fails when the zone is not under I(zoneinfo_dir) on a host that has one,
    naming I(timezone_variable).
  - Changes nothing.
options:
  timezone:
    description: A time zone the host must know (C(Europe/Berlin)); not checked when empty.
    type: str
    default: ""
  timezone_variable:
    description: The variable that holds I(timezone), named in the error.
    type: str
    default: timezone
  units:
    description: Units whose file state and run state to read.
    type: list
    elements: str
    default: []
  zoneinfo_dir: {description: Where the zones are., type: path, default: /usr/share/zoneinfo}
  systemd_dir: {description: Where the enabled units' links are., type: path, default: /etc/systemd/system}
  firewall_dir:
    description: Where the firewall role keeps C(firewall.nft) and C(firewall.loaded).
    type: path
    default: /etc/promha
attributes:
  check_mode: {support: full}
  diff_mode: {support: none}
author: the promha authors
"""

EXAMPLES = r"""
- name: Read the host
  host_state:
    timezone: "{{ common_timezone }}"
    timezone_variable: common_timezone
  register: common_host_state

- name: Start node_exporter unless it runs and is enabled
  ansible.builtin.systemd_service: {name: node_exporter, state: started, enabled: true}
  when: common_host_state | units_to_start(['node_exporter']) | length > 0
"""

RETURN = r"""
installed:
  description: Packages in dpkg state C(ii), without an architecture suffix, sorted.
  returned: always
  type: list
  elements: str
services:
  description: C(active), the services systemd runs; C(enabled), those linked from a C(*.wants) directory.
  returned: always
  type: dict
groups: {description: Group names., returned: always, type: list, elements: str}
accounts: {description: Account names., returned: always, type: list, elements: str}
firewall:
  description: C(written), the sha256 of the rule file (empty without one); C(loaded), the hash recorded when it was loaded.
  returned: always
  type: dict
units:
  description: For each of I(units), C(id), C(unit_file_state) (empty for a unit systemd does not know) and C(active_state).
  returned: always
  type: list
  elements: dict
"""

import glob
import grp
import hashlib
import os.path
import pwd

from ansible.module_utils.basic import AnsibleModule

ARGUMENT_SPEC = {
    "timezone": {"type": "str", "default": ""},
    "timezone_variable": {"type": "str", "default": "timezone"},
    "units": {"type": "list", "elements": "str", "default": []},
    "zoneinfo_dir": {"type": "path", "default": "/usr/share/zoneinfo"},
    "systemd_dir": {"type": "path", "default": "/etc/systemd/system"},
    "firewall_dir": {"type": "path", "default": "/etc/promha"},
}
DPKG_FORMAT = "${db:Status-Abbrev}${Package}\\n"


def parse_installed(text):
    """The package names in state ``ii`` from ``dpkg-query --show`` lines, sorted."""
    names = set()
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "ii":
            names.add(parts[1].split(":", 1)[0])
    return sorted(names)


def parse_active(text):
    """The unit names of ``systemctl list-units --plain --no-legend`` lines."""
    return sorted({line.split()[0] for line in text.splitlines() if line.split()})


def parse_units(text):
    """``systemctl show --property=Id,UnitFileState,ActiveState`` blocks as dicts."""
    units = []
    for block in text.strip().split("\n\n"):
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if props.get("Id"):
            units.append({"id": props["Id"], "unit_file_state": props.get("UnitFileState", ""),
                          "active_state": props.get("ActiveState", "")})
    return units


def enabled_services(systemd_dir):
    """The services linked from ``<systemd_dir>/*.wants/``."""
    return sorted({os.path.basename(p) for p in glob.glob(os.path.join(systemd_dir, "*.wants", "*.service"))})


def firewall_state(firewall_dir):
    """The rule file's sha256 and the hash recorded at its last load (empty strings when absent)."""
    written = loaded = ""
    try:
        with open(os.path.join(firewall_dir, "firewall.nft"), "rb") as handle:
            written = hashlib.sha256(handle.read()).hexdigest()
    except FileNotFoundError:
        pass
    try:
        with open(os.path.join(firewall_dir, "firewall.loaded"), encoding="utf-8") as handle:
            loaded = handle.read().strip()
    except FileNotFoundError:
        pass
    return {"written": written, "loaded": loaded}


def read(module):
    """The whole state of the host, as the module returns it."""
    params = module.params
    zone = params["timezone"]
    if zone and os.path.isdir(params["zoneinfo_dir"]) and not os.path.exists(os.path.join(params["zoneinfo_dir"], zone)):
        module.fail_json(msg=f"{params['timezone_variable']} {zone} is not in {params['zoneinfo_dir']} on this host")
    rc, out, err = module.run_command(["dpkg-query", "--show", "--showformat", DPKG_FORMAT])
    if rc != 0:
        module.fail_json(msg=f"dpkg-query failed (rc {rc}): {err.strip()}")
    installed = parse_installed(out)
    # A host where systemd does not answer shows no service running: every start task runs.
    rc, active, _ = module.run_command(
        ["systemctl", "list-units", "--type=service", "--state=active", "--plain", "--no-legend"])
    units = []
    if params["units"]:
        rc_show, shown, err = module.run_command(
            ["systemctl", "show", "--property=Id,UnitFileState,ActiveState"] + list(params["units"]))
        if rc_show != 0:
            module.fail_json(msg=f"systemctl show failed (rc {rc_show}): {err.strip()}")
        units = parse_units(shown)
    return {
        "installed": installed,
        "services": {"active": parse_active(active) if rc == 0 else [],
                     "enabled": enabled_services(params["systemd_dir"])},
        "groups": sorted({g.gr_name for g in grp.getgrall()}),
        "accounts": sorted({p.pw_name for p in pwd.getpwall()}),
        "firewall": firewall_state(params["firewall_dir"]),
        "units": units,
    }


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    module.exit_json(changed=False, **read(module))


if __name__ == "__main__":
    main()
