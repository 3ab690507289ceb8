"""The database tier on live servers: a three-member MariaDB Galera cluster and its stable address.

Everything runs on the secure defaults (the stack's CA for clients, replication and state
transfers; the host firewall). Tests run in file order: the cluster as the converge left
it, writes through the stable address on Grafana's path, a member lost and back, the
stable address moving, a whole-cluster stop recovered through the role, the exporter,
a backup restored over the cluster, and a setting that breaks Grafana refused before
anything changes. Figures are printed (-s).
"""

import hashlib
import os
import re
import subprocess
import time
import urllib.error
from pathlib import Path

import live
import yaml
from live import converge, wait_for
from topology import Topology

SCENARIO = Path(__file__).resolve().parent.parent

EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
TOPOLOGY = Topology.of_scenario()
MEMBERS = TOPOLOGY.hosts("mysql")
CLIENT = TOPOLOGY.hosts("grafana")[0]
_VARS = yaml.safe_load((SCENARIO / "molecule.yml").read_text())["provisioner"]["inventory"]["group_vars"]
DB_PASSWORD = _VARS["all"]["vault_grafana_db_password"]
VIP = _VARS["mysql"]["mysql_virtual_ipaddress"].split("/")[0]
CA_ON_CLIENT = "/etc/ssl/promha-web-ca.crt"
CONFIG = "/etc/mysql/mariadb.conf.d/60-promha.cnf"


def docker(host, *cmd, check=False):
    return subprocess.run(["docker", "exec", host, *cmd], capture_output=True, text=True, check=check)


def local_sql(host, query):
    """``query`` as root on ``host``'s socket; the rows, tab-separated."""
    return docker(host, "mariadb", "-N", "-B", "-e", query).stdout.strip()


def status(host):
    rows = local_sql(host, "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_cluster_size', "
                           "'wsrep_cluster_status', 'wsrep_local_state_comment', 'wsrep_cluster_state_uuid')")
    return dict(line.split("\t", 1) for line in rows.splitlines() if "\t" in line)


def client_sql(query, host=VIP):
    """``query`` from the client host as Grafana sends it: the grafana account, TLS checked."""
    subprocess.run(["docker", "cp", str(TOPOLOGY.secrets_dir / "web" / "ca.crt"), f"{CLIENT}:{CA_ON_CLIENT}"],
                   capture_output=True, check=True)
    return docker(CLIENT, "mariadb", f"-h{host}", "-ugrafana", f"-p{DB_PASSWORD}", "--connect-timeout=3",
                  "--ssl", f"--ssl-ca={CA_ON_CLIENT}", "--ssl-verify-server-cert", "-N", "-B", "-e", query)


def holder():
    found = [host for host in MEMBERS if f"inet {VIP}/" in docker(host, "ip", "-4", "addr", "show").stdout]
    assert len(found) <= 1, f"the stable address {VIP} is on several members: {found}"
    return found[0] if found else None


def synced(hosts=None):
    states = {host: status(host) for host in hosts or MEMBERS}
    return all(state.get("wsrep_local_state_comment") == "Synced"
               and state.get("wsrep_cluster_size") == str(len(MEMBERS)) for state in states.values())


def test_one_cluster_of_three_synced_members_with_one_state():
    states = {host: status(host) for host in MEMBERS}
    assert {state.get("wsrep_cluster_size") for state in states.values()} == {"3"}, states
    assert {state.get("wsrep_local_state_comment") for state in states.values()} == {"Synced"}, states
    assert len({state.get("wsrep_cluster_state_uuid") for state in states.values()}) == 1, states
    print(f"\n  {', '.join(MEMBERS)}: size 3, Synced, one state uuid")


def test_a_joiner_asks_for_its_state_as_soon_as_its_listener_is_up():
    """The joiner's transfer script waits for its own socat listener (with `ss`) before the member asks
    a donor for its state; a sandbox that keeps `ss` from working makes every join wait out 30 s."""
    waits = {}
    for host in MEMBERS:
        journal = docker(host, "journalctl", "-o", "short-unix", "--no-pager", "-g",
                         f"SST started on joiner|Member [0-9.]+ \\({host}\\) requested state transfer").stdout
        started = [float(line.split()[0]) for line in journal.splitlines() if "SST started on joiner" in line]
        asked = [float(line.split()[0]) for line in journal.splitlines() if "requested state transfer" in line]
        if started and asked:
            waits[host] = min(t for t in asked if t >= started[0]) - started[0]
    assert len(waits) == len(MEMBERS) - 1, f"state transfers found on {sorted(waits)}, expected all members but one"
    assert max(waits.values()) < 10, f"seconds from a joiner's transfer start to its request: {waits}"
    print("\n  joiner's start of its transfer to its request for state: "
          + ", ".join(f"{host} {wait:.1f}s" for host, wait in sorted(waits.items())))


def test_replication_is_encrypted_with_the_stacks_ca():
    options = local_sql(MEMBERS[0], "SELECT @@wsrep_provider_options")
    assert "socket.ssl = YES" in options and "socket.ssl_ca = " in options, options
    peer = TOPOLOGY.address(MEMBERS[1])
    handshake = docker(MEMBERS[0], "bash", "-c", f"openssl s_client -connect {peer}:4567 -CAfile "
                       "/etc/mysql/mariadb.conf.d/tls/ca.crt -verify_return_error </dev/null 2>&1 | "
                       "grep -E 'Verify return code|Protocol'")
    assert "Verify return code: 0 (ok)" in handshake.stdout, handshake.stdout
    print(f"\n  {MEMBERS[0]} -> {peer}:4567: {' '.join(handshake.stdout.split())}")


def test_writes_through_the_stable_address_on_grafanas_path_reach_every_member():
    assert holder() is not None, f"nobody holds {VIP}"
    made = client_sql("CREATE TABLE IF NOT EXISTS grafana.promha_check (id INT PRIMARY KEY, at DOUBLE)")
    assert made.returncode == 0, made.stderr
    wrote = client_sql("REPLACE INTO grafana.promha_check VALUES (1, UNIX_TIMESTAMP(NOW(6)))")
    assert wrote.returncode == 0, wrote.stderr
    rows = {host: local_sql(host, "SELECT COUNT(*) FROM grafana.promha_check WHERE id = 1") for host in MEMBERS}
    assert set(rows.values()) == {"1"}, rows
    cipher = client_sql("SHOW SESSION STATUS LIKE 'Ssl_version'")
    assert cipher.stdout.split()[1].startswith("TLSv1."), cipher.stdout
    plain = docker(CLIENT, "mariadb", f"-h{VIP}", "-ugrafana", f"-p{DB_PASSWORD}", "--skip-ssl", "-e", "SELECT 1")
    assert plain.returncode != 0, "the grafana account logged in without TLS"


def test_a_killed_member_rejoins_and_the_others_keep_writing():
    lost = MEMBERS[-1]
    subprocess.run(["docker", "kill", lost], capture_output=True, check=True)
    try:
        wait_for(lambda: status(MEMBERS[0]).get("wsrep_cluster_size") == "2", 30, "the cluster to see the loss")
        wrote = client_sql("REPLACE INTO grafana.promha_check VALUES (2, UNIX_TIMESTAMP(NOW(6)))")
        assert wrote.returncode == 0, wrote.stderr
    finally:
        subprocess.run(["docker", "start", lost], capture_output=True, check=True)
    started = time.monotonic()
    wait_for(synced, 300, "the killed member to rejoin")
    rows = {host: local_sql(host, "SELECT COUNT(*) FROM grafana.promha_check") for host in MEMBERS}
    assert set(rows.values()) == {"2"}, rows
    print(f"\n  {lost} killed; a write through {VIP} meanwhile; rejoined and synced {time.monotonic() - started:.0f}s "
          "after its start (the unit rejoins at boot)")


def test_the_stable_address_moves_off_a_member_that_is_not_synced():
    first = holder()
    assert first is not None
    subprocess.run(["docker", "kill", first], capture_output=True, check=True)
    lost = time.monotonic()
    try:
        wait_for(lambda: holder() not in (None, first), 30, f"{VIP} to move off {first}")
        moved = time.monotonic() - lost
        wait_for(lambda: client_sql("SELECT 1").returncode == 0, 30, f"writes through {VIP} again")
        writable = time.monotonic() - lost
    finally:
        subprocess.run(["docker", "start", first], capture_output=True, check=True)
    wait_for(synced, 300, f"{first} to rejoin")
    print(f"\n  {first} (holding {VIP}) killed: the address moved in {moved:.1f}s, the grafana account "
          f"wrote through it again after {writable:.1f}s")
    assert writable < 15


def test_the_whole_cluster_stopped_starts_again_through_the_role_from_the_newest_member():
    before = client_sql("SELECT COUNT(*) FROM grafana.promha_check")
    # One after another, each shut down cleanly: systemd (PID 1) halts on SIGRTMIN+3 and
    # stops MariaDB first (docker stop's SIGTERM it ignores, and kills after the timeout).
    for host in MEMBERS:
        subprocess.run(["docker", "kill", "--signal=SIGRTMIN+3", host], capture_output=True, check=True)
        subprocess.run(["docker", "wait", host], capture_output=True, check=True, timeout=120)
    for host in MEMBERS:
        subprocess.run(["docker", "start", host], capture_output=True, check=True)
    started = time.monotonic()
    run = converge(SCENARIO, tags="mysql")
    assert run.returncode == 0, run.output[-3000:]
    # One task run that started a new primary component, on one member: never two.
    bootstraps = [block for block in run.output.split("TASK [")
                  if "Start a new primary component" in block.split("\n", 1)[0] and "changed:" in block]
    assert len(bootstraps) == 1, run.output[-3000:]
    wait_for(synced, 120, "every member synced")
    after = client_sql("SELECT COUNT(*) FROM grafana.promha_check")
    assert after.stdout == before.stdout, (before.stdout, after.stdout)
    print(f"\n  whole cluster stopped and started: the role bootstrapped once and every member is synced "
          f"{time.monotonic() - started:.0f}s later; rows {after.stdout.strip()} as before")


WSREP_METRICS = re.compile(r"(?m)^(mysql_up|mysql_global_status_wsrep_(?:cluster_size|local_state|cluster_status)) (\S+)$")


def test_the_exporter_reports_each_members_galera_state_with_tls_and_credentials_only():
    for host in MEMBERS:
        url = TOPOLOGY.url(host, "mysql_exporter_port", "/metrics")
        assert url.startswith("https://"), url
        text = TOPOLOGY.fetch("mysql_exporter", url)
        metrics = {name: float(value) for name, value in WSREP_METRICS.findall(text)}
        assert metrics == {"mysql_up": 1, "mysql_global_status_wsrep_cluster_size": 3,
                           "mysql_global_status_wsrep_local_state": 4,
                           "mysql_global_status_wsrep_cluster_status": 1}, (host, metrics)
        assert "mysql_global_status_wsrep_flow_control_paused_ns" in text
        try:
            live.fetch(url, cafile=TOPOLOGY.access("mysql_exporter")["cafile"])
            raise AssertionError(f"{url} answered without credentials")
        except urllib.error.HTTPError as error:
            assert error.code == 401, error
    # The client host is no Prometheus replica: the firewall drops its probe.
    address = TOPOLOGY.address(MEMBERS[0])
    probe = docker(CLIENT, "timeout", "3", "bash", "-c", f": </dev/tcp/{address}/9104")
    assert probe.returncode != 0, f"{CLIENT} reached the exporter on {address}:9104"
    print(f"\n  {len(MEMBERS)} exporters: mysql_up 1, cluster size 3, Synced, primary; 401 without "
          f"credentials; {CLIENT} (not a Prometheus host) dropped")


def test_a_setting_that_breaks_grafanas_schema_is_refused_before_anything_changes():
    before = {host: hashlib.sha256(docker(host, "cat", CONFIG).stdout.encode()).hexdigest() for host in MEMBERS}
    run = converge(SCENARIO, {"mysql_server_extra_config": {"innodb_force_primary_key": "ON"}})
    assert run.returncode != 0
    assert "mysql_server_extra_config innodb_force_primary_key" in run.output, run.output[-2000:]
    after = {host: hashlib.sha256(docker(host, "cat", CONFIG).stdout.encode()).hexdigest() for host in MEMBERS}
    assert after == before
    assert synced()
