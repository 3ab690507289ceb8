"""Drill 12: The federation host lost (its container stopped): global-view queries (the front's
/storage/) keep answering.
"""

from __future__ import annotations

import subprocess
import time

from live import wait_for

from drills.common import (
    read_figures,
    storage_reads,
)


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
