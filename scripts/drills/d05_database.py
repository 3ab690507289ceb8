"""Drill 5: The database stopped: Grafana reports it and recovers (only where Grafana is
installed; otherwise reported as not checked, with the reason).
"""

from __future__ import annotations

import time

import lab
from live import wait_for

from drills.common import (
    NotChecked,
    ok,
)


def drill_database(drill_lab, receiver, short):
    report = lab.GRAFANA_REPORT
    installed = [h for h in drill_lab.grafanas
                 if drill_lab.exec(h, "dpkg-query", "-W", "grafana").returncode == 0]
    if not installed:
        reason = report.read_text().splitlines()[0] if report.exists() else "Grafana is not installed"
        raise NotChecked(reason)
    health = drill_lab.topology.url(installed[0], "grafana_http_port", "/api/health")
    drill_lab.exec(drill_lab.database, "systemctl", "stop", "mariadb")
    try:
        wait_for(lambda: not ok(health, topology=drill_lab.topology, tier="grafana"), 60, "Grafana reporting the database down")
        down = "Grafana's /api/health failed while the database was stopped"
    finally:
        drill_lab.exec(drill_lab.database, "systemctl", "start", "mariadb")
    started = time.monotonic()
    wait_for(lambda: ok(health, topology=drill_lab.topology, tier="grafana"), 90, "Grafana healthy again")
    return f"{down}; healthy again {time.monotonic() - started:.1f}s after it came back", []
