"""The explicit insecure switch (stack_plain_http, molecule.yml): plain HTTP without
credentials on every port, the Prometheus pair scraping the node exporters that way,
preflight warning about it and refusing it where the inventory says production."""

import json
import urllib.error
import urllib.request

import live
from live import PROJECT, wait_for
from topology import Topology

# Every host, from the scenario's inventory (each runs a node exporter and a Prometheus).
TOPOLOGY = Topology.of_scenario()
EXPORTERS = {host: TOPOLOGY.host_port(host, "node_exporter_port") for host in TOPOLOGY.hosts("all")}
SERVERS = {host: TOPOLOGY.host_port(host, "prometheus_port") for host in TOPOLOGY.hosts("prometheus")}


def get(url):
    """Status and body of a GET without credentials (0 for no connection or no HTTP answer)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - the scenario's own servers
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""
    except (urllib.error.URLError, OSError):
        return 0, ""


def test_every_port_answers_plain_http_without_credentials():
    for host, exporter in EXPORTERS.items():
        status, body = get(f"http://{exporter}/metrics")
        assert status == 200 and "node_exporter_build_info" in body, host
    for host, server in SERVERS.items():
        assert get(f"http://{server}/-/ready")[0] == 200, host
        assert get(f"https://{server}/-/ready")[0] == 0, f"{host}: HTTPS answered in plain mode"


def test_the_pair_scrapes_the_node_exporters_over_plain_http():
    def node_targets():
        status, body = get(f"http://{SERVERS[sorted(SERVERS)[0]]}/api/v1/targets?state=active")
        targets = [t for t in json.loads(body)["data"]["activeTargets"] if t["labels"]["job"] == "node"] \
            if status == 200 else []
        return targets if targets and all(t["health"] == "up" for t in targets) else None

    targets = wait_for(node_targets, 90, "the node job's targets up")
    assert sorted(t["scrapeUrl"] for t in targets) == sorted(f"http://{e}/metrics" for e in EXPORTERS.values())


def test_preflight_warns_about_the_switch_and_refuses_it_in_production():
    warned = live.run_playbook(PROJECT / "playbooks" / "preflight.yml")
    assert warned.returncode == 0, warned.output[-3000:]
    assert "stack_plain_http is on" in warned.output
    refused = live.run_playbook(PROJECT / "playbooks" / "preflight.yml", {"stack_environment": "production"})
    assert refused.returncode != 0
    assert "stack_plain_http is true in an inventory whose stack_environment is" in " ".join(refused.output.split())
    print(f"\n  production refuses it: {[line for line in refused.output.splitlines() if 'is true in an inventory' in line][:1]}")
