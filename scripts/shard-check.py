#!/usr/bin/env python3
"""Check that every Prometheus replica of an environment scrapes what the shard plan says.

Runs playbooks/shard-plan.yml (read-only) for the plan, then reads each replica's
/api/v1/targets and compares (tests/helpers/shardcheck.py): replicas of a shard
agree, static and inventory targets exactly as planned, discovered targets on
exactly `prometheus_shard_replicas` shards, pinned and every-shard jobs where
asked. Prints a table per shard and exits 1 on any difference.

    scripts/shard-check.py [--inventory inventories/lab]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "helpers"))
import shardcheck  # noqa: E402
from topology import Topology  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inventory", default=str(ROOT / "inventories" / "lab"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        output = Path(scratch) / "plan.json"
        env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
        run = subprocess.run([str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", args.inventory,
                              str(ROOT / "playbooks" / "shard-plan.yml"), "-e", f"shard_plan_output={output}"],
                             capture_output=True, text=True, env=env, check=False)
        if run.returncode != 0:
            sys.exit(f"shard-check: the shard plan failed:\n{(run.stdout + run.stderr)[-3000:]}")
        plan = json.loads(output.read_text())
    topo = Topology(args.inventory)
    problems, figures, now = shardcheck.check(plan, lambda url: topo.fetch("prometheus", url, timeout=10))
    jobs = [job["job"] for job in plan["jobs"]]
    print(f"mode {plan['mode']}, {plan['shard_count']} shards, replicas {plan['replicas']}")
    print("| shard | " + " | ".join(jobs) + " | all | spread |")
    print("| --- " * (len(jobs) + 3) + "|")
    for shard, found in sorted(now.items()):
        print(f"| {shard} | " + " | ".join(str(len(found.get(job, ()))) for job in jobs)
              + f" | {figures['targets'][shard]} | {figures['spread'][shard]} |")
    print(f"spread targets per shard: mean {figures['spread_mean']}, largest deviation "
          f"{figures['spread_deviation']:.1%}")
    for problem in problems:
        print(f"DIFFERS: {problem}")
    print("every replica scrapes what the plan says" if not problems else f"{len(problems)} difference(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
