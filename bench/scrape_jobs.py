#!/usr/bin/env python3
"""Benchmark the job-level sharding filters at scale (prints figures; not a test).

Case: 50 scrape jobs holding 100,000 static targets, over 64 shards with
replicas=2, as the prometheus role computes them for one replica:
`shard_scrape_configs` for one shard, then `file_sd_scrape_configs` (the config and
the target files the role writes). Also the whole plan (`shard_plan`, every shard,
with the moves against a 63-shard deployment), which playbooks/shard-plan.yml
computes once; and every replica's configs and files as the role computes them for
all 128 replicas of a run (`every_shard_scrape_configs` once, then each replica's
files), with `--one-by-one` each replica placing every target itself, as the role
did before. For each mode: wall time (median, min, max over --repeat runs), the
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "collections"))
from ansible_collections.promha.stack.plugins.plugin_utils.shards import (  # noqa: E402
    every_shard_scrape_configs,
    file_sd_scrape_configs,
    shard_plan,
    shard_scrape_configs,
)
from options import options


def jobs(count, targets, shards):
    """`count` jobs sharing `targets` static targets: spread jobs, one on every shard, one pinned
    (to shard 3, or the last shard that a deployment of one shard fewer has too)."""
    per_job = targets // count
    made = []
    for j in range(count):
        job = {"job_name": f"job{j}", "scrape_interval": "30s",
               "static_configs": [{"targets": [f"10.{j}.{i >> 8 & 255}.{i & 255}:{9100 + j}" for i in range(per_job)],
                                   "labels": {"team": f"t{j % 7}"}}]}
        if j == count - 1:
            job["shard"] = "all"
        elif j == count - 2:
            job["shard"] = [min(3, shards - 2)]
        made.append(job)
    return made


def one_replica(data, shards, mode, replicas):
    return one_replica_of(data, 0, shards, mode, replicas)


def every_replica(data, shards, mode, replicas):
    """What the prometheus role computes for all shards x replicas: every shard's share
    once, then each replica's file_sd files from its own shard's configs."""
    configs = every_shard_scrape_configs(data, shards, mode=mode, replicas=replicas)
    return [file_sd_scrape_configs(configs[shard], "/etc/prometheus/targets")
            for shard in range(shards) for _ in range(replicas)]


def every_replica_one_by_one(data, shards, mode, replicas):
    """The same, each replica placing every target on its own (``--one-by-one``)."""
    return [one_replica_of(data, shard, shards, mode, replicas) for shard in range(shards) for _ in range(replicas)]


def one_replica_of(data, shard, shards, mode, replicas):
    return file_sd_scrape_configs(shard_scrape_configs(data, shard, shards, mode=mode, replicas=replicas),
                                  "/etc/prometheus/targets")


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
    parser = options(__doc__, jobs=50, targets=100_000, shards=64, replicas=2, repeat=5)
    parser.add_argument("--mode", default=None)
    parser.add_argument("--one-by-one", action="store_true",
                        help="also time every replica computing its own shard's share (minutes at 128 replicas)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.replicas < 1 or args.shards <= args.replicas:
        parser.error(f"--shards ({args.shards}) must be larger than --replicas ({args.replicas}): the plan is "
                     "measured against a deployment of one shard fewer, which needs as many shards as replicas")
    data = jobs(args.jobs, args.targets, args.shards)
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
        times, peak = timed(lambda mode=mode: every_replica(data, args.shards, mode, args.replicas), args.repeat)
        label = f"all {args.shards * args.replicas} replicas, one pass, {mode}"
        print(f"{label:<40} {statistics.median(times):>9.3f} {min(times):>7.3f} {max(times):>7.3f} {peak:>14.1f}")
    if args.one_by_one:
        for mode in ("hashmod", "rendezvous"):
            start = time.perf_counter()
            every_replica_one_by_one(data, args.shards, mode, args.replicas)
            label = f"all {args.shards * args.replicas} replicas, one by one, {mode}"
            print(f"{label:<40} {time.perf_counter() - start:>9.3f}")
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
