"""A stranger on the stack's network: every probe it tries, and a container to try them from.

Shared by the lab's drill ("stranger on the network", scripts/drill.py) and the front
scenario's verifier. The plan comes from the inventory through ``topology.Topology``
(the same filters the roles use); the probes run inside a container on the stack's
own docker network that belongs to no inventory group (intruder_probes.py beside this file,
standard library only), and again from the controller without credentials.

    plan = intruder_plan(topo)
    with stranger(network, address, image, label) as name:
        results = probe_from(name, plan)
        forger = forge_vrrp(name, vrid, vip, balancer_addresses, seconds=20)
    from_controller = probe_here([p for p in plan if not p.get("ssh")])
"""

from __future__ import annotations

import contextlib
import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import intruder_probes

ROOT = Path(__file__).resolve().parents[2]
PROBES = Path(__file__).resolve().parent / "intruder_probes.py"  # copied into the stranger


def _rfc3339(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def intruder_plan(topo):
    """Every probe a stranger tries: lifecycle, admin and write APIs of every daemon, directly and
    through the front (when there is one), a database login, and ports outside its part of the
    firewall plan (SSH, gossip, the balancers' status page, Grafana's port)."""
    plan = []

    def http(name, method, url, body=None):
        plan.append({"name": name, "kind": "http", "method": method, "url": url, "body": body})

    def cbc(name, address, port):
        plan.append({"name": f"{name} TLS 1.2 CBC-SHA1 only", "kind": "tls_cbc", "address": address, "port": int(port)})

    def tcp(name, host, address, port, ssh=False):
        plan.append({"name": f"{host} TCP {port} ({name})", "kind": "tcp", "address": address,
                     "port": int(port), "ssh": ssh})

    silence = json.dumps({"matchers": [{"name": "alertname", "value": "Intruder", "isRegex": False}],
                          "startsAt": _rfc3339(datetime.now(UTC)),
                          "endsAt": _rfc3339(datetime.now(UTC) + timedelta(hours=1)),
                          "createdBy": "intruder", "comment": "should never exist"})
    for host in topo.hosts("prometheus") + topo.hosts("prometheus_global"):
        for path in ("/-/quit", "/-/reload", "/api/v1/admin/tsdb/snapshot", "/api/v1/admin/tsdb/delete_series?match[]=up"):
            http(f"{host} POST {path}", "POST", topo.url(host, "prometheus_port", path))
        http(f"{host} GET /api/v1/query", "GET", topo.url(host, "prometheus_port", "/api/v1/query?query=up"))
        for path in ("/metrics", "/api/v1/status/flags", "/api/v1/status/config", "/debug/pprof/cmdline"):
            http(f"{host} GET {path}", "GET", topo.url(host, "prometheus_port", path))
    front = topo.front_url() if topo.hosts("loadbalancer") else None
    if front:
        for shard in topo.shards:
            for path in ("-/quit", "-/reload", "api/v1/admin/tsdb/snapshot"):
                http(f"front shard {shard} POST /{path}", "POST", f"{front}/prometheus/shard-{shard}/{path}")
    for instance in topo.alertmanagers:
        base = f"{topo.access('alertmanager')['scheme']}://{instance['web']}"
        http(f"{instance['peer_name']} POST /api/v2/silences", "POST", f"{base}/api/v2/silences", silence)
        http(f"{instance['peer_name']} POST /-/quit", "POST", f"{base}/-/quit")
        for path in ("/metrics", "/api/v2/status", "/debug/pprof/cmdline"):
            http(f"{instance['peer_name']} GET {path}", "GET", f"{base}{path}")
    if front and topo.alertmanagers:
        http("front POST /alertmanager/api/v2/silences", "POST", f"{front}/alertmanager/api/v2/silences", silence)
        http("front POST /alertmanager/-/reload", "POST", f"{front}/alertmanager/-/reload")
    for host in topo.hosts("remote_storage"):
        for method, path in (("POST", "/api/v1/import"), ("POST", "/api/v1/admin/tsdb/delete_series?match[]=up"),
                             ("GET", "/snapshot/create"), ("GET", "/internal/force_merge"),
                             ("GET", "/api/v1/query?query=up"), ("GET", "/metrics"), ("GET", "/flags"),
                             ("GET", "/config"), ("GET", "/debug/pprof/"), ("GET", "/debug/pprof/cmdline")):
            http(f"{host} {method} {path.split('?')[0]}", method, topo.url(host, "remote_storage_port", path),
                 '{"metric":{"__name__":"intruder"},"values":[1],"timestamps":[0]}' if "import" in path else None)
    for host in topo.hosts("all"):
        http(f"{host} GET node_exporter /metrics", "GET", topo.url(host, "node_exporter_port", "/metrics"))
    for host in topo.hosts("mysql"):
        http(f"{host} GET mysqld_exporter /metrics", "GET", topo.url(host, "mysql_exporter_port", "/metrics"))
    for host in topo.hosts("loadbalancer"):
        http(f"{host} GET nginx metrics /metrics", "GET", topo.url(host, "nginx_exporter_port", "/metrics"))
    for host in topo.hosts("mysql"):
        plan.append({"name": f"{host} MySQL login", "kind": "mysql", "address": topo.address(host),
                     "port": int(topo.setting(host, "mysql_port"))})
    for host in topo.hosts("all"):
        tcp("ssh", host, topo.address(host), 22, ssh=True)
    for instance in topo.alertmanagers:
        tcp("gossip", instance["peer_name"], instance["address"], instance["cluster_port"])
    for host in topo.hosts("loadbalancer"):
        tcp("nginx status", host, topo.address(host), topo.setting(host, "nginx_status_port"))
    for host, endpoint in topo.model["endpoints"]["grafana"].items():
        tcp("grafana", host, *_split(endpoint))
    # Every TLS port of a Go daemon (the stack model's endpoints), and the front: a client
    # offering only CBC-SHA1 suites.
    for tier in ("prometheus", "node_exporter", "remote_storage", "mysql_exporter", "nginx_exporter"):
        if topo.access(tier)["scheme"] == "https":
            for host, endpoint in topo.model["endpoints"][tier].items():
                cbc(f"{host} {tier}", *_split(endpoint))
    if topo.access("alertmanager")["scheme"] == "https":
        for instance in topo.alertmanagers:
            cbc(f"{instance['peer_name']} alertmanager", *_split(instance["web"]))
    for host, endpoint in topo.model["endpoints"]["front"].items() if front else []:
        cbc(f"{host} front", *_split(endpoint))
    return plan


def _split(endpoint):
    """``(address, port)`` of an ``address:port`` (``[v6]:port``) endpoint of the stack model."""
    address, port = endpoint.rsplit(":", 1)
    return address.strip("[]"), port


def sweep_plan(topo, listening):
    """A port and ICMP sweep: a TCP connection to every port that listens anywhere in the stack
    (``listening``: host -> ports, read on the hosts), tried on every host and the floating
    address, and an ICMP echo and timestamp request to every host. Each probe says whether a
    stranger's part of the firewall plan lets it answer (``open``): the front's ports on the
    balancers and the floating address, and ICMP echo."""
    ports = sorted({int(port) for found in listening.values() for port in found})
    # The ports the front's clients call: the stack model's flows.
    front = {int(port) for h in topo.hosts("loadbalancer") for flow in topo.model["flows"][h] if flow["clients"]
             for port in flow["ports"]}
    targets = [(host, topo.address(host), host in topo.hosts("loadbalancer")) for host in topo.hosts("all")]
    if topo.hosts("loadbalancer"):
        targets.append(("floating address", topo.vip, True))
    plan = []
    for name, address, balancer in targets:
        for port in ports:
            plan.append({"name": f"{name} TCP {port} (sweep)", "kind": "tcp", "address": address, "port": port,
                         "open": balancer and port in front})
        if name != "floating address":
            plan.append({"name": f"{name} ICMP echo", "kind": "icmp", "address": address, "type": 8, "open": True})
            plan.append({"name": f"{name} ICMP timestamp", "kind": "icmp", "address": address, "type": 13,
                         "open": False})
    return plan


def refused(result):
    """A probe is refused when the daemon answers 401/403/404/405, an error packet or a failed TLS
    handshake, or nothing answers (the host firewall drops it: ``no answer``; nothing listens: ``closed``)."""
    return result["status"] in (401, 403, 404, 405, "error packet", "tls refused", "no answer", "closed")


def tally(results):
    """``status: count, ...`` of probe results."""
    statuses = {}
    for result in results:
        statuses[str(result["status"])] = statuses.get(str(result["status"]), 0) + 1
    return ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items()))


@contextlib.contextmanager
def stranger(network, address, image, label=None):
    """A container at ``address`` on the docker ``network``, in no inventory group; removed afterwards."""
    name = f"promha-stranger-{address.replace('.', '-').replace(':', '-')}"
    subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
    command = ["docker", "run", "-d", "--name", name, "--network", network, "--ip", address,
               "--entrypoint", "sleep"] + (["--label", label] if label else []) + [image, "infinity"]
    subprocess.run(command, capture_output=True, check=True)
    try:
        subprocess.run(["docker", "cp", str(PROBES), f"{name}:/root/"], capture_output=True, check=True)
        yield name
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)


def probe_from(container, plan):
    """Run ``plan`` inside ``container``; one result per probe, in plan order."""
    ran = subprocess.run(["docker", "exec", "-i", container, "python3", "/root/intruder_probes.py", "-"],
                         input=json.dumps(plan), capture_output=True, text=True, check=True, timeout=600)
    return [json.loads(line) for line in ran.stdout.splitlines() if line.strip()]


def forge_vrrp(container, vrid, vip, addresses, seconds):
    """Start forging VRRP advertisements from ``container`` (see intruder_probes.py) for
    ``seconds``; returns the running process (its output: the number of packets sent)."""
    forgery = {"vrid": int(vrid), "vip": vip, "addresses": list(addresses), "seconds": seconds}
    return subprocess.Popen(["docker", "exec", container, "python3", "/root/intruder_probes.py", "--forge-vrrp",
                             json.dumps(forgery)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def guess_burst(container, url, count, concurrency, user="promha"):
    """Start ``count`` requests of ``url`` from ``container``, each with another wrong password,
    ``concurrency`` at once; returns the running process (its output: the statuses, the seconds)."""
    burst = {"url": url, "user": user, "count": int(count), "concurrency": int(concurrency)}
    return subprocess.Popen(["docker", "exec", container, "python3", "/root/intruder_probes.py", "--guess-burst",
                             json.dumps(burst)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def probe_here(plan):
    """Run ``plan`` from this machine (the controller), without credentials."""
    with ThreadPoolExecutor(max_workers=16) as pool:
        return list(pool.map(intruder_probes.run, plan))
