"""The Alertmanager cluster on live servers: gossip, exactly-once delivery, failover, silences.

Alerts are real: the webhook container exposes drill_active{batch,id} series, both
Prometheus replicas scrape them and their DrillAlert rule fires one alert group per
series; every Alertmanager receives every alert from both replicas. Tests run in
file order and build on each other (batches 1, 2, 3).
"""

import json
import os
import re
import socket
import ssl
import statistics
import subprocess
import time
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path

import live
import pytest
import yaml
from live import wait_for
from topology import Topology

SCENARIO = Path(__file__).resolve().parent.parent

# Where everything is, from the scenario's inventory through the roles' filters.
TOPOLOGY = Topology.of_scenario()
HOOK = f"http://{TOPOLOGY.address('hook')}:8080"  # the test receiver (prepare.yml)
INSTANCES = {  # peer name -> (host, unit, web address)
    i["peer_name"]: (i["host"], f"alertmanager@{i['name']}", i["web"]) for i in TOPOLOGY.alertmanagers}
CLUSTER = {i["peer_name"]: i["cluster"] for i in TOPOLOGY.alertmanagers}  # peer name -> gossip address
PROMETHEUS = [TOPOLOGY.host_port(host, "prometheus_port") for host in TOPOLOGY.hosts("prometheus")]
N = 20
GROUP_WAIT, PEER_TIMEOUT, SCRAPE_AND_EVAL = 5, 15, 10
DELIVERY_BOUND = GROUP_WAIT + PEER_TIMEOUT + SCRAPE_AND_EVAL + 10  # margin
# The secure defaults (molecule.yml): the Alertmanagers and Prometheus serve HTTPS with
# basic auth (the stack's web CA, generated passwords), gossip is mutual TLS with the
# gossip CA - all issued by roles/pki under the scenario's stack_secrets_dir.
SECRETS = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "secrets"
# The archive ma-2 runs (prepare.yml: built from the package, or the upstream release).
ARCHIVE_VERSION = yaml.safe_load((SECRETS.parent / "alertmanager-archive.yml").read_text())["version"]
WEB_CA, GOSSIP = SECRETS / "web" / "ca.crt", SECRETS / "gossip"
AUTH = ("promha", (SECRETS / "credentials" / "alertmanager_web").read_text().strip())
PROM_AUTH = ("promha", (SECRETS / "credentials" / "prometheus_web").read_text().strip())


def call(url, data=None, method=None, timeout=5, auth="tier"):
    """JSON from ``url``: with the Alertmanagers' credentials, or Prometheus' for its port (9090);
    ``auth`` None sends none."""
    body = None if data is None else json.dumps(data).encode()
    if auth == "tier":
        auth = PROM_AUTH if ":9090/" in url else AUTH
    text = live.fetch(url, auth=auth if url.startswith("https:") else None, cafile=WEB_CA, timeout=timeout,
                      data=body, method=method or ("POST" if body is not None else "GET"),
                      headers={"Content-Type": "application/json"})
    return json.loads(text) if text.strip() else None


def status(address):
    return call(f"https://{address}/api/v2/status")


def notifications(batch):
    return [n for n in call(f"{HOOK}/log")
            if "kind" not in n and n["alerts"] and n["alerts"][0]["labels"].get("batch") == batch]


def drill(batch, count):
    call(f"{HOOK}/drill?batch={batch}&count={count}", data={})


def docker(host, *cmd):
    return subprocess.run(["docker", "exec", host, *cmd], capture_output=True, text=True, check=False)


def parse_time(stamp):
    """RFC 3339 with up to nanoseconds (as Prometheus writes startsAt) -> epoch seconds."""
    stamp = stamp.rstrip("Z").replace("+00:00", "")
    whole, _, fraction = stamp.partition(".")
    return datetime.fromisoformat(whole + "+00:00").timestamp() + (float("0." + fraction) if fraction else 0.0)


def delivery(batch, count, settle):
    """Wait for `count` groups of `batch`, then `settle` seconds more for duplicates; return the log."""
    wait_for(lambda: len({n["group_key"] for n in notifications(batch)}) >= count, 120,
             f"{count} groups of batch {batch}")
    time.sleep(settle)
    return notifications(batch)


def latencies(received):
    return [n["received"] - parse_time(n["alerts"][0]["startsAt"]) for n in received]


def report(label, values):
    print(f"\n{label}: median {statistics.median(values):.1f}s, worst {max(values):.1f}s over {len(values)} groups")


def converge(*extra_vars, limit=None, tags="alertmanager"):
    return live.converge(SCENARIO, *extra_vars, limit=limit, tags=tags)


def test_each_instance_ready_with_three_peers():
    for name, (_, _, address) in INSTANCES.items():
        cluster = status(address)["cluster"]
        assert cluster["status"] == "ready", name
        assert len(cluster["peers"]) == 3, (name, cluster["peers"])


def test_gossip_flags_follow_upstream_defaults():
    flags = docker("ma-1", "cat", "/etc/alertmanager/instances/b.env").stdout
    assert "--cluster.gossip-interval=200ms" in flags
    assert "--cluster.peer-timeout=15s" in flags
    assert f"--cluster.advertise-address={CLUSTER['ma-1-b']}" in flags
    assert sorted(line for line in flags.split() if line.startswith("--cluster.peer=")) == sorted(
        f"--cluster.peer={address}" for peer, address in CLUSTER.items() if peer != "ma-1-b")


def main_pid(host, unit):
    return docker(host, "systemctl", "show", "-p", "MainPID", "--value", unit).stdout.strip()


def test_extra_flags_reach_every_instance():
    for name, (host, unit, _) in INSTANCES.items():
        command_line = docker(host, "cat", f"/proc/{main_pid(host, unit)}/cmdline").stdout.split("\0")
        assert "--web.get-concurrency=4" in command_line, (name, command_line)


def test_a_flag_the_role_sets_or_a_split_value_is_refused_before_any_change():
    env = docker("ma-2", "sha256sum", "/etc/alertmanager/instances/a.env").stdout
    pid = main_pid("ma-2", "alertmanager@a")
    result = converge({"alertmanager_extra_args": {"cluster.peer": "10.213.30.99:9094",
                                                   "log.level": "debug --web.enable-lifecycle"}}, limit="ma-2")
    assert result.returncode != 0
    assert "ma-2: alertmanager_extra_args: cluster.peer is set by the role" in result.output, result.output[-2000:]
    assert "alertmanager_extra_args: log.level: the value must be one word" in result.output
    assert docker("ma-2", "sha256sum", "/etc/alertmanager/instances/a.env").stdout == env
    assert main_pid("ma-2", "alertmanager@a") == pid


def test_time_intervals_are_loaded_by_every_instance():
    for name, (_, _, address) in INSTANCES.items():
        loaded = yaml.safe_load(status(address)["config"]["original"])
        assert [i["name"] for i in loaded["time_intervals"]] == ["drill-never"], name
        assert any(route.get("mute_time_intervals") == ["drill-never"] for route in loaded["route"]["routes"]), name


def test_a_route_naming_an_unknown_interval_is_refused_everywhere():
    before = {name: status(address)["config"]["original"] for name, (_, _, address) in INSTANCES.items()}
    result = converge({"alertmanager_time_intervals": []})
    assert result.returncode != 0
    # amtool's reason is shown although the file carries secrets (its task hides its result).
    assert "alertmanager.yml was refused and the live file left as it was" in result.output, result.output[-2000:]
    reason = result.output.split("was refused", 1)[1]
    assert "undefined time interval" in reason and "drill-never" in reason, reason[:2000]
    for name, (_, _, address) in INSTANCES.items():
        assert status(address)["config"]["original"] == before[name], name


def test_every_prometheus_sends_to_every_alertmanager():
    for prometheus in PROMETHEUS:
        active = call(f"https://{prometheus}/api/v1/alertmanagers")["data"]["activeAlertmanagers"]
        assert sorted(a["url"].split("/")[2] for a in active) == sorted(i[2] for i in INSTANCES.values())
        assert all(a["url"].startswith("https://") for a in active), active


# --- access: HTTPS with basic auth on the web ports, mutual TLS on gossip --------------

def status_code(url, auth):
    return live.status(call, url, auth=auth)


def test_web_ports_want_tls_and_a_password():
    for name, (_, _, address) in INSTANCES.items():
        url = f"https://{address}/api/v2/status"
        assert status_code(url, AUTH) == 200, name
        assert status_code(url, None) == 401, name
        assert status_code(url, ("promha", "wrong-password-123")) == 401, name
        with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
            urllib.request.urlopen(url, timeout=5, context=ssl.create_default_context())


def test_prometheus_scrapes_the_alertmanagers_over_tls():
    def healthy():
        data = call(f"https://{PROMETHEUS[0]}/api/v1/targets?state=active")["data"]["activeTargets"]
        mine = [t for t in data if t["labels"]["job"] == "alertmanager"]
        return mine if len(mine) == len(INSTANCES) and all(t["health"] == "up" for t in mine) else None

    targets = wait_for(healthy, 60, "the alertmanager scrape job to be up")
    assert all(t["scrapeUrl"].startswith("https://") for t in targets)


def gossip_handshake(address, client_cert, ca_dir=GOSSIP):
    """Open a TLS connection to a gossip port with ``client_cert`` (a host's certificate under
    ``ca_dir``); return the peer's certificate subject or raise."""
    context = ssl.create_default_context(cafile=str(GOSSIP / "ca.crt"))
    if client_cert:
        context.load_cert_chain(ca_dir / f"{client_cert}.crt", ca_dir / f"{client_cert}.key")
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname=host) as tls:
        tls.sendall(b"\x00")  # TLS 1.3 reports a refused client certificate on the first exchange
        tls.recv(1)
        return tls.getpeercert()["subject"]


def test_gossip_needs_a_certificate_from_the_cluster_ca():
    flags = docker("ma-1", "cat", "/etc/alertmanager/instances/a.env").stdout
    assert "--cluster.tls-config=/etc/alertmanager/web/cluster-tls.yml" in flags
    assert "--web.config.file=/etc/alertmanager/web/web.yml" in flags
    assert "client_auth_type: RequireAndVerifyClientCert" in docker(
        "ma-1", "cat", "/etc/alertmanager/web/cluster-tls.yml").stdout
    # With gossip TLS, memberlist speaks TCP only: nothing listens on the UDP cluster port.
    gossip = CLUSTER["ma-1-a"]
    port = f":{gossip.rsplit(':', 1)[1]} "
    sockets = docker("ma-1", "ss", "-Htulpn")
    assert sockets.returncode == 0 and port in sockets.stdout  # TCP
    assert not [line for line in sockets.stdout.splitlines() if line.startswith("udp") and port in line]
    try:
        gossip_handshake(gossip, "ma-2")
    except (TimeoutError, ConnectionResetError):
        pass  # the peer accepted the certificate; memberlist waits for, or drops, a real message
    # Without a client certificate the TLS server itself says no (a plain-TCP gossip port
    # would fail differently: no TLS handshake at all).
    with pytest.raises(ssl.SSLError, match="(?i)certificate"):
        gossip_handshake(gossip, None)
    # Gossip has its own CA: the same host's Alertmanager certificate from the web CA is refused too.
    with pytest.raises(ssl.SSLError, match="(?i)certificate|unknown ca"):
        gossip_handshake(gossip, "ma-2/alertmanager", ca_dir=SECRETS / "web")


def test_ma_2_runs_the_archive_build():
    assert "/usr/local/bin/alertmanager" in docker("ma-2", "systemctl", "show", "-p", "ExecStart", "--value",
                                                   "alertmanager@a").stdout
    assert docker("ma-2", "readlink", "/usr/local/bin/alertmanager").stdout.strip() == \
        f"/opt/alertmanager-{ARCHIVE_VERSION}/alertmanager"
    version = docker("ma-2", "/usr/local/bin/alertmanager", "--version")
    assert re.search(rf"version {re.escape(ARCHIVE_VERSION)}\b", version.stdout + version.stderr)


def test_wrong_archive_checksum_is_refused():
    pid = docker("ma-2", "systemctl", "show", "-p", "MainPID", "--value", "alertmanager@a").stdout.strip()
    result = converge({"alertmanager_version": f"{ARCHIVE_VERSION}-tampered", "alertmanager_archive_sha256": "0" * 64},
                      limit="ma-2")
    assert result.returncode != 0
    assert "did not match" in result.output or "checksum mismatch" in result.output.lower(), result.output[-2000:]
    assert docker("ma-2", "test", "-e", f"/opt/alertmanager-{ARCHIVE_VERSION}-tampered/alertmanager").returncode != 0
    assert docker("ma-2", "systemctl", "show", "-p", "MainPID", "--value", "alertmanager@a").stdout.strip() == pid


def test_each_group_is_delivered_exactly_once():
    call(f"{HOOK}/reset", data={})
    drill("1", N)
    received = delivery("1", N, settle=2 * PEER_TIMEOUT + 5)
    keys = [n["group_key"] for n in received]
    assert len(keys) == N, f"{len(keys)} notifications for {N} groups"
    assert len(set(keys)) == N
    report("delivery latency, all instances up", latencies(received))


def position_zero():
    cluster = status(INSTANCES["ma-1-a"][2])["cluster"]
    first = sorted(peer["name"] for peer in cluster["peers"])[0]
    for name, (_, _, address) in INSTANCES.items():
        if status(address)["cluster"]["name"] == first:
            return name
    raise AssertionError(f"no instance has the first peer name {first}")


def test_position_zero_down_still_exactly_once_then_rejoins():
    victim = position_zero()
    host, unit, address = INSTANCES[victim]
    docker(host, "systemctl", "stop", unit)
    try:
        drill("2", N)
        received = delivery("2", N, settle=2 * PEER_TIMEOUT + 5)
        keys = [n["group_key"] for n in received]
        assert len(keys) == N and len(set(keys)) == N, f"{len(keys)} notifications for {N} groups"
        assert all(address not in (n["sender"] or "") for n in received)
        values = latencies(received)
        report(f"delivery latency, position 0 ({victim}) down", values)
        assert max(values) <= DELIVERY_BOUND, values
    finally:
        docker(host, "systemctl", "start", unit)
        wait_for(lambda: status(address)["cluster"]["status"] == "ready", 90, f"{victim} to come back")
    for name, (_, _, other) in INSTANCES.items():
        wait_for(lambda other=other: len(status(other)["cluster"]["peers"]) == 3, 60, f"{name} back to 3 peers")


def test_slack_and_email_receivers_deliver_once_each():
    """The simple receiver variables: real Slack-format posts and real SMTP mails, once per group."""
    log = call(f"{HOOK}/log")
    slack_before = sum(1 for n in log if n.get("kind") == "slack")
    mail_before = sum(1 for n in log if n.get("kind") == "mail")
    drill("chat", 2)
    drill("mail", 2)

    def arrived():
        entries = call(f"{HOOK}/log")
        slack = [n for n in entries if n.get("kind") == "slack"][slack_before:]
        mail = [n for n in entries if n.get("kind") == "mail"][mail_before:]
        return (slack, mail) if len(slack) >= 2 and len(mail) >= 2 else None

    wait_for(arrived, 120, "2 Slack messages and 2 mails")
    time.sleep(2 * PEER_TIMEOUT + 5)  # duplicates would come after peer_timeout
    slack, mail = arrived()
    assert len(slack) == 2 and len(mail) == 2, (slack, mail)
    assert all(m["channel"] == "#drill" for m in slack)
    assert all(m["to"] == ["drill@example.org"] and m["from"] == "alertmanager@example.org" for m in mail)
    assert all("DrillAlert" in m["subject"] for m in mail)


def test_silence_spreads_and_silences_every_instance():
    start = datetime.utcnow().isoformat() + "Z"
    end = datetime.utcfromtimestamp(time.time() + 3600).isoformat() + "Z"
    created = call(f"https://{INSTANCES['ma-1-a'][2]}/api/v2/silences", data={
        "matchers": [{"name": "batch", "value": "3", "isRegex": False, "isEqual": True}],
        "startsAt": start, "endsAt": end, "createdBy": "molecule", "comment": "drill"})
    silence_id = created["silenceID"]
    t0 = time.monotonic()
    for name, (_, _, address) in INSTANCES.items():
        wait_for(lambda address=address: any(s["id"] == silence_id for s in call(f"https://{address}/api/v2/silences")),
                 10, f"the silence on {name}")
    print(f"\nsilence present on all instances after {time.monotonic() - t0:.1f}s")
    drill("3", 5)
    time.sleep(SCRAPE_AND_EVAL + GROUP_WAIT + 2 * PEER_TIMEOUT + 5)
    alerts = call(f"https://{INSTANCES['ma-2-a'][2]}/api/v2/alerts?silenced=true&filter=batch%3D%223%22")
    assert len(alerts) == 5 and all(a["status"]["state"] == "suppressed" for a in alerts)
    assert notifications("3") == []


def test_instance_with_empty_data_dir_gets_silences_back():
    host, unit, address = INSTANCES["ma-2-a"]
    before = {s["id"] for s in call(f"https://{INSTANCES['ma-1-a'][2]}/api/v2/silences")}
    assert before
    docker(host, "systemctl", "stop", unit)
    docker(host, "sh", "-c", "rm -rf /var/lib/alertmanager/a/*")
    docker(host, "systemctl", "start", unit)
    wait_for(lambda: status(address)["cluster"]["status"] == "ready", 90, "the emptied instance to settle")
    got = wait_for(lambda: {s["id"] for s in call(f"https://{address}/api/v2/silences")} >= before or None, 60,
                   "the silences to come back")
    assert got


def test_broken_config_is_refused_everywhere():
    before = {name: status(address)["config"]["original"] for name, (_, _, address) in INSTANCES.items()}
    files = {host: docker(host, "sha256sum", "/etc/alertmanager/alertmanager.yml").stdout for host in ("ma-1", "ma-2")}
    result = converge({"alertmanager_inhibit_rules": [{"source_matchers": ['severity=~"("'],
                                                       "target_matchers": ['severity="warning"']}]})
    assert result.returncode != 0
    assert "failed to validate" in result.output
    for name, (host, _, address) in INSTANCES.items():
        assert status(address)["config"]["original"] == before[name], name
        assert status(address)["cluster"]["status"] == "ready", name
        assert docker(host, "sha256sum", "/etc/alertmanager/alertmanager.yml").stdout == files[host], host
