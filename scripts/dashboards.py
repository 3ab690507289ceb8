#!/usr/bin/env python3
"""Write (or with --check, verify) the Grafana dashboards the grafana role provisions.

One dashboard per tier, each panel one PromQL query, written here as data and
rendered to roles/grafana/files/dashboards/<uid>.json. Every query is meant for
the global view (the remote storage, Grafana's default data source), where the
replica label is dropped and scraped series lose their shard label too (a target
that moves stays one series): per-shard panels read the recorded job:* series,
which keep it. Every query returns data on a healthy stack too (a count of things
gone wrong is 0, not nothing), so that
scripts/dashboard-check.py can evaluate every panel on the lab and fail on a
query that errors or returns nothing.

    scripts/dashboards.py            write the JSON files
    scripts/dashboards.py --check    exit 1 when a file differs from what this writes
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DIRECTORY = ROOT / "roles" / "grafana" / "files" / "dashboards"
DEFAULT_DATASOURCE = "promha-remote-storage"  # roles/grafana: the global view, the default data source

# The plan's targets per shard and job (promha_shard_planned_targets, written by each
# replica) with the labels of what was scraped, to compare the two.
_PLANNED = ('label_replace(label_replace(max by (plan_shard, scrape_job) (promha_shard_planned_targets), '
            '"shard", "$1", "plan_shard", "(.*)"), "job", "$1", "scrape_job", "(.*)")')
# Every job's targets down, 0 when none is.
_DOWN = "sum by (job) (job:up:count - job:up:sum)"
# How far each replica's remote write is behind what it scraped.
_LAG = ("max by (instance) (prometheus_remote_storage_highest_timestamp_in_seconds - ignoring(remote_name, url) "
        "group_right prometheus_remote_storage_queue_highest_sent_timestamp_seconds)")
# Balancers: the hosts whose node_exporter reports who holds the floating address.
_BALANCERS = "on (instance) group_left () max by (instance) (promha_keepalived_holds_address{job=\"vrrp\"} * 0 + 1)"

# The Alertmanager cluster's notifications, on the stack's overview and on its own board.
_NOTIFICATIONS = [
    (f"Notifications {what} per second, per integration",
     f"sum by (integration) (rate(alertmanager_notifications{metric}_total[5m]))", "{{integration}}", "ops")
    for what, metric in (("sent", ""), ("failed", "_failed"))
]

# uid -> (title, [(panel title, query, legend, unit)])
DASHBOARDS = {
    "promha-stack": ("Monitoring stack (promha)", [
        ("Prometheus replicas up, per shard", 'sum by (shard) (job:up:sum{job="prometheus"})', "shard {{shard}}",
         "short"),
        ("Remote write lag (seconds behind), per replica", _LAG, "{{instance}}", "s"),
        ("Alertmanager cluster size, per instance", "alertmanager_cluster_members", "{{instance}}", "short"),
        *_NOTIFICATIONS,
        ("Targets down, per job", _DOWN, "{{job}}", "short"),
    ]),
    "promha-prometheus": ("Prometheus pairs and shards (promha)", [
        ("Replicas up, per shard", 'sum by (shard) (job:up:sum{job="prometheus"})', "shard {{shard}}", "short"),
        ("Targets down, per job", _DOWN, "{{job}}", "short"),
        ("Targets scraped, per shard and job", "sum by (shard, job) (job:up:count)", "shard {{shard}} {{job}}",
         "short"),
        ("Targets the plan gives, per shard and job",
         "max by (plan_shard, scrape_job) (promha_shard_planned_targets)", "shard {{plan_shard}} {{scrape_job}}",
         "short"),
        ("Scraped minus planned, per shard (0: as planned; discovered jobs are not planned)",
         f"sum by (shard) (max by (shard, job) (job:up:count) and on (shard, job) {_PLANNED}) "
         f"- sum by (shard) ({_PLANNED})", "shard {{shard}}", "short"),
        ("Samples scraped, per shard", "sum by (shard) (job:scrape_samples_scraped:sum)", "shard {{shard}}", "short"),
        ("Head series, per replica", "max by (instance) (prometheus_tsdb_head_series)", "{{instance}}", "short"),
        ("Rule evaluation failures per second, per replica",
         "sum by (instance) (rate(prometheus_rule_evaluation_failures_total[5m]))", "{{instance}}", "ops"),
    ]),
    "promha-alertmanager": ("Alertmanager cluster (promha)", [
        ("Members each instance sees", "alertmanager_cluster_members", "{{instance}}", "short"),
        ("Position of each instance (position x peer timeout before it sends)", "alertmanager_peer_position",
         "{{instance}}", "short"),
        ("Failed peers each instance sees", "alertmanager_cluster_failed_peers", "{{instance}}", "short"),
        ("Peers lost, per instance, over the last hour",
         "sum by (instance) (increase(alertmanager_cluster_peers_left_total[1h]))", "{{instance}}", "short"),
        ("Gossip health score (0: healthy)", "alertmanager_cluster_health_score", "{{instance}}", "short"),
        ("Alerts received per second", "sum by (instance) (rate(alertmanager_alerts_received_total[5m]))",
         "{{instance}}", "ops"),
        *_NOTIFICATIONS,
        ("Active silences", 'max (alertmanager_silences{state="active"})', "active", "short"),
    ]),
    "promha-storage": ("Remote storage (promha)", [
        ("Storage nodes up", 'up{job="remote_storage"}', "{{instance}}", "short"),
        ("Rows stored per second, per node", "sum by (instance) (rate(vm_rows_inserted_total[5m]))", "{{instance}}",
         "ops"),
        ("Free disk space, per node", "vm_free_disk_space_bytes", "{{instance}}", "bytes"),
        ("Room before the free-space floor (writes stop at 0)",
         "vm_free_disk_space_bytes - vm_free_disk_space_limit_bytes", "{{instance}}", "bytes"),
        ("Data size, per node", "sum by (instance) (vm_data_size_bytes)", "{{instance}}", "bytes"),
        ("New series per second, per node", "sum by (instance) (rate(vm_new_timeseries_created_total[5m]))",
         "{{instance}}", "ops"),
        ("Remote write lag (seconds behind), per replica", _LAG, "{{instance}}", "s"),
        ("Samples failed or retried per second, per replica",
         "sum by (instance) (rate(prometheus_remote_storage_samples_failed_total[5m]) "
         "+ rate(prometheus_remote_storage_samples_retried_total[5m]))", "{{instance}}", "ops"),
        ("Samples waiting to be sent, per replica", "sum by (instance) (prometheus_remote_storage_samples_pending)",
         "{{instance}}", "short"),
    ]),
    "promha-front": ("Front: balancers and floating address (promha)", [
        ("Front paths answering through the floating address (1: yes)", 'probe_success{job="front"}',
         "{{instance}}", "short"),
        ("Time to answer, per front path", 'probe_duration_seconds{job="front"}', "{{instance}}", "s"),
        ("Days until the certificate the front presents expires",
         'min by (instance) (probe_ssl_earliest_cert_expiry{job="front"} - time()) / 86400', "{{instance}}", "d"),
        ("Who holds the floating address (1: holds it)", "promha_keepalived_holds_address",
         "{{instance}} {{vrrp_instance}}", "short"),
        ("Balancers holding each address (1 is right)", "sum by (vrrp_instance) (promha_keepalived_holds_address)",
         "{{vrrp_instance}}", "short"),
        ("nginx answering on each balancer (1: yes)", 'max by (instance) (up{job="nginx"})', "{{instance}}", "short"),
        ("Requests per second, per balancer", 'sum by (instance) (rate(nginx_http_requests_total{job="nginx"}[5m]))',
         "{{instance}}", "reqps"),
        ("Client connections open, per balancer", 'max by (instance) (nginx_connections_active{job="nginx"})',
         "{{instance}}", "short"),
        ("Balancer CPU busy",
         f'1 - avg by (instance) (rate(node_cpu_seconds_total{{mode="idle"}}[5m])) * {_BALANCERS}',
         "{{instance}}", "percentunit"),
        ("Balancer traffic received",
         f'sum by (instance) (rate(node_network_receive_bytes_total{{device!="lo"}}[5m])) * {_BALANCERS}',
         "{{instance}}", "Bps"),
        ("Balancer connections tracked, of the limit",
         f"node_nf_conntrack_entries / node_nf_conntrack_entries_limit * {_BALANCERS}", "{{instance}}",
         "percentunit"),
        ("Days until each host's first stack certificate expires",
         "min by (instance) (promha_certificate_expiry_timestamp_seconds - time()) / 86400", "{{instance}}", "d"),
    ]),
    "promha-database": ("Grafana's database: the Galera cluster (promha)", [
        ("Members answering their exporter", "mysql_up", "{{instance}}", "short"),
        ("Cluster size each member sees", "mysql_global_status_wsrep_cluster_size", "{{instance}}", "short"),
        ("Member state (4: synced)", "mysql_global_status_wsrep_local_state", "{{instance}}", "short"),
        ("Ready for queries (1: yes)", "mysql_global_status_wsrep_ready", "{{instance}}", "short"),
        ("Time paused by flow control (fraction)",
         "rate(mysql_global_status_wsrep_flow_control_paused_ns[5m]) / 1e9", "{{instance}}", "percentunit"),
        ("Replication receive queue", "mysql_global_status_wsrep_local_recv_queue", "{{instance}}", "short"),
        ("Connected clients", "mysql_global_status_threads_connected", "{{instance}}", "short"),
        ("Queries per second", "sum by (instance) (rate(mysql_global_status_queries[5m]))", "{{instance}}", "ops"),
    ]),
}


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
