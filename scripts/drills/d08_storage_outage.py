"""Drill 8: One remote storage node stopped for 5 minutes (1 with --short) while the shards
scrape: reads through the front's /storage/ (instant and over the last hour, every 2 s) all
answer from the other node, which has no hole longer than one scrape interval; once the node
is back, the shards' write-ahead logs fill its hole (measured per series, with the time it
took), and both nodes' sample counts over the outage match within 1 % for every series.
"""

from __future__ import annotations

import time

from drills.common import (
    agreement,
    attempt,
    count_difference,
    largest_gap,
    ok,
    read_figures,
    sample_counts,
    self_scrape,
    storage_reads,
    stored_stamps,
)

STORAGE_UNIT = "victoria-metrics-server"  # roles/remote_storage's own unit


def holes_on(drill_lab, node, start, end):
    """The largest hole per replica's self-scrape series on one storage node over [start, end]."""
    replicas = [replica for members in drill_lab.shards.values() for replica in members]
    return {r: largest_gap(stored_stamps(drill_lab, self_scrape(drill_lab, r), start, end, node=node), start, end)
            for r in replicas}


# Paths under the front's /storage/ that must never reach a storage node, even with its credentials.
STORAGE_REFUSED = ["/storage/api/v1/write", "/storage/api/v1/import", "/storage/api/v1/admin/tsdb/delete_series",
                   "/storage/snapshot/create", "/storage/metrics", "/storage/flags", "/storage/debug/pprof/",
                   "/storage/internal/force_merge", "/storage/api/v1/export"]


def storage_refusals(drill_lab):
    """``{path: answer}`` of the front for each of STORAGE_REFUSED, called with the storage credentials."""
    return {path: attempt(drill_lab.topology.front_url(path), drill_lab.topology, "remote_storage", timeout=5)[1]
            for path in STORAGE_REFUSED}


def drill_storage_outage(drill_lab, receiver, short):
    nodes = drill_lab.topology.hosts("remote_storage")
    host, survivor = nodes[0], (nodes[1:] or [None])[0]
    refusals = storage_refusals(drill_lab) if survivor else {}
    allowed = {path: answer for path, answer in refusals.items() if not answer.startswith("HTTP 403")}
    outage = 60 if short else 300
    reads = storage_reads(drill_lab) if survivor else []
    time.sleep(2)
    stopped = time.time()
    stop = drill_lab.exec(host, "systemctl", "stop", STORAGE_UNIT)
    try:
        if stop.returncode != 0 or ok(f"{drill_lab.storage}/health", topology=drill_lab.topology, tier="remote_storage"):
            return f"aborted: {STORAGE_UNIT} on {host} did not stop: {stop.stderr.strip()}", ["the storage kept running"]
        time.sleep(outage)
    finally:
        drill_lab.exec(host, "systemctl", "start", STORAGE_UNIT)
    back = time.time()
    failed, queries, failures = read_figures(reads) if reads else (0, 0, [])
    # The shards resend what the node missed from their write-ahead logs: poll, from
    # the moment it is back, until every series is whole over the outage (and the 30 s
    # before it), at most 5 minutes.
    start, end = stopped - 30, back
    holes, caught = {}, None
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            holes = holes_on(drill_lab, host, start, end)
        except OSError:
            holes = {}
        if holes and max(holes.values()) <= 2 * drill_lab.scrape_interval:
            caught = time.time() - back
            break
        time.sleep(2)
    figures = (f"{host} stopped {back - stopped:.0f}s; "
               + (f"every series whole again on it {caught:.0f}s after it returned" if caught is not None
                  else "the series were NOT whole on it within 5 minutes")
               + "; largest hole per series " + ", ".join(f"{r}: {g:.0f}s" for r, g in sorted(holes.items())))
    problems = []
    if caught is None:
        problems.append(f"holes longer than {2 * drill_lab.scrape_interval}s remain: {holes}")
    if survivor:
        # The survivor took every write meanwhile; once the returned node is whole, both
        # hold the same samples over the outage for every series.
        kept = holes_on(drill_lab, survivor, start, end)
        # The resent samples become searchable within seconds; compare until both agree
        # to the sample, at most 5 minutes, 1 minute in the short drill (the last
        # comparison is the one reported; only series apart by more than one sample fail).
        settle = time.monotonic() + (60 if short else 300)
        while True:
            counts = count_difference(sample_counts(drill_lab, host, stopped, back),
                                      sample_counts(drill_lab, survivor, stopped, back))
            if not (counts["differing"] or counts["edge"] or counts["alone"]) or time.monotonic() > settle:
                break
            time.sleep(drill_lab.scrape_interval)
        agreed = time.time() - back
        figures += (f"; reads through the front's /storage/: {failed} of {queries} failed; on {survivor} the largest "
                    f"hole {max(kept.values()):.0f}s; outage-window sample counts {agreed:.0f}s after its return: "
                    f"{agreement(counts)}")
        figures += f"; {len(refusals) - len(allowed)} of {len(refusals)} write, admin and debug paths refused at /storage/"
        if allowed:
            problems.append(f"the front's /storage/ forwards what it must refuse: {allowed}")
        if failed:
            problems.append(f"{failed} reads failed: " + "; ".join(failures))
        if max(kept.values()) > drill_lab.scrape_interval + 1:
            problems.append(f"{survivor} has a hole longer than one scrape interval: {kept}")
        if counts["differing"] or not counts["compared"]:
            problems.append(f"{host} and {survivor} differ: {agreement(counts)}")
    return figures, problems
