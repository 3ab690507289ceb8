"""The front on live servers: shared database grants, nginx balancing, the floating address,
and a stranger on the network.

Everything runs on the secure defaults: the stack's own CA and generated credentials
(under the scenario's stack_secrets_dir), HTTPS everywhere, TLS to the database, the
host firewall on every host. Tests run in file order. Figures (requests failed,
seconds for the address to move, probes refused) are printed; run with -s to see
them (the scenario's verifier does). Grafana itself is only exercised when
GRAFANA_PACKAGE_FILE names a package; the Grafana checks otherwise report
themselves as skipped, with the reason.
"""

import base64
import configparser
import json
import math
import os
import re
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

import intruder
import live
import pytest
import yaml
from live import wait_for
from topology import Topology

SCENARIO = Path(__file__).resolve().parent.parent

# Where everything is, from the scenario's inventory through the roles' filters.
EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
TOPOLOGY = Topology.of_scenario()
DB = TOPOLOGY.address(TOPOLOGY.hosts("mysql")[0])
# The scenario's throwaway secrets, read from molecule.yml so they are written once.
_ALL = yaml.safe_load((SCENARIO / "molecule.yml").read_text())["provisioner"]["inventory"]["group_vars"]["all"]
DB_PASSWORD = _ALL["vault_grafana_db_password"]
ADMIN_PASSWORD = _ALL["vault_grafana_admin_password"]
SECRET_KEY = _ALL["vault_grafana_secret_key"]
GRAFANA = {host: TOPOLOGY.address(host) for host in TOPOLOGY.hosts("grafana")}
BALANCERS = {host: TOPOLOGY.address(host) for host in TOPOLOGY.hosts("loadbalancer")}
REPLICAS = {host: TOPOLOGY.host_port(host, "prometheus_port") for host in TOPOLOGY.hosts("prometheus")}
VIP = TOPOLOGY.vip
SHARD_PATH = "/prometheus/shard-0"
PACKAGE = os.environ.get("GRAFANA_PACKAGE_FILE", "")


def docker(host, *cmd):
    return subprocess.run(["docker", "exec", host, *cmd], capture_output=True, text=True, check=False)


# The stack's own CA and generated credentials (roles/pki, stack_secrets_dir in
# molecule.yml): Prometheus and Alertmanager want HTTPS and basic auth, nginx passes
# the client's credentials through, the front and Grafana serve the same CA's certificates.
SECRETS = EPHEMERAL / "secrets"
WEB_CA = SECRETS / "web" / "ca.crt"
PROM_AUTH = ("promha", (SECRETS / "credentials" / "prometheus_web").read_text().strip())
AM_AUTH = ("promha", (SECRETS / "credentials" / "alertmanager_web").read_text().strip())
# The exporters' account: node_exporter, mysqld_exporter, nginx's metrics server, Grafana's /metrics.
EXPORTER_AUTH = ("promha", (SECRETS / "credentials" / "node_exporter_web").read_text().strip())


def basic(auth):
    return {"Authorization": "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()}


def get(url, timeout=2.0, auth=PROM_AUTH, context=None):
    """GET `url` (with basic auth); return (status, headers, body) - status 0 for a connection failure."""
    request = urllib.request.Request(url, headers=basic(auth) if auth else {})
    if context is None and url.startswith("https://"):
        context = ssl.create_default_context(cafile=str(WEB_CA))
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode(errors="replace")
    except (urllib.error.URLError, OSError):
        return 0, {}, ""


DB_CA = "/etc/ssl/promha-web-ca.crt"  # the stack's web CA, which issued the database's certificate


def sql(host, query, user="grafana", password=DB_PASSWORD, tls=True):
    """Run `query` on the database from `host`; over TLS, checking the server's certificate."""
    subprocess.run(["docker", "cp", str(WEB_CA), f"{host}:{DB_CA}"], capture_output=True, check=True)
    tls_flags = ["--ssl", f"--ssl-ca={DB_CA}", "--ssl-verify-server-cert"] if tls else ["--skip-ssl"]
    return docker(host, "mysql", f"-h{DB}", f"-u{user}", f"-p{password}", "--connect-timeout=5",
                  *tls_flags, "-N", "-e", query)


def vip_holder():
    holders = [name for name in BALANCERS
               if f"inet {VIP}/" in docker(name, "ip", "-4", "addr", "show").stdout]
    assert len(holders) <= 1, f"floating address {VIP} on several balancers: {holders}"
    return holders[0] if holders else None


def nginx_workers_pid(host):
    return docker(host, "cat", "/run/nginx.pid").stdout.strip()


# --- 1. the database and its grants -------------------------------------------------

def test_database_is_utf8mb4_and_reachable_from_grafana_hosts_only():
    created = docker("fdb", "mysql", "-N", "-e", "SHOW CREATE DATABASE grafana").stdout
    assert "utf8mb4" in created, created
    for host in GRAFANA:
        result = sql(host, "SELECT CURRENT_USER()")
        assert result.returncode == 0, f"{host}: {result.stderr}"
        assert result.stdout.strip() == f"grafana@{GRAFANA[host]}", result.stdout
    # From a host that is not a Grafana host, the host firewall drops the connection before
    # the grants are asked; without the firewall, the grants refuse it.
    refused = sql("fp-a", "SELECT 1")
    assert refused.returncode != 0
    assert any(text in refused.stderr for text in ("Can't connect", "not allowed to connect", "Access denied")), \
        refused.stderr
    print(f"\n  grafana account from fp-a (not a Grafana host): {refused.stderr.strip()}")


def test_grafana_account_requires_tls():
    cipher = sql("fg-1", "SHOW SESSION STATUS LIKE 'Ssl_version'")
    assert cipher.returncode == 0, cipher.stderr
    assert cipher.stdout.split()[1].startswith("TLSv1."), cipher.stdout
    plain = sql("fg-1", "SELECT 1", tls=False)
    assert plain.returncode != 0 and "Access denied" in plain.stderr, plain.stderr
    print(f"\n  grafana over TLS: {cipher.stdout.split()[1]}, certificate checked against the CA; "
          f"without TLS: {plain.stderr.strip()}")


def test_root_has_no_network_login():
    accounts = docker("fdb", "mysql", "-N", "-e",
                      "SELECT CONCAT(User, '@', Host) FROM mysql.user WHERE User IN ('root', '')").stdout.split()
    assert accounts == ["root@localhost"], accounts
    over_tcp = sql("fg-1", "SELECT 1", user="root", password="")
    assert over_tcp.returncode != 0


# --- 2. grafana.ini: one database, one secret key, every other instance as peer ------

def test_grafana_ini_shares_database_and_secret_key(tmp_path):
    result = live.run_playbook(SCENARIO / "render-grafana.yml", {"render_dir": str(tmp_path)})
    assert result.returncode == 0, result.output[-3000:]
    configs = {}
    for host in GRAFANA:
        parser = configparser.ConfigParser(interpolation=None)
        parser.read_string((tmp_path / f"{host}.ini").read_text())
        configs[host] = parser
    for host, config in configs.items():
        database = config["database"]
        assert (database["type"], database["host"], database["name"], database["user"]) == \
            ("mysql", f"{DB}:3306", "grafana", "grafana"), host
        assert database["password"].strip('"') == DB_PASSWORD
        # TLS to the database, its certificate checked against the CA and its address.
        assert (database["ssl_mode"], database["server_cert_name"]) == ("true", DB), host
        assert database["ca_cert_path"] == "/etc/grafana/mysql-ca.crt"
        assert config["security"]["secret_key"].strip('"') == SECRET_KEY
        assert config["security"]["cookie_secure"] == "true"
        assert config["remote_cache"]["type"] == "database"
        assert config["server"]["root_url"] == f"https://{VIP}/grafana/"
        assert (config["server"]["protocol"], config["server"]["http_addr"]) == ("https", GRAFANA[host])
        assert config["server"]["cert_file"] == "/etc/grafana/tls/server.crt"
        assert config["unified_alerting"]["ha_listen_address"] == f"{GRAFANA[host]}:9094"
        others = sorted(f"{address}:9094" for name, address in GRAFANA.items() if name != host)
        assert config["unified_alerting"]["ha_peers"].split(",") == others, host
        assert config["unified_alerting"]["ha_advertise_address"] == f"{GRAFANA[host]}:9094"
        # /metrics for the stack's grafana job, behind the exporters' account.
        assert (config["metrics"]["enabled"], config["metrics"]["basic_auth_username"],
                config["metrics"]["basic_auth_password"].strip('"')) == ("true", *EXPORTER_AUTH), host
    if PACKAGE:  # what is deployed is what was rendered
        for host in GRAFANA:
            deployed = docker(host, "cat", "/etc/grafana/grafana.ini").stdout
            assert deployed == (tmp_path / f"{host}.ini").read_text(), host


# --- 3. nginx spreads a shard's queries over both replicas, and steps around a dead one

def test_shard_queries_spread_and_survive_a_stopped_replica():
    balancer = BALANCERS["flb-1"]
    answered, failures, stopped_at = {}, 0, None
    for i in range(500):
        if i == 200:
            assert docker("fp-a", "systemctl", "stop", "prometheus").returncode == 0
            stopped_at = i
        status, headers, _ = get(f"https://{balancer}{SHARD_PATH}/api/v1/query?query=up", timeout=5)
        if status != 200:
            failures += 1
            continue
        upstream = headers.get("X-Upstream-Addr", "").split(",")[-1].strip()
        answered[upstream] = answered.get(upstream, 0) + 1
    docker("fp-a", "systemctl", "start", "prometheus")
    wait_for(lambda: get(f"https://{REPLICAS['fp-a']}/-/ready")[0] == 200, 60, "fp-a ready again")
    print(f"\n  500 queries through nginx, fp-a stopped at #{stopped_at}: answered by {answered}, "
          f"failed {failures}")
    assert failures == 0
    assert set(answered) == set(REPLICAS.values()), answered
    assert min(answered.values()) >= 50, answered  # both replicas carried real traffic


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_front_serves_tls_and_keeps_its_status_page_private():
    for address in [VIP, *BALANCERS.values()]:
        status, headers, _ = get(f"https://{address}{SHARD_PATH}/-/ready", timeout=5)
        assert status == 200, address
        assert headers["Strict-Transport-Security"] == "max-age=31536000", address
        assert headers["X-Content-Type-Options"] == "nosniff", address
        # Plain HTTP is only sent on to HTTPS, at the floating address whatever Host the client names.
        for host_header in (None, "evil.example.org"):
            request = urllib.request.Request(f"http://{address}{SHARD_PATH}/-/ready",
                                             headers={"Host": host_header} if host_header else {})
            try:
                urllib.request.build_opener(NoRedirect).open(request, timeout=5)
                raise AssertionError(f"{address}: plain HTTP answered")
            except urllib.error.HTTPError as error:
                assert (error.code, error.headers["Location"]) == (301, f"https://{VIP}{SHARD_PATH}/-/ready"), address
    for host, address in BALANCERS.items():
        assert get(f"http://{address}:8080/nginx_status")[0] == 0, f"{host}: status page reachable from outside"
        inside = docker(host, "python3", "-c", "import urllib.request; print(urllib.request.urlopen("
                        "'http://127.0.0.1:8080/nginx_status', timeout=2).read().decode())")
        assert "Active connections" in inside.stdout, (host, inside.stderr)


def test_nginx_metrics_answer_over_tls_with_the_exporters_account_only():
    """nginx is its exporter's one door: a metrics server on the balancer's own address, TLS and the
    promha account; the exporter itself listens on the loopback address only."""
    for host, address in BALANCERS.items():
        status, _, body = get(f"https://{address}:9113/metrics", auth=EXPORTER_AUTH, timeout=5)
        assert status == 200, (host, status, body[:300])
        assert re.search(r"(?m)^nginx_up 1$", body) and re.search(r"(?m)^nginx_connections_accepted \d+", body), host
        assert get(f"https://{address}:9113/metrics", auth=None)[0] == 401, host
        assert get(f"https://{address}:9113/metrics", auth=("promha", "not-the-password-1234"))[0] == 401, host
        assert get(f"https://{address}:9113/nginx_status", auth=EXPORTER_AUTH)[0] == 404, host
        assert get(f"http://{address}:9113/metrics", auth=EXPORTER_AUTH)[0] not in (0, 200), host
        assert get(f"http://{address}:19113/metrics", auth=None)[0] == 0, f"{host}: the exporter answers from outside"
        listening = sorted(line.split()[3] for line in docker(host, "ss", "-Hltn").stdout.splitlines()
                           if line.split()[3].rsplit(":", 1)[1] in ("9113", "19113"))
        assert listening == sorted([f"{address}:9113", "127.0.0.1:19113"]), (host, listening)


def test_the_front_binds_its_stack_and_floating_addresses_only():
    """Both balancers, the backup included, listen on their own address and the floating one, never on
    every address; the status page on loopback only."""
    for host, address in BALANCERS.items():
        listening = docker(host, "ss", "-Hltn").stdout
        bound = sorted({line.split()[3] for line in listening.splitlines()
                        if line.split()[3].rsplit(":", 1)[1] in ("80", "443", "8080")})
        assert bound == sorted([f"{address}:443", f"{VIP}:443", f"{address}:80", f"{VIP}:80", "127.0.0.1:8080"]), \
            (host, bound)


def test_nginx_reaches_prometheus_and_alertmanager_over_https_with_the_clients_credentials():
    """The backends speak HTTPS only and want a password; nginx checks their certificates
    (proxy_ssl_verify) and passes the client's Authorization header on."""
    for host in BALANCERS:
        conf = docker(host, "cat", "/etc/nginx/nginx.conf").stdout
        assert conf.count("proxy_ssl_verify on;") == 3, host  # the shard, the Alertmanagers, Grafana
        assert "proxy_pass https://prometheus_shard_0/;" in conf and "proxy_pass https://alertmanager/;" in conf
        assert "proxy_pass https://grafana;" in conf and "proxy_ssl_name grafana;" in conf
    for path, auth in ((f"{SHARD_PATH}/api/v1/query?query=up", PROM_AUTH), ("/alertmanager/api/v2/status", AM_AUTH)):
        assert get(f"https://{VIP}{path}", auth=auth)[0] == 200, path
        assert get(f"https://{VIP}{path}", auth=None)[0] == 401, path
        assert get(f"https://{VIP}{path}", auth=("promha", "wrong-password-123"))[0] == 401, path
    for replica in REPLICAS.values():  # directly: HTTPS only
        assert get(f"https://{replica}/-/ready")[0] == 200, replica
        assert get(f"http://{replica}/-/ready")[0] == 400, replica


def post(url, auth):
    """POST an empty body to `url`; return (status, who answered: 'nginx' or 'backend')."""
    request = urllib.request.Request(url, data=b"", method="POST", headers=basic(auth))
    try:
        with urllib.request.urlopen(request, timeout=5, context=ssl.create_default_context(cafile=str(WEB_CA))) \
                as response:
            return response.status, "backend"
    except urllib.error.HTTPError as error:
        body = error.read().decode(errors="replace")
        return error.code, "nginx" if "<center>nginx" in body else "backend"
    except (urllib.error.URLError, OSError):
        return 0, ""


def test_the_front_never_forwards_lifecycle_or_admin_requests():
    """Even with valid credentials, and spelled as nginx would decode or merge them."""
    paths = {f"{SHARD_PATH}/-/quit": PROM_AUTH, f"{SHARD_PATH}/-/reload": PROM_AUTH,
             f"{SHARD_PATH}/-/%71uit": PROM_AUTH, f"{SHARD_PATH}//-/quit": PROM_AUTH,
             f"{SHARD_PATH}/api/v1/admin/tsdb/snapshot": PROM_AUTH,
             "/alertmanager/-/reload": AM_AUTH}
    statuses = {path: post(f"https://{VIP}{path}", auth) for path, auth in paths.items()}
    print(f"\nthrough {VIP}: {statuses}")
    # Refused by nginx itself (its own error page), not by a backend that happens to say no.
    assert all(answer == (403, "nginx") for answer in statuses.values()), statuses
    for replica in REPLICAS.values():
        assert get(f"https://{replica}/-/ready")[0] == 200, replica


def test_grafana_datasources_send_basic_auth(tmp_path):
    result = live.run_playbook(SCENARIO / "render-grafana.yml", {"render_dir": str(tmp_path)})
    assert result.returncode == 0, result.output[-3000:]
    assert PROM_AUTH[1] not in result.output  # the provisioning password never reaches the log
    for host in GRAFANA:
        sources = yaml.safe_load((tmp_path / f"{host}.datasources.yml").read_text())["datasources"]
        prometheus = [d for d in sources if d["uid"].startswith("promha-prometheus-")]
        assert prometheus and all(d["basicAuth"] and d["basicAuthUser"] == PROM_AUTH[0]
                                  and d["secureJsonData"]["basicAuthPassword"] == PROM_AUTH[1] for d in prometheus)


# --- 4. the floating address moves when the active balancer fails --------------------

REQUEST_INTERVAL = 0.25  # the bounded loop: 4 requests a second through the floating address


def measure_failover(stop, holder):
    """Request through the floating address every REQUEST_INTERVAL while `stop()` takes `holder` down.

    A thread watches which balancer holds the address (every 0.1 s). Returns
    (requests sent, requests failed, failed requests that *started* after the
    address was seen on another balancer, seconds from stop() until then).
    """
    moved = {}
    stopped_at = threading.Event()
    done = threading.Event()

    def watch():
        stopped_at.wait()
        while not done.is_set():
            if vip_holder() not in (None, holder):
                moved["at"] = time.monotonic()
                return
            time.sleep(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    results, start = [], None
    deadline = time.monotonic() + 40
    try:
        while time.monotonic() < deadline:
            if len(results) == 20:
                stop()
                start = time.monotonic()
                stopped_at.set()
            began = time.monotonic()
            status, _, _ = get(f"https://{VIP}{SHARD_PATH}/-/ready", timeout=1)
            results.append((began, status))
            if "at" in moved and time.monotonic() > moved["at"] + 5:
                break
            time.sleep(max(0.0, REQUEST_INTERVAL - (time.monotonic() - began)))
    finally:
        done.set()
        stopped_at.set()
        watcher.join()
    moved_at = moved.get("at")
    failed = [began for began, status in results if status != 200]
    after = [began for began in failed if moved_at is not None and began >= moved_at]
    return len(results), len(failed), len(after), (moved_at - start if moved_at else None)


def assert_failover(holder, sent, failures, after, moved):
    assert moved is not None and moved < 10, f"the address did not move off {holder}"
    assert after == 0, f"{after} requests failed after the address moved"
    # Only requests sent while no balancer served may fail: one per interval of the move, plus
    # the request in flight when it happened.
    assert failures <= math.ceil(moved / REQUEST_INTERVAL) + 1, (failures, moved)


def test_floating_address_moves_when_nginx_dies():
    holder = wait_for(vip_holder, 30, "a balancer holding the floating address")
    try:
        sent, failures, after, moved = measure_failover(
            lambda: docker(holder, "systemctl", "stop", "nginx"), holder)
        print(f"\n  nginx stopped on {holder}: address moved in {moved:.2f}s; {failures} of {sent} requests "
              f"failed ({REQUEST_INTERVAL}s apart), {after} after the move")
    finally:
        docker(holder, "systemctl", "start", "nginx")
    assert_failover(holder, sent, failures, after, moved)
    # nopreempt: the recovered balancer does not take the address back.
    wait_for(lambda: get(f"https://{BALANCERS[holder]}{SHARD_PATH}/-/ready")[0] == 200, 20, f"nginx on {holder}")
    time.sleep(4)
    assert vip_holder() not in (None, holder)


def exported_holders():
    """Balancer -> the value of promha_keepalived_holds_address in its textfile (keepalived's notify)."""
    states = {}
    for name in BALANCERS:
        text = docker(name, "cat", "/var/lib/monitoring/textfile/promha_keepalived.prom").stdout
        found = re.search(r'^promha_keepalived_holds_address\{vrrp_instance="front"\} ([01])$', text, re.M)
        states[name] = int(found.group(1)) if found else None
    return states


def test_the_holder_is_exported_and_follows_a_move():
    holder = wait_for(vip_holder, 30, "a balancer holding the floating address")
    wait_for(lambda: exported_holders() == {name: int(name == holder) for name in BALANCERS}, 10,
             f"the textfiles to name {holder}")
    docker(holder, "systemctl", "stop", "keepalived")
    try:
        def moved():
            now = vip_holder()
            return now if now not in (None, holder) else None
        other = wait_for(moved, 20, "the move")
        # Stopped, the old holder says it holds nothing (the unit's ExecStopPost).
        wait_for(lambda: exported_holders() == {name: int(name == other) for name in BALANCERS}, 10,
                 f"the textfiles to name {other}")
    finally:
        docker(holder, "systemctl", "start", "keepalived")


def by_instance(replica, query):
    """``{instance: value}`` of an instant query on ``replica``'s Prometheus."""
    status, _, body = get(f"https://{REPLICAS[replica]}/api/v1/query?" + urllib.parse.urlencode(
        {"query": query}), timeout=5)
    assert status == 200, body
    return {r["metric"]["instance"]: float(r["value"][1]) for r in json.loads(body)["data"]["result"]}


def front_probes(replica):
    """``{path probed: probe_success}`` of the front job, as ``replica``'s Prometheus last scraped them."""
    return by_instance(replica, 'probe_success{job="front"}')


def wait_all_up(replica, values, wanted, what):
    """Wait until ``values(replica)`` has exactly the instances ``wanted``, each 1."""
    return wait_for(lambda: (lambda v: v if set(v) == wanted and all(x == 1 for x in v.values()) else None)(
        values(replica)), 90, f"{replica}: {what}")


def test_every_replica_probes_each_path_of_the_front_through_the_floating_address():
    front = f"https://{VIP}:443"
    wanted = {f"{front}{SHARD_PATH}/-/ready", f"{front}/alertmanager/-/ready"} | (
        {f"{front}/grafana/api/health"} if PACKAGE else set())
    for replica in REPLICAS:
        found = wait_all_up(replica, front_probes, wanted, "every front path probed and answering")
        assert set(found) == wanted
        # blackbox_exporter answers on the loopback address only, with TLS and credentials.
        listening = [line.split()[3] for line in docker(replica, "ss", "-Htln", "sport = :9115").stdout.splitlines()]
        assert listening == ["127.0.0.1:9115"], listening
        # Without credentials, on the host itself, with its CA: 401.
        unauthenticated = docker(replica, "python3", "-c", (
            "import ssl, urllib.error, urllib.request\n"
            "context = ssl.create_default_context(cafile='/etc/prometheus/blackbox/ca.crt')\n"
            "try:\n"
            "    print(urllib.request.urlopen('https://127.0.0.1:9115/metrics', context=context).status)\n"
            "except urllib.error.HTTPError as error:\n"
            "    print(error.code)\n"))
        assert unauthenticated.stdout.strip() == "401", unauthenticated


def nginx_job(replica):
    """``{balancer's metrics address: up}`` of the nginx job, as ``replica``'s Prometheus last scraped it."""
    return by_instance(replica, 'up{job="nginx"}')


def test_the_nginx_job_reads_every_balancer_through_its_metrics_server():
    wanted = {f"{address}:9113" for address in BALANCERS.values()}
    for replica in REPLICAS:
        found = wait_all_up(replica, nginx_job, wanted, "every balancer's nginx scraped and up")
        assert set(found) == wanted


def test_the_grafana_job_scrapes_every_grafana_host_with_tls_and_the_account():
    """The grafana job is in every replica's configuration (promtool checked it) with each Grafana
    host as a target, over HTTPS with the exporters' account; the firewall lets the replicas reach
    Grafana's port. Without a Grafana package nothing listens there, so the targets read as down with
    the connection refused: what a scrape of a running Grafana returns is not checked here."""
    wanted = {f"{address}:3000" for address in GRAFANA.values()}
    for replica, address in REPLICAS.items():
        def grafana_targets(a=address):
            status, _, body = get(f"https://{a}/api/v1/targets?scrapePool=grafana&state=active", timeout=5)
            assert status == 200, body
            found = {t["labels"]["instance"]: t for t in json.loads(body)["data"]["activeTargets"]}
            return found if set(found) == wanted and all(t["lastScrape"] != "0001-01-01T00:00:00Z"
                                                         for t in found.values()) else None
        found = wait_for(grafana_targets, 90, f"{replica}: every Grafana host a target of the grafana job")
        for instance, target in found.items():
            # Under Grafana's sub path: outside it, a Grafana sends the request on to the front.
            assert target["scrapeUrl"] == f"https://{instance}/grafana/metrics", target
            if PACKAGE:
                assert target["health"] == "up", target
            else:
                assert target["health"] == "down" and "connection refused" in target["lastError"], target
    config = docker(next(iter(REPLICAS)), "cat", "/etc/prometheus/prometheus.yml").stdout
    job = next(j for j in yaml.safe_load(config)["scrape_configs"] if j["job_name"] == "grafana")
    assert job["scheme"] == "https" and job["tls_config"]["ca_file"] == "/etc/prometheus/web/grafana-ca.crt", job
    assert job["basic_auth"] == {"username": "promha", "password_file": "/etc/prometheus/web/grafana.password"}, job
    password = docker(next(iter(REPLICAS)), "cat", "/etc/prometheus/web/grafana.password").stdout.strip()
    assert password == EXPORTER_AUTH[1]


def test_a_front_path_that_fails_reads_as_failing():
    # A balancer's nginx stopped while the other holds the address changes nothing;
    # both stopped, every path fails its probe and the nginx job finds both down
    # (BalancerNginxDown's input), and all answer again once they are back.
    replica = next(iter(REPLICAS))
    for name in BALANCERS:
        docker(name, "systemctl", "stop", "nginx")
    try:
        wait_for(lambda: (lambda p: p and all(v == 0 for v in p.values()))(front_probes(replica)), 90,
                 "every front path failing its probe")
        wait_for(lambda: (lambda u: len(u) == len(BALANCERS) and all(v == 0 for v in u.values()))(nginx_job(replica)),
                 60, "the nginx job finding every balancer down")
    finally:
        for name in BALANCERS:
            docker(name, "systemctl", "start", "nginx")
    wait_for(lambda: (lambda p: p and all(v == 1 for v in p.values()))(front_probes(replica)), 120,
             "every front path answering again")


def test_floating_address_moves_when_the_balancer_dies():
    holder = wait_for(vip_holder, 30, "a balancer holding the floating address")
    try:
        sent, failures, after, moved = measure_failover(
            lambda: subprocess.run(["docker", "stop", "-t", "1", holder], capture_output=True, check=True), holder)
        print(f"\n  balancer {holder} stopped: address moved in {moved:.2f}s; {failures} of {sent} requests "
              f"failed ({REQUEST_INTERVAL}s apart), {after} after the move")
    finally:
        subprocess.run(["docker", "start", holder], capture_output=True, check=True)
        wait_for(lambda: get(f"https://{BALANCERS[holder]}{SHARD_PATH}/-/ready")[0] == 200, 60,
                 f"{holder} serving again")
        wait_for(lambda: "active" in docker(holder, "systemctl", "is-active", "keepalived").stdout, 30,
                 f"keepalived on {holder}")
    assert_failover(holder, sent, failures, after, moved)
    assert vip_holder() not in (None, holder)


# --- 5. a broken nginx config never reaches the running nginx --------------------------

def test_broken_nginx_config_is_refused():
    for host, address in BALANCERS.items():
        wait_for(lambda address=address: get(f"https://{address}{SHARD_PATH}/-/ready")[0] == 200, 60,
                 f"nginx on {host}")
    before = {host: (docker(host, "sha256sum", "/etc/nginx/nginx.conf").stdout, nginx_workers_pid(host))
              for host in BALANCERS}
    result = live.converge(SCENARIO, {"nginx_extra_http_config": "this_is_not_a_directive on;"},
                           limit="loadbalancer", tags="nginx")
    assert result.returncode != 0
    assert 'unknown directive "this_is_not_a_directive"' in result.output, result.output[-3000:]
    for host, address in BALANCERS.items():
        assert (docker(host, "sha256sum", "/etc/nginx/nginx.conf").stdout, nginx_workers_pid(host)) == before[host]
        assert get(f"https://{address}{SHARD_PATH}/-/ready")[0] == 200, host


# --- 6. Grafana's install gates (these need no Grafana build) --------------------------

def test_grafana_package_with_a_wrong_checksum_is_refused(tmp_path):
    package = tmp_path / "grafana_0.0.0_amd64.deb"
    package.write_bytes(b"not the package the checksum names\n")
    installed = docker("fg-1", "dpkg-query", "-W", "grafana").stdout
    result = live.converge(SCENARIO, {"grafana_install_method": "package_file",
                                      "grafana_package_file": str(package),
                                      "grafana_package_sha256": "0" * 64},
                           limit="fg-1", tags="grafana")
    assert result.returncode != 0
    output = " ".join(result.output.split())
    assert "fg-1: the Grafana package has sha256 " in output, result.output[-3000:]
    assert f"grafana_package_sha256 says {'0' * 64}" in output
    assert docker("fg-1", "dpkg-query", "-W", "grafana").stdout == installed  # nothing was installed


@pytest.mark.skipif(bool(PACKAGE), reason="Grafana is installed from GRAFANA_PACKAGE_FILE; nothing is missing")
def test_grafana_without_a_package_stops_with_one_sentence():
    result = live.converge(SCENARIO, {"grafana_when_unavailable": "fail", "grafana_install_method": "package_file",
                                      "grafana_package_file": "/nonexistent/grafana.deb"},
                           limit="fg-2", tags="grafana")
    assert result.returncode != 0
    output = " ".join(result.output.split())
    assert ("Grafana is not installed on fg-2 because the package file /nonexistent/grafana.deb does not exist "
            "on the controller: provide a Grafana .deb") in output, result.output[-3000:]


# --- 7. Grafana itself, when a package is supplied -----------------------------------

def grafana_reason():
    report = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "grafana-unavailable.txt"
    return report.read_text().strip() if report.exists() else "GRAFANA_PACKAGE_FILE is not set"


@pytest.fixture(scope="module")
def grafana_session():
    if not PACKAGE:
        reason = grafana_reason()
        print(f"\n  NOT CHECKED (no Grafana package): login through nginx, the session on the other "
              f"instance, a dashboard saved on one and read on the other. {reason}")
        pytest.skip(f"Grafana not installed: {reason}")
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar),
                                         urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=str(WEB_CA))))
    body = json.dumps({"user": "admin", "password": ADMIN_PASSWORD}).encode()
    request = urllib.request.Request(f"https://{VIP}/grafana/login", data=body,
                                     headers={"Content-Type": "application/json"})
    with opener.open(request, timeout=10) as response:
        assert response.status == 200
    cookie = "; ".join(f"{c.name}={c.value}" for c in jar)
    assert "grafana_session" in cookie, cookie
    return cookie


def grafana_api(host, path, cookie, data=None):
    request = urllib.request.Request(
        f"https://{GRAFANA[host]}:3000/grafana/api/{path}", data=None if data is None else json.dumps(data).encode(),
        headers={"Cookie": cookie, "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10, context=ssl.create_default_context(cafile=str(WEB_CA))) as response:
        return json.loads(response.read().decode())


def test_grafana_session_is_valid_on_every_instance(grafana_session):
    for host in GRAFANA:
        assert grafana_api(host, "user", grafana_session)["login"] == "admin", host


def test_grafana_dashboard_saved_on_one_is_read_on_the_other(grafana_session):
    uid = f"molecule-{int(time.time())}"
    saved = grafana_api("fg-1", "dashboards/db", grafana_session,
                        {"dashboard": {"uid": uid, "title": f"shared {uid}", "panels": []}, "overwrite": True})
    assert saved["uid"] == uid
    assert grafana_api("fg-2", f"dashboards/uid/{uid}", grafana_session)["dashboard"]["title"] == f"shared {uid}"


# --- 8. a stranger on the network ------------------------------------------------------

STRANGER = "10.213.40.254"  # on the scenario's network, in no inventory group


def stranger():
    """A container at STRANGER on the scenario's network, in no inventory group, from the hosts' image."""
    image = subprocess.run(["docker", "inspect", "-f", "{{.Config.Image}}", "fdb"], capture_output=True, text=True,
                           check=True).stdout.strip()
    network = yaml.safe_load((SCENARIO / "molecule.yml").read_text())["platforms"][0]["networks"][0]["name"]
    return intruder.stranger(network, STRANGER, image)


def test_every_host_runs_the_host_firewall():
    for host in TOPOLOGY.hosts("all"):
        table = docker(host, "nft", "list", "table", "inet", "promha")
        assert table.returncode == 0, f"{host}: {table.stderr}"
        assert "policy drop;" in table.stdout, host
        assert "10.213.40.1 " in table.stdout, f"{host}: the controller is not admin"


def test_a_stranger_and_the_controller_without_credentials_are_refused_everywhere():
    """The drill's plan (tests/helpers/intruder.py): lifecycle, admin and write APIs of every
    daemon directly and through the floating address, silences, a database login, and ports
    outside the stranger's part of the firewall plan; then the same from the controller (an
    operator source: the firewall lets it through) without credentials."""
    plan = intruder.intruder_plan(TOPOLOGY)
    with stranger() as name:
        results = intruder.probe_from(name, plan)
    from_controller = intruder.probe_here([p for p in plan if not p.get("ssh")])
    print(f"\n  from {STRANGER} (no group): {len(results)} probes, "
          f"{sum(1 for r in results if intruder.refused(r))} refused ({intruder.tally(results)})"
          f"\n  from the controller without credentials: {len(from_controller)} probes, "
          f"{sum(1 for r in from_controller if intruder.refused(r))} refused ({intruder.tally(from_controller)})")
    assert len(results) == len(plan) and len(plan) >= 30, (len(results), len(plan))
    accepted = [r for r in results + from_controller if not intruder.refused(r)]
    assert not accepted, accepted
    # Everything still serves, the Alertmanager cluster whole.
    for replica in REPLICAS.values():
        assert get(f"https://{replica}/-/ready")[0] == 200, replica
    for instance in TOPOLOGY.alertmanagers:
        status = json.loads(get(f"https://{instance['web']}/api/v2/status", auth=AM_AUTH)[2])
        assert len(status["cluster"]["peers"]) == len(TOPOLOGY.alertmanagers), instance["peer_name"]
    assert get(f"https://{VIP}{SHARD_PATH}/-/ready")[0] == 200


FORGERY_SECONDS = 15


def test_forged_vrrp_from_a_stranger_moves_nothing():
    """A stranger forges VRRP advertisements (priority 255, each balancer's address as the source,
    plain and inside a made-up AH header) for FORGERY_SECONDS. Unauthenticated keepalived obeys them
    and nobody holds the address; here the holder keeps it and the front answers at every check,
    0.5 s apart: the host firewalls drop every forgery (a peer's address from another link-layer
    address), so none reaches keepalived, whose AH would refuse it too."""
    holder = wait_for(vip_holder, 30, "a balancer holding the floating address")
    vrid = TOPOLOGY.setting(holder, "keepalived_virtual_router_id")
    since = docker(holder, "date", "+%Y-%m-%d %H:%M:%S").stdout.strip()
    dropped_before = {host: vrrp_dropped(host) for host in BALANCERS}
    checks = []
    with stranger() as name:
        forger = intruder.forge_vrrp(name, vrid, VIP, list(BALANCERS.values()), FORGERY_SECONDS)
        time.sleep(1)
        while forger.poll() is None:
            began = time.monotonic()
            checks.append((vip_holder(), get(f"https://{VIP}{SHARD_PATH}/-/ready")[0]))
            time.sleep(max(0.0, 0.5 - (time.monotonic() - began)))
        sent = int(forger.stdout.read().strip() or 0)
    dropped = {host: vrrp_dropped(host) - dropped_before[host] for host in BALANCERS}
    seen_by_keepalived = [host for host in BALANCERS if "IPSEC-AH" in docker(
        host, "journalctl", "-u", "keepalived", "--since", since, "--no-pager").stdout]
    moved = [check for check in checks if check[0] != holder]
    failed = [check for check in checks if check[1] != 200]
    print(f"\n  forged VRRP from {STRANGER}: {sent} packets in {FORGERY_SECONDS} s; {len(checks)} checks 0.5 s apart, "
          f"address off {holder} in {len(moved)}, front failed in {len(failed)}; dropped by the firewall: {dropped}; "
          f"reached keepalived on {', '.join(seen_by_keepalived) or 'none'}")
    assert sent > 0, forger.stderr.read()
    assert len(checks) >= 2 * (FORGERY_SECONDS - 3), len(checks)
    assert not moved, moved
    assert not failed, failed
    # The forgeries arrived (each balancer dropped its share) and none reached keepalived.
    assert all(count > 0 for count in dropped.values()), dropped
    assert not seen_by_keepalived, seen_by_keepalived


def vrrp_dropped(host):
    """Packets the host firewall dropped as VRRP or AH from anyone but a peer (its rule's counter)."""
    ruleset = docker(host, "nft", "list", "chain", "inet", "promha", "input").stdout
    found = re.search(r"ip protocol \{ (?:vrrp, ah|ah, vrrp|112, 51|51, 112) \} counter packets (\d+)", ruleset)
    assert found, ruleset
    return int(found.group(1))


def legitimate_latencies(url, count, interval=0.25):
    """Seconds each of ``count`` requests with the right credentials took (the controller, an operator
    source), ``interval`` apart; a request that did not answer 200 counts as its status instead."""
    times, statuses = [], []
    for _ in range(count):
        began = time.monotonic()
        status = get(url, timeout=10)[0]
        times.append(time.monotonic() - began)
        statuses.append(status)
        time.sleep(max(0.0, interval - (time.monotonic() - began)))
    return times, statuses


def test_a_burst_of_wrong_passwords_is_limited_at_the_front_and_legitimate_callers_keep_their_speed():
    """A stranger sends 800 requests through the front, each with another wrong password, 8 at a
    time: beyond nginx_rate_limit's burst it gets 429 at once, so few guesses reach a backend's bcrypt
    check, and an operator's queries (the controller, an operator source, 4 a second) keep their
    speed (median within 2x of idle, or 50 ms: a few milliseconds idle are mostly noise) and never
    get 429. A Grafana host (exempt too) sending 60 at once is never limited."""
    url = f"https://{VIP}{SHARD_PATH}/api/v1/query?query=up"
    idle, idle_statuses = legitimate_latencies(url, 20)
    with stranger() as name:
        burst = intruder.guess_burst(name, url, 800, 8)
        during, during_statuses = [], []
        while burst.poll() is None:
            times, statuses = legitimate_latencies(url, 1)
            during += times
            during_statuses += statuses
        guesses = json.loads(burst.stdout.read())
    exempt = docker("fg-1", "python3", "-c", (
        "import base64,ssl,urllib.request,urllib.error\n"
        "from concurrent.futures import ThreadPoolExecutor\n"
        "ctx=ssl._create_unverified_context()\n"
        f"auth='Basic '+base64.b64encode(b'{PROM_AUTH[0]}:{PROM_AUTH[1]}').decode()\n"
        "def one(_):\n"
        f"    req=urllib.request.Request('{url}',headers={{'Authorization':auth}})\n"
        "    try:\n"
        "        return urllib.request.urlopen(req,timeout=10,context=ctx).status\n"
        "    except urllib.error.HTTPError as e:\n"
        "        return e.code\n"
        "with ThreadPoolExecutor(8) as pool:\n"
        "    print(sorted(set(pool.map(one, range(60)))))\n"))
    median_idle, median_during = sorted(idle)[len(idle) // 2], sorted(during)[len(during) // 2]
    print(f"\n  wrong passwords from {STRANGER}: {sum(guesses['statuses'].values())} in {guesses['seconds']} s, "
          f"{guesses['statuses']}; an operator's query: median {median_idle * 1000:.0f} ms idle, "
          f"{median_during * 1000:.0f} ms during the burst ({len(during)} queries, "
          f"{median_during / median_idle:.2f}x); a Grafana host's 60 at once: {exempt.stdout.strip()}")
    assert guesses["statuses"].get("429", 0) > 600, guesses
    assert set(idle_statuses) == {200} and set(during_statuses) == {200}, (idle_statuses, during_statuses)
    assert exempt.stdout.strip() == "[200]", exempt.stdout + exempt.stderr
    assert median_during <= max(2 * median_idle, median_idle + 0.05), (median_idle, median_during)


def test_a_password_guess_cannot_be_checked_against_a_salt_in_web_yml():
    """Prometheus' web.yml, as on every web port. Its bcrypt salt is keyed by the controller's
    credentials/web_hash_key: even the right password, run through the salt derivation without the
    key (HMAC of the password over host and user), does not give the salt, so a guess costs a full
    bcrypt check. The file is the live one: the password verifies against its hash."""
    import base64 as b64
    import hashlib
    import hmac

    import bcrypt
    password = PROM_AUTH[1]
    alphabet = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
                             "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
    assert TOPOLOGY.hosts("prometheus")
    for host in TOPOLOGY.hosts("prometheus"):
        read = docker(host, "cat", "/etc/prometheus/web/web.yml")
        assert read.returncode == 0, f"{host}: {read.stderr}"
        users = yaml.safe_load(read.stdout)["basic_auth_users"]
        hashed = users["promha"]
        assert bcrypt.checkpw(password.encode(), hashed.encode()), host
        unkeyed = hmac.new(password.encode(), f"{host}\0promha".encode(), hashlib.sha256).digest()[:16]
        assert hashed[7:29] != b64.b64encode(unkeyed).decode()[:22].translate(alphabet), host


def test_a_port_and_icmp_sweep_from_a_stranger_finds_only_the_planned_flows():
    """Every TCP port that listens on any host of the scenario (ss, read on each host), tried on
    every host and the floating address, and ICMP echo and timestamp requests: only the front's
    ports on the balancers and the floating address accept a connection, echo is answered and
    timestamp is not."""
    listening = {}
    for host in TOPOLOGY.hosts("all"):
        lines = docker(host, "ss", "-Htln").stdout.splitlines()
        listening[host] = {int(line.split()[3].rsplit(":", 1)[1]) for line in lines if line.strip()}
    plan = intruder.sweep_plan(TOPOLOGY, listening)
    with stranger() as name:
        results = intruder.probe_from(name, plan)
    answered = [r["name"] for r in results if r["status"] in ("connected", "answered")]
    expected = [p["name"] for p in plan if p["open"]]
    print(f"\n  sweep from {STRANGER}: {len(plan)} probes over {len(set().union(*listening.values()))} ports; "
          f"{len(answered)} answered ({intruder.tally(results)})")
    assert len(results) == len(plan)
    assert sorted(answered) == sorted(expected), (sorted(set(answered) - set(expected)),
                                                 sorted(set(expected) - set(answered)))
