"""site.yml's preflight play stops a malformed inventory before any host is contacted.

Each case copies the lab inventory, breaks one thing, and runs site.yml; the run
must fail in the controller-only preflight play, with a message naming the host
and the variable, and never reach the first play that touches hosts.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")


def broken_inventory(tmp_path, change):
    inventory = tmp_path / "inventory"
    shutil.copytree(ROOT / "inventories" / "lab", inventory)
    hosts = yaml.safe_load((inventory / "hosts.yml").read_text())
    change(hosts["all"]["children"])
    (inventory / "hosts.yml").write_text(yaml.safe_dump(hosts))
    return inventory


def run_site(inventory):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    return subprocess.run([PLAYBOOK, "-i", str(inventory), str(ROOT / "site.yml")], cwd=ROOT,
                          capture_output=True, text=True, env=env, timeout=120)


def shard_gap(groups):
    groups["prometheus"]["children"]["prometheus_shard_1"]["vars"]["prometheus_shard"] = 2


def duplicate_port(groups):
    groups["alertmanager"]["hosts"]["am-1"]["alertmanager_instances"][1]["web_port"] = 19093


def name_as_advertise_address(groups):
    groups["alertmanager"]["hosts"]["am-2"]["stack_address"] = "am-2.example.org"


def lonely_replica(groups):
    del groups["prometheus"]["children"]["prometheus_shard_1"]["hosts"]["prom-s1-b"]


def placeholder_db_password(groups):
    groups["mysql"]["hosts"]["db-1"]["mysql_grafana_password"] = "changeme"


def secret_key_differs(groups):
    groups["grafana"]["hosts"]["grafana-2"]["grafana_secret_key"] = "another-long-secret-key-1234"


def vip_without_prefix(groups):
    groups["loadbalancer"]["hosts"]["lb-2"]["keepalived_virtual_ipaddress"] = "10.213.0.70"


@pytest.mark.parametrize("change,expected", [
    (shard_gap, "shard index(es) [1] have no host"),
    (placeholder_db_password, "host db-1: mysql_grafana_password is a placeholder; set a real value through ansible-vault"),
    (secret_key_differs, "grafana_secret_key must be identical on every instance"),
    (vip_without_prefix, "host lb-2: keepalived_virtual_ipaddress must be the floating address with its prefix"),
    (duplicate_port, "host 'am-1' alertmanager_instances[1].web_port 19093 is already the web_port"),
    (name_as_advertise_address, "host 'am-2' instance 'a' only has the name 'am-2.example.org'"),
    (lonely_replica, "shard 1 has 1 replica(s) (prom-s1-a); this environment requires at least 2"),
])
def test_bad_inventory_stops_in_preflight(tmp_path, change, expected):
    result = run_site(broken_inventory(tmp_path, change))
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert expected in " ".join(output.split()), output[-3000:]
    assert "PLAY [Common base on every host]" not in output  # no host was contacted


def test_lab_inventory_passes_preflight():
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    result = subprocess.run([PLAYBOOK, "-i", str(ROOT / "inventories" / "lab"), str(ROOT / "playbooks" / "preflight.yml")],
                            cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("vault,expected", [
    (None, "host db-production-1.example.net: mysql_grafana_password is not set"),
    ("vault.yml.example", "host db-production-1.example.net: mysql_grafana_password is a placeholder"),
])
def test_production_inventory_needs_real_vault_secrets(tmp_path, vault, expected):
    inventory = tmp_path / "production"
    shutil.copytree(ROOT / "inventories" / "production", inventory)
    if vault:
        shutil.copy(inventory / "group_vars" / "all" / vault, inventory / "group_vars" / "all" / "vault.yml")
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    result = subprocess.run([PLAYBOOK, "-i", str(inventory), str(ROOT / "playbooks" / "preflight.yml")],
                            cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert expected in " ".join(output.split()), output[-3000:]


def test_every_problem_is_reported_in_one_run(tmp_path):
    def two_problems(groups):
        shard_gap(groups)
        placeholder_db_password(groups)

    result = run_site(broken_inventory(tmp_path, two_problems))
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0
    assert "The inventory has 2 problem(s); no host was changed:" in output, output[-3000:]
    assert "shard index(es) [1] have no host" in output
    assert "host db-1: mysql_grafana_password is a placeholder" in output


def test_group_vars_of_no_group_are_a_warning(tmp_path):
    inventory = broken_inventory(tmp_path, lambda groups: None)
    (inventory / "group_vars" / "grafna").mkdir()
    (inventory / "group_vars" / "grafna" / "main.yml").write_text("---\ngrafana_http_port: 3001\n")
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    result = subprocess.run([PLAYBOOK, "-i", str(inventory), str(ROOT / "playbooks" / "preflight.yml")],
                            cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "group_vars/grafna names no group of this inventory" in result.stdout
