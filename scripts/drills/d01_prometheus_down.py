"""Drill 1: One Prometheus replica per shard stopped: queries through the floating address keep
answering, remote storage has no gap longer than two scrape intervals, and (full run) the
PrometheusReplicaMissing alert of each shard arrives once.
"""

from __future__ import annotations

import time

from live import wait_for

from drills.common import (
    Load,
    failure_lines,
    ok,
    self_scrape,
    stored_stamps,
)


def drill_prometheus(drill_lab, receiver, short):
    stopped = {shard: replicas[-1] for shard, replicas in drill_lab.shards.items()}
    window = 45 if short else 150
    load = Load(drill_lab.topology.front_url("/prometheus/shard-0/api/v1/query?query=up"), drill_lab.topology)
    loads = {shard: Load(drill_lab.topology.front_url(f"/prometheus/shard-{shard}/api/v1/query?query=up"),
                         drill_lab.topology)
             for shard in drill_lab.shards if shard != 0}
    time.sleep(5)
    stop_time = time.time()
    for host in stopped.values():
        drill_lab.exec(host, "systemctl", "stop", "prometheus")
    alert_seen = {}
    try:
        deadline = time.monotonic() + window
        while time.monotonic() < deadline:
            for shard, host in stopped.items():
                if shard not in alert_seen and receiver.notifications(
                        lambda n, host=host: any(a.get("alertname") == "PrometheusReplicaMissing"
                                                 and a.get("instance", "").startswith(drill_lab.address(host) + ":")
                                                 for a in n["alerts"])):
                    alert_seen[shard] = time.time() - stop_time
            if not short and len(alert_seen) == len(stopped):
                break
            time.sleep(1)
        if not short:
            time.sleep(drill_lab.peer_timeout + 5)  # room for a duplicate to show up
    finally:
        for host in stopped.values():
            drill_lab.exec(host, "systemctl", "start", "prometheus")
    restart_time = time.time()
    results = [*load.stop(), *(r for extra in loads.values() for r in extra.stop())]
    failed = sum(1 for _, good in results if not good)
    for host in stopped.values():
        wait_for(lambda host=host: ok(drill_lab.prometheus(host, "/-/ready"), topology=drill_lab.topology,
                                      tier="prometheus"), 90, f"{host} ready")
    gaps = {}
    for shard, replicas in drill_lab.shards.items():
        # Scraped series reach the storage without their shard label; the instance names the replica.
        query = self_scrape(drill_lab, replicas[0])

        def samples(query=query):
            return stored_stamps(drill_lab, query, stop_time - 30, restart_time + 30)

        # Until storage holds a sample from after the restart: the window is then complete.
        wait_for(lambda samples=samples: samples() and samples()[-1] >= restart_time, 60,
                 f"samples of {query} after the restart in remote storage")
        stamps = samples()
        gaps[shard] = max(b - a for a, b in zip(stamps, stamps[1:], strict=False)) if len(stamps) > 1 else window
    slow = load.slow + sum(extra.slow for extra in loads.values())
    figures = (f"{len(stopped)} replicas stopped {restart_time - stop_time:.0f}s; {failed} of {len(results)} queries "
               f"through {drill_lab.vip} failed ({slow} answered in over {Load.SLOW:.0f}s); longest storage gap per shard "
               + ", ".join(f"{s}: {g:.0f}s" for s, g in sorted(gaps.items())))
    problems = []
    if failed:
        problems.append(f"{failed} queries failed: " + "; ".join(failure_lines([load, *loads.values()])))
    if max(gaps.values()) > 2 * drill_lab.scrape_interval:
        problems.append(f"a storage gap is longer than {2 * drill_lab.scrape_interval}s")
    if not short:
        keys = [n["group_key"] for n in receiver.notifications(
            lambda n: any(a.get("alertname") == "PrometheusReplicaMissing" for a in n["alerts"]))]
        figures += ("; PrometheusReplicaMissing delivered after "
                    + ", ".join(f"shard {s}: {t:.0f}s" for s, t in sorted(alert_seen.items()))
                    + f" ({len(keys)} notifications, {len(set(keys))} groups)")
        if len(alert_seen) != len(stopped):
            problems.append(f"the alert arrived for shards {sorted(alert_seen)} only")
        if len(keys) != len(set(keys)):
            problems.append("a PrometheusReplicaMissing group was notified twice")
    return figures, problems
