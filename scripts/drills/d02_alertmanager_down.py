"""Drill 2: The Alertmanager at cluster position 0 stopped: N alert groups, posted to every
instance as both replicas of a pair would, arrive exactly once; it rejoins.
"""

from __future__ import annotations

import re
import time
import uuid

from live import wait_for

from drills.common import (
    cluster_sizes,
    post_alerts,
)


def position_zero(drill_lab):
    first_address = next(iter(drill_lab.alertmanagers.values()))[2]
    first = sorted(peer["name"] for peer in drill_lab.alertmanager(first_address, "/api/v2/status")["cluster"]["peers"])[0]
    for name, (_, _, address) in drill_lab.alertmanagers.items():
        if drill_lab.alertmanager(address, "/api/v2/status")["cluster"]["name"] == first:
            return name
    raise AssertionError(f"no instance has the first peer name {first}")


def drill_alertmanager_down(drill_lab, receiver, short):
    count = 10 if short else 20
    victim = position_zero(drill_lab)
    host, unit, victim_address = drill_lab.alertmanagers[victim]
    drill_lab.exec(host, "systemctl", "stop", unit)
    batch = uuid.uuid4().hex[:8]
    try:
        others = [a for n, (_, _, a) in drill_lab.alertmanagers.items() if n != victim]
        posted = time.time()
        post_alerts(drill_lab, others, batch, count)
        mine = lambda n: n["alerts"] and n["alerts"][0].get("batch") == batch  # noqa: E731
        wait_for(lambda: len({n["group_key"] for n in receiver.notifications(mine)}) >= count, 90,
                 f"{count} groups delivered")
        latest = max(n["received"] for n in receiver.notifications(mine)) - posted
        time.sleep(2 * drill_lab.peer_timeout + 5)
        received = receiver.notifications(mine)
    finally:
        drill_lab.exec(host, "systemctl", "start", unit)
    wait_for(lambda: all(size == len(drill_lab.alertmanagers) for size in cluster_sizes(drill_lab).values()), 120,
             f"{victim} rejoining")
    keys = [n["group_key"] for n in received]
    senders = sorted({re.sub(r"^https?://", "", n["sender"]) for n in received})
    figures = (f"{victim} (position 0) stopped: {len(keys)} notifications for {count} groups, all within "
               f"{latest:.1f}s, sent by {', '.join(senders)}; rejoined, {len(drill_lab.alertmanagers)} peers each")
    problems = []
    if len(keys) != count or len(set(keys)) != count:
        problems.append(f"{len(keys)} notifications ({len(set(keys))} groups) for {count} groups")
    if any(victim_address.split(":")[0] in s and victim_address.split(":")[1] in s for s in senders):
        problems.append("the stopped instance sent")
    return figures, problems
