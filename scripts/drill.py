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

Drills, one module each (its docstring says what it takes away and measures):
  1  scripts/drills/d01_prometheus_down.py
  2  scripts/drills/d02_alertmanager_down.py
  3  scripts/drills/d03_partition.py
  4  scripts/drills/d04_balancer.py
  5  scripts/drills/d05_database.py
  6  scripts/drills/d06_stranger.py
  7  scripts/drills/d07_everything_back.py
  8  scripts/drills/d08_storage_outage.py
  9  scripts/drills/d09_replaced_replica.py
 10  scripts/drills/d10_rolling_upgrade.py
 11  scripts/drills/d11_storage_refill.py
 12  scripts/drills/d12_global_lost.py
 13  scripts/drills/d13_backup_restore.py
 14  scripts/drills/d14_database_cluster.py
 15  scripts/drills/d15_heartbeat.py
 16  scripts/drills/d16_duplicate_window.py
Drills 2, 6, 8, 9, 11, 13, 14, 15 and 16 take minutes each, or are proven again by a
molecule scenario (2: the alertmanager scenario's position 0 down): --short leaves
them to `make drill` unless --only names them.

A query fails when it gets no 200 within 5 s; answers slower than 1 s are counted
apart. Every drill that counts failed queries lists each failure: its time, path,
and the status and upstream (the lab's front adds X-Upstream-Addr) or the error.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from drills import DRILLS, LONG_DRILLS  # noqa: E402
from drills.common import RECEIVER_PORT, ROOT, Lab, NotChecked, Receiver  # noqa: E402
from drills.d10_rolling_upgrade import drill_upgrade  # noqa: E402


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
        except NotChecked as reason:
            figures, problems = f"not checked: {reason}", None
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
