"""Drill 9: A replaced replica: one replica's container removed and made anew, empty, under the
same inventory name, then site.yml: it scrapes what its peer does and the global tier sees
from it what it sees from the peer.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from live import wait_for

from drills.common import (
    ROOT,
    failed_run,
    site,
)


def drill_replaced_replica(drill_lab, receiver, short):
    shard, members = sorted(drill_lab.shards.items())[-1]
    host, peer = members[-1], members[0]
    image = subprocess.run(["docker", "inspect", "-f", "{{.Config.Image}}", drill_lab.container(host)],
                           capture_output=True, text=True, check=True).stdout.strip()
    subprocess.run(["docker", "rm", "-f", drill_lab.container(host)], capture_output=True, check=True)
    made = time.time()
    subprocess.run([sys.executable, str(ROOT / "scripts" / "lab.py"), "up", "--image", image, "--host", host],
                   capture_output=True, check=True)
    # The site's own discovery tooling writes its file_sd file on the new host, as it would.
    subprocess.run([str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", str(ROOT / "inventories" / "lab"),
                    str(ROOT / "tests" / "playbooks" / "target-farm.yml"), "--limit", host],
                   capture_output=True, check=True, cwd=ROOT, env=dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg")))
    converge, changed = site()
    took = time.time() - made

    def active(replica):
        url = drill_lab.prometheus(replica, "/api/v1/targets?state=active")
        return drill_lab.topology.fetch_json("prometheus", url)["data"]["activeTargets"]

    def targets(replica):
        return {(t["labels"]["job"], t["labels"]["instance"]) for t in active(replica)}

    def scraped(replica):  # an unscraped target's lastScrape is 0001-01-01
        return all(t["lastScrape"] > "2000" for t in active(replica))

    # Its file_sd jobs fill in within a discovery refresh: until then it may have fewer.
    try:
        wait_for(lambda: targets(host) == targets(peer), 120, f"{host} with its peer's targets")
    except AssertionError:
        pass  # reported below with the difference
    mine, theirs = targets(host), targets(peer)
    same_after = time.time() - made - took
    wait_for(lambda: scraped(host), 90, f"{host} scraping every target once")
    # The global view: the global tier federates every replica (a replica that cannot be
    # federated has its series marked stale at once); every replica of the shard, the new
    # one included, must show the same (job, instance) series there.
    global_host = drill_lab.topology.hosts("prometheus_global")[0]
    query = urllib.parse.quote(f'group by (replica, job, instance) (up{{shard="{shard}"}})')

    def global_view():
        data = drill_lab.topology.fetch_json("prometheus", drill_lab.prometheus(global_host, f"/api/v1/query?query={query}"))
        view = {}
        for row in data["data"]["result"]:
            view.setdefault(row["metric"].get("replica"), set()).add((row["metric"].get("job"), row["metric"].get("instance")))
        return view

    wait_for(lambda: len(global_view()) == len(members) and len({frozenset(v) for v in global_view().values()}) == 1,
             120, f"the global view of every replica of shard {shard} alike")
    view = global_view()
    sizes = sorted({len(v) for v in view.values()})
    figures = (f"{host} made anew from {image.split(':')[0]} and converged (site.yml rc {converge.returncode}, "
               f"{took:.0f}s, changed on {sum(1 for c in changed.values() if c)} hosts); {same_after:.0f}s later it "
               f"scrapes {len(mine)} targets, its peer {len(theirs)}; the global tier shows {len(view)} replicas of shard "
               f"{shard} with {sizes} series each")
    problems = failed_run(converge, "the converge")
    if mine != theirs:
        problems.append(f"{host} scrapes other targets than {peer}: {sorted(mine ^ theirs)[:10]}")
    if len(view) != len(members) or len(sizes) != 1:
        problems.append(f"the global view of shard {shard} differs between replicas: { {r: len(v) for r, v in view.items()} }")
    return figures, problems
