"""Drill 14: The database cluster: a writer on Grafana's path (the grafana account, TLS, the
stable address) commits rows at 20/s while one member is killed and comes back, then the
address's holder, then the whole cluster is stopped and started through the role: every
acknowledged write is on every member, with the longest write pause per event and each
rejoin time; then backup.yml, every member's container removed and made anew (an empty
cluster), restore.yml: every acknowledged write is on every member again.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from live import wait_for

from drills.common import (
    ROOT,
    enough_hosts,
    failed_run,
    playbook,
    site,
)


def write_log(lines):
    """``({id: time} acknowledged, [(id, time)] failed)`` from the database writer's output."""
    acked, failed = {}, []
    for line in lines.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] in ("ok", "err"):
            row, at = int(parts[1]), float(parts[2])
            if parts[0] == "ok":
                acked[row] = at
            else:
                failed.append((row, at))
    return acked, failed


def longest_pause(acked, start, end):
    """The longest time between acknowledged writes within [start, end] (the edges count as writes)."""
    times = sorted([start] + [at for at in acked.values() if start <= at <= end] + [end])
    return max((b - a for a, b in zip(times, times[1:], strict=False)), default=0.0)


DB_DRILL_DIR = "/root/promha-db-drill"  # in the client container, root-only


def drill_database_cluster(drill_lab, receiver, short):
    members = enough_hosts(drill_lab, "mysql", 3, "the database is not a cluster of three members")
    client = drill_lab.grafanas[0]
    vip = str(drill_lab.topology.setting(members[0], "mysql_virtual_ipaddress")).split("/")[0]
    password = str(drill_lab.topology.setting(members[0], "mysql_grafana_password"))
    # The inventory names the vault variable ("{{ vault_grafana_db_password }}"): its value.
    reference = re.fullmatch(r"\{\{\s*(\w+)\s*\}\}", password)
    if reference:
        password = str(drill_lab.topology.setting(members[0], reference.group(1)))

    def sql(host, query):
        return drill_lab.exec(host, "mariadb", "-N", "-B", "-e", query).stdout.strip()

    def synced(hosts=members):
        return all(sql(h, "SELECT GROUP_CONCAT(VARIABLE_VALUE ORDER BY VARIABLE_NAME) FROM "
                          "information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME IN ('WSREP_CLUSTER_SIZE', "
                          "'WSREP_LOCAL_STATE_COMMENT')") == f"{len(members)},Synced" for h in hosts)

    def holder():
        return next((h for h in members if f"inet {vip}/" in drill_lab.exec(h, "ip", "-4", "addr", "show").stdout), None)

    # The writer and PyMySQL (pure Python, from a member, where the role installed it) on the client.
    drill_lab.exec(client, "mkdir", "-p", DB_DRILL_DIR)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["docker", "cp", f"{drill_lab.container(members[0])}:/usr/lib/python3/dist-packages/pymysql",
                        tmp], capture_output=True, check=True)
        for path in (Path(tmp) / "pymysql", ROOT / "tests" / "helpers" / "db_writer.py",
                     drill_lab.topology.secrets_dir / "web" / "ca.crt"):
            subprocess.run(["docker", "cp", str(path), f"{drill_lab.container(client)}:{DB_DRILL_DIR}/"],
                           capture_output=True, check=True)
    sql(holder() or members[0], "CREATE TABLE IF NOT EXISTS grafana.promha_drill "
                                "(id INT PRIMARY KEY, at DOUBLE) ENGINE=InnoDB; TRUNCATE grafana.promha_drill")
    drill_lab.exec(client, "rm", "-f", f"{DB_DRILL_DIR}/stop")
    writer = subprocess.Popen(["docker", "exec", "-w", DB_DRILL_DIR, drill_lab.container(client), "python3",
                               "db_writer.py", vip, "3306", password, f"{DB_DRILL_DIR}/ca.crt", "20", "1800",
                               f"{DB_DRILL_DIR}/stop"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    events, problems = [], []
    down = 10 if short else 30
    try:
        time.sleep(5)
        # 1 and 2: a member killed, then the one holding the address; each back and rejoined.
        for label, pick in (("a member", lambda: next(h for h in reversed(members) if h != holder())),
                            ("the address's holder", holder)):
            lost = pick()
            began = time.time()
            subprocess.run(["docker", "kill", drill_lab.container(lost)], capture_output=True, check=True)
            time.sleep(down)
            subprocess.run(["docker", "start", drill_lab.container(lost)], capture_output=True, check=True)
            back = time.time()
            wait_for(synced, 600, f"{lost} to rejoin")
            events.append((f"{label} ({lost}) killed {down}s", began, time.time(), time.time() - back))
            time.sleep(5)
        # 3: the whole cluster stopped, started, and brought back by the role.
        began = time.time()
        # One after another, each shut down cleanly: systemd (PID 1) halts on SIGRTMIN+3 and
        # stops MariaDB first (docker stop's SIGTERM it ignores, and kills after the timeout).
        for host in members:
            subprocess.run(["docker", "kill", "--signal=SIGRTMIN+3", drill_lab.container(host)],
                           capture_output=True, check=True)
            subprocess.run(["docker", "wait", drill_lab.container(host)], capture_output=True, check=True, timeout=120)
        for host in members:
            subprocess.run(["docker", "start", drill_lab.container(host)], capture_output=True, check=True)
        for host in members:
            wait_for(lambda h=host: drill_lab.exec(h, "systemctl", "is-active", "ssh").stdout.strip() == "active", 60,
                     f"{host} booted")
        run, _ = playbook("mysql.yml")
        problems += failed_run(run, "playbooks/mysql.yml after the whole cluster stopped")
        wait_for(synced, 600, "every member synced")
        events.append(("the whole cluster stopped and started through the role", began, time.time(), None))
        time.sleep(5)
    finally:
        drill_lab.exec(client, "touch", f"{DB_DRILL_DIR}/stop")
        out, err = writer.communicate(timeout=60)
    acked, failed = write_log(out)
    present = {host: {int(row) for row in sql(host, "SELECT id FROM grafana.promha_drill").split()} for host in members}
    lost_rows = {host: sorted(set(acked) - rows) for host, rows in present.items()}
    pauses = [(label, longest_pause(acked, start, end), rejoin) for label, start, end, rejoin in events]
    figures = (f"{len(acked)} writes acknowledged through {vip} ({len(failed)} attempts failed), lost on "
               + ", ".join(f"{h}: {len(rows)}" for h, rows in lost_rows.items()) + "; "
               + "; ".join(f"{label}: longest write pause {pause:.1f}s"
                           + (f", rejoined {rejoin:.0f}s after its start" if rejoin is not None else "")
                           for label, pause, rejoin in pauses))
    if not acked:
        problems.append(f"no write was acknowledged: {err[-500:]}")
    if any(lost_rows.values()):
        problems.append("acknowledged writes missing: " + ", ".join(f"{h}: {rows[:5]}" for h, rows in lost_rows.items() if rows))
    for label, pause, _ in pauses[:2]:
        if pause > 15:
            problems.append(f"{label}: writes paused {pause:.1f}s")
    if not problems:
        restored, restore_problems = database_restored_onto_fresh_cluster(drill_lab, members, sql, synced, set(acked))
        figures += "; " + restored
        problems += restore_problems
    sql(holder() or members[0], "DROP TABLE IF EXISTS grafana.promha_drill")
    return figures, problems


def database_restored_onto_fresh_cluster(drill_lab, members, sql, synced, acked):
    """Back the database up, remove every member's container, make the hosts anew and
    converge them (a fresh, empty cluster), restore the backup onto it: every write
    acknowledged before the backup must be on every member again."""
    problems = []
    began = time.time()
    run, _ = playbook("backup.yml")
    problems += failed_run(run, "playbooks/backup.yml")
    if problems:
        return "backup failed", problems
    backed_up = time.time() - began
    images = {h: subprocess.run(["docker", "inspect", "-f", "{{.Config.Image}}", drill_lab.container(h)],
                                capture_output=True, text=True, check=True).stdout.strip() for h in members}
    for host in members:
        subprocess.run(["docker", "rm", "-f", drill_lab.container(host)], capture_output=True, check=True)
    began = time.time()
    for image in sorted(set(images.values())):
        hosts = [arg for h in members if images[h] == image for arg in ("--host", h)]
        subprocess.run([sys.executable, str(ROOT / "scripts" / "lab.py"), "up", "--image", image, *hosts],
                       capture_output=True, check=True)
    converge, _ = site()
    problems += failed_run(converge, "site.yml on the database hosts made anew")
    fresh = sql(members[0], "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'grafana' "
                            "AND TABLE_NAME = 'promha_drill'")
    if fresh != "0":
        problems.append(f"the cluster made anew already holds grafana.promha_drill ({fresh})")
    made = time.time() - began
    began = time.time()
    run, _ = playbook("restore.yml", "-e", "restore_database=true")
    problems += failed_run(run, "playbooks/restore.yml -e restore_database=true")
    wait_for(synced, 600, "every member synced after the restore")
    took = time.time() - began
    present = {host: {int(row) for row in sql(host, "SELECT id FROM grafana.promha_drill").split()} for host in members}
    missing = {host: sorted(acked - rows) for host, rows in present.items()}
    if any(missing.values()):
        problems.append("acknowledged writes missing after the restore: "
                        + ", ".join(f"{h}: {rows[:5]}" for h, rows in missing.items() if rows))
    return (f"backup.yml {backed_up:.0f}s; every member's container removed, made anew and converged in {made:.0f}s "
            f"(an empty cluster); restore.yml {took:.0f}s: of {len(acked)} acknowledged writes missing on "
            + ", ".join(f"{h}: {len(rows)}" for h, rows in missing.items())), problems
