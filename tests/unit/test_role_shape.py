"""Every tier role has the same shape: tasks/main.yml imports preflight, install,
configure and service in that order; preflight carries every phase tag (so
`--tags <role>_configure` still runs the role's input checks); each phase has its
own tag. Every role has galaxy metadata under the project's license; units are
written in the configure phase; probe credentials are set once, in vars."""

import re
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
# Not tiers: included by the tier roles (binary_install), or run once on the controller (pki).
INTERNAL = {"binary_install", "pki"}
TIERS = sorted(p.name for p in (ROOT / "roles").iterdir() if p.is_dir() and p.name not in INTERNAL)
LICENSE = "Apache-2.0"
PHASES = ["preflight", "install", "configure", "service"]
TAG = {"preflight": "preflight", "install": "install", "configure": "configure", "service": "run"}


def imports(role):
    tasks = yaml.safe_load((ROOT / "roles" / role / "tasks" / "main.yml").read_text())
    return [t for t in tasks if "ansible.builtin.import_tasks" in t]


def test_there_are_tier_roles():
    assert len(TIERS) >= 9, TIERS


@pytest.mark.parametrize("role", TIERS)
def test_main_imports_the_four_phases_in_order(role):
    assert [t["ansible.builtin.import_tasks"] for t in imports(role)] == [f"{p}.yml" for p in PHASES]
    for phase in PHASES:
        assert (ROOT / "roles" / role / "tasks" / f"{phase}.yml").is_file()


@pytest.mark.parametrize("role", TIERS)
def test_preflight_runs_with_every_phase_tag(role):
    preflight = imports(role)[0]
    assert set(preflight["tags"]) >= {role} | {f"{role}_{TAG[p]}" for p in PHASES}


@pytest.mark.parametrize("role", TIERS)
def test_each_later_phase_has_its_own_tag(role):
    for task, phase in zip(imports(role)[1:], PHASES[1:], strict=True):
        assert set(task["tags"]) == {role, f"{role}_{TAG[phase]}"}, (role, phase, task["tags"])


ROLES = sorted(p.name for p in (ROOT / "roles").iterdir() if p.is_dir())
# A unit file written: a template source under etc/systemd/system/, or a destination there.
UNIT_WRITE = re.compile(r"etc/systemd/system/[^\s'\"]*\.j2|dest: /etc/systemd/system/")


def task_files(role):
    return sorted((ROOT / "roles" / role / "tasks").glob("*.yml")) + sorted((ROOT / "roles" / role / "handlers").glob("*.yml"))


@pytest.mark.parametrize("role", ROLES)
def test_every_role_has_galaxy_meta_under_the_project_license(role):
    meta = yaml.safe_load((ROOT / "roles" / role / "meta" / "main.yml").read_text())
    assert meta["galaxy_info"]["role_name"] == role
    assert meta["galaxy_info"]["license"] == LICENSE


@pytest.mark.parametrize("role", TIERS)
def test_unit_files_are_written_in_the_configure_phase(role):
    elsewhere = [f"{path.relative_to(ROOT)}:{number}" for path in task_files(role) if path.name != "configure.yml"
                 for number, line in enumerate(path.read_text().splitlines(), 1)
                 if UNIT_WRITE.search(line) and not line.lstrip().startswith("#")]
    assert not elsewhere, elsewhere


@pytest.mark.parametrize("role", ROLES)
def test_probe_credentials_are_set_once_in_vars(role):
    """Tasks and handlers take a role's credentials from one mapping in vars/main.yml
    (module_defaults), never spelled out per task."""
    spelled = [f"{path.relative_to(ROOT)}:{number}" for path in task_files(role)
               for number, line in enumerate(path.read_text().splitlines(), 1)
               if re.match(r"\s*(url_username|url_password|force_basic_auth):", line)]
    assert not spelled, spelled
    vars_file = ROOT / "roles" / role / "vars" / "main.yml"
    if vars_file.is_file():
        mappings = [name for name, value in (yaml.safe_load(vars_file.read_text()) or {}).items()
                    if isinstance(value, dict) and "url_password" in value]
        assert len(mappings) <= 1, mappings


def test_one_license_file_that_every_header_names():
    text = (ROOT / "LICENSE").read_text()
    assert text.lstrip().startswith("Apache License") and "Version 2.0" in text[:200]
    sources = _own_files("*.py")
    assert ROOT / "plugins" / "filter" / "preflight.py" in sources
    headers = [path for path in sources if re.search(r"General Public License|GPL|COPYING", path.read_text()[:600])]
    assert not headers, headers


def _own_files(pattern):
    """The project's files matching ``pattern``: those git tracks, or outside a checkout, every one
    but what the tools make (.venv, and .lab, where the base image's root is built)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", pattern],
                            cwd=ROOT, capture_output=True, text=True)
    if listed.returncode == 0 and listed.stdout:
        return [ROOT / name for name in listed.stdout.split("\0") if name]
    return [path for path in ROOT.glob(f"**/{pattern}") if not {".venv", ".lab"} & set(path.parts)]
