#!/usr/bin/env python3
"""Benchmark the job-level sharding filters at scale (prints figures; not a test).

Case: 50 scrape jobs holding 100,000 static targets, over 64 shards with
replicas=2, as the prometheus role computes them for one replica:
`shard_scrape_configs` for one shard, then `file_sd_scrape_configs` (the config and
the target files the role writes). Also the whole plan (`shard_plan`, every shard,
with the moves against a 63-shard deployment), which playbooks/shard-plan.yml
computes once. For each mode: wall time (median, min, max over --repeat runs), the
peak of Python allocations during one run (tracemalloc) and the process' peak RSS
measured in a fresh child process (interpreter and input included).
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "plugins" / "filter"))
from shards import file_sd_scrape_configs, shard_plan, shard_scrape_configs  # noqa: E402


def jobs(count, targets):
    """`count` jobs sharing `targets` static targets: spread jobs, one on every shard, one pinned."""
    per_job = targets // count
    made = []
    for j in range(count):
        job = {"job_name": f"job{j}", "scrape_interval": "30s",
               "static_configs": [{"targets": [f"10.{j}.{i >> 8 & 255}.{i & 255}:{9100 + j}" for i in range(per_job)],
                                   "labels": {"team": f"t{j % 7}"}}]}
        if j == count - 1:
            job["shard"] = "all"
        elif j == count - 2:
            job["shard"] = [3]
        made.append(job)
    return made


def one_replica(data, shards, mode, replicas):
    configs = shard_scrape_configs(data, 0, shards, mode=mode, replicas=replicas)
    return file_sd_scrape_configs(configs, "/etc/prometheus/targets")


def timed(call, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    call()
    peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    return times, peak


def child_rss(args, mode, what):
    """Peak RSS of a fresh process (this script with --child) that builds the input and runs `what` once."""
    cmd = [sys.executable, __file__, "--child", what, "--mode", mode, "--jobs", str(args.jobs),
           "--targets", str(args.targets), "--shards", str(args.shards), "--replicas", str(args.replicas)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return float(out.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--targets", type=int, default=100_000)
    parser.add_argument("--shards", type=int, default=64)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--mode", default=None)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    data = jobs(args.jobs, args.targets)
    if args.child:
        if args.child == "replica":
            one_replica(data, args.shards, args.mode, args.replicas)
        else:
            shard_plan(data, args.shards, mode=args.mode, replicas=args.replicas)
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        return
    print(f"cores={os.cpu_count()} python={sys.version.split()[0]} jobs={args.jobs} "
          f"static targets={sum(len(j['static_configs'][0]['targets']) for j in data)} shards={args.shards} "
          f"replicas={args.replicas} repeat={args.repeat}")
    print(f"{'what':<40} {'median_s':>9} {'min_s':>7} {'max_s':>7} {'alloc_peak_MB':>14} {'process_peak_RSS_MB':>20}")
    for mode in ("hashmod", "rendezvous"):
        times, peak = timed(lambda mode=mode: one_replica(data, args.shards, mode, args.replicas), args.repeat)
        rss = child_rss(args, mode, "replica")
        label = f"one replica's configs + files, {mode}"
        print(f"{label:<40} {statistics.median(times):>9.3f} {min(times):>7.3f} {max(times):>7.3f} "
              f"{peak:>14.1f} {rss:>20.1f}")
    for mode in ("hashmod", "rendezvous"):
        deployed = shard_plan(data, args.shards - 1, mode=mode, replicas=args.replicas)
        now = {s: {n: j["targets"] for n, j in info["jobs"].items()} for s, info in deployed["shards"].items()}
        times, peak = timed(lambda mode=mode, now=now: shard_plan(data, args.shards, mode=mode,
                                                                   replicas=args.replicas, deployed=now), 1)
        plan = shard_plan(data, args.shards, mode=mode, replicas=args.replicas, deployed=now)
        label = f"whole plan {args.shards - 1}->{args.shards} shards, {mode}"
        print(f"{label:<40} {statistics.median(times):>9.3f} {min(times):>7.3f} {max(times):>7.3f} "
              f"{peak:>14.1f} {child_rss(args, mode, 'plan'):>20.1f}   "
              f"moved {plan['moved']['spread_share']:.2%} of spread targets")
    print(json.dumps({"note": "alloc_peak: tracemalloc during one run; process RSS includes the input"}))


if __name__ == "__main__":
    main()
