"""Drill 15: Every Alertmanager stopped: the heartbeat stops, and returns with them.
"""

from __future__ import annotations

import time

from live import wait_for

from drills.common import (
    cluster_sizes,
    seconds,
)


def drill_heartbeat(drill_lab, receiver, short):
    """Every Alertmanager stopped: the heartbeat (the always-firing Watchdog, routed to
    alertmanager_heartbeat_url, the drill's receiver in the lab) stops, and returns with them."""
    first_host = next(iter(drill_lab.alertmanagers.values()))[0]
    interval = seconds(drill_lab.topology.setting(first_host, "alertmanager_heartbeat_interval"))

    def beats(after=0.0):
        return [n["received"] for n in receiver.notifications(
            lambda n: bool(n["alerts"]) and n["alerts"][0].get("alertname") == "Watchdog") if n["received"] > after]

    listening = time.time()
    wait_for(lambda: beats(listening), 2 * interval + 60, "a heartbeat")
    first = max(beats())
    wait_for(lambda: beats(first), 2 * interval + 30, "the next heartbeat")
    period = min(beats(first)) - first
    stopped = time.time()
    try:
        for host, unit, _ in drill_lab.alertmanagers.values():
            drill_lab.exec(host, "systemctl", "stop", unit)
        time.sleep(3 * interval)
        during = beats(stopped + 2)
        last = max(beats()) - stopped
    finally:
        started = time.time()
        for host, unit, _ in drill_lab.alertmanagers.values():
            drill_lab.exec(host, "systemctl", "start", unit)
    wait_for(lambda: beats(started), 3 * interval + 60, "the heartbeat back")
    back = min(beats(started)) - started
    wait_for(lambda: all(size == len(drill_lab.alertmanagers) for size in cluster_sizes(drill_lab).values()), 120,
             "the cluster whole again")
    figures = (f"heartbeat every {period:.0f}s (interval {interval:.0f}s); all {len(drill_lab.alertmanagers)} "
               f"Alertmanagers stopped: the last heartbeat {-last:.0f}s before, none in the {3 * interval:.0f}s after "
               f"(an outside check with a grace of 2 intervals pages at most {3 * interval:.0f}s after the stop); "
               f"started: the heartbeat back after {back:.0f}s, the cluster whole")
    problems = []
    if during:
        problems.append(f"{len(during)} heartbeat(s) arrived with every Alertmanager stopped")
    if period > 1.5 * interval + 15:
        problems.append(f"heartbeats {period:.0f}s apart, more than the interval {interval:.0f}s allows")
    return figures, problems
