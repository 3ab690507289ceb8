"""Drill 4: The balancer holding the floating address stopped: the address moves, requests
continue (failures counted, none after the move).
"""

from __future__ import annotations

import subprocess
import time

from live import wait_for

from drills.common import (
    Load,
    ok,
)


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
