#!/usr/bin/env python3
"""HA drills against the running lab: take a node away, measure, put it back.

    drill.py            every drill, full length (`make drill`)
    drill.py --short    the same drills with shorter observation windows and no
                        wait for the rule-driven alert (`make test` runs this)

Each drill asserts its outcome; the script prints a table of what was measured and
exits 1 when any drill failed. It needs the lab converged (`make lab`). The
Alertmanagers of the lab notify a webhook at the lab network's gateway (this
machine, group_vars/alertmanager/drill.yml): the script runs that receiver itself
while it drills, and logs every notification with its group key and sender.

Drills
 1. one Prometheus replica per shard stopped: queries through the floating address
    keep answering, remote storage has no gap longer than two scrape intervals,
    and (full run) the PrometheusReplicaMissing alert of each shard arrives once;
 2. the Alertmanager at cluster position 0 stopped: N alert groups, posted to every
    instance as both replicas of a pair would, arrive exactly once; it rejoins;
 3. one Alertmanager host partitioned from the others (routes refused both ways):
    each side notifies (duplicates counted: upstream promises at-least-once here);
    after healing, a silence made on the cut-off side is on every instance and the
    cluster is whole;
 4. the balancer holding the floating address stopped: the address moves, requests
    continue (failures counted, none after the move);
 5. the database stopped: Grafana reports it and recovers (only where Grafana is
    installed; otherwise reported as not checked, with the reason);
 6. a stranger on the network (a container in no inventory group): lifecycle,
    admin and write calls to every daemon, directly and through the floating
    address, a database login and two gossip joins (plain, and with another CA's
    certificate) are all refused; forged VRRP advertisements (priority 255, the
    balancers' addresses as sources) leave the floating address where it was and
    the front answering at every check, 0.5 s apart; a burst of wrong passwords
    through the front is cut short by its rate limit (429) while an operator's
    queries keep their speed (median within 2x of idle); a sweep of every port
    that listens anywhere, and ICMP echo and timestamp, finds only the planned
    flows; no web.yml salt lets a guess be checked; every daemon still serves,
    the cluster unchanged;
 7. everything back: every service healthy, the cluster whole, and a converge of
    site.yml changes nothing;
 8. one remote storage node stopped for 5 minutes (1 with --short) while the shards
    scrape: reads through the front's /storage/ (instant and over the last hour,
    every 2 s) all answer from the other node, which has no hole longer than one
    scrape interval; once the node is back, the shards' write-ahead logs fill its
    hole (measured per series, with the time it took), and both nodes' sample
    counts over the outage match within 1 % for every series;
 9. a replaced replica: one replica's container removed and made anew, empty,
    under the same inventory name, then site.yml: it scrapes what its peer does
    and the global tier sees from it what it sees from the peer;
10. rolling upgrade (only with --upgrade, after make releases; it runs last, and
    leaves the lab on Prometheus' new release): site.yml with .lab/releases/vars.yml, one HA member at a time,
    while queries run through the floating address and alert groups keep arriving:
    0 failed queries, no storage gap longer than two scrape intervals, every group
    notified exactly once, the cluster whole, each daemon on the archive's version;
    then Prometheus' way back (site.yml without the archives) is refused by preflight
    with nothing changed, since its data cannot go back below 2.55; then Alertmanager
    and node_exporter go back to the packages the same rolling way, with the same
    measures; a silence made before the upgrade is active on every instance after
    each step.
11. a storage node destroyed (container removed, made anew, empty) and refilled from
    its peer by playbooks/storage-refill.yml while reads run through /storage/ every
    0.5 s: none fails, and afterwards both nodes hold every series with sample
    counts over the whole retention within 1 %;
12. the federation host lost (its container stopped): global-view queries (the
    front's /storage/) keep answering;
13. backup, destroy, restore: playbooks/backup.yml, then a storage node destroyed and
    restored from its backup by playbooks/restore.yml (sample counts up to the backup
    match its peer's within 1 %), then the secrets directory moved away, restored into
    an empty place (identical files), and site.yml converging with nothing changed;
14. the database cluster: a writer on Grafana's path (the grafana account, TLS, the
    stable address) commits rows at 20/s while one member is killed and comes back,
    then the address's holder, then the whole cluster is stopped and started
    through the role: every acknowledged write is on every member, with the longest
    write pause per event and each rejoin time; then backup.yml, every member's
    container removed and made anew (an empty cluster), restore.yml: every
    acknowledged write is on every member again.
15. every Alertmanager stopped: the heartbeat stops, and returns with them;
16. the duplicate window: the host with the most Alertmanager instances killed (no
    goodbye), fresh alert groups posted to the survivors 2, 5, 10 and 20 s later
    (5 s with --short): at each delay the duplicates, missing groups, the survivors'
    positions and member counts, and running members dropped by mistake; none may
    be missing or dropped, and from DUPLICATE_FREE_AFTER s on none duplicated.
Drills 2, 6, 8, 9, 11, 13, 14, 15 and 16 take minutes each, or are proven again by a
molecule scenario (2: the alertmanager scenario's position 0 down): --short leaves
them to `make drill` unless --only names them.

A query fails when it gets no 200 within 5 s; answers slower than 1 s are counted
apart. Every drill that counts failed queries lists each failure: its time, path,
and the status and upstream (the lab's front adds X-Upstream-Addr) or the error.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "tests" / "helpers"))
import intruder  # noqa: E402
import lab  # noqa: E402
from live import wait_for  # noqa: E402
from topology import Topology  # noqa: E402

RECEIVER_PORT = 18080
# From this many seconds after an Alertmanager host is lost, alert groups posted to the
# survivors are delivered once (drill 16; roles/alertmanager's gossip settings).
DUPLICATE_FREE_AFTER = 5
RELEASES = ROOT / ".lab" / "releases" / "vars.yml"  # scripts/release-archives.py
STORAGE_UNIT = "victoria-metrics-server"  # roles/remote_storage's own unit


# --- the webhook receiver ---------------------------------------------------------------

class Receiver:
    """Alertmanager webhook on this machine: remembers every notification."""

    def __init__(self, port):
        self.log, self.lock = [], threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                payload = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                with receiver.lock:
                    receiver.log.append({"received": time.time(), "sender": payload.get("externalURL", ""),
                                         "group_key": payload.get("groupKey"), "status": payload.get("status"),
                                         "alerts": [a["labels"] for a in payload.get("alerts", [])]})
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        # All interfaces: the Alertmanagers reach this machine at the lab network's gateway.
        self.server = ThreadingHTTPServer(("0.0.0.0", port), Handler)  # noqa: S104
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def notifications(self, predicate=lambda n: True):
        with self.lock:
            return [n for n in self.log if n["status"] == "firing" and predicate(n)]


# --- the lab, as the inventory describes it ----------------------------------------------

class Lab:
    """The running lab as the roles see it: topology from the inventory through the filters."""

    def __init__(self, inventory):
        self.settings, self.hosts = lab.inventory(inventory)
        topo = self.topology = Topology(inventory)
        self.vip = topo.vip
        self.shards = topo.shards
        self.alertmanagers = {}  # peer name -> (host, unit, web address)
        for instance in topo.alertmanagers:
            self.alertmanagers[instance["peer_name"]] = (
                instance["host"], f"alertmanager@{instance['name']}", instance["web"])
        self.storage = topo.url(topo.hosts("remote_storage")[0], "remote_storage_port")
        self.database = topo.hosts("mysql")[0]
        self.grafanas = topo.hosts("grafana")
        replica = self.shards[0][0]
        self.scrape_interval = seconds(topo.setting(replica, "prometheus_scrape_interval"))
        self.peer_timeout = seconds(topo.setting(topo.alertmanagers[0]["host"], "alertmanager_cluster_peer_timeout"))
        self.pushpull = seconds(topo.setting(topo.alertmanagers[0]["host"], "alertmanager_cluster_pushpull_interval"))

    def prometheus(self, host, path=""):
        return self.topology.url(host, "prometheus_port", path)

    def alertmanager(self, address, path, data=None):
        """JSON from an Alertmanager instance (``address`` host:port), POSTing ``data`` when given."""
        scheme = self.topology.access("alertmanager")["scheme"]
        return self.topology.fetch_json("alertmanager", f"{scheme}://{address}{path}", data=data)

    def container(self, host):
        return self.hosts[host]["container"]

    def exec_input(self, container, data, *cmd):
        """Run ``cmd`` in a container by name (not an inventory host), ``data`` on its stdin."""
        done = subprocess.run(["docker", "exec", "-i", container, *cmd], input=data, capture_output=True, check=False)
        done.stdout = done.stdout.decode(errors="replace") if isinstance(done.stdout, bytes) else done.stdout
        return done

    def exec(self, host, *cmd):
        return subprocess.run(["docker", "exec", self.container(host), *cmd], capture_output=True, text=True,
                              check=False)

    def address(self, host):
        return self.hosts[host]["address"]

    def vip_holder(self):
        return lab.vip_holder(self.hosts, self.vip)


# --- helpers ---------------------------------------------------------------------------

def seconds(duration):
    """A duration of whole hours, minutes and seconds ('15s', '1m', Go's '1m0s') in seconds."""
    parts = re.findall(r"(\d+)([hms])", str(duration))
    if not parts or "".join(n + u for n, u in parts) != str(duration):
        raise ValueError(f"cannot read the duration {duration!r}")
    return sum(int(n) * {"s": 1, "m": 60, "h": 3600}[u] for n, u in parts)


def ok(url, timeout=2, topology=None, tier=None):
    """Whether ``url`` answers 200 (with ``tier``'s CA and credentials when given)."""
    try:
        if topology and tier:
            topology.fetch(tier, url, timeout=timeout)
        else:
            with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - the lab's own servers
                return response.status == 200
        return True
    except (OSError, ValueError, urllib.error.URLError):
        return False


def rfc3339(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def drill_alerts(batch, count):
    """`count` alerts of one batch, each its own group (the lab routes LabDrill by batch and id)."""
    now = datetime.now(UTC)
    return [{"labels": {"alertname": "LabDrill", "batch": batch, "id": str(i), "severity": "none"},
             "startsAt": rfc3339(now), "endsAt": rfc3339(now + timedelta(minutes=10))} for i in range(count)]


def post_alerts(drill_lab, addresses, batch, count):
    """Post `count` alert groups to every Alertmanager in `addresses`, as each Prometheus does."""
    alerts = drill_alerts(batch, count)
    for address in addresses:
        drill_lab.alertmanager(address, "/api/v2/alerts", data=alerts)


def cluster_sizes(drill_lab):
    return {name: len(drill_lab.alertmanager(address, "/api/v2/status")["cluster"]["peers"])
            for name, (_, _, address) in drill_lab.alertmanagers.items()}


def position_zero(drill_lab):
    first_address = next(iter(drill_lab.alertmanagers.values()))[2]
    first = sorted(peer["name"] for peer in drill_lab.alertmanager(first_address, "/api/v2/status")["cluster"]["peers"])[0]
    for name, (_, _, address) in drill_lab.alertmanagers.items():
        if drill_lab.alertmanager(address, "/api/v2/status")["cluster"]["name"] == first:
            return name
    raise AssertionError(f"no instance has the first peer name {first}")


def attempt(url, topology, tier, timeout=1):
    """``(True, upstream)`` when ``url`` answers 200, else ``(False, what went wrong)``: the status
    and the upstream that gave it (the lab's front names it in X-Upstream-Addr), or the error."""
    access = topology.access(tier)
    request = urllib.request.Request(url)
    if access["auth"]:
        token = base64.b64encode(f"{access['auth'][0]}:{access['auth'][1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    context = ssl.create_default_context(cafile=str(access["cafile"])) \
        if access["cafile"] and url.startswith("https:") else None
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:  # noqa: S310
            response.read()
            return response.status == 200, response.headers.get("X-Upstream-Addr", "-")
    except urllib.error.HTTPError as error:
        return False, f"HTTP {error.code} from upstream {error.headers.get('X-Upstream-Addr', '-')}"
    except (OSError, ValueError) as error:
        return False, f"{type(error).__name__}: {getattr(error, 'reason', error)}"


class Load:
    """Requests every `interval` s, in a thread, until stopped: ``url`` (or a callable giving it, for
    queries over a moving time range) with ``tier``'s CA and credentials. A request fails when it
    gets no 200 within ``timeout`` s (a user's dashboard waits longer); every failure is kept with
    its time, path, and the status and upstream or the error (``failures``), and answers slower than
    SLOW s are counted apart (``slow``)."""

    SLOW = 1.0

    def __init__(self, url, topology, tier="prometheus", interval=0.25, timeout=5):
        self.url, self.interval, self.timeout, self.results, self.failures = url, interval, timeout, [], []
        self.slow = 0
        self.topology, self.tier = topology, tier
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.done.is_set():
            began = time.monotonic()
            url = self.url() if callable(self.url) else self.url
            good, detail = attempt(url, self.topology, self.tier, timeout=self.timeout)
            self.results.append((began, good))
            self.slow += good and time.monotonic() - began > self.SLOW
            if not good:
                self.failures.append({"time": datetime.now(UTC).strftime("%H:%M:%S.%f")[:-3],
                                      "path": urllib.parse.urlsplit(url).path, "what": detail})
            self.done.wait(max(0.0, self.interval - (time.monotonic() - began)))

    def stop(self):
        self.done.set()
        self.thread.join()
        return self.results


def failure_lines(loads, most=10):
    """Each failed request of ``loads`` as ``time path: what`` (the first ``most``)."""
    failures = sorted((f for load in loads for f in load.failures), key=lambda f: f["time"])
    lines = [f"{f['time']} {f['path']}: {f['what']}" for f in failures[:most]]
    return lines + ([f"... and {len(failures) - most} more"] if len(failures) > most else [])


# --- the drills ---------------------------------------------------------------------------

def drill_prometheus(drill_lab, receiver, short):
    stopped = {shard: replicas[-1] for shard, replicas in drill_lab.shards.items()}
    window = 45 if short else 150
    load = Load(drill_lab.topology.front_url("/prometheus/shard-0/api/v1/query?query=up"), drill_lab.topology)
    loads = {shard: Load(drill_lab.topology.front_url(f"/prometheus/shard-{shard}/api/v1/query?query=up"),
                         drill_lab.topology)
             for shard in drill_lab.shards if shard != 0}
    time.sleep(5)
    stop_time = time.time()
    for host in stopped.values():
        drill_lab.exec(host, "systemctl", "stop", "prometheus")
    alert_seen = {}
    try:
        deadline = time.monotonic() + window
        while time.monotonic() < deadline:
            for shard, host in stopped.items():
                if shard not in alert_seen and receiver.notifications(
                        lambda n, host=host: any(a.get("alertname") == "PrometheusReplicaMissing"
                                                 and a.get("instance", "").startswith(drill_lab.address(host) + ":")
                                                 for a in n["alerts"])):
                    alert_seen[shard] = time.time() - stop_time
            if not short and len(alert_seen) == len(stopped):
                break
            time.sleep(1)
        if not short:
            time.sleep(drill_lab.peer_timeout + 5)  # room for a duplicate to show up
    finally:
        for host in stopped.values():
            drill_lab.exec(host, "systemctl", "start", "prometheus")
    restart_time = time.time()
    results = [*load.stop(), *(r for extra in loads.values() for r in extra.stop())]
    failed = sum(1 for _, good in results if not good)
    for host in stopped.values():
        wait_for(lambda host=host: ok(drill_lab.prometheus(host, "/-/ready"), topology=drill_lab.topology,
                                      tier="prometheus"), 90, f"{host} ready")
    gaps = {}
    for shard, replicas in drill_lab.shards.items():
        # Scraped series reach the storage without their shard label; the instance names the replica.
        query = self_scrape(drill_lab, replicas[0])

        def samples(query=query):
            return stored_stamps(drill_lab, query, stop_time - 30, restart_time + 30)

        # Until storage holds a sample from after the restart: the window is then complete.
        wait_for(lambda samples=samples: samples() and samples()[-1] >= restart_time, 60,
                 f"samples of {query} after the restart in remote storage")
        stamps = samples()
        gaps[shard] = max(b - a for a, b in zip(stamps, stamps[1:], strict=False)) if len(stamps) > 1 else window
    slow = load.slow + sum(extra.slow for extra in loads.values())
    figures = (f"{len(stopped)} replicas stopped {restart_time - stop_time:.0f}s; {failed} of {len(results)} queries "
               f"through {drill_lab.vip} failed ({slow} answered in over {Load.SLOW:.0f}s); longest storage gap per shard "
               + ", ".join(f"{s}: {g:.0f}s" for s, g in sorted(gaps.items())))
    problems = []
    if failed:
        problems.append(f"{failed} queries failed: " + "; ".join(failure_lines([load, *loads.values()])))
    if max(gaps.values()) > 2 * drill_lab.scrape_interval:
        problems.append(f"a storage gap is longer than {2 * drill_lab.scrape_interval}s")
    if not short:
        keys = [n["group_key"] for n in receiver.notifications(
            lambda n: any(a.get("alertname") == "PrometheusReplicaMissing" for a in n["alerts"]))]
        figures += ("; PrometheusReplicaMissing delivered after "
                    + ", ".join(f"shard {s}: {t:.0f}s" for s, t in sorted(alert_seen.items()))
                    + f" ({len(keys)} notifications, {len(set(keys))} groups)")
        if len(alert_seen) != len(stopped):
            problems.append(f"the alert arrived for shards {sorted(alert_seen)} only")
        if len(keys) != len(set(keys)):
            problems.append("a PrometheusReplicaMissing group was notified twice")
    return figures, problems


def stored_stamps(drill_lab, query, start, end, node=None):
    """Times (s) of the samples a storage node (default the first) holds for ``query`` between start and end."""
    base = drill_lab.topology.url(node, "remote_storage_port") if node else drill_lab.storage
    text = drill_lab.topology.fetch(
        "remote_storage", f"{base}/api/v1/export?match[]={urllib.parse.quote(query)}"
        f"&start={int(start)}&end={int(end)}", timeout=10)
    return sorted(t / 1000 for line in text.splitlines() if line for t in json.loads(line)["timestamps"])


def largest_gap(stamps, start, end):
    """The longest stretch of [start, end] without a sample (its edges count as ends)."""
    points = [start, *(t for t in stamps if start <= t <= end), end]
    return max(b - a for a, b in zip(points, points[1:], strict=False))


def sample_counts(drill_lab, node, start, end):
    """``{series: samples}`` one storage node holds between start and end, for every series."""
    window = max(1, int(end - start))
    query = urllib.parse.quote(f'count_over_time({{__name__=~".+"}}[{window}s]) keep_metric_names')
    data = drill_lab.topology.fetch_json("remote_storage", drill_lab.topology.url(
        node, "remote_storage_port", f"/api/v1/query?query={query}&time={int(end)}&nocache=1"), timeout=60)
    return {json.dumps(row["metric"], sort_keys=True): float(row["value"][1]) for row in data["data"]["result"]}


def count_difference(mine, theirs):
    """How two ``sample_counts`` agree: ``{compared, differing, largest, alone}``: the series both
    hold, those whose counts differ by more than 1 % *and* more than one sample (a series with a
    handful of samples, such as an alert's state, can be one sample apart at a window's edge), the
    largest difference in %, and the series only one side has with more than one sample.
    ``edge`` counts the series one sample apart by more than 1 %, a series with a single sample on
    one side only among them (it began or ended at the window's edge). ``examples`` names up to
    three series that differ or stand alone, with both counts."""
    common = mine.keys() & theirs.keys()
    differing = edge = alone = 0
    largest = 0.0
    examples = []
    for key in sorted(mine.keys() | theirs.keys()):
        a, b = mine.get(key, 0.0), theirs.get(key, 0.0)
        apart = abs(a - b)
        if key not in common:
            alone += apart > 1
            edge += apart <= 1
        else:
            share = apart / max(a, b) * 100
            largest = max(largest, share)
            if share <= 1:
                continue
            differing += apart > 1
            edge += apart <= 1
        if apart > 1 and len(examples) < 3:
            examples.append(f"{key} {a:g}/{b:g}")
    return {"compared": len(common), "differing": differing, "edge": edge, "largest": largest,
            "alone": alone, "examples": examples}


def agreement(counts):
    examples = counts.get("examples") or []
    return (f"{counts['compared']} series compared, {counts['differing']} differ by more than 1 % and one sample, "
            f"{counts['edge']} by one sample only (largest {counts['largest']:.2f} %), {counts['alone']} with "
            "samples on one node only" + (f" (for example {'; '.join(examples)})" if examples else ""))


def self_scrape(drill_lab, replica):
    """A series both replicas of a shard write (each scrapes the other): a hole means neither wrote."""
    return f'up{{job="prometheus",instance="{drill_lab.topology.host_port(replica, "prometheus_port")}"}}'


def drill_alertmanager_down(drill_lab, receiver, short):
    count = 10 if short else 20
    victim = position_zero(drill_lab)
    host, unit, victim_address = drill_lab.alertmanagers[victim]
    drill_lab.exec(host, "systemctl", "stop", unit)
    batch = uuid.uuid4().hex[:8]
    try:
        others = [a for n, (_, _, a) in drill_lab.alertmanagers.items() if n != victim]
        posted = time.time()
        post_alerts(drill_lab, others, batch, count)
        mine = lambda n: n["alerts"] and n["alerts"][0].get("batch") == batch  # noqa: E731
        wait_for(lambda: len({n["group_key"] for n in receiver.notifications(mine)}) >= count, 90,
                 f"{count} groups delivered")
        latest = max(n["received"] for n in receiver.notifications(mine)) - posted
        time.sleep(2 * drill_lab.peer_timeout + 5)
        received = receiver.notifications(mine)
    finally:
        drill_lab.exec(host, "systemctl", "start", unit)
    wait_for(lambda: all(size == len(drill_lab.alertmanagers) for size in cluster_sizes(drill_lab).values()), 120,
             f"{victim} rejoining")
    keys = [n["group_key"] for n in received]
    senders = sorted({re.sub(r"^https?://", "", n["sender"]) for n in received})
    figures = (f"{victim} (position 0) stopped: {len(keys)} notifications for {count} groups, all within "
               f"{latest:.1f}s, sent by {', '.join(senders)}; rejoined, {len(drill_lab.alertmanagers)} peers each")
    problems = []
    if len(keys) != count or len(set(keys)) != count:
        problems.append(f"{len(keys)} notifications ({len(set(keys))} groups) for {count} groups")
    if any(victim_address.split(":")[0] in s and victim_address.split(":")[1] in s for s in senders):
        problems.append("the stopped instance sent")
    return figures, problems


def drill_partition(drill_lab, receiver, short):
    count = 5 if short else 10
    cut_host = sorted({host for host, _, _ in drill_lab.alertmanagers.values()})[-1]
    cut = {n: a for n, (h, _, a) in drill_lab.alertmanagers.items() if h == cut_host}
    rest = {n: a for n, (h, _, a) in drill_lab.alertmanagers.items() if h != cut_host}
    batch = uuid.uuid4().hex[:8]
    mine = lambda n: n["alerts"] and n["alerts"][0].get("batch") == batch  # noqa: E731
    # A partition between the Alertmanager hosts: each side refuses routes to the other
    # (the hosts keep their own addresses, so each side still serves its own clients).
    am_hosts = {h for h, _, _ in drill_lab.alertmanagers.values()}
    far = {host: sorted(drill_lab.address(h) for h in am_hosts if (h == cut_host) != (host == cut_host))
           for host in am_hosts}

    def routes(action):
        for host, addresses in far.items():
            for address in addresses:
                done = drill_lab.exec(host, "ip", "route", action, "prohibit", f"{address}/32")
                assert done.returncode == 0 or action == "del", f"ip route {action} on {host}: {done.stderr}"

    routes("add")
    try:
        post_alerts(drill_lab, rest.values(), batch, count)
        # The cut-off side gets its own alerts and a silence, posted from inside the host.
        now = datetime.now(UTC)
        alerts = drill_alerts(batch, count)
        silence = {"matchers": [{"name": "alertname", "value": "LabDrillSilenced", "isRegex": False}],
                   "startsAt": rfc3339(now), "endsAt": rfc3339(now + timedelta(hours=1)),
                   "createdBy": "drill", "comment": "made on the cut-off side"}
        # On the host itself, with the CA the role installed there and the stack's credentials.
        access = drill_lab.topology.access("alertmanager")
        base = f"{access['scheme']}://{next(iter(cut.values()))}"
        script = ("import base64, json, ssl, sys, urllib.request as u\n"
                  "ctx = ssl.create_default_context(cafile='/etc/alertmanager/web/ca.crt') "
                  "if sys.argv[3].startswith('https') else None\n"
                  "def post(path, data):\n"
                  "    r = u.Request(sys.argv[3] + path, data=json.dumps(data).encode(),"
                  " headers={'Content-Type': 'application/json'})\n"
                  "    if sys.argv[4]:\n"
                  "        r.add_header('Authorization', 'Basic ' + base64.b64encode(sys.argv[4].encode()).decode())\n"
                  "    return u.urlopen(r, timeout=5, context=ctx).read().decode()\n"
                  "post('/api/v2/alerts', json.loads(sys.argv[1]))\n"
                  "print(json.loads(post('/api/v2/silences', json.loads(sys.argv[2])))['silenceID'])\n")
        made = drill_lab.exec(cut_host, "python3", "-c", script, json.dumps(alerts), json.dumps(silence), base,
                              ":".join(access["auth"]) if access["auth"] else "")
        assert made.returncode == 0, made.stderr
        silence_id = made.stdout.strip()
        wait_for(lambda: len({n["group_key"] for n in receiver.notifications(mine)}) >= count, 90,
                 f"{count} groups delivered by the connected side")
        time.sleep(10 if short else 30)
    finally:
        routes("del")
    healed = time.monotonic()
    wait_for(lambda: all(size == len(drill_lab.alertmanagers) for size in cluster_sizes(drill_lab).values()), 120,
             "the cluster whole again")
    # A broadcast made during the partition is lost with it; the silence then arrives with the
    # next full state exchange: a rejoin, or at the latest the push-pull interval (upstream's
    # design). Two intervals of room; the time it took is the figure.
    wait_for(lambda: all(any(s["id"] == silence_id for s in drill_lab.alertmanager(a, "/api/v2/silences"))
                         for a in rest.values()), 2 * drill_lab.pushpull + 10, "the cut-off side's silence on every instance")
    merged = time.monotonic() - healed
    time.sleep(2 * drill_lab.peer_timeout)  # the cut-off side may now deliver what it held back
    keys = [n["group_key"] for n in receiver.notifications(mine)]
    duplicates = len(keys) - len(set(keys))
    figures = (f"{cut_host} partitioned from the other Alertmanager hosts: {len(keys)} notifications for {count} "
               f"groups ({duplicates} duplicates; "
               f"at-least-once is what upstream promises in a partition); after healing, cluster whole and the "
               f"cut-off side's silence everywhere within {merged:.1f}s")
    problems = [] if len(set(keys)) == count else [f"{len(set(keys))} of {count} groups delivered"]
    return figures, problems


def drill_balancer(drill_lab, receiver, short):
    holder = drill_lab.vip_holder()
    assert holder, f"no balancer holds {drill_lab.vip}"
    load = Load(drill_lab.topology.front_url("/prometheus/shard-0/-/ready"), drill_lab.topology)
    time.sleep(3)
    stopped = time.monotonic()
    subprocess.run(["docker", "stop", "-t", "1", drill_lab.container(holder)], capture_output=True, check=True)
    moved_at = None
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and moved_at is None:
            if drill_lab.vip_holder() not in (None, holder):
                moved_at = time.monotonic()
            time.sleep(0.1)
        time.sleep(5 if short else 15)
    finally:
        results = load.stop()
        subprocess.run(["docker", "start", drill_lab.container(holder)], capture_output=True, check=True)
    wait_for(lambda: ok(drill_lab.topology.front_url("/prometheus/shard-0/-/ready", host=holder), topology=drill_lab.topology,
                        tier="prometheus"), 90, f"{holder} back")
    wait_for(lambda: drill_lab.exec(holder, "systemctl", "is-active", "keepalived").stdout.strip() == "active", 30,
             f"keepalived on {holder}")
    failed = [began for began, good in results if not good]
    after = [began for began in failed if moved_at is not None and began >= moved_at]
    figures = (f"{holder} stopped: address moved in "
               + (f"{moved_at - stopped:.1f}s" if moved_at else "never")
               + f"; {len(failed)} of {len(results)} requests (0.25s apart) failed, {len(after)} after the move")
    problems = []
    if moved_at is None:
        problems.append("the address did not move")
    if after:
        problems.append(f"{len(after)} requests failed after the move")
    return figures, problems


def drill_database(drill_lab, receiver, short):
    report = lab.GRAFANA_REPORT
    installed = [h for h in drill_lab.grafanas
                 if drill_lab.exec(h, "dpkg-query", "-W", "grafana").returncode == 0]
    if not installed:
        reason = report.read_text().splitlines()[0] if report.exists() else "Grafana is not installed"
        return reason, None
    health = drill_lab.topology.url(installed[0], "grafana_http_port", "/api/health")
    drill_lab.exec(drill_lab.database, "systemctl", "stop", "mariadb")
    try:
        wait_for(lambda: not ok(health, topology=drill_lab.topology, tier="grafana"), 60, "Grafana reporting the database down")
        down = "Grafana's /api/health failed while the database was stopped"
    finally:
        drill_lab.exec(drill_lab.database, "systemctl", "start", "mariadb")
    started = time.monotonic()
    wait_for(lambda: ok(health, topology=drill_lab.topology, tier="grafana"), 90, "Grafana healthy again")
    return f"{down}; healthy again {time.monotonic() - started:.1f}s after it came back", []


INTRUDER_PORT = 9093  # the intruder's own Alertmanager, trying to join the gossip


def drill_intruder(drill_lab, receiver, short):
    import ipaddress
    network = drill_lab.settings["lab_network_name"]
    subnet = ipaddress.ip_network(drill_lab.settings["lab_network_subnet"])
    taken = {drill_lab.address(h) for h in drill_lab.hosts} | {drill_lab.vip}
    address = next(str(a) for a in reversed(list(subnet.hosts())) if str(a) not in taken)
    image = subprocess.run(["docker", "inspect", "-f", "{{.Config.Image}}", drill_lab.container(drill_lab.database)],
                           capture_output=True, text=True, check=True).stdout.strip()
    members_before = cluster_sizes(drill_lab)
    plan = intruder.intruder_plan(drill_lab.topology)
    with intruder.stranger(network, address, image, label=f"{lab.LABEL}={network}") as name:
        results = intruder.probe_from(name, plan)
        gossip = intruder_gossip(drill_lab, name, address)
        forgery = forged_vrrp(drill_lab, name, 10 if short else 30)
        guesses = wrong_password_burst(drill_lab, name, 200 if short else 800)
        sweep = port_sweep(drill_lab, name)
    salted = salt_problems(drill_lab)
    # The same probes from the controller, which the firewall lets through as admin and
    # operator (SSH aside: it is the admin): without credentials, every daemon refuses.
    own = [p for p in plan if not p.get("ssh")]
    from_controller = intruder.probe_here(own)
    refused, tally = intruder.refused, intruder.tally
    accepted = ([r for r in results if not refused(r)] + [g for g in gossip if g["joined"]]
                + [dict(r, name=f"controller: {r['name']}") for r in from_controller if not refused(r)])
    members_after = cluster_sizes(drill_lab)
    summary = subprocess.run([sys.executable, str(ROOT / "scripts" / "lab.py"), "summary", "--strict"],
                             capture_output=True, text=True, check=False)
    tried = len(results) + len(gossip)
    intruder_accepted = [r for r in accepted if not r["name"].startswith("controller: ")]
    figures = (f"from {address} (no group): {tried} probes, {tried - len(intruder_accepted)} refused ("
               + tally(results)
               + f"; gossip joins refused {sum(1 for g in gossip if not g['joined'])} of {len(gossip)}); "
               f"from the controller without credentials: {len(from_controller)} probes, "
               f"{sum(1 for r in from_controller if refused(r))} refused ({tally(from_controller)}); "
               f"forged VRRP: {forgery['sent']} packets, the address off {forgery['holder']} in {len(forgery['moved'])} "
               f"and the front failing in {len(forgery['failed'])} of {forgery['checks']} checks 0.5 s apart; "
               f"wrong passwords through the front: {guesses['sent']} in {guesses['seconds']} s ({guesses['statuses']}), "
               f"an operator's query median {guesses['idle'] * 1000:.0f} ms idle and {guesses['during'] * 1000:.0f} ms "
               f"during them; "
               f"a sweep of {len(sweep['plan'])} ports and ICMP requests: {len(sweep['answered'])} answered, "
               f"{len(sweep['unexpected'])} beyond the plan, {len(sweep['missing'])} planned ones silent; "
               f"web.yml salts checked on {salted['hosts']} replicas, {len(salted['problems'])} open to a guess; "
               f"cluster members before {sorted(set(members_before.values()))}, after {sorted(set(members_after.values()))}; "
               f"every service {'healthy' if summary.returncode == 0 else 'NOT healthy'} afterwards")
    problems = [f"accepted: {r['name']} -> {r.get('status')} {r.get('answer', '')[:120]}" for r in accepted]
    problems += [f"the intruder's Alertmanager did not run for the {g['kind']} gossip attempt" for g in gossip
                 if not g["ran"]]
    if members_after != members_before or len(results) != len(plan) or len(from_controller) != len(own):
        problems.append(f"cluster sizes {members_before} -> {members_after}; {len(results)} of {len(plan)} probes ran")
    if summary.returncode != 0:
        problems.append("a service is down after the probes:\n" + summary.stdout)
    if not forgery["sent"] or forgery["moved"] or forgery["failed"]:
        problems.append(f"forged VRRP: {forgery['sent']} packets sent; address elsewhere at {forgery['moved'][:5]}, "
                        f"front failing at {forgery['failed'][:5]}")
    if guesses["during"] > max(2 * guesses["idle"], guesses["idle"] + 0.05) or guesses["refused_operator"]:
        problems.append(f"wrong passwords slowed an operator's queries: median {guesses['idle']:.3f} s idle, "
                        f"{guesses['during']:.3f} s during the burst; {guesses['refused_operator']} not answered 200")
    if guesses["statuses"].get("429", 0) == 0:
        problems.append(f"the front did not limit the wrong passwords: {guesses['statuses']}")
    if sweep["unexpected"] or sweep["missing"]:
        problems.append(f"sweep: answered beyond the plan {sweep['unexpected'][:10]}; planned but silent "
                        f"{sweep['missing'][:10]}")
    problems += salted["problems"]
    return figures, problems


def port_sweep(drill_lab, name):
    """Every TCP port that listens on any lab host (ss, read on each), tried on every host and the
    floating address, and ICMP echo and timestamp requests (tests/helpers/intruder.py sweep_plan):
    what answered beyond the plan, and what the plan opens but stayed silent."""
    listening = {}
    for host in drill_lab.hosts:
        lines = drill_lab.exec(host, "ss", "-Htln").stdout.splitlines()
        listening[host] = {int(line.split()[3].rsplit(":", 1)[1]) for line in lines if line.strip()}
    plan = intruder.sweep_plan(drill_lab.topology, listening)
    results = intruder.probe_from(name, plan)
    answered = {r["name"] for r in results if r["status"] in ("connected", "answered")}
    planned = {p["name"] for p in plan if p["open"]}
    return {"plan": plan, "answered": sorted(answered), "unexpected": sorted(answered - planned),
            "missing": sorted(planned - answered)}


def salt_problems(drill_lab):
    """Prometheus' web.yml on each replica: the password verifies against its hash, and the salt is
    not the unkeyed derivation of that password (HMAC of the password over host and user), which
    would let a guess be checked at HMAC speed."""
    import hashlib
    import hmac

    import bcrypt
    import yaml
    password = drill_lab.topology.access("prometheus")["auth"][1]
    alphabet = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
                             "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
    problems, hosts = [], 0
    for host in drill_lab.topology.hosts("prometheus"):
        hashed = yaml.safe_load(drill_lab.exec(host, "cat", "/etc/prometheus/web/web.yml").stdout or "{}")
        hashed = (hashed or {}).get("basic_auth_users", {}).get("promha", "")
        hosts += 1
        if not hashed or not bcrypt.checkpw(password.encode(), hashed.encode()):
            problems.append(f"{host}: web.yml has no hash the password verifies against")
            continue
        unkeyed = hmac.new(password.encode(), f"{host}\0promha".encode(), hashlib.sha256).digest()[:16]
        if hashed[7:29] == base64.b64encode(unkeyed).decode()[:22].translate(alphabet):
            problems.append(f"{host}: the salt in web.yml is the password's unkeyed derivation")
    return {"hosts": hosts, "problems": problems}


def wrong_password_burst(drill_lab, name, count):
    """The stranger sends ``count`` requests through the front, each with another wrong password, 8 at
    a time; the controller (an operator) queries through the front 4 times a second before and
    meanwhile. Medians in seconds, and the operator's answers that were not 200."""
    url = drill_lab.topology.front_url("/prometheus/shard-0/api/v1/query?query=up")

    def operator(rounds=None, until=None):
        times, bad = [], 0
        while (rounds is not None and len(times) < rounds) or (until is not None and until.poll() is None):
            began = time.monotonic()
            good = ok(url, timeout=10, topology=drill_lab.topology, tier="prometheus")
            times.append(time.monotonic() - began)
            bad += not good
            time.sleep(max(0.0, 0.25 - (time.monotonic() - began)))
        return sorted(times)[len(times) // 2] if times else 0.0, bad

    idle, bad_idle = operator(rounds=20)
    burst = intruder.guess_burst(name, url, count, 8)
    during, bad_during = operator(until=burst)
    result = json.loads(burst.stdout.read() or "{}")
    statuses = result.get("statuses", {})
    return {"sent": sum(statuses.values()), "seconds": result.get("seconds"), "statuses": statuses, "idle": idle,
            "during": during, "refused_operator": bad_idle + bad_during}


def forged_vrrp(drill_lab, name, seconds):
    """The stranger forges VRRP advertisements for the floating address (scripts/intruder_probes.py)
    for ``seconds``; every 0.5 s meanwhile: who holds the address, and whether the front answers."""
    holder = drill_lab.vip_holder()
    balancers = drill_lab.topology.hosts("loadbalancer")
    vrid = drill_lab.topology.setting(balancers[0], "keepalived_virtual_router_id")
    forger = intruder.forge_vrrp(name, vrid, drill_lab.vip, [drill_lab.address(h) for h in balancers], seconds)
    ready = drill_lab.topology.front_url("/prometheus/shard-0/-/ready")
    checks, moved, failed = 0, [], []
    started = time.monotonic()
    while forger.poll() is None:
        began = time.monotonic()
        checks += 1
        now = drill_lab.vip_holder()
        if now != holder:
            moved.append((round(began - started, 1), now))
        if not ok(ready, topology=drill_lab.topology, tier="prometheus"):
            failed.append(round(began - started, 1))
        time.sleep(max(0.0, 0.5 - (time.monotonic() - began)))
    sent = forger.stdout.read().strip()
    return {"holder": holder, "sent": int(sent) if sent.isdigit() else 0, "checks": checks, "moved": moved,
            "failed": failed}


def intruder_gossip(drill_lab, name, address):
    """An Alertmanager started on the intruder tries to join the cluster: plainly, then with a
    certificate from a CA of its own. Joined means a real instance lists it, or it sees a real peer."""
    donor = drill_lab.container(drill_lab.topology.alertmanagers[0]["host"])
    binary = subprocess.run(["docker", "exec", donor, "cat", "/usr/bin/prometheus-alertmanager"],
                            capture_output=True, check=True).stdout
    drill_lab.exec_input(name, binary, "sh", "-c",
                         "mkdir -p /root/am && cat > /root/am/alertmanager && chmod +x /root/am/alertmanager")
    # Debian's build reads its notification templates from here.
    templates = subprocess.run(["docker", "exec", donor, "tar", "-C", "/", "-cf", "-",
                                "usr/share/prometheus/alertmanager"], capture_output=True, check=True).stdout
    drill_lab.exec_input(name, templates, "tar", "-C", "/", "-xf", "-")
    peers = [instance["cluster"] for instance in drill_lab.topology.alertmanagers]
    setup = ("set -e; cd /root/am; printf 'route: {receiver: x}\\nreceivers: [{name: x}]\\n' > am.yml; "
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=other-ca "
             "-keyout ca.key -out ca.crt 2>/dev/null; "
             "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=intruder "
             "-keyout me.key -out me.csr 2>/dev/null; "
             f"printf 'subjectAltName=IP:{address}\\nextendedKeyUsage=serverAuth,clientAuth\\n' > ext; "
             "openssl x509 -req -in me.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 -extfile ext "
             "-out me.crt 2>/dev/null; "
             "printf 'tls_server_config: {cert_file: /root/am/me.crt, key_file: /root/am/me.key, "
             "client_ca_file: /root/am/ca.crt, client_auth_type: RequireAndVerifyClientCert}\\n"
             "tls_client_config: {ca_file: /root/am/ca.crt, cert_file: /root/am/me.crt, key_file: /root/am/me.key}\\n' > tls.yml")
    made = drill_lab.exec_input(name, b"", "sh", "-c", setup)
    attempts = []
    for kind, extra in (("plain", ""), ("another CA", "--cluster.tls-config=/root/am/tls.yml")):
        attempt = len(attempts)
        command = (f"/root/am/alertmanager --config.file=/root/am/am.yml --storage.path=/root/am/data-{attempt} "
                   f"--web.listen-address={address}:{INTRUDER_PORT} --cluster.listen-address={address}:9094 "
                   f"--cluster.advertise-address={address}:9094 {extra} "
                   + " ".join(f"--cluster.peer={peer}" for peer in peers)
                   + f" >/root/am/log-{attempt} 2>&1 & echo $!")
        pid = drill_lab.exec_input(name, b"", "sh", "-c", command).stdout.strip()

        def seen_by_intruder():
            """Peers the intruder's own Alertmanager sees (0 while it does not answer yet)."""
            ran = drill_lab.exec_input(name, b"", "python3", "-c",
                                       "import json,urllib.request;print(len(json.load(urllib.request.urlopen("
                                       f"'http://{address}:{INTRUDER_PORT}/api/v2/status', timeout=3))['cluster']['peers']))")
            return int(ran.stdout.strip()) if ran.returncode == 0 and ran.stdout.strip().isdigit() else 0

        # It serves only after its first join attempt gives up (10 s); then it keeps retrying.
        deadline = time.monotonic() + 90
        while seen_by_intruder() == 0 and time.monotonic() < deadline:
            time.sleep(2)
        time.sleep(15)  # room for further join attempts
        seen = seen_by_intruder()
        listed = any(address in peer.get("address", "") for _, _, a in drill_lab.alertmanagers.values()
                     for peer in drill_lab.alertmanager(a, "/api/v2/status")["cluster"]["peers"])
        drill_lab.exec_input(name, b"", "kill", pid)
        # An attempt counts only when the intruder's own Alertmanager ran (it sees itself).
        attempts.append({"kind": kind, "joined": listed or seen > 1, "ran": made.returncode == 0 and seen >= 1})
    return attempts


def site(*extra, playbook=ROOT / "site.yml"):
    """``(completed run, {host: changed})`` of site.yml (or ``playbook``) on the lab."""
    converge = subprocess.run([str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", str(ROOT / "inventories" / "lab"),
                               str(playbook), *extra], capture_output=True, text=True, check=False, cwd=ROOT,
                              env=dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1"))
    changed = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\S+)\s*:\s*ok=\d+\s+changed=(\d+)",
                                                                converge.stdout, re.M) if m.group(1) != "localhost"}
    return converge, changed


def failed_run(converge, what):
    """A problem naming ``what`` with the end of its output when the playbook failed, else none."""
    return [f"{what} failed (rc {converge.returncode}):\n{converge.stdout[-3000:]}"] if converge.returncode else []


def drill_whole(drill_lab, receiver, short):
    summary = subprocess.run([sys.executable, str(ROOT / "scripts" / "lab.py"), "summary", "--strict"],
                             capture_output=True, text=True, check=False)
    sizes = cluster_sizes(drill_lab)
    started = time.monotonic()
    converge, changed = site()
    retried = ""
    if converge.returncode == 4:
        # A host the controller lost its connection to (seen once on a loaded 2-core lab): named, and
        # the converge run once more; a host that is really unreachable fails the second run too.
        lost = re.findall(r"^(\S+)\s+:.*unreachable=[1-9]", converge.stdout, re.M)
        reasons = sorted(set(re.findall(r"UNREACHABLE!.*|msg: .*", converge.stdout)))[:3]
        retried = f" (first run rc 4, {', '.join(lost) or '?'} unreachable: {'; '.join(reasons)}; run again)"
        converge, changed = site()
    figures = (f"service table {'healthy' if summary.returncode == 0 else 'NOT healthy'}; Alertmanager peers "
               f"{sorted(set(sizes.values()))}; converge rc {converge.returncode} in {time.monotonic() - started:.0f}s, "
               f"changed={sum(changed.values())} on {len(changed)} hosts{retried}")
    problems = []
    if summary.returncode != 0:
        problems.append("a service is down:\n" + summary.stdout)
    if set(sizes.values()) != {len(drill_lab.alertmanagers)}:
        problems.append(f"cluster sizes {sizes}")
    if converge.returncode != 0 or sum(changed.values()) != 0:
        problems.append(f"the converge changed something or failed: {changed}\n{converge.stdout[-2000:]}")
    return figures, problems


def storage_reads(drill_lab, interval=2.0):
    """Queries through the front's storage read endpoint (the global view), as Grafana sends them:
    an instant query, and a range query over the last hour."""
    def ranged():
        now = int(time.time())
        return drill_lab.topology.front_url(f"/storage/api/v1/query_range?query=up&start={now - 3600}&end={now}&step=60")

    return [Load(drill_lab.topology.front_url("/storage/api/v1/query?query=up"), drill_lab.topology,
                 tier="remote_storage", interval=interval, timeout=5),
            Load(ranged, drill_lab.topology, tier="remote_storage", interval=interval, timeout=5)]


def read_figures(loads):
    results = [r for load in loads for r in load.stop()]
    failed = sum(1 for _, good in results if not good)
    return failed, len(results), failure_lines(loads)


def holes_on(drill_lab, node, start, end):
    """The largest hole per replica's self-scrape series on one storage node over [start, end]."""
    replicas = [replica for members in drill_lab.shards.values() for replica in members]
    return {r: largest_gap(stored_stamps(drill_lab, self_scrape(drill_lab, r), start, end, node=node), start, end)
            for r in replicas}


# Paths under the front's /storage/ that must never reach a storage node, even with its credentials.
STORAGE_REFUSED = ["/storage/api/v1/write", "/storage/api/v1/import", "/storage/api/v1/admin/tsdb/delete_series",
                   "/storage/snapshot/create", "/storage/metrics", "/storage/flags", "/storage/debug/pprof/",
                   "/storage/internal/force_merge", "/storage/api/v1/export"]


def storage_refusals(drill_lab):
    """``{path: answer}`` of the front for each of STORAGE_REFUSED, called with the storage credentials."""
    return {path: attempt(drill_lab.topology.front_url(path), drill_lab.topology, "remote_storage", timeout=5)[1]
            for path in STORAGE_REFUSED}


def drill_storage_outage(drill_lab, receiver, short):
    nodes = drill_lab.topology.hosts("remote_storage")
    host, survivor = nodes[0], (nodes[1:] or [None])[0]
    refusals = storage_refusals(drill_lab) if survivor else {}
    allowed = {path: answer for path, answer in refusals.items() if not answer.startswith("HTTP 403")}
    outage = 60 if short else 300
    reads = storage_reads(drill_lab) if survivor else []
    time.sleep(2)
    stopped = time.time()
    stop = drill_lab.exec(host, "systemctl", "stop", STORAGE_UNIT)
    try:
        if stop.returncode != 0 or ok(f"{drill_lab.storage}/health", topology=drill_lab.topology, tier="remote_storage"):
            return f"aborted: {STORAGE_UNIT} on {host} did not stop: {stop.stderr.strip()}", ["the storage kept running"]
        time.sleep(outage)
    finally:
        drill_lab.exec(host, "systemctl", "start", STORAGE_UNIT)
    back = time.time()
    failed, queries, failures = read_figures(reads) if reads else (0, 0, [])
    # The shards resend what the node missed from their write-ahead logs: poll, from
    # the moment it is back, until every series is whole over the outage (and the 30 s
    # before it), at most 5 minutes.
    start, end = stopped - 30, back
    holes, caught = {}, None
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            holes = holes_on(drill_lab, host, start, end)
        except OSError:
            holes = {}
        if holes and max(holes.values()) <= 2 * drill_lab.scrape_interval:
            caught = time.time() - back
            break
        time.sleep(2)
    figures = (f"{host} stopped {back - stopped:.0f}s; "
               + (f"every series whole again on it {caught:.0f}s after it returned" if caught is not None
                  else "the series were NOT whole on it within 5 minutes")
               + "; largest hole per series " + ", ".join(f"{r}: {g:.0f}s" for r, g in sorted(holes.items())))
    problems = []
    if caught is None:
        problems.append(f"holes longer than {2 * drill_lab.scrape_interval}s remain: {holes}")
    if survivor:
        # The survivor took every write meanwhile; once the returned node is whole, both
        # hold the same samples over the outage for every series.
        kept = holes_on(drill_lab, survivor, start, end)
        # The resent samples become searchable within seconds; compare until both agree
        # to the sample, at most 5 minutes, 1 minute in the short drill (the last
        # comparison is the one reported; only series apart by more than one sample fail).
        settle = time.monotonic() + (60 if short else 300)
        while True:
            counts = count_difference(sample_counts(drill_lab, host, stopped, back),
                                      sample_counts(drill_lab, survivor, stopped, back))
            if not (counts["differing"] or counts["edge"] or counts["alone"]) or time.monotonic() > settle:
                break
            time.sleep(drill_lab.scrape_interval)
        agreed = time.time() - back
        figures += (f"; reads through the front's /storage/: {failed} of {queries} failed; on {survivor} the largest "
                    f"hole {max(kept.values()):.0f}s; outage-window sample counts {agreed:.0f}s after its return: "
                    f"{agreement(counts)}")
        figures += f"; {len(refusals) - len(allowed)} of {len(refusals)} write, admin and debug paths refused at /storage/"
        if allowed:
            problems.append(f"the front's /storage/ forwards what it must refuse: {allowed}")
        if failed:
            problems.append(f"{failed} reads failed: " + "; ".join(failures))
        if max(kept.values()) > drill_lab.scrape_interval + 1:
            problems.append(f"{survivor} has a hole longer than one scrape interval: {kept}")
        if counts["differing"] or not counts["compared"]:
            problems.append(f"{host} and {survivor} differ: {agreement(counts)}")
    return figures, problems


def remake(drill_lab, host):
    """Remove ``host``'s container and make it anew, empty, from the same image."""
    image = subprocess.run(["docker", "inspect", "-f", "{{.Config.Image}}", drill_lab.container(host)],
                           capture_output=True, text=True, check=True).stdout.strip()
    subprocess.run(["docker", "rm", "-f", "-v", drill_lab.container(host)], capture_output=True, check=True)
    subprocess.run([sys.executable, str(ROOT / "scripts" / "lab.py"), "up", "--image", image, "--host", host],
                   capture_output=True, check=True)
    return image


def playbook(name, *extra):
    """``(completed run, {host: changed})`` of playbooks/``name`` on the lab."""
    return site(*extra, playbook=ROOT / "playbooks" / name)


def whole_retention(drill_lab, node, peer, since):
    """Sample counts of every series on ``node`` against ``peer`` from ``since`` to now."""
    now = time.time() - 2 * drill_lab.scrape_interval  # what both hold by now
    return count_difference(sample_counts(drill_lab, node, since, now), sample_counts(drill_lab, peer, since, now))


def drill_storage_rebuild(drill_lab, receiver, short):
    nodes = drill_lab.topology.hosts("remote_storage")
    if len(nodes) < 2:
        return "not checked: one storage node, nothing to refill from", None
    # The node refilled runs the newest release among them (a newer release reads an
    # older one's data, not the other way round: a mixed lab refills the newer node).
    versions = {node: storage_release(drill_lab, node) for node in nodes}
    host = max(reversed(nodes), key=lambda node: versions[node])
    peer = next(node for node in nodes if node != host)
    since = first_sample(drill_lab, peer)
    reads = storage_reads(drill_lab, interval=0.5)
    time.sleep(2)
    made = time.time()
    remake(drill_lab, host)
    refill, changed = playbook("storage-refill.yml", "-e", f"storage_refill_host={host}")
    took = time.time() - made
    failed, queries, failures = read_figures(reads)
    if refill.returncode:
        return f"storage-refill.yml failed after {took:.0f}s", failed_run(refill, "storage-refill.yml")
    counts = whole_retention(drill_lab, host, peer, since)
    figures = (f"{host} (VictoriaMetrics {'.'.join(map(str, versions[host]))}) removed, made anew and refilled from "
               f"{peer} ({'.'.join(map(str, versions[peer]))}; storage-refill.yml rc {refill.returncode}, "
               f"{took:.0f}s); reads through /storage/: {failed} of {queries} failed; over the whole retention "
               f"({(time.time() - since) / 60:.0f} min): {agreement(counts)}")
    problems = failed_run(refill, "storage-refill.yml")
    if failed:
        problems.append(f"{failed} reads failed: " + "; ".join(failures))
    if counts["differing"] or not counts["compared"] or counts["alone"]:
        problems.append(f"{host} and {peer} differ: {agreement(counts)}")
    return figures, problems


def storage_release(drill_lab, node):
    """The VictoriaMetrics package release on ``node`` as a tuple of ints (``()`` when unknown)."""
    out = drill_lab.exec(node, "dpkg-query", "--show", "--showformat=${Version}", "victoria-metrics").stdout
    return release_tuple(out)


def release_tuple(version):
    """``(1, 112, 0)`` from a Debian version such as ``1.112.0+ds1-1`` (epoch and suffix dropped)."""
    match = re.match(r"^(?:\d+:)?(\d+(?:\.\d+)*)", version.strip())
    return tuple(int(part) for part in match.group(1).split(".")) if match else ()


def first_sample(drill_lab, node):
    """The time of the oldest sample a storage node holds (the lab's start)."""
    query = urllib.parse.quote('min(tfirst_over_time(up[30d]))')
    data = drill_lab.topology.fetch_json("remote_storage", drill_lab.topology.url(
        node, "remote_storage_port", f"/api/v1/query?query={query}"), timeout=30)
    return float(data["data"]["result"][0]["value"][1])


def drill_global_lost(drill_lab, receiver, short):
    lost = (drill_lab.topology.hosts("prometheus_global") or drill_lab.topology.hosts("remote_storage"))[0]
    reads = storage_reads(drill_lab, interval=0.5)
    time.sleep(2)
    subprocess.run(["docker", "stop", "-t", "1", drill_lab.container(lost)], capture_output=True, check=True)
    try:
        time.sleep(20 if short else 60)
    finally:
        subprocess.run(["docker", "start", drill_lab.container(lost)], capture_output=True, check=True)
    failed, queries, failures = read_figures(reads)
    wait_for(lambda: drill_lab.exec(lost, "systemctl", "is-active", "ssh").stdout.strip() == "active", 60, f"{lost} back")
    figures = f"{lost} stopped; global-view queries (the front's /storage/): {failed} of {queries} failed"
    return figures, ([f"{failed} global queries failed: " + "; ".join(failures)] if failed else [])


def drill_backup_restore(drill_lab, receiver, short):
    nodes = drill_lab.topology.hosts("remote_storage")
    if not drill_lab.topology.hosts("backup"):
        return "not checked: no backup host in the inventory", None
    host, peer = nodes[-1], nodes[0]
    since = first_sample(drill_lab, host)
    backup, _ = playbook("backup.yml")
    taken = time.time()
    problems = failed_run(backup, "backup.yml")
    if problems:
        return "backup.yml failed", problems
    # The storage node: destroyed, made anew, filled from its own backup.
    remake(drill_lab, host)
    restore, _ = playbook("restore.yml", "-e", f"storage_refill_host={host}")
    problems += failed_run(restore, "restore.yml (storage)")
    # Counts up to the backup's time: the restored node's against its peer's.
    mine, theirs = sample_counts(drill_lab, host, since, taken - 60), sample_counts(drill_lab, peer, since, taken - 60)
    counts = count_difference(mine, theirs)
    # The secrets: a fresh checkout has none; restored, they converge with nothing changed.
    secrets = drill_lab.topology.secrets_dir
    before = {p.relative_to(secrets): p.read_bytes() for p in secrets.rglob("*") if p.is_file()}
    aside = secrets.with_name(secrets.name + ".drill-aside")
    secrets.rename(aside)
    try:
        restored, _ = playbook("restore.yml", "-e", "restore_secrets=true")
        after = {p.relative_to(secrets): p.read_bytes() for p in secrets.rglob("*") if p.is_file()}
        converge, changed = site()
    except BaseException:
        if not secrets.exists():
            aside.rename(secrets)
        raise
    same = after == before
    figures = (f"backup.yml rc {backup.returncode}; {host} destroyed and restored from its backup (restore.yml rc "
               f"{restore.returncode}), up to the backup against {peer}: {agreement(counts)}; the secrets directory restored "
               f"into an empty place ({len(after)} files, {'identical' if same else 'DIFFERENT'}), then site.yml rc "
               f"{converge.returncode} changed={sum(changed.values())}")
    problems += failed_run(restored, "restore.yml (secrets)") + failed_run(converge, "site.yml after the restore")
    if counts["differing"] or not counts["compared"]:
        problems.append(f"after the restore {host} and {peer} differ: {agreement(counts)}")
    if not same:
        problems.append(f"the restored secrets differ: {sorted(set(before) ^ set(after))[:5]}")
        secrets.rename(secrets.with_name(secrets.name + ".restored"))
        aside.rename(secrets)
    else:
        shutil.rmtree(aside)
    if sum(changed.values()):
        problems.append(f"site.yml after the secrets restore changed {changed}")
    return figures, problems


def write_log(lines):
    """``({id: time} acknowledged, [(id, time)] failed)`` from the database writer's output."""
    acked, failed = {}, []
    for line in lines.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] in ("ok", "err"):
            row, at = int(parts[1]), float(parts[2])
            if parts[0] == "ok":
                acked[row] = at
            else:
                failed.append((row, at))
    return acked, failed


def longest_pause(acked, start, end):
    """The longest time between acknowledged writes within [start, end] (the edges count as writes)."""
    times = sorted([start] + [at for at in acked.values() if start <= at <= end] + [end])
    return max((b - a for a, b in zip(times, times[1:], strict=False)), default=0.0)


DB_DRILL_DIR = "/root/promha-db-drill"  # in the client container, root-only


def drill_database_cluster(drill_lab, receiver, short):
    members = drill_lab.topology.hosts("mysql")
    if len(members) < 3:
        return "not checked: the database is not a cluster of three members", None
    client = drill_lab.grafanas[0]
    vip = str(drill_lab.topology.setting(members[0], "mysql_virtual_ipaddress")).split("/")[0]
    password = str(drill_lab.topology.setting(members[0], "mysql_grafana_password"))
    # The inventory names the vault variable ("{{ vault_grafana_db_password }}"): its value.
    reference = re.fullmatch(r"\{\{\s*(\w+)\s*\}\}", password)
    if reference:
        password = str(drill_lab.topology.setting(members[0], reference.group(1)))

    def sql(host, query):
        return drill_lab.exec(host, "mariadb", "-N", "-B", "-e", query).stdout.strip()

    def synced(hosts=members):
        return all(sql(h, "SELECT GROUP_CONCAT(VARIABLE_VALUE ORDER BY VARIABLE_NAME) FROM "
                          "information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME IN ('WSREP_CLUSTER_SIZE', "
                          "'WSREP_LOCAL_STATE_COMMENT')") == f"{len(members)},Synced" for h in hosts)

    def holder():
        return next((h for h in members if f"inet {vip}/" in drill_lab.exec(h, "ip", "-4", "addr", "show").stdout), None)

    # The writer and PyMySQL (pure Python, from a member, where the role installed it) on the client.
    drill_lab.exec(client, "mkdir", "-p", DB_DRILL_DIR)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["docker", "cp", f"{drill_lab.container(members[0])}:/usr/lib/python3/dist-packages/pymysql",
                        tmp], capture_output=True, check=True)
        for path in (Path(tmp) / "pymysql", ROOT / "tests" / "helpers" / "db_writer.py",
                     drill_lab.topology.secrets_dir / "web" / "ca.crt"):
            subprocess.run(["docker", "cp", str(path), f"{drill_lab.container(client)}:{DB_DRILL_DIR}/"],
                           capture_output=True, check=True)
    sql(holder() or members[0], "CREATE TABLE IF NOT EXISTS grafana.promha_drill "
                                "(id INT PRIMARY KEY, at DOUBLE) ENGINE=InnoDB; TRUNCATE grafana.promha_drill")
    drill_lab.exec(client, "rm", "-f", f"{DB_DRILL_DIR}/stop")
    writer = subprocess.Popen(["docker", "exec", "-w", DB_DRILL_DIR, drill_lab.container(client), "python3",
                               "db_writer.py", vip, "3306", password, f"{DB_DRILL_DIR}/ca.crt", "20", "1800",
                               f"{DB_DRILL_DIR}/stop"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    events, problems = [], []
    down = 10 if short else 30
    try:
        time.sleep(5)
        # 1 and 2: a member killed, then the one holding the address; each back and rejoined.
        for label, pick in (("a member", lambda: next(h for h in reversed(members) if h != holder())),
                            ("the address's holder", holder)):
            lost = pick()
            began = time.time()
            subprocess.run(["docker", "kill", drill_lab.container(lost)], capture_output=True, check=True)
            time.sleep(down)
            subprocess.run(["docker", "start", drill_lab.container(lost)], capture_output=True, check=True)
            back = time.time()
            wait_for(synced, 600, f"{lost} to rejoin")
            events.append((f"{label} ({lost}) killed {down}s", began, time.time(), time.time() - back))
            time.sleep(5)
        # 3: the whole cluster stopped, started, and brought back by the role.
        began = time.time()
        # One after another, each shut down cleanly: systemd (PID 1) halts on SIGRTMIN+3 and
        # stops MariaDB first (docker stop's SIGTERM it ignores, and kills after the timeout).
        for host in members:
            subprocess.run(["docker", "kill", "--signal=SIGRTMIN+3", drill_lab.container(host)],
                           capture_output=True, check=True)
            subprocess.run(["docker", "wait", drill_lab.container(host)], capture_output=True, check=True, timeout=120)
        for host in members:
            subprocess.run(["docker", "start", drill_lab.container(host)], capture_output=True, check=True)
        for host in members:
            wait_for(lambda h=host: drill_lab.exec(h, "systemctl", "is-active", "ssh").stdout.strip() == "active", 60,
                     f"{host} booted")
        run, _ = playbook("mysql.yml")
        problems += failed_run(run, "playbooks/mysql.yml after the whole cluster stopped")
        wait_for(synced, 600, "every member synced")
        events.append(("the whole cluster stopped and started through the role", began, time.time(), None))
        time.sleep(5)
    finally:
        drill_lab.exec(client, "touch", f"{DB_DRILL_DIR}/stop")
        out, err = writer.communicate(timeout=60)
    acked, failed = write_log(out)
    present = {host: {int(row) for row in sql(host, "SELECT id FROM grafana.promha_drill").split()} for host in members}
    lost_rows = {host: sorted(set(acked) - rows) for host, rows in present.items()}
    pauses = [(label, longest_pause(acked, start, end), rejoin) for label, start, end, rejoin in events]
    figures = (f"{len(acked)} writes acknowledged through {vip} ({len(failed)} attempts failed), lost on "
               + ", ".join(f"{h}: {len(rows)}" for h, rows in lost_rows.items()) + "; "
               + "; ".join(f"{label}: longest write pause {pause:.1f}s"
                           + (f", rejoined {rejoin:.0f}s after its start" if rejoin is not None else "")
                           for label, pause, rejoin in pauses))
    if not acked:
        problems.append(f"no write was acknowledged: {err[-500:]}")
    if any(lost_rows.values()):
        problems.append("acknowledged writes missing: " + ", ".join(f"{h}: {rows[:5]}" for h, rows in lost_rows.items() if rows))
    for label, pause, _ in pauses[:2]:
        if pause > 15:
            problems.append(f"{label}: writes paused {pause:.1f}s")
    if not problems:
        restored, restore_problems = database_restored_onto_fresh_cluster(drill_lab, members, sql, synced, set(acked))
        figures += "; " + restored
        problems += restore_problems
    sql(holder() or members[0], "DROP TABLE IF EXISTS grafana.promha_drill")
    return figures, problems


def database_restored_onto_fresh_cluster(drill_lab, members, sql, synced, acked):
    """Back the database up, remove every member's container, make the hosts anew and
    converge them (a fresh, empty cluster), restore the backup onto it: every write
    acknowledged before the backup must be on every member again."""
    problems = []
    began = time.time()
    run, _ = playbook("backup.yml")
    problems += failed_run(run, "playbooks/backup.yml")
    if problems:
        return "backup failed", problems
    backed_up = time.time() - began
    images = {h: subprocess.run(["docker", "inspect", "-f", "{{.Config.Image}}", drill_lab.container(h)],
                                capture_output=True, text=True, check=True).stdout.strip() for h in members}
    for host in members:
        subprocess.run(["docker", "rm", "-f", drill_lab.container(host)], capture_output=True, check=True)
    began = time.time()
    for image in sorted(set(images.values())):
        hosts = [arg for h in members if images[h] == image for arg in ("--host", h)]
        subprocess.run([sys.executable, str(ROOT / "scripts" / "lab.py"), "up", "--image", image, *hosts],
                       capture_output=True, check=True)
    converge, _ = site()
    problems += failed_run(converge, "site.yml on the database hosts made anew")
    fresh = sql(members[0], "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'grafana' "
                            "AND TABLE_NAME = 'promha_drill'")
    if fresh != "0":
        problems.append(f"the cluster made anew already holds grafana.promha_drill ({fresh})")
    made = time.time() - began
    began = time.time()
    run, _ = playbook("restore.yml", "-e", "restore_database=true")
    problems += failed_run(run, "playbooks/restore.yml -e restore_database=true")
    wait_for(synced, 600, "every member synced after the restore")
    took = time.time() - began
    present = {host: {int(row) for row in sql(host, "SELECT id FROM grafana.promha_drill").split()} for host in members}
    missing = {host: sorted(acked - rows) for host, rows in present.items()}
    if any(missing.values()):
        problems.append("acknowledged writes missing after the restore: "
                        + ", ".join(f"{h}: {rows[:5]}" for h, rows in missing.items() if rows))
    return (f"backup.yml {backed_up:.0f}s; every member's container removed, made anew and converged in {made:.0f}s "
            f"(an empty cluster); restore.yml {took:.0f}s: of {len(acked)} acknowledged writes missing on "
            + ", ".join(f"{h}: {len(rows)}" for h, rows in missing.items())), problems


def drill_replaced_replica(drill_lab, receiver, short):
    shard, members = sorted(drill_lab.shards.items())[-1]
    host, peer = members[-1], members[0]
    image = subprocess.run(["docker", "inspect", "-f", "{{.Config.Image}}", drill_lab.container(host)],
                           capture_output=True, text=True, check=True).stdout.strip()
    subprocess.run(["docker", "rm", "-f", drill_lab.container(host)], capture_output=True, check=True)
    made = time.time()
    subprocess.run([sys.executable, str(ROOT / "scripts" / "lab.py"), "up", "--image", image, "--host", host],
                   capture_output=True, check=True)
    # The site's own discovery tooling writes its file_sd file on the new host, as it would.
    subprocess.run([str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", str(ROOT / "inventories" / "lab"),
                    str(ROOT / "tests" / "playbooks" / "target-farm.yml"), "--limit", host],
                   capture_output=True, check=True, cwd=ROOT, env=dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg")))
    converge, changed = site()
    took = time.time() - made

    def active(replica):
        url = drill_lab.prometheus(replica, "/api/v1/targets?state=active")
        return drill_lab.topology.fetch_json("prometheus", url)["data"]["activeTargets"]

    def targets(replica):
        return {(t["labels"]["job"], t["labels"]["instance"]) for t in active(replica)}

    def scraped(replica):  # an unscraped target's lastScrape is 0001-01-01
        return all(t["lastScrape"] > "2000" for t in active(replica))

    # Its file_sd jobs fill in within a discovery refresh: until then it may have fewer.
    try:
        wait_for(lambda: targets(host) == targets(peer), 120, f"{host} with its peer's targets")
    except AssertionError:
        pass  # reported below with the difference
    mine, theirs = targets(host), targets(peer)
    same_after = time.time() - made - took
    wait_for(lambda: scraped(host), 90, f"{host} scraping every target once")
    # The global view: the global tier federates every replica (a replica that cannot be
    # federated has its series marked stale at once); every replica of the shard, the new
    # one included, must show the same (job, instance) series there.
    global_host = drill_lab.topology.hosts("prometheus_global")[0]
    query = urllib.parse.quote(f'group by (replica, job, instance) (up{{shard="{shard}"}})')

    def global_view():
        data = drill_lab.topology.fetch_json("prometheus", drill_lab.prometheus(global_host, f"/api/v1/query?query={query}"))
        view = {}
        for row in data["data"]["result"]:
            view.setdefault(row["metric"].get("replica"), set()).add((row["metric"].get("job"), row["metric"].get("instance")))
        return view

    wait_for(lambda: len(global_view()) == len(members) and len({frozenset(v) for v in global_view().values()}) == 1,
             120, f"the global view of every replica of shard {shard} alike")
    view = global_view()
    sizes = sorted({len(v) for v in view.values()})
    figures = (f"{host} made anew from {image.split(':')[0]} and converged (site.yml rc {converge.returncode}, "
               f"{took:.0f}s, changed on {sum(1 for c in changed.values() if c)} hosts); {same_after:.0f}s later it "
               f"scrapes {len(mine)} targets, its peer {len(theirs)}; the global tier shows {len(view)} replicas of shard "
               f"{shard} with {sizes} series each")
    problems = failed_run(converge, "the converge")
    if mine != theirs:
        problems.append(f"{host} scrapes other targets than {peer}: {sorted(mine ^ theirs)[:10]}")
    if len(view) != len(members) or len(sizes) != 1:
        problems.append(f"the global view of shard {shard} differs between replicas: { {r: len(v) for r, v in view.items()} }")
    return figures, problems


def versions(drill_lab):
    """{daemon: sorted versions} as the running daemons report them."""
    topo, found = drill_lab.topology, {}
    for host in topo.hosts("prometheus") + topo.hosts("prometheus_global"):
        info = topo.fetch_json("prometheus", drill_lab.prometheus(host, "/api/v1/status/buildinfo"))
        found.setdefault("prometheus", set()).add(info["data"]["version"].split("+")[0])
    for _, _, address in drill_lab.alertmanagers.values():
        version = drill_lab.alertmanager(address, "/api/v2/status")["versionInfo"]["version"]
        found.setdefault("alertmanager", set()).add(version.split("+")[0])
    for host in topo.hosts("all"):
        text = topo.fetch("node_exporter", topo.url(host, "node_exporter_port", "/metrics"))
        match = re.search(r'^node_exporter_build_info\{[^}]*version="([^"+]+)', text, re.M)
        found.setdefault("node_exporter", set()).add(match.group(1) if match else "?")
    return {daemon: sorted(seen) for daemon, seen in found.items()}


class AlertFeed:
    """As every Prometheus does: each firing alert of one batch to every Alertmanager, again
    and again, one more group every 6 s up to ``count``, so groups arrive all through a run."""

    def __init__(self, drill_lab, count):
        self.drill_lab, self.count = drill_lab, count
        self.batch, self.refused, self.done = uuid.uuid4().hex[:8], [], threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def mine(self, notification):
        return bool(notification["alerts"]) and notification["alerts"][0].get("batch") == self.batch

    def run(self):
        alerts, posted = drill_alerts(self.batch, self.count), 0
        while not self.done.is_set():
            posted = min(self.count, posted + 1)
            for _, _, address in self.drill_lab.alertmanagers.values():
                try:
                    self.drill_lab.alertmanager(address, "/api/v2/alerts", data=alerts[:posted])
                except OSError:
                    self.refused.append(address)  # an instance restarting; the others have them
            self.done.wait(6)

    def stop(self, receiver):
        """The group keys notified for this batch, once every group arrived and duplicates had time."""
        try:
            wait_for(lambda: len({n["group_key"] for n in receiver.notifications(self.mine)}) >= self.count, 120,
                     f"{self.count} groups of batch {self.batch} delivered")
            time.sleep(2 * self.drill_lab.peer_timeout + 5)
        finally:
            self.done.set()
            self.thread.join()
        return [n["group_key"] for n in receiver.notifications(self.mine)]


def rolling_run(drill_lab, receiver, *extra, count=20):
    """site.yml with ``extra`` while queries run through the front and alert groups arrive."""
    loads = [Load(drill_lab.topology.front_url(f"/prometheus/shard-{shard}/api/v1/query?query=up"), drill_lab.topology)
             for shard in drill_lab.shards] + storage_reads(drill_lab, interval=0.5)
    feed = AlertFeed(drill_lab, count)
    started = time.time()
    converge, _ = site(*extra)
    finished = time.time()
    results = [r for load in loads for r in load.stop()]
    keys = feed.stop(receiver)
    gaps = {}
    for shard, replicas in drill_lab.shards.items():
        for replica in replicas:
            stamps = stored_stamps(drill_lab, self_scrape(drill_lab, replica), started - 30, finished + 30)
            gaps[shard] = max(gaps.get(shard, 0), largest_gap(stamps, started - 30, finished + 30))
    return {"converge": converge, "took": finished - started, "queries": len(results), "count": count,
            "failed": sum(1 for _, good in results if not good), "failures": failure_lines(loads),
            "slow": sum(load.slow for load in loads), "keys": keys,
            "gaps": gaps,
            "sizes": cluster_sizes(drill_lab), "versions": versions(drill_lab)}


def rolling_figures(run):
    return (f"rc {run['converge'].returncode} in {run['took']:.0f}s; {run['failed']} of {run['queries']} queries "
            f"failed ({run['slow']} answered in over {Load.SLOW:.0f}s); longest storage gap per shard "
            + ", ".join(f"{s}: {g:.0f}s" for s, g in sorted(run["gaps"].items()))
            + f"; {len(run['keys'])} notifications for {run['count']} groups ({len(set(run['keys']))} distinct); "
            f"Alertmanager peers {sorted(set(run['sizes'].values()))}")


def rolling_problems(drill_lab, run, what, wanted):
    """What went wrong in a rolling run, ``wanted`` being {daemon: version} after it."""
    problems = failed_run(run["converge"], what)
    if run["failed"]:
        problems.append(f"{what}: {run['failed']} queries failed: " + "; ".join(run["failures"]))
    if max(run["gaps"].values()) > 2 * drill_lab.scrape_interval:
        problems.append(f"{what}: a storage gap is longer than {2 * drill_lab.scrape_interval}s")
    if len(run["keys"]) != run["count"] or len(set(run["keys"])) != run["count"]:
        problems.append(f"{what}: {len(run['keys'])} notifications ({len(set(run['keys']))} groups) "
                        f"for {run['count']} groups")
    if set(run["sizes"].values()) != {len(drill_lab.alertmanagers)}:
        problems.append(f"{what}: cluster sizes {run['sizes']}")
    if any(run["versions"].get(daemon) != version for daemon, version in wanted.items()):
        problems.append(f"{what}: versions {run['versions']}, wanted {wanted}")
    return problems


def silences_seen(drill_lab, silence_id):
    """The instances that list ``silence_id`` as active."""
    return sorted(name for name, (_, _, address) in drill_lab.alertmanagers.items()
                  if any(s["id"] == silence_id and s["status"]["state"] == "active"
                         for s in drill_lab.alertmanager(address, "/api/v2/silences")))


def drill_upgrade(drill_lab, receiver, short):
    if not RELEASES.exists():
        return f"not checked: no {RELEASES.relative_to(ROOT)} (make releases)", None
    wanted = {daemon: [version] for daemon, version in re.findall(
        r"^(prometheus|alertmanager|node_exporter)_version: \"?([0-9.]+)", RELEASES.read_text(), re.M)}
    before = versions(drill_lab)
    # A silence made before the upgrade must outlive it and the way back (it matches no alert).
    now = datetime.now(UTC)
    first_address = next(iter(drill_lab.alertmanagers.values()))[2]
    silence = drill_lab.alertmanager(first_address, "/api/v2/silences", data={
        "matchers": [{"name": "drill_silence", "value": uuid.uuid4().hex[:8], "isRegex": False}],
        "startsAt": rfc3339(now), "endsAt": rfc3339(now + timedelta(hours=2)),
        "createdBy": "drill", "comment": "outlives the upgrade"})["silenceID"]
    wait_for(lambda: len(silences_seen(drill_lab, silence)) == len(drill_lab.alertmanagers), 60,
             "the silence on every instance")
    up = rolling_run(drill_lab, receiver, "-e", f"@{RELEASES}")
    silenced_up = silences_seen(drill_lab, silence)
    # Prometheus' way back: refused before anything changes (2.55 and later write what older cannot read).
    back, back_changed = site()
    refusal = re.search(r"Prometheus [0-9.]+ has written .*?cannot read", " ".join((back.stdout + back.stderr).split()))
    # Alertmanager's and node_exporter's way back: the packages again, Prometheus stays on the archive.
    down = rolling_run(drill_lab, receiver, "-e", f"@{RELEASES}", "-e",
                       "alertmanager_install_method=package node_exporter_install_method=package")
    silenced_down = silences_seen(drill_lab, silence)
    old = {daemon: before[daemon] for daemon in ("alertmanager", "node_exporter")}
    figures = (f"upgrade: {rolling_figures(up)}; versions before {before}, after {up['versions']}; "
               f"Prometheus' way back {'refused by preflight' if refusal else 'NOT refused'} "
               f"(rc {back.returncode}, changed={sum(back_changed.values())}); Alertmanager and node_exporter "
               f"back to the packages: {rolling_figures(down)}; versions {down['versions']}; the silence made before "
               f"on {len(silenced_up)} and {len(silenced_down)} of {len(drill_lab.alertmanagers)} instances")
    problems = rolling_problems(drill_lab, up, "the upgrade", wanted)
    if back.returncode == 0 or not refusal or sum(back_changed.values()):
        problems.append(f"the way back was not refused before any change:\n{back.stdout[-2000:]}")
    problems += rolling_problems(drill_lab, down, "the way back", {**old, "prometheus": wanted["prometheus"]})
    for when, seen in (("upgrade", silenced_up), ("way back", silenced_down)):
        if len(seen) != len(drill_lab.alertmanagers):
            problems.append(f"after the {when} the silence is active only on {seen}")
    return figures, problems


def _seconds(duration):
    """Seconds of a Prometheus duration such as 1m or 1m30s."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * units[u] for n, u in re.findall(r"([0-9.]+)(ms|s|m|h)", str(duration)))


def drill_heartbeat(drill_lab, receiver, short):
    """Every Alertmanager stopped: the heartbeat (the always-firing Watchdog, routed to
    alertmanager_heartbeat_url, the drill's receiver in the lab) stops, and returns with them."""
    first_host = next(iter(drill_lab.alertmanagers.values()))[0]
    interval = _seconds(drill_lab.topology.setting(first_host, "alertmanager_heartbeat_interval"))

    def beats(after=0.0):
        return [n["received"] for n in receiver.notifications(
            lambda n: bool(n["alerts"]) and n["alerts"][0].get("alertname") == "Watchdog") if n["received"] > after]

    listening = time.time()
    wait_for(lambda: beats(listening), 2 * interval + 60, "a heartbeat")
    first = max(beats())
    wait_for(lambda: beats(first), 2 * interval + 30, "the next heartbeat")
    period = min(beats(first)) - first
    stopped = time.time()
    try:
        for host, unit, _ in drill_lab.alertmanagers.values():
            drill_lab.exec(host, "systemctl", "stop", unit)
        time.sleep(3 * interval)
        during = beats(stopped + 2)
        last = max(beats()) - stopped
    finally:
        started = time.time()
        for host, unit, _ in drill_lab.alertmanagers.values():
            drill_lab.exec(host, "systemctl", "start", unit)
    wait_for(lambda: beats(started), 3 * interval + 60, "the heartbeat back")
    back = min(beats(started)) - started
    wait_for(lambda: all(size == len(drill_lab.alertmanagers) for size in cluster_sizes(drill_lab).values()), 120,
             "the cluster whole again")
    figures = (f"heartbeat every {period:.0f}s (interval {interval:.0f}s); all {len(drill_lab.alertmanagers)} "
               f"Alertmanagers stopped: the last heartbeat {-last:.0f}s before, none in the {3 * interval:.0f}s after "
               f"(an outside check with a grace of 2 intervals pages at most {3 * interval:.0f}s after the stop); "
               f"started: the heartbeat back after {back:.0f}s, the cluster whole")
    problems = []
    if during:
        problems.append(f"{len(during)} heartbeat(s) arrived with every Alertmanager stopped")
    if period > 1.5 * interval + 15:
        problems.append(f"heartbeats {period:.0f}s apart, more than the interval {interval:.0f}s allows")
    return figures, problems


def am_metric(drill_lab, address, name):
    """One unlabelled sample of an Alertmanager instance's /metrics (``address`` host:port)."""
    scheme = drill_lab.topology.access("alertmanager")["scheme"]
    text = drill_lab.topology.fetch("alertmanager", f"{scheme}://{address}/metrics", timeout=3)
    found = re.search(rf"^{name} (\S+)$", text, re.M)
    if not found:
        raise ValueError(f"{address} exports no {name}")
    return float(found.group(1))


def drill_group_wait(drill_lab):
    """Seconds the lab's LabDrill route waits before a group's first notification."""
    route = drill_lab.topology.setting(next(iter(drill_lab.alertmanagers.values()))[0], "alertmanager_route")
    drill_route = next(r for r in route.get("routes", []) if any("LabDrill" in m for m in r.get("matchers", [])))
    return _seconds(drill_route.get("group_wait", route.get("group_wait", "30s")))


def delivery_counts(notifications, count):
    """``{duplicates, missing}`` of ``count`` alert groups, from the receiver's notifications: a
    group notified n times counts n - 1 duplicates; a group never notified is missing."""
    keys = [n["group_key"] for n in notifications]
    return {"duplicates": len(keys) - len(set(keys)), "missing": count - len(set(keys))}


def drill_duplicate_window(drill_lab, receiver, short):
    """The host with the most Alertmanager instances lost at once (its container killed, as in a
    power cut: no instance says goodbye); fresh alert groups posted to every survivor, as each
    Prometheus does, 2, 5, 10 and 20 s later. At each delay: duplicates, missing groups, the
    survivors' positions and member counts at the post, and any member the survivors dropped
    that was still running (a false removal: more peers left than were lost)."""
    delays = (5,) if short else (2, 5, 10, 20)
    count = 10 if short else 25
    by_host = {}
    for name, (host, _, _) in drill_lab.alertmanagers.items():
        by_host.setdefault(host, []).append(name)
    victim = max(sorted(by_host), key=lambda host: len(by_host[host]))
    lost = len(by_host[victim])
    survivors = {n: a for n, (h, _, a) in drill_lab.alertmanagers.items() if h != victim}
    if len(survivors) < 2:
        return (f"not checked: losing {victim} leaves {len(survivors)} Alertmanager instance(s); a duplicate "
                f"needs two senders"), None
    whole = len(drill_lab.alertmanagers)
    # The last sender a survivor could be: every position of the cluster before the loss.
    settle = drill_group_wait(drill_lab) + (whole - 1) * drill_lab.peer_timeout + 10
    rows, problems = [], []
    for delay in delays:
        wait_for(lambda: set(cluster_sizes(drill_lab).values()) == {whole}, 180, "the cluster whole")
        left = {n: am_metric(drill_lab, a, "alertmanager_cluster_peers_left_total") for n, a in survivors.items()}
        batch = uuid.uuid4().hex[:8]
        mine = lambda n, b=batch: n["alerts"] and n["alerts"][0].get("batch") == b  # noqa: E731
        subprocess.run(["docker", "kill", drill_lab.container(victim)], capture_output=True, check=True)
        killed = time.monotonic()
        try:
            time.sleep(max(0.0, delay - (time.monotonic() - killed)))
            posted, posted_at = time.monotonic(), time.time()
            post_alerts(drill_lab, survivors.values(), batch, count)
            seen = {n: (int(am_metric(drill_lab, a, "alertmanager_peer_position")),
                        int(am_metric(drill_lab, a, "alertmanager_cluster_members"))) for n, a in survivors.items()}
            time.sleep(max(0.0, settle - (time.monotonic() - posted)))
            received = receiver.notifications(mine)
            dropped = sum(am_metric(drill_lab, a, "alertmanager_cluster_peers_left_total") - left[n]
                          for n, a in survivors.items())
        finally:
            subprocess.run(["docker", "start", drill_lab.container(victim)], capture_output=True, check=True)
        late = max((n["received"] for n in received), default=0.0)
        rows.append({"delay": delay, "groups": count, **delivery_counts(received, count), "seen": seen,
                     "false_removals": int(dropped) - lost * len(survivors),
                     "last": late - posted_at if received else None})
        for unit in (drill_lab.alertmanagers[name][1] for name in by_host[victim]):
            wait_for(lambda u=unit: drill_lab.exec(victim, "systemctl", "is-active", u).stdout.strip() == "active", 90,
                     f"{unit} on {victim}")
    wait_for(lambda: set(cluster_sizes(drill_lab).values()) == {whole}, 180, "the cluster whole")
    table = "; ".join(
        f"{r['delay']}s: {r['groups']} groups, {r['duplicates']} duplicates, {r['missing']} missing, "
        f"positions/members {', '.join(f'{p}/{m}' for p, m in r['seen'].values())}"
        + (f", last sent {r['last']:.0f}s after the post" if r["last"] is not None else "")
        + (f", {r['false_removals']} false removals" if r["false_removals"] else "")
        for r in rows)
    figures = f"{victim} ({lost} of {whole} instances) killed, groups posted to the {len(survivors)} survivors: {table}"
    for r in rows:
        if r["missing"]:
            problems.append(f"{r['delay']}s after the loss: {r['missing']} of {r['groups']} groups never delivered")
        if r["false_removals"]:
            problems.append(f"{r['delay']}s after the loss: the survivors dropped {r['false_removals']} running member(s)")
        if r["delay"] >= DUPLICATE_FREE_AFTER and r["duplicates"]:
            problems.append(f"{r['delay']}s after the loss: {r['duplicates']} duplicates (none expected from "
                            f"{DUPLICATE_FREE_AFTER}s on with the role's gossip settings)")
    return figures, problems


DRILLS = [
    ("1 Prometheus replica per shard down", drill_prometheus),
    ("2 Alertmanager position 0 down", drill_alertmanager_down),
    ("3 Alertmanager host partitioned", drill_partition),
    ("4 active balancer down", drill_balancer),
    ("5 database down", drill_database),
    ("6 stranger on the network", drill_intruder),
    ("7 everything back", drill_whole),
    ("8 remote storage outage", drill_storage_outage),
    ("9 replaced replica", drill_replaced_replica),
    ("11 storage node destroyed and refilled", drill_storage_rebuild),
    ("12 federation host lost", drill_global_lost),
    ("13 backup, destroy, restore", drill_backup_restore),
    ("14 database cluster members lost", drill_database_cluster),
    ("15 every Alertmanager lost: the heartbeat stops", drill_heartbeat),
    ("16 the duplicate window after an Alertmanager host is lost", drill_duplicate_window),
    # Last: it leaves Prometheus on the new release, which site.yml without the archives refuses.
    ("10 rolling upgrade", drill_upgrade),
]


# Drills that take minutes each (hosts made anew, tiers rebuilt, long outages, a
# hundred probes) or that a scenario proves again: `make drill` runs them, --short
# (make test) leaves them out unless --only names them.
LONG_DRILLS = {2, 6, 8, 9, 11, 13, 14, 15, 16}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inventory", default=ROOT / "inventories" / "lab")
    parser.add_argument("--short", action="store_true", help="shorter windows, no wait for rule-driven alerts")
    parser.add_argument("--only", type=int, action="append", help="run only drill N (repeatable)")
    parser.add_argument("--upgrade", action="store_true",
                        help="also the rolling upgrade to .lab/releases and back (leaves Prometheus upgraded)")
    args = parser.parse_args()
    drill_lab = Lab(args.inventory)
    try:
        receiver = Receiver(RECEIVER_PORT)
    except OSError as error:
        sys.exit(f"drill: cannot listen on port {RECEIVER_PORT} for the Alertmanagers' webhook: {error}")
    socket.setdefaulttimeout(10)
    rows, failed = [], False
    for name, drill in DRILLS:
        if args.only and int(name.split()[0]) not in args.only:
            continue
        if drill is drill_upgrade and not args.upgrade:
            continue
        if args.short and not args.only and int(name.split()[0]) in LONG_DRILLS:
            print(f"drill {name}: left to make drill (long)", flush=True)
            continue
        started = time.monotonic()
        print(f"drill {name} ...", flush=True)
        try:
            figures, problems = drill(drill_lab, receiver, args.short)
        except (AssertionError, OSError, subprocess.CalledProcessError, KeyError, ValueError) as error:
            figures, problems = f"aborted: {error}", [traceback.format_exc(limit=3)]
        verdict = "not checked" if problems is None else ("PASS" if not problems else "FAIL")
        failed |= verdict == "FAIL"
        rows.append((name, verdict, f"{time.monotonic() - started:.0f}s", figures))
        print(f"  {verdict}: {figures}", flush=True)
        for problem in problems or []:
            print(f"  problem: {problem}", flush=True)
    print("\n| drill | result | took | measured |\n| --- | --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
