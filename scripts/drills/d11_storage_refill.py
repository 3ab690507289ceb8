"""Drill 11: A storage node destroyed (container removed, made anew, empty) and refilled from
its peer by playbooks/storage-refill.yml while reads run through /storage/ every 0.5 s: none
fails, and afterwards both nodes hold every series with sample counts over the whole
retention within 1 %.
"""

from __future__ import annotations

import re
import time

from drills.common import (
    agreement,
    count_difference,
    enough_hosts,
    failed_run,
    first_sample,
    playbook,
    read_figures,
    remake,
    sample_counts,
    storage_reads,
)


def whole_retention(drill_lab, node, peer, since):
    """Sample counts of every series on ``node`` against ``peer`` from ``since`` to now."""
    now = time.time() - 2 * drill_lab.scrape_interval  # what both hold by now
    return count_difference(sample_counts(drill_lab, node, since, now), sample_counts(drill_lab, peer, since, now))


def drill_storage_rebuild(drill_lab, receiver, short):
    nodes = enough_hosts(drill_lab, "remote_storage", 2, "one storage node, nothing to refill from")
    # The node refilled runs the newest release among them (a newer release reads an
    # older one's data, not the other way round: a mixed lab refills the newer node).
    versions = {node: storage_release(drill_lab, node) for node in nodes}
    host = max(reversed(nodes), key=lambda node: versions[node])
    peer = next(node for node in nodes if node != host)
    since = first_sample(drill_lab, peer)
    reads = storage_reads(drill_lab, interval=0.5)
    time.sleep(2)
    made = time.time()
    remake(drill_lab, host)
    refill, changed = playbook("storage-refill.yml", "-e", f"storage_refill_host={host}")
    took = time.time() - made
    failed, queries, failures = read_figures(reads)
    if refill.returncode:
        return f"storage-refill.yml failed after {took:.0f}s", failed_run(refill, "storage-refill.yml")
    counts = whole_retention(drill_lab, host, peer, since)
    figures = (f"{host} (VictoriaMetrics {'.'.join(map(str, versions[host]))}) removed, made anew and refilled from "
               f"{peer} ({'.'.join(map(str, versions[peer]))}; storage-refill.yml rc {refill.returncode}, "
               f"{took:.0f}s); reads through /storage/: {failed} of {queries} failed; over the whole retention "
               f"({(time.time() - since) / 60:.0f} min): {agreement(counts)}")
    problems = failed_run(refill, "storage-refill.yml")
    if failed:
        problems.append(f"{failed} reads failed: " + "; ".join(failures))
    if counts["differing"] or not counts["compared"] or counts["alone"]:
        problems.append(f"{host} and {peer} differ: {agreement(counts)}")
    return figures, problems


def storage_release(drill_lab, node):
    """The VictoriaMetrics package release on ``node`` as a tuple of ints (``()`` when unknown)."""
    out = drill_lab.exec(node, "dpkg-query", "--show", "--showformat=${Version}", "victoria-metrics").stdout
    return release_tuple(out)


def release_tuple(version):
    """``(1, 112, 0)`` from a Debian version such as ``1.112.0+ds1-1`` (epoch and suffix dropped)."""
    match = re.match(r"^(?:\d+:)?(\d+(?:\.\d+)*)", version.strip())
    return tuple(int(part) for part in match.group(1).split(".")) if match else ()
