"""Every tier role has the same shape: tasks/main.yml imports preflight, install,
configure and service in that order; preflight carries every phase tag (so
`--tags <role>_configure` still runs the role's input checks); each phase has its
own tag."""

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
# Not tiers: included by the tier roles (binary_install), or run once on the controller (pki).
INTERNAL = {"binary_install", "pki"}
TIERS = sorted(p.name for p in (ROOT / "roles").iterdir() if p.is_dir() and p.name not in INTERNAL)
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
