"""The site's own scrape jobs, sharded, on live servers (runs after test_prometheus.py).

About 800 real HTTP targets of a test farm (mp-vm and mp-global, tests/roles/target_farm)
in five jobs: app (spread, static), farm (an inventory group), discovered (file_sd
written by prepare.yml, split by relabelling; the job's own rule drops port 21099),
pinned (shard 1) and probe (every shard). Every check reads each replica's
/api/v1/targets and compares it with the shard plan (playbooks/shard-plan.yml), the
same filter the role deploys with. In file order: placement and the global view on
two shards; a target added without a reload; a bad job refused; a live reshard from
two to three shards (predicted moves against what the servers show, and the remote
storage watched for missed samples); then replicas=2 in hashmod mode on three shards.
"""

import json
import os
import re
import subprocess
import time
import urllib.parse
from datetime import datetime
from pathlib import Path

import live
import shardcheck
import yaml
from ansible_collections.promha.stack.plugins.plugin_utils.shards import shard_targets
from live import PROJECT, wait_for
from topology import Topology

SCENARIO = Path(__file__).resolve().parent.parent

testinfra_hosts = ["ansible://prometheus"]

EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
# The secure defaults: the stack's web CA and generated credentials (roles/pki).
TLS = EPHEMERAL / "secrets" / "web"
AUTH = ("promha", (EPHEMERAL / "secrets" / "credentials" / "prometheus_web").read_text().strip())
VM_AUTH = ("promha", (EPHEMERAL / "secrets" / "credentials" / "remote_storage_web").read_text().strip())
# Where everything is, from the scenario's inventory through the roles' filters.
TOPOLOGY = Topology.of_scenario()
VM = TOPOLOGY.url(TOPOLOGY.hosts("remote_storage")[0], "remote_storage_port")
GLOBAL = TOPOLOGY.address(TOPOLOGY.hosts("prometheus_global")[0])
INTERVAL = 15
SHARDS = {shard: {host: TOPOLOGY.address(host) for host in hosts} for shard, hosts in TOPOLOGY.shards.items()}
NEW_SHARD = {host: TOPOLOGY.address(host) for host in TOPOLOGY.hosts("prometheus_spare")}
FARM = [TOPOLOGY.address(host) for host in TOPOLOGY.hosts("target_farm")]
APP = [f"{h}:{p}" for h in FARM for p in range(20000, 20300)]
DISCOVERED = [f"{h}:{p}" for h in FARM for p in range(21000, 21100)]
PINNED = [f"{h}:{p}" for h in FARM for p in range(22000, 22005)]
PROBE = [f"{h}:{p}" for h in FARM for p in range(23000, 23002)]
KEPT = sorted(t for t in DISCOVERED if not t.endswith(":21099"))
SPREAD = ("node", "app", "farm", "discovered")
# The jobs of the plan: the toolkit's own (the pair's "prometheus" job aside) and the site's.
PLANNED = ("node", "alertmanager", "remote_storage", "app", "farm", "discovered", "pinned", "probe")
SHARD_2_INVENTORY = EPHEMERAL / "shard-2.yml"


def get(url, timeout=10):
    return live.fetch(url, auth=AUTH, cafile=TLS / "ca.crt", timeout=timeout)


def get_json(url):
    return json.loads(get(url))


def fetch(url):
    return get(url)


def active(ip):
    """{job: {address: lastScrape}} of one replica's active targets."""
    return shardcheck.targets_of(get(f"https://{ip}:9090/api/v1/targets?state=active"))


def settled(data):
    """Wait until every server of the plan scrapes what it says; return (figures, {shard: {job: set}})."""
    last = {}

    def check():
        last["problems"], figures, now = shardcheck.check(data, fetch)
        return None if last["problems"] else (figures, now)

    try:
        return wait_for(check, 90, "every replica to scrape what the plan says")
    except AssertionError as error:
        raise AssertionError(f"{error}; differences: {last.get('problems', [])[:10]}") from None


def plan(*extra_vars, inventories=()):
    output = EPHEMERAL / "plan.json"
    output.unlink(missing_ok=True)
    result = live.run_playbook(PROJECT / "playbooks" / "shard-plan.yml", {"shard_plan_output": str(output)},
                               *extra_vars, inventories=inventories)
    assert result.returncode == 0, result.output[-3000:]
    return json.loads(output.read_text()), result.output


def check_placement(data, replicas):
    """The plan holds on every replica; the discovered job's targets exactly; shards within 10 % of the mean."""
    figures, now = settled(data)
    holders = {}
    for shard, jobs in now.items():
        for target in jobs.get("discovered", set()):
            holders.setdefault(target, []).append(shard)
    # Every discovered target on `replicas` shards, and the one the job's own rule drops on none.
    assert sorted(holders) == KEPT
    assert all(len(shards) == replicas for shards in holders.values())
    assert [s for s in sorted(now) if now[s].get("pinned")] == [1]
    assert all(now[s]["pinned"] == set(PINNED) for s in [1]) and all(now[s]["probe"] == set(PROBE) for s in now)
    counts, mean = figures["spread"], figures["spread_mean"]
    print(f"\nspread targets per shard ({data['mode']}, replicas {replicas}): {counts}, mean {mean}, "
          f"largest deviation {figures['spread_deviation']:.1%}; all targets per shard {figures['targets']}")
    assert figures["spread_deviation"] <= 0.10, counts
    return now


def query(base, promql):
    return get_json(f"{base}/api/v1/query?query={urllib.parse.quote(promql)}")["data"]["result"]


def global_counts(job):
    """The target count of `job` through the global tier and through the remote storage."""
    one_per_target = f'count(group by (job, instance) (up{{job="{job}"}}))'
    values = {}
    for name, base in (("global", f"https://{GLOBAL}:9090"), ("storage", VM)):
        for what, promql in (("README query", one_per_target), ("count(up)", f'count(up{{job="{job}"}})')):
            result = query(base, promql) if name == "global" else json.loads(live.fetch(
                f"{base}/api/v1/query?query={urllib.parse.quote(promql)}", auth=VM_AUTH,
                cafile=TLS / "ca.crt"))["data"]["result"]
            values[(name, what)] = int(float(result[0]["value"][1])) if result else 0
    return values


def instances(job, where):
    """The instance label values of `job`'s up series through the global tier or the remote storage."""
    promql = urllib.parse.quote(f'group by (instance) (up{{job="{job}"}})')
    if where == "global":
        result = query(f"https://{GLOBAL}:9090", f'group by (instance) (up{{job="{job}"}})')
    else:
        result = json.loads(live.fetch(f"{VM}/api/v1/query?query={promql}", auth=VM_AUTH,
                                       cafile=TLS / "ca.crt"))["data"]["result"]
    return {r["metric"].get("instance") for r in result}


def check_global_view(expected):
    """Every target counted once, through the global tier and the remote storage."""
    last = {}

    def check():
        for job, count in expected.items():
            last[job] = global_counts(job)
            if not (last[job][("global", "README query")] == last[job][("storage", "README query")]
                    == last[job][("storage", "count(up)")] == count):
                return None
        return True

    # A target that left a replica within the last minutes stays countable at the global
    # tier until a stale marker reaches it through federation, and at the latest until
    # PromQL's 5 min lookback passes: the check waits that long, and says how long it took.
    started = time.monotonic()
    try:
        wait_for(check, 330, "the global tier and the remote storage to count every target once")
    finally:
        print(f"\nglobal view after {time.monotonic() - started:.0f}s (job: counts): {last}")
        for job in expected:
            print(f"{job}: instances only at the global tier {sorted(instances(job, 'global') - instances(job, 'storage'))}, "
                  f"only in storage {sorted(instances(job, 'storage') - instances(job, 'global'))}")


def stamp(text):
    """Seconds of an RFC 3339 time as Prometheus prints it (nanoseconds cut to microseconds)."""
    return datetime.fromisoformat(re.sub(r"(\.\d{6})\d*", r"\1", text).replace("Z", "+00:00")).timestamp()


def process_identity(ip):
    """Start time and last successful reload of a replica, from its own /metrics."""
    metrics = {line.split()[0]: line.split()[1] for line in get(f"https://{ip}:9090/metrics").splitlines()
               if line.startswith(("process_start_time_seconds", "prometheus_config_last_reload_success_timestamp"))}
    return metrics["process_start_time_seconds"], metrics["prometheus_config_last_reload_success_timestamp_seconds"]


def all_replicas(*groups):
    return {name: ip for group in groups for replicas in group.values() for name, ip in replicas.items()}


# 1. two shards, rendezvous, replicas 1 ----------------------------------------------------

def test_every_job_sits_where_the_plan_says():
    data, output = plan()
    assert data["mode"] == "rendezvous" and data["shard_count"] == 2
    assert "discovered: spread, 0 static/inventory target(s); more found by discovery" in output
    now = check_placement(data, replicas=1)
    total = sum(len(targets) for jobs in now.values() for targets in jobs.values())
    print(f"targets scraped: {total} over {len(now)} shards, on both replicas of each")
    assert len(APP) + len(KEPT) + len(PINNED) + len(PROBE) >= 600


def test_the_global_view_counts_each_target_once():
    check_global_view({"app": len(APP), "discovered": len(KEPT), "farm": len(FARM)})


# 2. a target added to a static job: file_sd, no reload, no restart --------------------------

def test_a_new_static_target_is_scraped_without_reload_or_restart():
    new = f"{FARM[0]}:20300"
    shards = [s for s, members in shard_targets([new], 2).items() if members]
    before = {ip: process_identity(ip) for ip in all_replicas(SHARDS).values()}
    result = live.converge(SCENARIO, {"farm_extra_app_targets": [new]}, tags="prometheus")
    assert result.returncode == 0, result.output[-3000:]
    done = time.time()
    try:
        def scraped():
            stamps = [active(ip).get("app", {}).get(new, "0001-") for shard in shards for ip in SHARDS[shard].values()]
            return None if any(s.startswith("0001-") for s in stamps) else [stamp(s) for s in stamps]

        stamps = wait_for(scraped, 4 * INTERVAL, f"{new} to be scraped by the replicas of shard {shards}")
        after_converge = max(stamps) - done
        print(f"\n{new} first scraped {after_converge:+.1f}s after the converge ended (shard {shards})")
        assert after_converge <= 2 * INTERVAL
        others = [ip for s, members in SHARDS.items() if s not in shards for ip in members.values()]
        assert all(new not in active(ip).get("app", {}) for ip in others)
        changed = [line for line in result.output.splitlines() if "changed: [" in line]
        assert {ip: process_identity(ip) for ip in before} == before, changed  # same processes, no reload
    finally:
        assert live.converge(SCENARIO, tags="prometheus").returncode == 0
    wait_for(lambda: all(new not in active(ip).get("app", {}) for ip in all_replicas(SHARDS).values()), 60,
             f"{new} to go again")
    assert {ip: process_identity(ip) for ip in before} == before


# 3. a job pinned to a shard that does not exist: refused before any change -------------------

def test_a_pinned_shard_that_does_not_exist_is_refused_before_any_change():
    replicas = all_replicas(SHARDS)
    files = {name: live_files(name) for name in replicas}
    before = {ip: process_identity(ip) for ip in replicas.values()}
    bad = {"job_name": "db", "shard": 7, "static_configs": [{"targets": [f"{FARM[0]}:22000"]}]}
    result = live.converge(SCENARIO, {"farm_extra_jobs": [bad]}, tags="prometheus")
    assert result.returncode != 0
    # Preflight finds it, naming the host and the variable, before any host is contacted.
    assert "job 'db': shard 7 names shard(s) [7], but the inventory has shards 0..1" in \
        " ".join(result.output.split()), result.output[-3000:]
    assert {n: live_files(n) for n in replicas} == files
    assert {ip: process_identity(ip) for ip in replicas.values()} == before


def live_files(name):
    """Checksums of a replica's prometheus.yml and target files, read through docker."""
    out = subprocess.run(["docker", "exec", name, "sh", "-c",
                          "sha256sum /etc/prometheus/prometheus.yml /etc/prometheus/targets/*.json"],
                         capture_output=True, text=True, check=True).stdout
    return sorted(out.splitlines())


# 4. resharding live, two to three shards ------------------------------------------------------

def export_samples(job, targets, start, end):
    """Stored sample times of up{job, instance} for each target within [start, end]."""
    match = urllib.parse.quote(f'up{{job="{job}"}}')
    lines = live.fetch(f"{VM}/api/v1/export?match[]={match}&start={int(start)}&end={int(end)}", timeout=30,
                       auth=VM_AUTH, cafile=TLS / "ca.crt")
    stamps = {}
    for line in lines.splitlines():
        series = json.loads(line)
        stamps.setdefault(series["metric"]["instance"], set()).update(t / 1000 for t in series["timestamps"])
    return {target: sorted(t for t in stamps.get(target, ()) if start <= t <= end) for target in targets}


def missed(samples, start, end):
    """(empty dedup windows, longest gap) of one target's stored samples within [start, end].

    The storage keeps one sample per series in each `INTERVAL`-long window (its
    deduplication, aligned on multiples of the interval), the latest: a window with no
    sample is a scrape that no replica made. Gaps between kept samples can reach
    almost two intervals without one (different replicas scrape at different offsets).
    """
    first, last = int(start // INTERVAL) + 1, int(end // INTERVAL)  # whole windows inside
    filled = {int(t // INTERVAL) for t in samples}
    edges = [start, *samples, end]
    return (sum(1 for w in range(first, last) if w not in filled),
            max(b - a for a, b in zip(edges, edges[1:], strict=False)))


def test_reshard_two_to_three_shards_moves_what_the_plan_says_and_loses_no_sample():
    SHARD_2_INVENTORY.write_text(yaml.safe_dump({"all": {"children": {
        "prometheus": {"hosts": dict.fromkeys(NEW_SHARD)},
        "prometheus_shard_2": {"hosts": dict.fromkeys(NEW_SHARD), "vars": {"prometheus_shard": 2}}}}}))
    current, _ = plan()
    _, before = settled(current)
    predicted, output = plan(inventories=[SHARD_2_INVENTORY])
    hashmod, _ = plan({"shard_plan_mode": "hashmod"}, inventories=[SHARD_2_INVENTORY])
    started = time.time()
    result = live.converge(SCENARIO, tags="prometheus", inventories=[SHARD_2_INVENTORY])
    assert result.returncode == 0, result.output[-3000:]
    ended = time.time()
    after = check_placement(predicted, replicas=1)

    seen = set()
    for job in PLANNED:
        if job == "discovered":
            continue
        targets = {t for jobs in list(before.values()) + list(after.values()) for t in jobs.get(job, ())}
        for target in targets:
            was = {s for s, jobs in before.items() if target in jobs.get(job, ())}
            now = {s for s, jobs in after.items() if target in jobs.get(job, ())}
            if was != now:
                seen.add((job, target, tuple(sorted(was - now)), tuple(sorted(now - was))))
    expected = {(m["job"], m["target"], tuple(m["from"]), tuple(m["to"])) for m in predicted["moves"]}
    assert seen == expected, (sorted(seen - expected)[:5], sorted(expected - seen)[:5])

    # Discovered targets moved as hashmod over three shards says.
    kept = KEPT
    three_way = shard_targets(kept, 3, mode="hashmod")
    assert all(after[s].get("discovered", set()) == set(three_way[s]) for s in range(3))
    discovered_moved = [t for t in kept if {s for s in before if t in before[s].get("discovered", ())}
                        != {s for s in after if t in after[s].get("discovered", ())}]

    spread_moved = [m for m in predicted["moves"] if m["job"] in SPREAD and m["to"]]
    table = [
        "| | predicted (shard plan) | seen on the servers |",
        "| --- | --- | --- |",
        f"| (job, target) changes, static and inventory jobs | {len(expected)} | {len(seen)} |",
        f"| spread static targets moved (rendezvous) | {predicted['moved']['spread']} of "
        f"{predicted['moved']['spread_total']} ({predicted['moved']['spread_share']:.1%}) | {len(spread_moved)} |",
        f"| the same with hashmod | {hashmod['moved']['spread']} of {hashmod['moved']['spread_total']} "
        f"({hashmod['moved']['spread_share']:.1%}) | (not deployed) |",
        f"| discovered targets moved (hashmod relabelling, always) | - | {len(discovered_moved)} of {len(kept)} |",
    ]
    print("\nreshard 2 -> 3 shards, converge " f"{ended - started:.0f}s:\n" + "\n".join(table))
    assert 0.25 < predicted["moved"]["spread_share"] < 0.42
    assert hashmod["moved"]["spread_share"] > predicted["moved"]["spread_share"]

    # No missed sample in the remote storage for any moved target, over the whole move.
    wait_for(lambda: time.time() > ended + 4 * INTERVAL, 6 * INTERVAL, "the storage to receive the samples")
    window = (started - 2 * INTERVAL, ended + 2 * INTERVAL)
    found = {}
    for job in ("app", "farm", "node", "discovered"):
        moved = discovered_moved if job == "discovered" else [m["target"] for m in predicted["moves"]
                                                              if m["job"] == job]
        if moved:
            found.update({(job, t): missed(samples, *window)
                          for t, samples in export_samples(job, moved, *window).items()})
    empty = {key: value[0] for key, value in found.items() if value[0]}
    worst = max(found.items(), key=lambda item: item[1][1])
    print(f"remote storage over the move ({window[1] - window[0]:.0f}s, {int((window[1] - window[0]) // INTERVAL)} "
          f"windows of {INTERVAL}s): {len(found)} moved targets, {sum(empty.values())} windows without a sample; "
          f"longest gap between kept samples {worst[1][1]:.1f}s ({worst[0][0]} {worst[0][1]})")
    assert not empty, sorted(empty.items())[:5]


# 5. three shards, replicas 2, hashmod ----------------------------------------------------------

def test_replicas_two_in_hashmod_mode_and_the_global_view_still_counts_once():
    settings = {"prometheus_shard_replicas": 2, "prometheus_shard_mode": "hashmod"}
    result = live.converge(SCENARIO, settings, tags="prometheus", inventories=[SHARD_2_INVENTORY])
    assert result.returncode == 0, result.output[-3000:]
    data, _ = plan(settings, inventories=[SHARD_2_INVENTORY])
    assert data["moves"] == [], data["moves"][:5]  # what runs is what the plan says
    now = check_placement(data, replicas=2)
    for job, targets in (("app", APP), ("farm", [f"{h}:19990" for h in FARM])):
        holders = {t: [s for s in now if t in now[s].get(job, ())] for t in targets}
        assert all(len(shards) == 2 for shards in holders.values()), job
    check_global_view({"app": len(APP), "discovered": len(KEPT), "farm": len(FARM)})
    raw = query(f"https://{GLOBAL}:9090", 'count(up{job="app"})')
    print(f"global tier, count(up{{job=\"app\"}}) without the README's grouping: {raw[0]['value'][1]} "
          f"(a series per replica of every shard that held a target in the last five minutes)")
