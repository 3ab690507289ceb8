"""The Prometheus tier on live servers: HA pairs, sharding, remote storage, safe apply.

Runs after converge and idempotence. The tests run in file order: the later ones
re-converge with changed variables (a broken rule file, an extra scrape job) and put
the baseline back before they finish. The site's own sharded jobs are
test_sharding.py's, which runs after this file.
"""

import json
import os
import re
import ssl
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import live
import pytest
import yaml
from ansible_collections.promha.stack.plugins.plugin_utils.shards import shard_targets
from live import PROJECT, wait_for
from topology import Topology

SCENARIO = Path(__file__).resolve().parent.parent

testinfra_hosts = ["ansible://prometheus"]

# Where everything is, from the scenario's inventory through the roles' filters.
TOPOLOGY = Topology.of_scenario()
REPLICAS = {host: (TOPOLOGY.address(host), shard) for shard, hosts in TOPOLOGY.shards.items() for host in hosts}
VM_HOST = TOPOLOGY.hosts("remote_storage")[0]
VM, VM_TARGET = TOPOLOGY.url(VM_HOST, "remote_storage_port"), TOPOLOGY.host_port(VM_HOST, "remote_storage_port")
GLOBAL = TOPOLOGY.address(TOPOLOGY.hosts("prometheus_global")[0])
# The node job: every inventory host's exporter.
NODE_TARGETS = sorted(TOPOLOGY.host_port(host, "node_exporter_port") for host in TOPOLOGY.hosts("all"))
# The node job is split on the controller, rendezvous by default (the role's prometheus_shard_mode).
NODE_SHARDS = shard_targets(NODE_TARGETS, 2, mode="rendezvous")
SCRAPE_INTERVAL = 15
# The secure defaults (molecule.yml): every Prometheus, node exporter and the remote
# storage serve HTTPS with basic auth - the stack's web CA and generated passwords.
SECRETS = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "secrets"
TLS = SECRETS / "web"
AUTH = ("promha", (SECRETS / "credentials" / "prometheus_web").read_text().strip())
VM_AUTH = ("promha", (SECRETS / "credentials" / "remote_storage_web").read_text().strip())
VIEWER = ("viewer", "molecule-viewer-2f8a61")
# The archive shard 1 runs (prepare.yml: built from the package, or the upstream release).
ARCHIVE_VERSION = yaml.safe_load((SECRETS.parent / "prometheus-archive.yml").read_text())["version"]


def get(url, timeout=5, auth="tier"):
    """``url`` with the stack's CA and the credentials of its tier (the remote storage's for VM);
    ``auth`` None sends none."""
    if auth == "tier":
        auth = VM_AUTH if url.startswith(VM) else AUTH
    return live.fetch(url, auth=auth, cafile=TLS / "ca.crt", timeout=timeout)


def get_json(url):
    return json.loads(get(url))


def active_targets(ip, job=None):
    data = get_json(f"https://{ip}:9090/api/v1/targets?state=active")["data"]["activeTargets"]
    return sorted(t["labels"]["instance"] for t in data if job is None or t["labels"]["job"] == job)


def converge(*extra_vars, limit=None, tags="prometheus", options=()):
    return live.converge(SCENARIO, *extra_vars, limit=limit, tags=tags, options=options)


def main_pid(host):
    return host.run("systemctl show -p MainPID --value prometheus").stdout.strip()


def start_time(host, pid):
    return host.run(f"ps -o lstart= -p {pid}").stdout.strip()


# 1. readiness and identical configs ---------------------------------------------------

def test_every_replica_is_ready():
    for name, (ip, _) in REPLICAS.items():
        assert get(f"https://{ip}:9090/-/ready").strip().startswith("Prometheus"), name


def test_pair_configs_differ_only_in_replica_label(host):
    name = host.backend.get_hostname()
    ip, shard = REPLICAS[name]
    peer = next(n for n, (_, s) in REPLICAS.items() if s == shard and n != name)
    mine = get_json(f"https://{ip}:9090/api/v1/status/config")["data"]["yaml"]
    theirs = get_json(f"https://{REPLICAS[peer][0]}:9090/api/v1/status/config")["data"]["yaml"]
    assert f"replica: {name}" in mine and f"replica: {peer}" in theirs
    assert mine.replace(f"replica: {name}", "replica: X") == theirs.replace(f"replica: {peer}", "replica: X")
    assert f"shard: \"{shard}\"" in mine


def test_alerts_and_remote_write_drop_the_replica_label(host):
    config = yaml.safe_load(host.file("/etc/prometheus/prometheus.yml").content_string)
    assert config["alerting"]["alert_relabel_configs"] == [{"action": "labeldrop", "regex": "replica"}]
    (write,) = config["remote_write"]
    assert write["url"] == f"{VM}/api/v1/write"
    assert write["write_relabel_configs"][0] == {"action": "labeldrop", "regex": "replica"}
    # Scraped series lose the shard label too; recording rules keep it.
    assert {"source_labels": ["__tmp_keep_shard"], "regex": "", "target_label": "shard", "replacement": ""} in \
        write["write_relabel_configs"]


# 1b. TLS and basic auth on the web port; every client the toolkit configures follows -----

def status_of(url, **kwargs):
    return live.status(get, url, **kwargs)


def test_web_port_wants_tls_and_a_password():
    for name, (ip, _) in {**REPLICAS, "mp-global": (GLOBAL, None)}.items():
        url = f"https://{ip}:9090/api/v1/status/buildinfo"
        assert status_of(url) == 200, name
        assert status_of(url, auth=VIEWER) == 200, name  # an extra user
        assert status_of(url, auth=None) == 401, name
        assert status_of(url, auth=("promha", "wrong-password-123")) == 401, name
        # Plain HTTP gets no answer from the API, and the certificate is checked against its address.
        with pytest.raises((urllib.error.HTTPError, ConnectionError, OSError)):
            get(f"http://{ip}:9090/api/v1/status/buildinfo")
        stranger = ssl.create_default_context()  # the system CAs only: our CA is not among them
        with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
            urllib.request.urlopen(url, timeout=5, context=stranger)


def test_hosts_keep_only_bcrypt_hashes_and_a_private_client_password(host):
    web = host.file("/etc/prometheus/web/web.yml")
    assert web.mode == 0o640 and web.user == "root" and web.group == "prometheus"
    text = web.content_string
    assert "basic_auth_users:" in text and "$2b$" in text and "tls_server_config:" in text
    grep = host.run(f"grep -rl -e {AUTH[1]} -e molecule-viewer-2f8a61 /etc/prometheus /etc/systemd")
    assert grep.stdout.split() == ["/etc/prometheus/web/client.password"]
    password = host.file("/etc/prometheus/web/client.password")
    assert password.mode == 0o640 and password.group == "prometheus"
    assert host.file("/etc/prometheus/web/server.key").mode == 0o640
    assert "--web.config.file=/etc/prometheus/web/web.yml" in host.file(
        "/etc/systemd/system/prometheus.service").content_string


def not_after(pem_path):
    from cryptography import x509
    return int(x509.load_pem_x509_certificate(Path(pem_path).read_bytes()).not_valid_after_utc.timestamp())


def test_node_exporter_exports_the_expiry_of_every_stack_certificate(host):
    """The check ran when the Prometheus role wrote its certificates (after node_exporter's own):
    each file's notAfter, read from the controller's copies, and the CA marked as one."""
    name = host.backend.get_hostname()
    expected = {("/etc/prometheus/web/ca.crt", "true"): not_after(TLS / "ca.crt"),
                ("/etc/prometheus/web/server.crt", "false"): not_after(TLS / name / "prometheus.crt"),
                ("/etc/node_exporter/ca.crt", "true"): not_after(TLS / "ca.crt"),
                ("/etc/node_exporter/server.crt", "false"): not_after(TLS / name / "node-exporter.crt")}

    def exported():
        text = host.run(f"curl -sf --cacert /etc/prometheus/web/ca.crt -u promha:$(cat "
                        f"/etc/prometheus/web/node_exporter.password) https://{TOPOLOGY.address(name)}:9100/metrics").stdout
        # node_exporter sorts the labels: ca, then path.
        return {(path, ca): int(float(value)) for ca, path, value in re.findall(
            r'^promha_certificate_expiry_timestamp_seconds\{ca="(true|false)",path="([^"]+)"\} (\S+)$', text, re.M)}
    wait_for(lambda: all(key in exported() for key in expected), 30, "the certificate expiries")
    got = exported()
    assert {key: got[key] for key in expected} == expected, got


def test_pair_and_federation_scrape_over_tls_with_auth():
    for name, (ip, _) in {**REPLICAS, "mp-global": (GLOBAL, None)}.items():
        job = "federate" if name == "mp-global" else "prometheus"

        def healthy(ip=ip, job=job):
            data = get_json(f"https://{ip}:9090/api/v1/targets?state=active")["data"]["activeTargets"]
            mine = [t for t in data if t["labels"]["job"] == job]
            return mine if mine and all(t["health"] == "up" for t in mine) else None

        targets = wait_for(healthy, 60, f"{name}'s {job} targets to be up")
        assert all(t["scrapeUrl"].startswith("https://") for t in targets), name
        assert len(targets) == (len(REPLICAS) if job == "federate" else 2), name


def test_a_key_that_does_not_match_is_refused_before_any_change(host):
    name = host.backend.get_hostname()
    if name != "mp-s1-b":
        pytest.skip("one replica is enough")
    before = {f: host.file(f"/etc/prometheus/web/{f}").sha256sum for f in ("web.yml", "server.crt", "server.key")}
    pid = main_pid(host)
    result = converge({"prometheus_web_tls_key_src": str(TLS / "mp-s1-a" / "prometheus.key")}, limit=name)
    assert result.returncode != 0
    assert f"{name}: prometheus_web_tls_cert_src" in result.output
    assert "the key does not belong to the certificate" in result.output
    assert {f: host.file(f"/etc/prometheus/web/{f}").sha256sum for f in before} == before
    assert main_pid(host) == pid


def test_a_flag_that_undoes_a_default_or_splits_is_refused_before_any_change(host):
    name = host.backend.get_hostname()
    if name != "mp-s1-b":
        pytest.skip("one replica is enough")
    unit = host.file("/etc/systemd/system/prometheus.service").sha256sum
    pid = main_pid(host)
    result = converge({"prometheus_extra_args": {"web.enable-admin-api": True,
                                                 "query.timeout": "1m --web.enable-lifecycle"}}, limit=name)
    assert result.returncode != 0
    assert f"{name}: " in result.output
    assert "prometheus_extra_args: web.enable-admin-api is refused" in result.output, result.output[-2000:]
    assert "prometheus_extra_args: query.timeout: the value must be one word" in result.output
    assert host.file("/etc/systemd/system/prometheus.service").sha256sum == unit
    assert main_pid(host) == pid


def test_retention_size_is_a_share_of_the_data_filesystem(host):
    """auto (the default): 80 % of the filesystem under the TSDB, on the running server."""
    name = host.backend.get_hostname()
    size = int(host.run("df --output=size -B1 /var/lib/prometheus/metrics2 | tail -n 1").stdout)
    command_line = host.file(f"/proc/{main_pid(host)}/cmdline").content_string.split("\0")
    # Prometheus reads MB as 2**20 bytes.
    assert f"--storage.tsdb.retention.size={size * 80 // 100 // 2**20}MB" in command_line, (name, command_line)


# 2. sharding matches the filter's prediction ------------------------------------------

def test_node_targets_equal_the_filters_prediction():
    for name, (ip, shard) in REPLICAS.items():
        assert active_targets(ip, "node") == NODE_SHARDS[shard], name


def test_every_target_scraped_by_exactly_its_shards_replicas():
    seen = {}
    for name, (ip, _) in REPLICAS.items():
        for target in active_targets(ip, "node"):
            seen.setdefault(target, []).append(name)
    assert sorted(seen) == NODE_TARGETS
    for target, scrapers in seen.items():
        shard = next(s for s, members in NODE_SHARDS.items() if target in members)
        assert sorted(scrapers) == sorted(n for n, (_, s) in REPLICAS.items() if s == shard), target


# 3. remote storage: both shards, one series per target ----------------------------------

def test_remote_storage_stops_writes_before_its_disk_is_full():
    """-storage.minFreeDiskSpaceBytes is set (1GiB, the role's default), read from the key-guarded /flags page."""
    key = (SECRETS / "credentials" / "remote_storage_debug_key").read_text().strip()
    flags = get(f"{VM}/flags?authKey={urllib.parse.quote(key)}")
    assert re.search(r"^-storage\.minFreeDiskSpaceBytes=\"?(1GiB|1073741824)\"?$", flags, re.M), flags


def test_remote_storage_holds_one_deduplicated_series_per_target():
    # Series that received samples in the last minute (VictoriaMetrics answers up to now - 30s).
    query = urllib.parse.quote('last_over_time(up{job="node"}[1m])')

    def series():
        found = get_json(f"{VM}/api/v1/query?query={query}")["data"]["result"]
        return found if len(found) >= len(NODE_TARGETS) else None

    found = [s["metric"] for s in wait_for(series, 90, "node series in remote storage")]
    assert sorted(s["instance"] for s in found) == NODE_TARGETS  # exactly one series each
    # Neither replica nor shard: a target stays one series whichever replica and shard scraped it.
    assert all("replica" not in s and "shard" not in s for s in found)
    assert {s["cluster"] for s in found} == {"molecule"}
    # Recording rules keep their shard: they are each shard's own sums.
    recording = urllib.parse.quote('job:up:sum{job="node"}')
    recorded = get_json(f"{VM}/api/v1/query?query={recording}")
    assert {r["metric"].get("shard") for r in recorded["data"]["result"]} == {"0", "1"}


def test_global_tier_federates_every_replica_of_every_shard():
    config = get_json(f"https://{GLOBAL}:9090/api/v1/status/config")["data"]["yaml"]
    assert "job_name: federate" in config and "honor_labels: true" in config
    assert "job_name: node" not in config  # the global tier scrapes no targets itself
    query = urllib.parse.quote('job:up:sum{job="node"}')

    def federated():
        result = get_json(f"https://{GLOBAL}:9090/api/v1/query?query={query}")["data"]["result"]
        seen = {(r["metric"]["shard"], r["metric"]["replica"]) for r in result}
        return seen if len(seen) == len(REPLICAS) else None

    seen = wait_for(federated, 120, "job:up:sum from every replica on the global tier")
    assert seen == {(str(shard), name) for name, (_, shard) in REPLICAS.items()}

    def per_shard_counts():
        per_shard = {}
        for r in get_json(f"https://{GLOBAL}:9090/api/v1/query?query={query}")["data"]["result"]:
            per_shard.setdefault(r["metric"]["shard"], set()).add(float(r["value"][1]))
        return per_shard

    # Both replicas of a shard agree, and together the shards count every node target.
    last = {}

    def agreed():
        last["counts"] = per_shard_counts()
        values = last["counts"].values()
        return all(len(v) == 1 for v in values) and sum(min(v) for v in values) == len(NODE_TARGETS)

    try:
        wait_for(agreed, 60, "the replicas of each shard to agree on job:up:sum")
    except AssertionError as error:
        raise AssertionError(f"{error}; per-shard job:up:sum values: {last.get('counts')}") from None


# 4. archive install, checksum refusal ------------------------------------------------

def test_shard_1_runs_the_archive_build(host):
    name = host.backend.get_hostname()
    binary = "/usr/local/bin/prometheus" if REPLICAS[name][1] == 1 else "/usr/bin/prometheus"
    assert binary in host.run("systemctl show -p ExecStart --value prometheus").stdout
    if REPLICAS[name][1] == 1:
        assert host.file(binary).linked_to == f"/opt/prometheus-{ARCHIVE_VERSION}/prometheus"
        assert re.search(rf"version {re.escape(ARCHIVE_VERSION)}\b", host.check_output(f"{binary} --version 2>&1"))


def test_wrong_archive_checksum_is_refused(host):
    name = host.backend.get_hostname()
    if REPLICAS[name][1] != 1:
        pytest.skip("shard 0 installs from the package")
    pid = main_pid(host)
    result = converge({"prometheus_version": f"{ARCHIVE_VERSION}-tampered", "prometheus_archive_sha256": "0" * 64},
                      limit=name)
    assert result.returncode != 0
    output = result.output
    assert "did not match" in output or "checksum mismatch" in output.lower(), output[-2000:]
    assert not host.file(f"/opt/prometheus-{ARCHIVE_VERSION}-tampered/prometheus").exists
    assert host.file("/usr/local/bin/prometheus").linked_to == f"/opt/prometheus-{ARCHIVE_VERSION}/prometheus"
    assert main_pid(host) == pid


# 5. rules are unit-tested; broken input never reaches the live server -------------------

def test_default_rules_pass_promtool_unit_tests(host):
    host.run("mkdir -p /tmp/promha-test")
    test_file = (SCENARIO / "tests" / "rules_test.yml").read_text()
    host.run(f"cat > /tmp/promha-test/rules_test.yml <<'EOF'\n{test_file}\nEOF")
    result = host.run("promtool test rules /tmp/promha-test/rules_test.yml")
    assert result.rc == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_database_rules_pass_promtool_unit_tests(host, tmp_path):
    # The role's rule template rendered by Ansible for a three-member Galera cluster,
    # then unit-tested by the replica's own promtool.
    rendered = tmp_path / "promha-database.yml"
    extra = {"_prometheus_is_global": False, "_prometheus_alertmanager_instances": [],
             "_prometheus_mysql_exporters": ["db-1", "db-2", "db-3"], "_prometheus_database_voters": 3}
    result = subprocess.run(
        [str(PROJECT / ".venv" / "bin" / "ansible"), "localhost", "-m", "ansible.builtin.template",
         "-a", f"src={PROJECT}/roles/prometheus/templates/etc/prometheus/rules/promha.yml.j2 dest={rendered}",
         "-e", json.dumps(extra)], capture_output=True, text=True, cwd=PROJECT, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "DatabaseFlowControlPausing" in rendered.read_text()
    host.run("mkdir -p /tmp/promha-test")
    for name, text in (("promha-database.yml", rendered.read_text()),
                       ("database_rules_test.yml", (SCENARIO / "tests" / "database_rules_test.yml").read_text())):
        host.run(f"cat > /tmp/promha-test/{name} <<'EOF'\n{text}\nEOF")
    result = host.run("promtool test rules /tmp/promha-test/database_rules_test.yml")
    assert result.rc == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_broken_rule_file_is_refused_and_server_keeps_running(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text("groups:\n  - name: broken\n    rules:\n      - alert: Broken\n        expr: up ==== 1\n")
    before = {name: get(f"https://{ip}:9090/api/v1/status/config") for name, (ip, _) in REPLICAS.items()}
    result = converge({"prometheus_rule_files": [str(broken)]}, limit="mp-s0-a")
    assert result.returncode != 0
    # promtool refused the new file before it replaced anything (stack_files' validate).
    assert "rules/broken.yml: the new content failed validation" in result.output
    assert "promtool check rules" in result.output
    ip = REPLICAS["mp-s0-a"][0]
    assert get(f"https://{ip}:9090/-/ready").startswith("Prometheus")
    assert get(f"https://{ip}:9090/api/v1/status/config") == before["mp-s0-a"]
    loaded = json.loads(get(f"https://{ip}:9090/api/v1/rules"))["data"]["groups"]
    assert loaded and not [g for g in loaded if g["name"] == "broken" or g["file"].endswith("/broken.yml")], loaded


def test_broken_config_is_refused_before_it_replaces_the_live_file(host):
    name = host.backend.get_hostname()
    if name != "mp-s0-b":
        pytest.skip("one replica is enough")
    live = host.file("/etc/prometheus/prometheus.yml").sha256sum
    pid = main_pid(host)
    result = converge({"farm_extra_jobs": [
        {"job_name": "bad", "scrape_interval": "15x",
         "static_configs": [{"targets": [TOPOLOGY.host_port(VM_HOST, "node_exporter_port")]}]}]},
        limit=name)
    assert result.returncode != 0
    # promtool's reason is shown although the file carries the storage's metrics key.
    assert f"{name}: prometheus.yml was refused and the live file left as it was" in result.output, result.output[-2000:]
    assert "15x" in result.output.split("was refused", 1)[1]
    assert host.file("/etc/prometheus/prometheus.yml").sha256sum == live
    assert not host.file("/etc/prometheus/targets/bad.json").exists  # targets are written after promtool passed
    assert main_pid(host) == pid
    assert get(f"https://{REPLICAS[name][0]}:9090/-/ready").startswith("Prometheus")


# 6. a scrape change reloads without a restart -----------------------------------------

def measured_on(host, replica, why="measured on one replica"):
    """``(name, address, main PID)`` on ``replica``; the test is skipped on every other host."""
    name = host.backend.get_hostname()
    if name != replica:
        pytest.skip(why)
    return name, REPLICAS[name][0], main_pid(host)


def test_scrape_change_reloads_without_restart(host):
    name, ip, pid = measured_on(host, "mp-s1-a", "measured on one replica; the rollout covers the rest")
    started = start_time(host, pid)
    extra = {"farm_extra_jobs": [
        {"job_name": "extra", "shard": "all", "static_configs": [{"targets": [VM_TARGET]}]}]}
    t0 = time.monotonic()
    result = converge(extra, limit=name)
    assert result.returncode == 0, result.stdout[-3000:]
    wait_for(lambda: active_targets(ip, "extra") == [VM_TARGET], 30, "the new target")
    print(f"\nscrape change live after {time.monotonic() - t0:.1f}s (converge of one replica included)")
    assert main_pid(host) == pid
    assert start_time(host, pid) == started
    assert converge(limit=name).returncode == 0  # back to the baseline
    wait_for(lambda: active_targets(ip, "extra") == [], 30, "the extra job to go")


def test_a_jobs_secrets_stay_out_of_diff_and_verbose_output(host):
    name, _, pid = measured_on(host, "mp-s1-a", "one replica shows the task's output")
    config = host.file("/etc/prometheus/prometheus.yml").sha256sum
    secrets = ("molecule-diff-password-81f3", "molecule-diff-token-c27a")
    extra = {"farm_extra_jobs": [
        {"job_name": "secret-a", "shard": "all", "static_configs": [{"targets": [VM_TARGET]}],
         "basic_auth": {"username": "u", "password": secrets[0]}},
        {"job_name": "secret-b", "shard": "all", "static_configs": [{"targets": [VM_TARGET]}],
         "authorization": {"credentials": secrets[1]}}]}
    result = converge(extra, limit=name, options=("--check", "--diff", "-v"))
    assert result.returncode == 0, result.output[-3000:]
    assert "Write prometheus.yml" in result.output
    assert not [secret for secret in secrets if secret in result.output]
    assert "hidden due to" in result.output  # the censored task results
    assert host.file("/etc/prometheus/prometheus.yml").sha256sum == config
    assert main_pid(host) == pid


# 6b. nothing obeys a stranger's lifecycle request; any exit is followed by a start -------

def post_status(url, auth=AUTH):
    return live.status(live.fetch, url, auth=auth, cafile=TLS / "ca.crt", data=b"", method="POST")


def test_lifecycle_and_admin_endpoints_are_off_even_with_credentials(host):
    name = host.backend.get_hostname()
    ip = REPLICAS[name][0]
    pid = main_pid(host)
    refused = {path: post_status(f"https://{ip}:9090{path}")
               for path in ("/-/quit", "/-/reload", "/api/v1/admin/tsdb/snapshot",
                            "/api/v1/admin/tsdb/delete_series?match[]=up")}
    print(f"\n{name}: {refused}")
    assert all(code >= 400 for code in refused.values()), refused
    time.sleep(2)
    assert main_pid(host) == pid
    assert get(f"https://{ip}:9090/-/ready").startswith("Prometheus")
    command_line = host.file(f"/proc/{pid}/cmdline").content_string.split("\0")
    assert not [flag for flag in command_line if flag.startswith(("--web.enable-lifecycle", "--web.enable-admin-api"))]


def test_a_clean_exit_is_followed_by_a_start(host):
    name, ip, pid = measured_on(host, "mp-s0-b")
    targets = active_targets(ip, "node")
    assert host.run(f"kill -TERM {pid}").rc == 0  # Prometheus exits 0 on SIGTERM
    t0 = time.monotonic()
    wait_for(lambda: main_pid(host) not in ("0", "", pid), 30, "a new Prometheus process")
    wait_for(lambda: get(f"https://{ip}:9090/-/ready").startswith("Prometheus"), 90, "the restarted replica ready")
    ready = time.monotonic() - t0
    wait_for(lambda: active_targets(ip, "node") == targets, 60, "the restarted replica's targets")
    print(f"\n{name}: ready {ready:.1f}s and scraping its {len(targets)} node targets again "
          f"{time.monotonic() - t0:.1f}s after a clean exit")


# 7. losing a replica loses no data ----------------------------------------------------

def max_gap(samples_json_lines, start, end):
    timestamps = sorted({ts / 1000 for line in samples_json_lines for ts in json.loads(line)["timestamps"]
                         if start <= ts / 1000 <= end})
    edges = [start] + timestamps + [end]
    return max(b - a for a, b in zip(edges, edges[1:], strict=False))


def test_replica_loss_leaves_no_gap_in_remote_storage(host):
    name = host.backend.get_hostname()
    if name != "mp-s0-b":
        pytest.skip("one replica per run")
    survivor_ip = REPLICAS["mp-s0-a"][0]
    shard_targets_0 = active_targets(REPLICAS[name][0], "node")
    assert shard_targets_0
    host.run("systemctl stop prometheus")
    stopped = time.time()
    try:
        time.sleep(4 * SCRAPE_INTERVAL)
        assert active_targets(survivor_ip, "node") == shard_targets_0  # the survivor keeps scraping
        # VictoriaMetrics serves what it received up to now; look at [stop - 30s, stop + 45s].
        window = (stopped - 30, stopped + 45)
        gaps = {}
        for target in shard_targets_0:
            match = urllib.parse.quote(f'up{{job="node",instance="{target}"}}')
            lines = get(f"{VM}/api/v1/export?match[]={match}&start={int(window[0])}&end={int(window[1])}")
            gaps[target] = max_gap(lines.splitlines(), *window)
        print(f"\nlongest gap per target during the replica loss: {gaps}")
        assert max(gaps.values()) <= 2 * SCRAPE_INTERVAL, gaps
    finally:
        host.run("systemctl start prometheus")
        wait_for(lambda: get(f"https://{REPLICAS[name][0]}:9090/-/ready"), 60, "the replica to come back")
