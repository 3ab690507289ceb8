"""What the drills share: the webhook receiver, the lab as the inventory describes it,
requests under load, alert posts, storage reads and playbook runs."""

from __future__ import annotations

import base64
import json
import os
import re
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import lab
from topology import Topology

ROOT = Path(__file__).resolve().parents[2]


RECEIVER_PORT = 18080


class NotChecked(Exception):  # noqa: N818 (a verdict, not an error)
    """Raised by a drill when the lab lacks what the drill takes away: scripts/drill.py
    reports the drill as not checked, with this reason."""


def enough_hosts(drill_lab, group, least, reason):
    """The inventory's ``group`` hosts; NotChecked(``reason``) when there are fewer than ``least``."""
    hosts = drill_lab.topology.hosts(group)
    if len(hosts) < least:
        raise NotChecked(reason)
    return hosts


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


def seconds(duration):
    """A Prometheus or Go duration ('15s', '1m', '1m30s', Go's '1m0s', '500ms') in seconds."""
    parts = re.findall(r"([0-9]+(?:[.][0-9]+)?)(ms|s|m|h)", str(duration))
    if not parts or "".join(n + u for n, u in parts) != str(duration):
        raise ValueError(f"cannot read the duration {duration!r}")
    total = sum(float(n) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[u] for n, u in parts)
    return int(total) if total == int(total) else total


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


def first_sample(drill_lab, node):
    """The time of the oldest sample a storage node holds (the lab's start)."""
    query = urllib.parse.quote('min(tfirst_over_time(up[30d]))')
    data = drill_lab.topology.fetch_json("remote_storage", drill_lab.topology.url(
        node, "remote_storage_port", f"/api/v1/query?query={query}"), timeout=30)
    return float(data["data"]["result"][0]["value"][1])


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
