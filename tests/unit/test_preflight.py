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


@pytest.fixture(scope="session", autouse=True)
def lab_secrets():
    """The lab's CAs, certificates and credentials, issued once (playbooks/pki.yml,
    as site.yml does first) so that every case's copy of the lab inventory carries
    them: issuing them again in each copy was most of each case's time."""
    result = subprocess.run([PLAYBOOK, "-i", str(ROOT / "inventories" / "lab"), str(ROOT / "playbooks" / "pki.yml")],
                            cwd=ROOT, capture_output=True, text=True, env=_env(), timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (ROOT / "inventories" / "lab" / ".secrets" / "web" / "ca.crt").is_file()


def broken_inventory(tmp_path, change):
    inventory = tmp_path / "inventory"
    shutil.copytree(ROOT / "inventories" / "lab", inventory)
    hosts = yaml.safe_load((inventory / "hosts.yml").read_text())
    change(hosts["all"]["children"])
    (inventory / "hosts.yml").write_text(yaml.safe_dump(hosts))
    return inventory


def _env():
    return dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")


def run_site(inventory):
    return subprocess.run([PLAYBOOK, "-i", str(inventory), str(ROOT / "site.yml")], cwd=ROOT,
                          capture_output=True, text=True, env=_env(), timeout=120)


def run_preflight(inventory):
    """The controller's checks only (``--skip-tags preflight_hosts``): made-up hosts cannot be read."""
    return subprocess.run([PLAYBOOK, "-i", str(inventory), str(ROOT / "playbooks" / "preflight.yml"),
                           "--skip-tags", "preflight_hosts"],
                          cwd=ROOT, capture_output=True, text=True, env=_env(), timeout=120)


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


def alertmanager_ca_for_its_group_only(groups):
    groups["alertmanager"]["vars"] = {"alertmanager_web_tls_ca_src": "/etc/site-pki/ca.crt"}


def node_password_for_one_host(groups):
    groups["mysql"]["hosts"]["db-1"]["node_exporter_web_basic_auth_password"] = "a-site-password-only-db-1-has"


def vip_without_prefix(groups):
    groups["loadbalancer"]["hosts"]["lb-2"]["keepalived_virtual_ipaddress"] = "10.213.0.70"


@pytest.mark.parametrize("change,expected", [
    (shard_gap, "shard index(es) [1] have no host"),
    (placeholder_db_password, "host db-1: mysql_grafana_password is a placeholder; set a real value through ansible-vault"),
    (secret_key_differs, "grafana_secret_key must be identical on every instance"),
    (vip_without_prefix, "host lb-2: keepalived_virtual_ipaddress must be the floating address with its prefix"),
    (alertmanager_ca_for_its_group_only, "alertmanager_web_tls_ca_src differs between hosts (am-1, am-2: "
                                         '"/etc/site-pki/ca.crt"; backup-1, db-1, db-2 ...: null)'),
    (node_password_for_one_host, "node_exporter_web_basic_auth_password differs between hosts (am-1, am-2, "
                                 "backup-1 ...; db-1); every tier and its clients must read one value"),
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


def test_a_password_that_differs_is_named_never_shown(tmp_path):
    result = run_preflight(broken_inventory(tmp_path, node_password_for_one_host))
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "node_exporter_web_basic_auth_password differs between hosts" in " ".join(output.split())
    assert "a-site-password-only-db-1-has" not in output


def test_lab_inventory_passes_preflight():
    # The controller's checks only (the lab hosts need not be up).
    result = run_preflight(ROOT / "inventories" / "lab")
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
    result = run_preflight(inventory)
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


def scrape_jobs_inventory(tmp_path, jobs, hosts_change=lambda groups: None, extra=None):
    """The lab inventory with these site jobs (and extra group_vars/prometheus settings)."""
    inventory = broken_inventory(tmp_path, hosts_change)
    settings = {"prometheus_scrape_jobs": jobs, **(extra or {})}
    (inventory / "group_vars" / "prometheus" / "scrape_jobs.yml").write_text("---\n" + yaml.safe_dump(settings))
    return inventory


def test_bad_scrape_jobs_stop_in_preflight_each_named(tmp_path):
    static = {"static_configs": [{"targets": ["10.213.0.61:20000"]}]}
    jobs = [
        {"job_name": "app", **static}, {"job_name": "app", **static},
        {"job_name": "pinned", "shard": 5, **static},
        {"job_name": "where", "shard": "everywhere", **static},
        {"job_name": "web", "inventory": {"group": "webservers", "port": 8080}},
        {"job_name": "nothing", "static_configs": [{"targets": []}]},
        {"job_name": "node", **static},
    ]
    result = run_site(scrape_jobs_inventory(tmp_path, jobs, extra={"prometheus_shard_replicas": 3}))
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0
    assert "PLAY [Common base on every host]" not in output
    for expected in [
        "host prom-s0-a: prometheus_scrape_jobs: inventory_scrape_jobs: job 'web' inventory[0] names inventory "
        "group 'webservers', which does not exist; add the group to the inventory or fix the name",
    ]:
        assert expected in output, output[-3000:]
    # The inventory-group problem stops the job checks (their targets are unknown); fix it and see the rest.
    jobs[4] = {"job_name": "web", "inventory": {"group": "empty", "port": 8080}}
    result = run_site(scrape_jobs_inventory(tmp_path / "2", jobs, extra={"prometheus_shard_replicas": 3},
                                            hosts_change=lambda groups: groups.update(empty={"hosts": {}})))
    output = " ".join((result.stdout + result.stderr).split())
    assert "group 'empty', which has no hosts; add hosts to it or remove the job" in output, output[-3000:]
    jobs[4] = {"job_name": "web", "inventory": {"group": "target_farm", "port": 8080}}
    result = run_site(scrape_jobs_inventory(tmp_path / "3", jobs, extra={"prometheus_shard_replicas": 3}))
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0
    for expected in [
        "host prom-s0-a: prometheus_scrape_jobs: replicas=3 is larger than the shard count 2",
        "host prom-s0-a: prometheus_scrape_jobs: job 'app' is defined twice (entries #0 and #1)",
        "host prom-s0-a: prometheus_scrape_jobs: job 'pinned': shard 5 names shard(s) [5], but the inventory has "
        "shards 0..1; pin the job to an existing shard or add that shard",
        "host prom-s0-a: prometheus_scrape_jobs: job 'where': shard 'everywhere' is not spread, all, a shard index",
        "host prom-s0-a: prometheus_scrape_jobs: job 'nothing' has neither targets nor discovery",
        "host prom-s0-a: prometheus_scrape_jobs: job 'node' has the name of one of the toolkit's own jobs",
    ]:
        assert expected in output, (expected, output[-3000:])
    assert "PLAY [Common base on every host]" not in output


def test_scrape_settings_must_agree_across_shards(tmp_path):
    def one_host_differs(groups):
        groups["prometheus"]["children"]["prometheus_shard_1"]["hosts"]["prom-s1-b"] = {
            "stack_address": "10.213.0.24", "prometheus_shard_mode": "hashmod",
            "prometheus_scrape_configs": [{"job_name": "old"}], "prometheus_remote_storage_port": 9428,
            "prometheus_mysql_exporter_port": 19104}

    inventory = scrape_jobs_inventory(tmp_path, [{"job_name": "app", "static_configs": [{"targets": ["a:1"]}]}],
                                      hosts_change=one_host_differs)
    result = run_site(inventory)
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0
    assert ("hosts prom-s0-a and prom-s1-b: prometheus_shard_mode differs; every shard must read the same value: "
            "set it once for the prometheus group (group_vars/prometheus)") in output, output[-3000:]
    assert "host prom-s1-b: prometheus_scrape_configs is no longer read; move its jobs to prometheus_scrape_jobs" \
        in output
    assert ("host prom-s1-b: prometheus_remote_storage_port is no longer read; the replicas write to the port each "
            "remote_storage host listens on: set remote_storage_port for those hosts") in output
    assert ("host prom-s1-b: prometheus_mysql_exporter_port is no longer read; the replicas scrape the port each host "
            "serves on: set mysql_exporter_port for those hosts") in output


def test_scrape_jobs_may_read_other_hosts_and_a_broken_template_is_named(tmp_path):
    farm = "{{ groups['target_farm'] | map('host_address', hostvars) | product([20000]) | map('join', ':') | list }}"
    reads_hostvars = [{"job_name": "app", "static_configs": [{"targets": farm}]},
                      {"job_name": "db", "shard": 7, "static_configs": [{"targets": farm}]}]
    result = run_preflight(scrape_jobs_inventory(tmp_path, reads_hostvars))
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0
    assert "The inventory has 1 problem(s)" in output, output[-3000:]
    assert "job 'db': shard 7 names shard(s) [7]" in output
    broken = [{"job_name": "app", "static_configs": [{"targets": "{{ no_such_variable }}"}]}]
    result = run_preflight(scrape_jobs_inventory(tmp_path / "broken", broken))
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0
    assert ("host prom-s0-a: prometheus_scrape_jobs, prometheus_shard_mode or prometheus_shard_replicas cannot be "
            "rendered") in output, output[-3000:]
    assert "no_such_variable" in output


def test_group_vars_of_no_group_are_a_warning(tmp_path):
    inventory = broken_inventory(tmp_path, lambda groups: None)
    (inventory / "group_vars" / "grafna").mkdir()
    (inventory / "group_vars" / "grafna" / "main.yml").write_text("---\ngrafana_http_port: 3001\n")
    result = run_preflight(inventory)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "group_vars/grafna names no group of this inventory" in result.stdout


def as_production(inventory):
    stack = inventory / "group_vars" / "all" / "stack.yml"
    stack.write_text(stack.read_text().replace("stack_environment: lab", "stack_environment: production"))
    return inventory


def storage_in_one_rack(groups):
    groups["remote_storage"]["hosts"]["vm-2"]["stack_failure_domain"] = "rack-a"


def balancers_in_one_rack(groups):
    groups["loadbalancer"]["hosts"]["lb-1"]["stack_failure_domain"] = "rack-b"


@pytest.mark.parametrize("change,named", [
    (storage_in_one_rack, "hosts vm-1, vm-2: the remote_storage hosts (all) share stack_failure_domain 'rack-a'"),
    (balancers_in_one_rack, "hosts lb-1, lb-2: the loadbalancer hosts (all) share stack_failure_domain 'rack-b'"),
])
def test_a_production_copy_of_the_lab_sharing_a_domain_is_refused(tmp_path, change, named):
    spread = run_preflight(as_production(broken_inventory(tmp_path / "spread", lambda groups: None)))
    assert "stack_failure_domain" not in spread.stdout + spread.stderr
    result = run_preflight(as_production(broken_inventory(tmp_path / "shared", change)))
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0
    assert named in output, output[-3000:]


def test_the_lab_sharing_a_domain_is_warned_about_not_refused(tmp_path):
    result = run_preflight(broken_inventory(tmp_path, storage_in_one_rack))
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 0, output[-3000:]
    assert "hosts vm-1, vm-2: the remote_storage hosts (all) share stack_failure_domain" in output
    assert "(refused in production)" in output
