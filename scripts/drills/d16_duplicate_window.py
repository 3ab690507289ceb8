"""Drill 16: The duplicate window: the host with the most Alertmanager instances killed (no
goodbye), fresh alert groups posted to the survivors 2, 5, 10 and 20 s later (5 s with
--short): at each delay the duplicates, missing groups, the survivors' positions and member
counts, and running members dropped by mistake; none may be missing or dropped, and from
DUPLICATE_FREE_AFTER s on none duplicated.
"""

from __future__ import annotations

import re
import subprocess
import time
import uuid

from live import wait_for

from drills.common import (
    NotChecked,
    cluster_sizes,
    post_alerts,
    seconds,
)

# From this many seconds after an Alertmanager host is lost, alert groups posted to the
# survivors are delivered once (drill 16; roles/alertmanager's gossip settings).
DUPLICATE_FREE_AFTER = 5


def am_metric(drill_lab, address, name):
    """One unlabelled sample of an Alertmanager instance's /metrics (``address`` host:port)."""
    scheme = drill_lab.topology.access("alertmanager")["scheme"]
    text = drill_lab.topology.fetch("alertmanager", f"{scheme}://{address}/metrics", timeout=3)
    found = re.search(rf"^{name} (\S+)$", text, re.M)
    if not found:
        raise ValueError(f"{address} exports no {name}")
    return float(found.group(1))


def drill_group_wait(drill_lab):
    """Seconds the lab's LabDrill route waits before a group's first notification."""
    route = drill_lab.topology.setting(next(iter(drill_lab.alertmanagers.values()))[0], "alertmanager_route")
    drill_route = next(r for r in route.get("routes", []) if any("LabDrill" in m for m in r.get("matchers", [])))
    return seconds(drill_route.get("group_wait", route.get("group_wait", "30s")))


def delivery_counts(notifications, count):
    """``{duplicates, missing}`` of ``count`` alert groups, from the receiver's notifications: a
    group notified n times counts n - 1 duplicates; a group never notified is missing."""
    keys = [n["group_key"] for n in notifications]
    return {"duplicates": len(keys) - len(set(keys)), "missing": count - len(set(keys))}


def drill_duplicate_window(drill_lab, receiver, short):
    """The host with the most Alertmanager instances lost at once (its container killed, as in a
    power cut: no instance says goodbye); fresh alert groups posted to every survivor, as each
    Prometheus does, 2, 5, 10 and 20 s later. At each delay: duplicates, missing groups, the
    survivors' positions and member counts at the post, and any member the survivors dropped
    that was still running (a false removal: more peers left than were lost)."""
    delays = (5,) if short else (2, 5, 10, 20)
    count = 10 if short else 25
    by_host = {}
    for name, (host, _, _) in drill_lab.alertmanagers.items():
        by_host.setdefault(host, []).append(name)
    victim = max(sorted(by_host), key=lambda host: len(by_host[host]))
    lost = len(by_host[victim])
    survivors = {n: a for n, (h, _, a) in drill_lab.alertmanagers.items() if h != victim}
    if len(survivors) < 2:
        raise NotChecked(f"losing {victim} leaves {len(survivors)} Alertmanager instance(s); a duplicate "
                         "needs two senders")
    whole = len(drill_lab.alertmanagers)
    # The last sender a survivor could be: every position of the cluster before the loss.
    settle = drill_group_wait(drill_lab) + (whole - 1) * drill_lab.peer_timeout + 10
    rows, problems = [], []
    for delay in delays:
        wait_for(lambda: set(cluster_sizes(drill_lab).values()) == {whole}, 180, "the cluster whole")
        left = {n: am_metric(drill_lab, a, "alertmanager_cluster_peers_left_total") for n, a in survivors.items()}
        batch = uuid.uuid4().hex[:8]
        mine = lambda n, b=batch: n["alerts"] and n["alerts"][0].get("batch") == b  # noqa: E731
        subprocess.run(["docker", "kill", drill_lab.container(victim)], capture_output=True, check=True)
        killed = time.monotonic()
        try:
            time.sleep(max(0.0, delay - (time.monotonic() - killed)))
            posted, posted_at = time.monotonic(), time.time()
            post_alerts(drill_lab, survivors.values(), batch, count)
            seen = {n: (int(am_metric(drill_lab, a, "alertmanager_peer_position")),
                        int(am_metric(drill_lab, a, "alertmanager_cluster_members"))) for n, a in survivors.items()}
            time.sleep(max(0.0, settle - (time.monotonic() - posted)))
            received = receiver.notifications(mine)
            dropped = sum(am_metric(drill_lab, a, "alertmanager_cluster_peers_left_total") - left[n]
                          for n, a in survivors.items())
        finally:
            subprocess.run(["docker", "start", drill_lab.container(victim)], capture_output=True, check=True)
        late = max((n["received"] for n in received), default=0.0)
        rows.append({"delay": delay, "groups": count, **delivery_counts(received, count), "seen": seen,
                     "false_removals": int(dropped) - lost * len(survivors),
                     "last": late - posted_at if received else None})
        for unit in (drill_lab.alertmanagers[name][1] for name in by_host[victim]):
            wait_for(lambda u=unit: drill_lab.exec(victim, "systemctl", "is-active", u).stdout.strip() == "active", 90,
                     f"{unit} on {victim}")
    wait_for(lambda: set(cluster_sizes(drill_lab).values()) == {whole}, 180, "the cluster whole")
    table = "; ".join(
        f"{r['delay']}s: {r['groups']} groups, {r['duplicates']} duplicates, {r['missing']} missing, "
        f"positions/members {', '.join(f'{p}/{m}' for p, m in r['seen'].values())}"
        + (f", last sent {r['last']:.0f}s after the post" if r["last"] is not None else "")
        + (f", {r['false_removals']} false removals" if r["false_removals"] else "")
        for r in rows)
    figures = f"{victim} ({lost} of {whole} instances) killed, groups posted to the {len(survivors)} survivors: {table}"
    for r in rows:
        if r["missing"]:
            problems.append(f"{r['delay']}s after the loss: {r['missing']} of {r['groups']} groups never delivered")
        if r["false_removals"]:
            problems.append(f"{r['delay']}s after the loss: the survivors dropped {r['false_removals']} running member(s)")
        if r["delay"] >= DUPLICATE_FREE_AFTER and r["duplicates"]:
            problems.append(f"{r['delay']}s after the loss: {r['duplicates']} duplicates (none expected from "
                            f"{DUPLICATE_FREE_AFTER}s on with the role's gossip settings)")
    return figures, problems
