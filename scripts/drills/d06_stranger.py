"""Drill 6: A stranger on the network (a container in no inventory group): lifecycle, admin and
write calls to every daemon, directly and through the floating address, a database login and
two gossip joins (plain, and with another CA's certificate) are all refused; forged VRRP
advertisements (priority 255, the balancers' addresses as sources) leave the floating
address where it was and the front answering at every check, 0.5 s apart; a burst of wrong
passwords through the front is cut short by its rate limit (429) while an operator's queries
keep their speed (median within 2x of idle); a sweep of every port that listens anywhere,
and ICMP echo and timestamp, finds only the planned flows; no web.yml salt lets a guess be
checked; every daemon still serves, the cluster unchanged.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time

import intruder
import lab

from drills.common import (
    ROOT,
    cluster_sizes,
    ok,
)

INTRUDER_PORT = 9093  # the intruder's own Alertmanager, trying to join the gossip


def drill_intruder(drill_lab, receiver, short):
    import ipaddress
    network = drill_lab.settings["lab_network_name"]
    subnet = ipaddress.ip_network(drill_lab.settings["lab_network_subnet"])
    taken = {drill_lab.address(h) for h in drill_lab.hosts} | {drill_lab.vip}
    address = next(str(a) for a in reversed(list(subnet.hosts())) if str(a) not in taken)
    image = subprocess.run(["docker", "inspect", "-f", "{{.Config.Image}}", drill_lab.container(drill_lab.database)],
                           capture_output=True, text=True, check=True).stdout.strip()
    members_before = cluster_sizes(drill_lab)
    plan = intruder.intruder_plan(drill_lab.topology)
    with intruder.stranger(network, address, image, label=f"{lab.LABEL}={network}") as name:
        results = intruder.probe_from(name, plan)
        gossip = intruder_gossip(drill_lab, name, address)
        forgery = forged_vrrp(drill_lab, name, 10 if short else 30)
        guesses = wrong_password_burst(drill_lab, name, 200 if short else 800)
        sweep = port_sweep(drill_lab, name)
    salted = salt_problems(drill_lab)
    # The same probes from the controller, which the firewall lets through as admin and
    # operator (SSH aside: it is the admin): without credentials, every daemon refuses.
    own = [p for p in plan if not p.get("ssh")]
    from_controller = intruder.probe_here(own)
    refused, tally = intruder.refused, intruder.tally
    accepted = ([r for r in results if not refused(r)] + [g for g in gossip if g["joined"]]
                + [dict(r, name=f"controller: {r['name']}") for r in from_controller if not refused(r)])
    members_after = cluster_sizes(drill_lab)
    summary = subprocess.run([sys.executable, str(ROOT / "scripts" / "lab.py"), "summary", "--strict"],
                             capture_output=True, text=True, check=False)
    tried = len(results) + len(gossip)
    intruder_accepted = [r for r in accepted if not r["name"].startswith("controller: ")]
    figures = (f"from {address} (no group): {tried} probes, {tried - len(intruder_accepted)} refused ("
               + tally(results)
               + f"; gossip joins refused {sum(1 for g in gossip if not g['joined'])} of {len(gossip)}); "
               f"from the controller without credentials: {len(from_controller)} probes, "
               f"{sum(1 for r in from_controller if refused(r))} refused ({tally(from_controller)}); "
               f"forged VRRP: {forgery['sent']} packets, the address off {forgery['holder']} in {len(forgery['moved'])} "
               f"and the front failing in {len(forgery['failed'])} of {forgery['checks']} checks 0.5 s apart; "
               f"wrong passwords through the front: {guesses['sent']} in {guesses['seconds']} s ({guesses['statuses']}), "
               f"an operator's query median {guesses['idle'] * 1000:.0f} ms idle and {guesses['during'] * 1000:.0f} ms "
               f"during them; "
               f"a sweep of {len(sweep['plan'])} ports and ICMP requests: {len(sweep['answered'])} answered, "
               f"{len(sweep['unexpected'])} beyond the plan, {len(sweep['missing'])} planned ones silent; "
               f"web.yml salts checked on {salted['hosts']} replicas, {len(salted['problems'])} open to a guess; "
               f"cluster members before {sorted(set(members_before.values()))}, after {sorted(set(members_after.values()))}; "
               f"every service {'healthy' if summary.returncode == 0 else 'NOT healthy'} afterwards")
    problems = [f"accepted: {r['name']} -> {r.get('status')} {r.get('answer', '')[:120]}" for r in accepted]
    problems += [f"the intruder's Alertmanager did not run for the {g['kind']} gossip attempt" for g in gossip
                 if not g["ran"]]
    if members_after != members_before or len(results) != len(plan) or len(from_controller) != len(own):
        problems.append(f"cluster sizes {members_before} -> {members_after}; {len(results)} of {len(plan)} probes ran")
    if summary.returncode != 0:
        problems.append("a service is down after the probes:\n" + summary.stdout)
    if not forgery["sent"] or forgery["moved"] or forgery["failed"]:
        problems.append(f"forged VRRP: {forgery['sent']} packets sent; address elsewhere at {forgery['moved'][:5]}, "
                        f"front failing at {forgery['failed'][:5]}")
    if guesses["during"] > max(2 * guesses["idle"], guesses["idle"] + 0.05) or guesses["refused_operator"]:
        problems.append(f"wrong passwords slowed an operator's queries: median {guesses['idle']:.3f} s idle, "
                        f"{guesses['during']:.3f} s during the burst; {guesses['refused_operator']} not answered 200")
    if guesses["statuses"].get("429", 0) == 0:
        problems.append(f"the front did not limit the wrong passwords: {guesses['statuses']}")
    if sweep["unexpected"] or sweep["missing"]:
        problems.append(f"sweep: answered beyond the plan {sweep['unexpected'][:10]}; planned but silent "
                        f"{sweep['missing'][:10]}")
    problems += salted["problems"]
    return figures, problems


def port_sweep(drill_lab, name):
    """Every TCP port that listens on any lab host (ss, read on each), tried on every host and the
    floating address, and ICMP echo and timestamp requests (tests/helpers/intruder.py sweep_plan):
    what answered beyond the plan, and what the plan opens but stayed silent."""
    listening = {}
    for host in drill_lab.hosts:
        lines = drill_lab.exec(host, "ss", "-Htln").stdout.splitlines()
        listening[host] = {int(line.split()[3].rsplit(":", 1)[1]) for line in lines if line.strip()}
    plan = intruder.sweep_plan(drill_lab.topology, listening)
    results = intruder.probe_from(name, plan)
    answered = {r["name"] for r in results if r["status"] in ("connected", "answered")}
    planned = {p["name"] for p in plan if p["open"]}
    return {"plan": plan, "answered": sorted(answered), "unexpected": sorted(answered - planned),
            "missing": sorted(planned - answered)}


def salt_problems(drill_lab):
    """Prometheus' web.yml on each replica: the password verifies against its hash, and the salt is
    not the unkeyed derivation of that password (HMAC of the password over host and user), which
    would let a guess be checked at HMAC speed."""
    import hashlib
    import hmac

    import bcrypt
    import yaml
    password = drill_lab.topology.access("prometheus")["auth"][1]
    alphabet = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
                             "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
    problems, hosts = [], 0
    for host in drill_lab.topology.hosts("prometheus"):
        hashed = yaml.safe_load(drill_lab.exec(host, "cat", "/etc/prometheus/web/web.yml").stdout or "{}")
        hashed = (hashed or {}).get("basic_auth_users", {}).get("promha", "")
        hosts += 1
        if not hashed or not bcrypt.checkpw(password.encode(), hashed.encode()):
            problems.append(f"{host}: web.yml has no hash the password verifies against")
            continue
        unkeyed = hmac.new(password.encode(), f"{host}\0promha".encode(), hashlib.sha256).digest()[:16]
        if hashed[7:29] == base64.b64encode(unkeyed).decode()[:22].translate(alphabet):
            problems.append(f"{host}: the salt in web.yml is the password's unkeyed derivation")
    return {"hosts": hosts, "problems": problems}


def wrong_password_burst(drill_lab, name, count):
    """The stranger sends ``count`` requests through the front, each with another wrong password, 8 at
    a time; the controller (an operator) queries through the front 4 times a second before and
    meanwhile. Medians in seconds, and the operator's answers that were not 200."""
    url = drill_lab.topology.front_url("/prometheus/shard-0/api/v1/query?query=up")

    def operator(rounds=None, until=None):
        times, bad = [], 0
        while (rounds is not None and len(times) < rounds) or (until is not None and until.poll() is None):
            began = time.monotonic()
            good = ok(url, timeout=10, topology=drill_lab.topology, tier="prometheus")
            times.append(time.monotonic() - began)
            bad += not good
            time.sleep(max(0.0, 0.25 - (time.monotonic() - began)))
        return sorted(times)[len(times) // 2] if times else 0.0, bad

    idle, bad_idle = operator(rounds=20)
    burst = intruder.guess_burst(name, url, count, 8)
    during, bad_during = operator(until=burst)
    result = json.loads(burst.stdout.read() or "{}")
    statuses = result.get("statuses", {})
    return {"sent": sum(statuses.values()), "seconds": result.get("seconds"), "statuses": statuses, "idle": idle,
            "during": during, "refused_operator": bad_idle + bad_during}


def forged_vrrp(drill_lab, name, seconds):
    """The stranger forges VRRP advertisements for the floating address (tests/helpers/intruder_probes.py)
    for ``seconds``; every 0.5 s meanwhile: who holds the address, and whether the front answers."""
    holder = drill_lab.vip_holder()
    balancers = drill_lab.topology.hosts("loadbalancer")
    vrid = drill_lab.topology.setting(balancers[0], "keepalived_virtual_router_id")
    forger = intruder.forge_vrrp(name, vrid, drill_lab.vip, [drill_lab.address(h) for h in balancers], seconds)
    ready = drill_lab.topology.front_url("/prometheus/shard-0/-/ready")
    checks, moved, failed = 0, [], []
    started = time.monotonic()
    while forger.poll() is None:
        began = time.monotonic()
        checks += 1
        now = drill_lab.vip_holder()
        if now != holder:
            moved.append((round(began - started, 1), now))
        if not ok(ready, topology=drill_lab.topology, tier="prometheus"):
            failed.append(round(began - started, 1))
        time.sleep(max(0.0, 0.5 - (time.monotonic() - began)))
    sent = forger.stdout.read().strip()
    return {"holder": holder, "sent": int(sent) if sent.isdigit() else 0, "checks": checks, "moved": moved,
            "failed": failed}


def intruder_gossip(drill_lab, name, address):
    """An Alertmanager started on the intruder tries to join the cluster: plainly, then with a
    certificate from a CA of its own. Joined means a real instance lists it, or it sees a real peer."""
    donor = drill_lab.container(drill_lab.topology.alertmanagers[0]["host"])
    binary = subprocess.run(["docker", "exec", donor, "cat", "/usr/bin/prometheus-alertmanager"],
                            capture_output=True, check=True).stdout
    drill_lab.exec_input(name, binary, "sh", "-c",
                         "mkdir -p /root/am && cat > /root/am/alertmanager && chmod +x /root/am/alertmanager")
    # Debian's build reads its notification templates from here.
    templates = subprocess.run(["docker", "exec", donor, "tar", "-C", "/", "-cf", "-",
                                "usr/share/prometheus/alertmanager"], capture_output=True, check=True).stdout
    drill_lab.exec_input(name, templates, "tar", "-C", "/", "-xf", "-")
    peers = [instance["cluster"] for instance in drill_lab.topology.alertmanagers]
    setup = ("set -e; cd /root/am; printf 'route: {receiver: x}\\nreceivers: [{name: x}]\\n' > am.yml; "
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=other-ca "
             "-keyout ca.key -out ca.crt 2>/dev/null; "
             "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=intruder "
             "-keyout me.key -out me.csr 2>/dev/null; "
             f"printf 'subjectAltName=IP:{address}\\nextendedKeyUsage=serverAuth,clientAuth\\n' > ext; "
             "openssl x509 -req -in me.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 -extfile ext "
             "-out me.crt 2>/dev/null; "
             "printf 'tls_server_config: {cert_file: /root/am/me.crt, key_file: /root/am/me.key, "
             "client_ca_file: /root/am/ca.crt, client_auth_type: RequireAndVerifyClientCert}\\n"
             "tls_client_config: {ca_file: /root/am/ca.crt, cert_file: /root/am/me.crt, key_file: /root/am/me.key}\\n' > tls.yml")
    made = drill_lab.exec_input(name, b"", "sh", "-c", setup)
    attempts = []
    for kind, extra in (("plain", ""), ("another CA", "--cluster.tls-config=/root/am/tls.yml")):
        attempt = len(attempts)
        command = (f"/root/am/alertmanager --config.file=/root/am/am.yml --storage.path=/root/am/data-{attempt} "
                   f"--web.listen-address={address}:{INTRUDER_PORT} --cluster.listen-address={address}:9094 "
                   f"--cluster.advertise-address={address}:9094 {extra} "
                   + " ".join(f"--cluster.peer={peer}" for peer in peers)
                   + f" >/root/am/log-{attempt} 2>&1 & echo $!")
        pid = drill_lab.exec_input(name, b"", "sh", "-c", command).stdout.strip()

        def seen_by_intruder():
            """Peers the intruder's own Alertmanager sees (0 while it does not answer yet)."""
            ran = drill_lab.exec_input(name, b"", "python3", "-c",
                                       "import json,urllib.request;print(len(json.load(urllib.request.urlopen("
                                       f"'http://{address}:{INTRUDER_PORT}/api/v2/status', timeout=3))['cluster']['peers']))")
            return int(ran.stdout.strip()) if ran.returncode == 0 and ran.stdout.strip().isdigit() else 0

        # It serves only after its first join attempt gives up (10 s); then it keeps retrying.
        deadline = time.monotonic() + 90
        while seen_by_intruder() == 0 and time.monotonic() < deadline:
            time.sleep(2)
        time.sleep(15)  # room for further join attempts
        seen = seen_by_intruder()
        listed = any(address in peer.get("address", "") for _, _, a in drill_lab.alertmanagers.values()
                     for peer in drill_lab.alertmanager(a, "/api/v2/status")["cluster"]["peers"])
        drill_lab.exec_input(name, b"", "kill", pid)
        # An attempt counts only when the intruder's own Alertmanager ran (it sees itself).
        attempts.append({"kind": kind, "joined": listed or seen > 1, "ran": made.returncode == 0 and seen >= 1})
    return attempts
