"""Drill 10: Rolling upgrade (only with --upgrade, after make releases; it runs last, and
leaves the lab on Prometheus' new release): site.yml with .lab/releases/vars.yml, one HA
member at a time, while queries run through the floating address and alert groups keep
arriving: 0 failed queries, no storage gap longer than two scrape intervals, every group
notified exactly once, the cluster whole, each daemon on the archive's version; then
Prometheus' way back (site.yml without the archives) is refused by preflight with nothing
changed, since its data cannot go back below 2.55; then Alertmanager and node_exporter go
back to the packages the same rolling way, with the same measures; a silence made before the
upgrade is active on every instance after each step.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

from live import wait_for

from drills.common import (
    ROOT,
    Load,
    NotChecked,
    cluster_sizes,
    drill_alerts,
    failed_run,
    failure_lines,
    largest_gap,
    rfc3339,
    self_scrape,
    site,
    storage_reads,
    stored_stamps,
    versions,
)

RELEASES = ROOT / ".lab" / "releases" / "vars.yml"  # scripts/release-archives.py


class AlertFeed:
    """As every Prometheus does: each firing alert of one batch to every Alertmanager, again
    and again, one more group every 6 s up to ``count``, so groups arrive all through a run."""

    def __init__(self, drill_lab, count):
        self.drill_lab, self.count = drill_lab, count
        self.batch, self.refused, self.done = uuid.uuid4().hex[:8], [], threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def mine(self, notification):
        return bool(notification["alerts"]) and notification["alerts"][0].get("batch") == self.batch

    def run(self):
        alerts, posted = drill_alerts(self.batch, self.count), 0
        while not self.done.is_set():
            posted = min(self.count, posted + 1)
            for _, _, address in self.drill_lab.alertmanagers.values():
                try:
                    self.drill_lab.alertmanager(address, "/api/v2/alerts", data=alerts[:posted])
                except OSError:
                    self.refused.append(address)  # an instance restarting; the others have them
            self.done.wait(6)

    def stop(self, receiver):
        """The group keys notified for this batch, once every group arrived and duplicates had time."""
        try:
            wait_for(lambda: len({n["group_key"] for n in receiver.notifications(self.mine)}) >= self.count, 120,
                     f"{self.count} groups of batch {self.batch} delivered")
            time.sleep(2 * self.drill_lab.peer_timeout + 5)
        finally:
            self.done.set()
            self.thread.join()
        return [n["group_key"] for n in receiver.notifications(self.mine)]


def rolling_run(drill_lab, receiver, *extra, count=20):
    """site.yml with ``extra`` while queries run through the front and alert groups arrive."""
    loads = [Load(drill_lab.topology.front_url(f"/prometheus/shard-{shard}/api/v1/query?query=up"), drill_lab.topology)
             for shard in drill_lab.shards] + storage_reads(drill_lab, interval=0.5)
    feed = AlertFeed(drill_lab, count)
    started = time.time()
    converge, _ = site(*extra)
    finished = time.time()
    results = [r for load in loads for r in load.stop()]
    keys = feed.stop(receiver)
    gaps = {}
    for shard, replicas in drill_lab.shards.items():
        for replica in replicas:
            stamps = stored_stamps(drill_lab, self_scrape(drill_lab, replica), started - 30, finished + 30)
            gaps[shard] = max(gaps.get(shard, 0), largest_gap(stamps, started - 30, finished + 30))
    return {"converge": converge, "took": finished - started, "queries": len(results), "count": count,
            "failed": sum(1 for _, good in results if not good), "failures": failure_lines(loads),
            "slow": sum(load.slow for load in loads), "keys": keys,
            "gaps": gaps,
            "sizes": cluster_sizes(drill_lab), "versions": versions(drill_lab)}


def rolling_figures(run):
    return (f"rc {run['converge'].returncode} in {run['took']:.0f}s; {run['failed']} of {run['queries']} queries "
            f"failed ({run['slow']} answered in over {Load.SLOW:.0f}s); longest storage gap per shard "
            + ", ".join(f"{s}: {g:.0f}s" for s, g in sorted(run["gaps"].items()))
            + f"; {len(run['keys'])} notifications for {run['count']} groups ({len(set(run['keys']))} distinct); "
            f"Alertmanager peers {sorted(set(run['sizes'].values()))}")


def rolling_problems(drill_lab, run, what, wanted):
    """What went wrong in a rolling run, ``wanted`` being {daemon: version} after it."""
    problems = failed_run(run["converge"], what)
    if run["failed"]:
        problems.append(f"{what}: {run['failed']} queries failed: " + "; ".join(run["failures"]))
    if max(run["gaps"].values()) > 2 * drill_lab.scrape_interval:
        problems.append(f"{what}: a storage gap is longer than {2 * drill_lab.scrape_interval}s")
    if len(run["keys"]) != run["count"] or len(set(run["keys"])) != run["count"]:
        problems.append(f"{what}: {len(run['keys'])} notifications ({len(set(run['keys']))} groups) "
                        f"for {run['count']} groups")
    if set(run["sizes"].values()) != {len(drill_lab.alertmanagers)}:
        problems.append(f"{what}: cluster sizes {run['sizes']}")
    if any(run["versions"].get(daemon) != version for daemon, version in wanted.items()):
        problems.append(f"{what}: versions {run['versions']}, wanted {wanted}")
    return problems


def silences_seen(drill_lab, silence_id):
    """The instances that list ``silence_id`` as active."""
    return sorted(name for name, (_, _, address) in drill_lab.alertmanagers.items()
                  if any(s["id"] == silence_id and s["status"]["state"] == "active"
                         for s in drill_lab.alertmanager(address, "/api/v2/silences")))


def drill_upgrade(drill_lab, receiver, short):
    if not RELEASES.exists():
        raise NotChecked(f"no {RELEASES.relative_to(ROOT)} (make releases)")
    wanted = {daemon: [version] for daemon, version in re.findall(
        r"^(prometheus|alertmanager|node_exporter)_version: \"?([0-9.]+)", RELEASES.read_text(), re.M)}
    before = versions(drill_lab)
    # A silence made before the upgrade must outlive it and the way back (it matches no alert).
    now = datetime.now(UTC)
    first_address = next(iter(drill_lab.alertmanagers.values()))[2]
    silence = drill_lab.alertmanager(first_address, "/api/v2/silences", data={
        "matchers": [{"name": "drill_silence", "value": uuid.uuid4().hex[:8], "isRegex": False}],
        "startsAt": rfc3339(now), "endsAt": rfc3339(now + timedelta(hours=2)),
        "createdBy": "drill", "comment": "outlives the upgrade"})["silenceID"]
    wait_for(lambda: len(silences_seen(drill_lab, silence)) == len(drill_lab.alertmanagers), 60,
             "the silence on every instance")
    up = rolling_run(drill_lab, receiver, "-e", f"@{RELEASES}")
    silenced_up = silences_seen(drill_lab, silence)
    # Prometheus' way back: refused before anything changes (2.55 and later write what older cannot read).
    back, back_changed = site()
    refusal = re.search(r"Prometheus [0-9.]+ has written .*?cannot read", " ".join((back.stdout + back.stderr).split()))
    # Alertmanager's and node_exporter's way back: the packages again, Prometheus stays on the archive.
    down = rolling_run(drill_lab, receiver, "-e", f"@{RELEASES}", "-e",
                       "alertmanager_install_method=package node_exporter_install_method=package")
    silenced_down = silences_seen(drill_lab, silence)
    old = {daemon: before[daemon] for daemon in ("alertmanager", "node_exporter")}
    figures = (f"upgrade: {rolling_figures(up)}; versions before {before}, after {up['versions']}; "
               f"Prometheus' way back {'refused by preflight' if refusal else 'NOT refused'} "
               f"(rc {back.returncode}, changed={sum(back_changed.values())}); Alertmanager and node_exporter "
               f"back to the packages: {rolling_figures(down)}; versions {down['versions']}; the silence made before "
               f"on {len(silenced_up)} and {len(silenced_down)} of {len(drill_lab.alertmanagers)} instances")
    problems = rolling_problems(drill_lab, up, "the upgrade", wanted)
    if back.returncode == 0 or not refusal or sum(back_changed.values()):
        problems.append(f"the way back was not refused before any change:\n{back.stdout[-2000:]}")
    problems += rolling_problems(drill_lab, down, "the way back", {**old, "prometheus": wanted["prometheus"]})
    for when, seen in (("upgrade", silenced_up), ("way back", silenced_down)):
        if len(seen) != len(drill_lab.alertmanagers):
            problems.append(f"after the {when} the silence is active only on {seen}")
    return figures, problems
