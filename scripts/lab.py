#!/usr/bin/env python3
"""Start, stop and describe the lab hosts: systemd containers on this machine.

The host list is the ordinary inventory in inventories/lab (read with
`ansible-inventory`), so the lab is exactly what the playbooks see. Each host
becomes a container of the locally built base image (scripts/base-image.sh) on a
project-owned Docker network, at its `stack_address`, running systemd as PID 1.

    lab.py up --image IMAGE [--odd-image IMAGE2]
                                create the network and any missing container, wait for systemd;
                                with --odd-image every second host in name order (one member
                                of each lab pair) runs IMAGE2: a lab of two Debian releases
                                (the database cluster's members all on its first member's);
                                --host NAME: only that host (a replaced host, made anew)
    lab.py down                 remove every container and the network this script made
    lab.py summary              a table of every host, its services and their health
"""

from __future__ import annotations

import argparse
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "helpers"))
sys.path.insert(0, str(ROOT / "collections"))
import topology  # noqa: E402
from ansible_collections.promha.stack.plugins.plugin_utils import access as access_rule  # noqa: E402

LABEL = "io.promha.lab"
# systemd as PID 1 without --privileged (which fails on these machines).
SYSTEMD_FLAGS = [
    "--cap-add", "SYS_ADMIN",
    "--security-opt", "seccomp=unconfined",
    "--security-opt", "apparmor=unconfined",
    "--cgroupns=host",
    "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
    "--tmpfs", "/run", "--tmpfs", "/run/lock",
]
# A database member binds the cluster's stable address before it holds it (the mysql
# role sets this sysctl on a real host; a container's /proc/sys is read-only).
SYSCTLS = {"net.ipv4.ip_nonlocal_bind": "1"}
# Every host changes its own network: the host firewall (roles/firewall, nftables),
# keepalived's floating address, the partition drill's routes between Alertmanager hosts.
NET_ADMIN = True

# What the summary probes: group -> (service, port variable, path), for the tiers
# site.yml builds; the port is the host's setting or the role default (topology.py).
# A path of None means a TCP connect (MariaDB speaks no HTTP). Alertmanager
# instances come from alertmanager_instances.
SERVICES = {
    "all": [("node_exporter", "node_exporter_port", "/metrics")],
    "prometheus": [("prometheus", "prometheus_port", "/-/ready")],
    "prometheus_global": [("prometheus (global)", "prometheus_port", "/-/ready")],
    "remote_storage": [("victoria-metrics", "remote_storage_port", "/health")],
    "mysql": [("mariadb", "mysql_port", None), ("mysqld_exporter", "mysql_exporter_port", "/metrics")],
    "grafana": [("grafana", "grafana_http_port", "/api/health")],
    "loadbalancer": [("nginx -> prometheus shard 0", "nginx_listen_port", "/prometheus/shard-0/-/ready")],
}
# Written by the grafana role when no Grafana package could be had (lab inventory).
GRAFANA_REPORT = ROOT / ".lab" / "grafana-unavailable.txt"


def run(cmd, check=True, capture=True):
    result = subprocess.run(cmd, capture_output=capture, text=True)
    if check and result.returncode != 0:
        sys.exit(f"lab: {' '.join(cmd)} failed: {result.stderr.strip()}")
    return result


def inventory(path):
    """``(lab settings, {host: {address, container, groups, vars}})`` of the lab inventory."""
    try:
        groups, hostvars = topology.read_inventory(path)
    except topology.TopologyError as error:
        sys.exit(f"lab: {error}")
    shared = next(iter(hostvars.values()), {})
    settings = {key: shared.get(key) for key in ("lab_container_prefix", "lab_network_name", "lab_network_subnet")}
    missing = [key for key, value in settings.items() if not value]
    if missing:
        sys.exit(f"lab: inventory {path} does not set {', '.join(missing)} (group_vars/all)")
    hosts = {}
    for host in groups["all"]:
        address = hostvars.get(host, {}).get("stack_address")
        if not address:
            sys.exit(f"lab: host {host} in {path} has no stack_address; every lab host needs a fixed IP")
        hosts[host] = {
            "address": address,
            "container": f"{settings['lab_container_prefix']}{host}",
            "groups": sorted(g for g, members in groups.items() if host in members and g not in ("all", "ungrouped")),
            "vars": hostvars.get(host, {}),
        }
    return settings, hosts


def ssh_key():
    """The lab's own SSH key pair under .lab/ssh/, made on first use."""
    key = ROOT / ".lab" / "ssh" / "id_ed25519"
    if not key.exists():
        key.parent.mkdir(parents=True, exist_ok=True)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "promha-lab", "-f", str(key)])
    return key


def backup_password():
    """The password that encrypts the lab's secrets backups, .lab/backup-vault-password, made on first use
    (inventories/lab: stack_backup_vault_password_file)."""
    path = ROOT / ".lab" / "backup-vault-password"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(32) + "\n")
    return path


def container_state(name):
    result = run(["docker", "inspect", "-f", "{{.State.Status}}", name], check=False)
    return result.stdout.strip() if result.returncode == 0 else None


def container_origin(name):
    """(image, source of /root/.ssh/authorized_keys, NET_ADMIN added, the lab's sysctls set) of an
    existing container."""
    result = run(["docker", "inspect", "-f",
                  '{{.Config.Image}}|{{range .Mounts}}{{if eq .Destination "/root/.ssh/authorized_keys"}}'
                  '{{.Source}}{{end}}{{end}}|{{join .HostConfig.CapAdd ","}}|'
                  '{{range $k, $v := .HostConfig.Sysctls}}{{$k}}={{$v}},{{end}}', name], check=False)
    image, key, caps, sysctls = (result.stdout.strip().split("|") + ["", "", ""])[:4]
    return image, key, "NET_ADMIN" in normalised_caps(caps), sysctls_set(sysctls)


def sysctls_set(reported):
    """Whether the ``key=value,`` list ``docker inspect`` printed holds every one of SYSCTLS."""
    have = dict(item.split("=", 1) for item in reported.split(",") if "=" in item)
    return all(have.get(key) == value for key, value in SYSCTLS.items())


def normalised_caps(caps):
    """Added capabilities without the ``CAP_`` prefix: Docker 20.10 (Debian 12's engine) reports
    ``CAP_NET_ADMIN`` for a container started with ``--cap-add NET_ADMIN``, newer engines ``NET_ADMIN``."""
    return {cap.strip().upper().removeprefix("CAP_") for cap in caps.split(",") if cap.strip()}


# inotify instances each systemd container uses (systemd, journald, udev, logind, the daemons):
# with the kernel's default of 128 per user, the ~20th container's systemd exits 255 silently.
INOTIFY_SYSCTL = Path("/proc/sys/fs/inotify/max_user_instances")
INOTIFY_PER_CONTAINER = 32


def ensure_inotify(containers, path=INOTIFY_SYSCTL):
    """Raise fs.inotify.max_user_instances to what ``containers`` systemd containers need, or stop
    with one sentence saying how; returns the limit in force."""
    needed = max(1024, containers * INOTIFY_PER_CONTAINER)
    try:
        current = int(path.read_text().strip())
    except (OSError, ValueError):
        return None  # not Linux, or not readable: nothing to check
    if current >= needed:
        return current
    try:
        path.write_text(f"{needed}\n")
    except OSError:
        sys.exit(f"lab: fs.inotify.max_user_instances is {current}, and {containers} systemd containers need "
                 f"about {needed}; raise it as root with `sysctl -w fs.inotify.max_user_instances={needed}` "
                 "and run this again")
    print(f"lab: fs.inotify.max_user_instances raised from {current} to {needed} for {containers} containers")
    return needed


def host_images(hosts, image, odd_image=None):
    """``{host: image}``: with ``odd_image``, every second host in name order on it (one member of
    each pair), except that a database cluster's members all take its first member's image:
    Galera members run one MariaDB release (a rolling upgrade goes one major release at a time,
    and Debian 12's 10.11 and Debian 13's 11.8 are two apart)."""
    images = {host: odd_image if odd_image and position % 2 else image for position, host in enumerate(hosts)}
    members = [host for host in hosts if "mysql" in hosts[host]["groups"]]
    for host in members:
        images[host] = images[members[0]]
    return images


def up(args):
    settings, hosts = inventory(args.inventory)
    network = settings["lab_network_name"]
    public_key = f"{ssh_key()}.pub"
    backup_password()
    started = time.monotonic()
    running = len(run(["docker", "ps", "-q"]).stdout.split())
    ensure_inotify(running + len([host for host in hosts if not args.host or host in args.host]))
    if run(["docker", "network", "inspect", network], check=False).returncode != 0:
        run(["docker", "network", "create", "--subnet", settings["lab_network_subnet"],
             "--label", f"{LABEL}={network}", network])
        print(f"lab: network {network} {settings['lab_network_subnet']} created")
    images = host_images(hosts, args.image, args.odd_image)
    for host, info in hosts.items():
        if args.host and host not in args.host:
            continue
        state = container_state(info["container"])
        net_admin = NET_ADMIN
        image = images[host]
        if state is not None and container_origin(info["container"]) != (image, public_key, net_admin, True):
            # Made by another checkout (its key), from another image or with other
            # capabilities: the container is made anew.
            print(f"lab: {info['container']} was made by another checkout, from another image or with other "
                  "capabilities; recreating it")
            run(["docker", "rm", "-f", info["container"]])
            state = None
        if state == "running":
            continue
        if state is not None:
            run(["docker", "start", info["container"]])
            continue
        caps = ["--cap-add", "NET_ADMIN"] if net_admin else []
        run(["docker", "run", "-d", "--name", info["container"], "--hostname", host,
             "--label", f"{LABEL}={network}", "--network", network, "--ip", info["address"],
             "-v", f"{public_key}:/root/.ssh/authorized_keys:ro",
             *SYSTEMD_FLAGS, *caps, *[f"--sysctl={key}={value}" for key, value in SYSCTLS.items()],
             image, "/lib/systemd/systemd"])
    pending = set(args.host or hosts)
    deadline = time.monotonic() + args.timeout
    while pending and time.monotonic() < deadline:
        for host in sorted(pending):
            result = run(["docker", "exec", hosts[host]["container"], "systemctl", "is-system-running"], check=False)
            sshd = run(["docker", "exec", hosts[host]["container"], "systemctl", "is-active", "ssh"], check=False)
            if result.stdout.strip() in ("running", "degraded") and sshd.stdout.strip() == "active":
                pending.discard(host)
        if pending:
            time.sleep(0.5)
    if pending:
        sys.exit(f"lab: systemd and sshd did not come up within {args.timeout}s on: {', '.join(sorted(pending))}")
    print(f"lab: {len(hosts)} hosts up with systemd and sshd running in {time.monotonic() - started:.1f}s")


def down(args):
    settings, _ = inventory(args.inventory)
    network = settings["lab_network_name"]
    names = run(["docker", "ps", "-aq", "--filter", f"label={LABEL}={network}"]).stdout.split()
    if names:
        run(["docker", "rm", "-f", "-v", *names])
    if run(["docker", "network", "inspect", network], check=False).returncode == 0:
        run(["docker", "network", "rm", network])
    print(f"lab: removed {len(names)} containers and network {network}")


def vip_holder(hosts, vip):
    """The running balancer that has `vip` on an interface, or None."""
    holders = [host for host, info in hosts.items() if "loadbalancer" in info["groups"]
               and container_state(info["container"]) == "running"
               and f" {vip}/" in run(["docker", "exec", info["container"], "ip", "-o", "-4", "addr"],
                                     check=False).stdout]
    return holders[0] if len(holders) == 1 else None


def probe(url, topo=None, tier=None, container=None):
    """HTTP status of ``url`` (with ``tier``'s CA and credentials), or for ``tcp://host:port``
    whether a connection opens ('open'): from inside ``container`` when given (a port the
    host firewall opens only to other tiers, such as MySQL to Grafana)."""
    if url.startswith("tcp://"):
        host, port = url[len("tcp://"):].rsplit(":", 1)
        if container:
            done = run(["docker", "exec", container, "timeout", "3", "bash", "-c", f": </dev/tcp/{host}/{port}"],
                       check=False)
            return "open" if done.returncode == 0 else f"DOWN (exit {done.returncode} {done.stderr.strip()[:80]})"
        try:
            with socket.create_connection((host, int(port)), timeout=2):
                return "open"
        except OSError as error:
            return f"DOWN ({error})"
    try:
        if topo and tier:
            topo.fetch(tier, url, timeout=2)
            return "200"
        with urllib.request.urlopen(url, timeout=2) as response:
            return f"{response.status}"
    except OSError as error:
        return f"DOWN ({getattr(error, 'reason', error)})"


def port_var_is_direct(name):
    """Services reached on their own port and scheme (the front: topology.front_url)."""
    return not name.startswith("nginx")


def healthy(result):
    return result.isdigit() or result == "open"


def summary(args):
    _, hosts = inventory(args.inventory)
    topo = topology.Topology(args.inventory)
    instances = {}
    for instance in topo.alertmanagers:
        instances.setdefault(instance["host"], []).append(instance)
    rows = []
    for host, info in hosts.items():
        state = container_state(info["container"]) or "absent"
        systemd, label = "-", host
        if state == "running":
            systemd = run(["docker", "exec", info["container"], "systemctl", "is-system-running"],
                          check=False).stdout.strip()
            release = run(["docker", "exec", info["container"], "cat", "/etc/debian_version"], check=False)
            label = f"{host} (debian {release.stdout.strip() or '?'})"
        services = []
        for group in ["all", *info["groups"]]:
            services += SERVICES.get(group, [])
        # The tier whose CA and credentials a probe uses; the front passes them through.
        services = [(name, topo.setting(host, port_var), path,
                     "prometheus" if port_var == "nginx_listen_port" else access_rule.port_tier(port_var))
                    for name, port_var, path in services]
        for instance in instances.get(host, []):
            services.append((f"alertmanager {instance['name']}", instance["web_port"], "/-/ready", "alertmanager"))
        for name, port, path, tier in services:
            if name == "grafana" and GRAFANA_REPORT.exists() \
                    and f" on {host} because " in GRAFANA_REPORT.read_text():
                rows.append((label, state, systemd, name, "-", "skipped (see below)"))
                continue
            scheme = topo.access(tier)["scheme"] if tier and port_var_is_direct(name) else "http"
            url = f"tcp://{info['address']}:{port}" if path is None else f"{scheme}://{info['address']}:{port}{path}"
            if not port_var_is_direct(name):
                url = topo.front_url(path, host=host)  # https on nginx_tls_port unless the front is plain
            # A bare TCP service (MariaDB) answers only its callers: checked from its own host.
            inside = info["container"] if path is None else None
            rows.append((label, state, systemd, name, url + (" (from the host)" if inside else ""),
                         probe(url, topo, tier, inside) if state == "running" else "-"))
    vips = sorted({str(info["vars"].get("keepalived_virtual_ipaddress", "")).split("/")[0]
                   for info in hosts.values() if "loadbalancer" in info["groups"]} - {""})
    for vip in vips:
        holder = vip_holder(hosts, vip) or "nobody"
        url = topo.front_url("/prometheus/shard-0/-/ready")
        rows.append((f"VIP {vip}", "-", "-", f"floating address (on {holder})", url, probe(url, topo, "prometheus")))
    widths = [max(len(str(row[i])) for row in rows + [("host", "container", "systemd", "service", "url", "health")])
              for i in range(6)]
    header = ("host", "container", "systemd", "service", "url", "health")
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)))
    if GRAFANA_REPORT.exists():
        print(f"\nGrafana was skipped ({GRAFANA_REPORT.relative_to(ROOT)}):")
        print(GRAFANA_REPORT.read_text().rstrip())
    if args.strict and any(not healthy(row[5]) and not row[5].startswith("skipped") for row in rows):
        sys.exit(1)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inventory", default=ROOT / "inventories" / "lab")
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up")
    p_up.add_argument("--image", required=True)
    p_up.add_argument("--odd-image", help="the image of every second host (a mixed-release lab)")
    p_up.add_argument("--host", action="append", help="only this host (repeatable): e.g. a host made anew")
    p_up.add_argument("--timeout", type=int, default=90)
    p_up.set_defaults(func=up)
    sub.add_parser("down").set_defaults(func=down)
    p_sum = sub.add_parser("summary")
    p_sum.add_argument("--strict", action="store_true", help="exit 1 when any service is down")
    p_sum.set_defaults(func=summary)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
