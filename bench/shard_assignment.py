#!/usr/bin/env python3
"""Benchmark the shard-assignment filter at scale (prints figures; not a test).

The reference case: 100,000 targets over 64 shards with
replicas=2 (rendezvous) and replicas=1 (hashmod, which allows only one). For each
mode: wall time (median, min, max over --repeat runs), peak Python memory of one
run (tracemalloc), and the fraction of assignments that move going 64 -> 65 shards.
"""

import os
import resource
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "collections"))
from ansible_collections.promha.stack.plugins.plugin_utils.shards import shard_targets  # noqa: E402
from options import options


def pairs(assignment):
    return {(target, shard) for shard, targets in assignment.items() for target in targets}


def main():
    args = options(__doc__, targets=100_000, shards=64, repeat=5).parse_args()
    targets = [f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}:9100" for i in range(args.targets)]
    n = args.shards
    print(f"cores={os.cpu_count()} python={sys.version.split()[0]} targets={args.targets} shards={n} "
          f"repeat={args.repeat}")
    print(f"{'mode':<11} {'replicas':>8} {'median_s':>9} {'min_s':>7} {'max_s':>7} {'peak_MB':>8} "
          f"{f'moved_{n}->{n + 1}':>12} {'ideal':>7} {'ratio':>6}")
    for mode, replicas in (("rendezvous", 2), ("rendezvous", 1), ("hashmod", 1)):
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            before = shard_targets(targets, n, mode=mode, replicas=replicas)
            times.append(time.perf_counter() - start)
        tracemalloc.start()
        shard_targets(targets, n, mode=mode, replicas=replicas)
        peak = tracemalloc.get_traced_memory()[1] / 1e6
        tracemalloc.stop()
        after = shard_targets(targets, n + 1, mode=mode, replicas=replicas)
        new = pairs(after)
        moved = len(new - pairs(before)) / len(new)
        ideal = 1 / (n + 1)
        print(f"{mode:<11} {replicas:>8} {statistics.median(times):>9.3f} {min(times):>7.3f} {max(times):>7.3f} "
              f"{peak:>8.1f} {moved:>12.4%} {ideal:>7.2%} {moved / ideal:>6.2f}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"process peak RSS (targets, results and interpreter included): {rss:.1f} MB")


if __name__ == "__main__":
    main()
