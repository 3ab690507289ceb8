#!/usr/bin/env python3
"""Write (or with --check, verify) the Grafana dashboards the grafana role provisions.

One dashboard per tier, each panel one PromQL query, written as data in
scripts/dashboards.yml and rendered to roles/grafana/files/dashboards/<uid>.json.
Every query is meant for the global view (the remote storage, Grafana's default
data source), where the replica label is dropped and scraped series lose their
shard label too (a target that moves stays one series): per-shard panels read the
recorded job:* series, which keep it. Every query returns data on a healthy stack
too (a count of things gone wrong is 0, not nothing), so that
scripts/dashboard-check.py can evaluate every panel on the lab and fail on a query
that errors or returns nothing.

    scripts/dashboards.py            write the JSON files
    scripts/dashboards.py --check    exit 1 when a file differs from what this writes
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DIRECTORY = ROOT / "roles" / "grafana" / "files" / "dashboards"
DEFAULT_DATASOURCE = "promha-remote-storage"  # roles/grafana: the global view, the default data source

DATA = Path(__file__).resolve().with_suffix(".yml")  # scripts/dashboards.yml: the boards as data


def _joined(expr):
    """A query written as a list of parts (shared parts are YAML anchors) is the parts joined."""
    return "".join(expr) if isinstance(expr, list) else expr


def load(path=DATA):
    """``{uid: (title, [(panel title, query, legend, unit)])}`` of the boards in ``path``."""
    boards = yaml.safe_load(path.read_text())["dashboards"]
    return {uid: (board["title"], [(panel["title"], _joined(panel["expr"]), panel["legend"], panel["unit"])
                                   for panel in board["panels"]])
            for uid, board in boards.items()}


DASHBOARDS = load()


def dashboard(uid, title, panels):
    """One dashboard as Grafana's JSON model: two panels a row, each a time series of one query."""
    return {
        "uid": uid,
        "title": title,
        "tags": ["promha"],
        "schemaVersion": 38,
        "version": 1,
        "editable": False,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "templating": {"list": [{"name": "datasource", "type": "datasource", "query": "prometheus",
                                 "current": {"text": "Global view (remote storage)", "value": DEFAULT_DATASOURCE}}]},
        "panels": [{
            "id": number,
            "type": "timeseries",
            "title": panel_title,
            "gridPos": {"h": 8, "w": 12, "x": 12 * ((number - 1) % 2), "y": 8 * ((number - 1) // 2)},
            "datasource": {"type": "prometheus", "uid": "${datasource}"},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "targets": [{"refId": "A", "expr": expr, "legendFormat": legend}],
        } for number, (panel_title, expr, legend, unit) in enumerate(panels, start=1)],
    }


def rendered():
    """``{path: text}`` of every dashboard file."""
    return {DIRECTORY / f"{uid}.json": json.dumps(dashboard(uid, title, panels), indent=2) + "\n"
            for uid, (title, panels) in DASHBOARDS.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="verify instead of writing")
    args = parser.parse_args()
    files = rendered()
    stale = sorted(str(p.relative_to(ROOT)) for p in DIRECTORY.glob("*.json") if p not in files)
    differ = sorted(str(p.relative_to(ROOT)) for p, text in files.items()
                    if not p.exists() or p.read_text() != text)
    if args.check:
        if stale or differ:
            sys.exit(f"dashboards: run scripts/dashboards.py; differ: {differ}; not written by it: {stale}")
        return
    DIRECTORY.mkdir(parents=True, exist_ok=True)
    for path, text in files.items():
        path.write_text(text)
    for name in stale:
        (ROOT / name).unlink()
    print(f"dashboards: {len(files)} written, {len(stale)} removed")


if __name__ == "__main__":
    main()
