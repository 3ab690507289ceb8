#!/usr/bin/env python3
"""Benchmark the whole stack on the lab (prints figures and writes a table; not a test).

Measures, on the lab inventory (its systemd containers on this machine):

1. cold converge: `scripts/lab.py down` + `up` (fresh containers, the image
   already built), then site.yml; total and per role (ansible.posix.profile_roles);
2. warm re-run of site.yml with nothing to change (each run must report changed=0);
3. a one-line change rolled out across its tier, timed from the start of the
   ansible-playbook run until every member serves it (a poll every 0.25 s):
   a node_exporter target added (`prometheus_extra_node_targets`, `--tags prometheus`;
   "served" = active on both replicas of the shard the shard plan gives it: a file_sd
   file changes, nothing reloads), and an Alertmanager setting
   (`alertmanager_global.resolve_timeout`, `--tags alertmanager`) on every instance;
   each change is put back afterwards;
4. the controller's cost on a synthetic 500-host / 64-shard inventory
   (bench/preflight_scale.py);
5. failover figures from `scripts/drill.py --short` (with --drills).

Each figure is the median, min and max over the runs; the table lands in
bench/results/stack.md with the core count and the command line.
"""

import argparse
import datetime
import functools
import importlib.metadata
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
INVENTORY = ROOT / "inventories" / "lab"
sys.path.insert(0, str(ROOT / "tests" / "helpers"))
from topology import Topology  # noqa: E402

RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)", re.M)
PROFILE = re.compile(r"^(\S[^\n]*?) -+ (\d+\.\d+)s$", re.M)


def strategy():
    """The strategy the runs used, as the table reports it."""
    name = os.environ.get("ANSIBLE_STRATEGY", "fast_linear (ansible.cfg)")
    try:
        version = importlib.metadata.version("mitogen")
    except importlib.metadata.PackageNotFoundError:
        version = None
    if name.startswith("fast_linear"):
        return f"{name}, through Mitogen {version}" if version else f"{name}, Mitogen not installed: plain linear"
    return name


def env():
    return dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                PATH=f"{BIN}:{os.environ['PATH']}")


def playbook(*args, profile=False):
    """Run site.yml on the lab; return (seconds, output, per-host recap, per-role seconds)."""
    extra = dict(ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_roles") if profile else {}
    started = time.monotonic()
    result = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(INVENTORY), str(ROOT / "site.yml"), *args],
                            capture_output=True, text=True, env={**env(), **extra}, check=False)
    took = time.monotonic() - started
    output = result.stdout + result.stderr
    if result.returncode != 0:
        sys.exit(f"bench: site.yml {' '.join(args)} failed (rc {result.returncode}):\n{output[-3000:]}")
    recap = {m[0]: {"ok": int(m[1]), "changed": int(m[2]), "failed": int(m[4]), "skipped": int(m[5])}
             for m in RECAP.findall(output)}
    roles = {}
    if profile:
        tail = output[output.rfind("PLAY RECAP"):]
        roles = {name.strip(): float(seconds) for name, seconds in PROFILE.findall(tail) if name.strip() != "total"}
    return took, output, recap, roles


def lab(*args):
    subprocess.run([str(BIN / "python"), str(ROOT / "scripts" / "lab.py"), *args], check=True, env=env(),
                   stdout=subprocess.DEVNULL)


@functools.cache
def lab_topology():
    """The lab's topology and client settings (read once, after the lab is up)."""
    return Topology(INVENTORY)


def get_json(tier, url):
    """JSON of ``url``, called with ``tier``'s CA and credentials."""
    return json.loads(lab_topology().fetch(tier, url, timeout=2))


def scrapes(server, target):
    """Is `target` among the active targets of the replica at `server` (address:port)?"""
    scheme = lab_topology().access("prometheus")["scheme"]
    data = get_json("prometheus", f"{scheme}://{server}/api/v1/targets?state=active")["data"]
    return any(t["discoveredLabels"].get("__address__") == target for t in data["activeTargets"])


def holders(extra_vars):
    """The servers (address:port) of every shard that holds `target` with these variables, from the shard plan."""
    with tempfile.TemporaryDirectory() as scratch:
        output = Path(scratch) / "plan.json"
        subprocess.run([str(BIN / "ansible-playbook"), "-i", str(INVENTORY), str(ROOT / "playbooks" / "shard-plan.yml"),
                        "-e", json.dumps({**extra_vars, "shard_plan_output": str(output)})],
                       capture_output=True, text=True, env=env(), check=True)
        plan = json.loads(output.read_text())
    target = extra_vars["prometheus_extra_node_targets"][0]
    return [server for shard, servers in plan["servers"].items()
            if target in plan["shards"][shard]["jobs"]["node"]["targets"] for server in servers]


def rollout(args, members, serves):
    """Time from starting site.yml with `args` until `serves(member)` holds for every member."""
    seen, started = {}, time.monotonic()
    done = threading.Event()

    def poll():
        while not done.is_set() and len(seen) < len(members):
            for member in members:
                if member not in seen:
                    try:
                        if serves(member):
                            seen[member] = time.monotonic() - started
                    except OSError:
                        pass
            time.sleep(0.25)

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    took, _, recap, _ = playbook(*args)
    deadline = time.monotonic() + 60
    while len(seen) < len(members) and time.monotonic() < deadline:
        time.sleep(0.25)
    done.set()
    missing = sorted(set(members) - set(seen))
    if missing:
        sys.exit(f"bench: {', '.join(missing)} never served the change")
    return max(seen.values()), took, sum(h["changed"] for h in recap.values())


def stats(values):
    return (statistics.median(values), min(values), max(values)) if values else (0.0, 0.0, 0.0)


def row(name, values, unit="s", note=""):
    median, low, high = stats(values)
    return f"| {name} | {median:.1f}{unit} | {low:.1f}{unit} | {high:.1f}{unit} | {len(values)} | {note} |"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cold", type=int, default=1, help="cold converges (each recreates the lab)")
    parser.add_argument("--warm", type=int, default=3, help="warm re-runs")
    parser.add_argument("--changes", type=int, default=2, help="one-line change rollouts per tier")
    parser.add_argument("--drills", action="store_true", help="also run scripts/drill.py --short")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "stack.md")
    parser.add_argument("--image", help="the lab hosts' image (default: .lab/image-bookworm)")
    parser.add_argument("--odd-image", help="every second lab host's image (a mixed-release lab)")
    args = parser.parse_args()
    if args.cold and not args.image:
        args.image = (ROOT / ".lab" / "image-bookworm").read_text().strip()

    lines, cold, roles = [], [], {}
    for i in range(args.cold):
        print(f"cold converge {i + 1}/{args.cold}: recreating the lab ...", flush=True)
        lab("down")
        lab("up", "--image", args.image, *(["--odd-image", args.odd_image] if args.odd_image else []))
        farm = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(INVENTORY),
                               str(ROOT / "tests" / "playbooks" / "target-farm.yml")],
                              capture_output=True, text=True, env=env(), check=False)
        if farm.returncode != 0:
            sys.exit(f"bench: the lab's target farm did not start:\n{(farm.stdout + farm.stderr)[-3000:]}")
        took, _, _, per_role = playbook(profile=True)
        cold.append(took)
        for name, seconds in per_role.items():
            roles.setdefault(name, []).append(seconds)
        print(f"  {took:.1f}s", flush=True)

    warm, warm_roles, changed, last_recap = [], {}, [], {}
    for i in range(args.warm):
        took, _, recap, per_role = playbook(profile=True)
        warm.append(took)
        last_recap = recap
        changed.append(sum(h["changed"] for h in recap.values()))
        for name, seconds in per_role.items():
            warm_roles.setdefault(name, []).append(seconds)
        print(f"warm re-run {i + 1}/{args.warm}: {took:.1f}s, changed={changed[-1]} on {len(recap)} hosts", flush=True)
    if any(changed):
        sys.exit(f"bench: a warm re-run changed something ({changed}); the lab is not converged")

    topology = Topology(INVENTORY)
    alertmanagers = [instance["web"] for instance in topology.alertmanagers]
    scrape, scrape_run, route, route_run = [], [], [], []
    for i in range(args.changes):
        target = f"10.213.0.{200 + i}:9100"
        extra = {"prometheus_extra_node_targets": [target]}
        servers = holders(extra)
        live, took, _ = rollout(["--tags", "prometheus", "-e", json.dumps(extra)], servers,
                                lambda server, target=target: scrapes(server, target))
        scrape.append(live)
        scrape_run.append(took)
        print(f"scrape target live on its {len(servers)} replicas after {live:.1f}s (run {took:.1f}s)", flush=True)
        timeout = f"{6 + i}m"
        live, took, _ = rollout(
            ["--tags", "alertmanager", "-e", json.dumps({"alertmanager_global": {"resolve_timeout": timeout}})],
            alertmanagers,
            lambda address, timeout=timeout: f"resolve_timeout: {timeout}" in get_json(
                "alertmanager", f"{lab_topology().access('alertmanager')['scheme']}://{address}/api/v2/status")
            ["config"]["original"])
        route.append(live)
        route_run.append(took)
        print(f"Alertmanager setting live on {len(alertmanagers)} instances after {live:.1f}s (run {took:.1f}s)",
              flush=True)
    if args.changes:
        print("putting the baseline back ...", flush=True)
        playbook("--tags", "prometheus,alertmanager")

    lines += [f"# Stack benchmark ({datetime.date.today()}, {os.cpu_count()} cores)", "",
              f"`{' '.join(['bench/stack.py', *sys.argv[1:]])}` on the lab inventory "
              f"({len(topology.hosts('prometheus'))} Prometheus, {len(alertmanagers)} Alertmanager instances, "
              f"{len(topology.hosts('all'))} hosts); "
              f"strategy {strategy()}.", "",
              "| what | median | min | max | runs | note |", "| --- | --- | --- | --- | --- | --- |"]
    if cold:
        lines.append(row("cold converge, fresh containers", cold, note="image prebuilt; packages from the mirror"))
    if warm:
        lines.append(row("warm re-run, nothing to change", warm, note=f"changed={max(changed)} on every run"))
    if scrape:
        lines.append(row("scrape target live on its shard's replicas", scrape,
                         note="from ansible-playbook start; file_sd, no reload"))
        lines.append(row("  its `--tags prometheus` run", scrape_run))
        lines.append(row("Alertmanager setting live on every instance", route, note="from ansible-playbook start"))
        lines.append(row("  its `--tags alertmanager` run", route_run))
    if last_recap:
        # A task result per host and task (ok, changed or skipped): the controller's time
        # per result is what bounds the warm run.
        lines += ["", "Task results per host on the last warm re-run (ok + skipped):", "",
                  "| host | results | of which skipped |", "| --- | --- | --- |"]
        for host, counts in sorted(last_recap.items()):
            if host != "localhost":
                lines.append(f"| {host} | {counts['ok'] + counts['skipped']} | {counts['skipped']} |")
    for title, table in (("cold", roles), ("warm", warm_roles)):
        if table:
            lines += ["", f"Per role, {title} (ansible.posix.profile_roles, median seconds):", "",
                      "| role | median | min | max |", "| --- | --- | --- | --- |"]
            for name, values in sorted(table.items(), key=lambda item: -statistics.median(item[1])):
                median, low, high = stats(values)
                lines.append(f"| {name} | {median:.1f} | {low:.1f} | {high:.1f} |")

    print("controller cost at scale (bench/preflight_scale.py) ...", flush=True)
    scale = subprocess.run([str(BIN / "python"), str(ROOT / "bench" / "preflight_scale.py"), "--repeat", "3"],
                           capture_output=True, text=True, env=env(), check=False)
    lines += ["", "Controller cost at scale (`bench/preflight_scale.py --repeat 3`):", "", "```",
              scale.stdout.strip() or scale.stderr.strip()[-500:], "```"]

    if args.drills:
        print("drills (scripts/drill.py --short) ...", flush=True)
        drills = subprocess.run([str(BIN / "python"), str(ROOT / "scripts" / "drill.py"), "--short"],
                                capture_output=True, text=True, env=env(), check=False)
        table = [line for line in drills.stdout.splitlines() if line.startswith("|")]
        lines += ["", "Failover (`scripts/drill.py --short`):", "", *table]

    text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print("\n" + text)


if __name__ == "__main__":
    main()
