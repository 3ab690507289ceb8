#!/usr/bin/env python3
"""Benchmark the controller's share of site.yml on a large inventory (prints figures; not a test).

Builds a synthetic inventory - by default 500 hosts: 64 shards x 2 Prometheus
replicas, 3 hosts with 2 Alertmanager instances each, remote storage, a database,
2 Grafana hosts, 2 balancers, and plain hosts for the rest - and times the
preflight play of site.yml on it (controller only: every peer, shard and secret
check over the whole inventory; no host is contacted). Prints median, min and max
over --repeat runs, the first run on its own, and the core count.
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from options import options

ROOT = Path(__file__).resolve().parent.parent


def inventory(hosts, shards):
    address = iter(f"10.{i >> 8 & 255}.{i & 255}.10" for i in range(1, hosts + 1))
    prometheus = {f"prometheus_shard_{s}": {"hosts": {f"prom-{s}-{r}": {"stack_address": next(address)}
                                                      for r in "ab"},
                                            "vars": {"prometheus_shard": s}} for s in range(shards)}
    alertmanager = {f"am-{i}": {"stack_address": next(address), "alertmanager_instances": [
        {"name": "a", "web_port": 19093, "cluster_port": 19094},
        {"name": "b", "web_port": 29093, "cluster_port": 29094}]} for i in range(3)}
    children = {
        "prometheus": {"children": prometheus},
        "alertmanager": {"hosts": alertmanager},
        "remote_storage": {"hosts": {"vm-1": {"stack_address": next(address)}}},
        "mysql": {"hosts": {"db-1": {"stack_address": next(address)}}},
        "grafana": {"hosts": {f"grafana-{i}": {"stack_address": next(address)} for i in (1, 2)}},
        "loadbalancer": {"hosts": {f"lb-{i}": {"stack_address": next(address)} for i in (1, 2)},
                         "vars": {"keepalived_virtual_ipaddress": "10.255.0.70/24"}},
    }
    used = 2 * shards + 3 + 1 + 1 + 2 + 2
    children["nodes"] = {"hosts": {f"node-{i}": {"stack_address": next(address)} for i in range(hosts - used)}}
    secret = "bench-secret-4f1c9e2a"  # noqa: S105 - a synthetic inventory
    group_vars = {"stack_environment": "bench", "mysql_grafana_password": secret,
                  "grafana_database_password": secret, "grafana_admin_password": secret,
                  "grafana_secret_key": secret + "-key", "firewall_admin_sources": ["10.255.0.1"]}
    return {"all": {"children": children, "vars": group_vars}}


def main():
    args = options(__doc__, hosts=500, shards=64, repeat=3).parse_args()
    playbook = Path(sys.executable).parent / "ansible-playbook"
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    with tempfile.TemporaryDirectory() as scratch:
        hosts_file = Path(scratch) / "hosts.yml"
        hosts_file.write_text(yaml.safe_dump(inventory(args.hosts, args.shards)))
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            # The controller's checks (the synthetic hosts do not exist to be read).
            result = subprocess.run([str(playbook), "-i", str(hosts_file), str(ROOT / "playbooks" / "preflight.yml"),
                                     "--skip-tags", "preflight_hosts"],
                                    capture_output=True, text=True, env=env, cwd=ROOT, check=False)
            times.append(time.perf_counter() - started)
            if result.returncode != 0:
                sys.exit(f"preflight failed on the synthetic inventory:\n{result.stdout[-3000:]}{result.stderr[-2000:]}")
    print(f"cores={os.cpu_count()} hosts={args.hosts} shards={args.shards} repeat={args.repeat}")
    print(f"preflight of site.yml (controller only): median {statistics.median(times):.2f}s, "
          f"min {min(times):.2f}s, max {max(times):.2f}s, first run {times[0]:.2f}s")


if __name__ == "__main__":
    main()
