#!/usr/bin/env python3
"""Evaluate every panel of the provisioned dashboards against a running environment.

Each panel's query (roles/grafana/files/dashboards, written by scripts/dashboards.py)
is sent as Grafana's default data source sends it: to the global view, the front's
/storage/ path, with the storage credentials and the stack's CA. A panel fails when
its query errors or returns no series; a panel without data is asked again until
--wait seconds have passed (series recorded or scraped since the last converge
reach the storage within a minute). Prints one line per panel and exits 1 on any
failure.

    scripts/dashboard-check.py [--inventory inventories/lab] [--wait 180]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "helpers"))
from topology import Topology  # noqa: E402

DASHBOARDS = ROOT / "roles" / "grafana" / "files" / "dashboards"
# Below the front's per-client rate limit (10 requests a second).
PAUSE = 0.2


def panel_queries(dashboard):
    """``[(panel title, query)]`` of a dashboard's JSON model, rows' nested panels included."""
    queries = []
    for panel in dashboard.get("panels", []):
        for inner in [panel, *panel.get("panels", [])]:
            queries += [(inner.get("title", ""), target["expr"]) for target in inner.get("targets", [])
                        if target.get("expr")]
    return queries


def verdict(answer):
    """``(series, problem)`` of a Prometheus API answer: the problem is None when it has data."""
    if answer.get("status") != "success":
        return 0, f"error: {answer.get('errorType', '')} {answer.get('error', answer)}".strip()
    result = answer.get("data", {}).get("result", [])
    return len(result), (None if result else "no data")


def evaluate(topo, query):
    """``(series, problem)`` of ``query`` on the global view, through the front's /storage/."""
    url = topo.front_url("/storage/api/v1/query?" + urllib.parse.urlencode({"query": query}))
    try:
        answer = json.loads(topo.fetch("remote_storage", url, timeout=10))
    except Exception as error:  # noqa: BLE001 - an HTTP error carries the query's error text
        try:
            answer = json.loads(getattr(error, "read", lambda: b"")())
        except ValueError:
            answer = {"status": "error", "error": f"{type(error).__name__}: {error}"}
    return verdict(answer)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inventory", default=str(ROOT / "inventories" / "lab"))
    parser.add_argument("--wait", type=float, default=180, help="seconds to keep asking a panel without data")
    args = parser.parse_args()
    topo = Topology(args.inventory)
    panels = [(json.loads(path.read_text())["uid"], title, query)
              for path in sorted(DASHBOARDS.glob("*.json"))
              for title, query in panel_queries(json.loads(path.read_text()))]
    results, deadline = {}, time.monotonic() + args.wait
    pending = list(panels)
    while pending:
        for panel in pending:
            results[panel] = evaluate(topo, panel[2])
            time.sleep(PAUSE)
        pending = [panel for panel in pending if results[panel][1]]
        if pending and time.monotonic() < deadline:
            print(f"dashboard-check: {len(pending)} panel(s) without data yet, asking again", flush=True)
            time.sleep(15)
        else:
            break
    failed = []
    for panel in panels:
        uid, title, query = panel
        series, problem = results[panel]
        print(f"{'FAIL' if problem else 'ok  '} {uid}: {title}: {problem or f'{series} series'}")
        if problem:
            failed.append(f"{uid}: {title}: {problem} ({query})")
    print(f"dashboard-check: {len(panels) - len(failed)} of {len(panels)} panels return data")
    if failed:
        sys.exit("dashboard-check: failed panels:\n" + "\n".join(failed))


if __name__ == "__main__":
    main()
