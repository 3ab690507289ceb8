"""Drill 3: One Alertmanager host partitioned from the others (routes refused both ways): each
side notifies (duplicates counted: upstream promises at-least-once here); after healing, a
silence made on the cut-off side is on every instance and the cluster is whole.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

from live import wait_for

from drills.common import (
    cluster_sizes,
    drill_alerts,
    post_alerts,
    rfc3339,
)


def drill_partition(drill_lab, receiver, short):
    count = 5 if short else 10
    cut_host = sorted({host for host, _, _ in drill_lab.alertmanagers.values()})[-1]
    cut = {n: a for n, (h, _, a) in drill_lab.alertmanagers.items() if h == cut_host}
    rest = {n: a for n, (h, _, a) in drill_lab.alertmanagers.items() if h != cut_host}
    batch = uuid.uuid4().hex[:8]
    mine = lambda n: n["alerts"] and n["alerts"][0].get("batch") == batch  # noqa: E731
    # A partition between the Alertmanager hosts: each side refuses routes to the other
    # (the hosts keep their own addresses, so each side still serves its own clients).
    am_hosts = {h for h, _, _ in drill_lab.alertmanagers.values()}
    far = {host: sorted(drill_lab.address(h) for h in am_hosts if (h == cut_host) != (host == cut_host))
           for host in am_hosts}

    def routes(action):
        for host, addresses in far.items():
            for address in addresses:
                done = drill_lab.exec(host, "ip", "route", action, "prohibit", f"{address}/32")
                assert done.returncode == 0 or action == "del", f"ip route {action} on {host}: {done.stderr}"

    routes("add")
    try:
        post_alerts(drill_lab, rest.values(), batch, count)
        # The cut-off side gets its own alerts and a silence, posted from inside the host.
        now = datetime.now(UTC)
        alerts = drill_alerts(batch, count)
        silence = {"matchers": [{"name": "alertname", "value": "LabDrillSilenced", "isRegex": False}],
                   "startsAt": rfc3339(now), "endsAt": rfc3339(now + timedelta(hours=1)),
                   "createdBy": "drill", "comment": "made on the cut-off side"}
        # On the host itself, with the CA the role installed there and the stack's credentials.
        access = drill_lab.topology.access("alertmanager")
        base = f"{access['scheme']}://{next(iter(cut.values()))}"
        script = ("import base64, json, ssl, sys, urllib.request as u\n"
                  "ctx = ssl.create_default_context(cafile='/etc/alertmanager/web/ca.crt') "
                  "if sys.argv[3].startswith('https') else None\n"
                  "def post(path, data):\n"
                  "    r = u.Request(sys.argv[3] + path, data=json.dumps(data).encode(),"
                  " headers={'Content-Type': 'application/json'})\n"
                  "    if sys.argv[4]:\n"
                  "        r.add_header('Authorization', 'Basic ' + base64.b64encode(sys.argv[4].encode()).decode())\n"
                  "    return u.urlopen(r, timeout=5, context=ctx).read().decode()\n"
                  "post('/api/v2/alerts', json.loads(sys.argv[1]))\n"
                  "print(json.loads(post('/api/v2/silences', json.loads(sys.argv[2])))['silenceID'])\n")
        made = drill_lab.exec(cut_host, "python3", "-c", script, json.dumps(alerts), json.dumps(silence), base,
                              ":".join(access["auth"]) if access["auth"] else "")
        assert made.returncode == 0, made.stderr
        silence_id = made.stdout.strip()
        wait_for(lambda: len({n["group_key"] for n in receiver.notifications(mine)}) >= count, 90,
                 f"{count} groups delivered by the connected side")
        time.sleep(10 if short else 30)
    finally:
        routes("del")
    healed = time.monotonic()
    wait_for(lambda: all(size == len(drill_lab.alertmanagers) for size in cluster_sizes(drill_lab).values()), 120,
             "the cluster whole again")
    # A broadcast made during the partition is lost with it; the silence then arrives with the
    # next full state exchange: a rejoin, or at the latest the push-pull interval (upstream's
    # design). Two intervals of room; the time it took is the figure.
    wait_for(lambda: all(any(s["id"] == silence_id for s in drill_lab.alertmanager(a, "/api/v2/silences"))
                         for a in rest.values()), 2 * drill_lab.pushpull + 10, "the cut-off side's silence on every instance")
    merged = time.monotonic() - healed
    time.sleep(2 * drill_lab.peer_timeout)  # the cut-off side may now deliver what it held back
    keys = [n["group_key"] for n in receiver.notifications(mine)]
    duplicates = len(keys) - len(set(keys))
    figures = (f"{cut_host} partitioned from the other Alertmanager hosts: {len(keys)} notifications for {count} "
               f"groups ({duplicates} duplicates; "
               f"at-least-once is what upstream promises in a partition); after healing, cluster whole and the "
               f"cut-off side's silence everywhere within {merged:.1f}s")
    problems = [] if len(set(keys)) == count else [f"{len(set(keys))} of {count} groups delivered"]
    return figures, problems
