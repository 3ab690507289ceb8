"""Drill 13: Backup, destroy, restore: playbooks/backup.yml, then a storage node destroyed and
restored from its backup by playbooks/restore.yml (sample counts up to the backup match its
peer's within 1 %), then the secrets directory moved away, restored into an empty place
(identical files), and site.yml converging with nothing changed.
"""

from __future__ import annotations

import shutil
import time

from drills import common


def drill_backup_restore(drill_lab, receiver, short):
    common.enough_hosts(drill_lab, "backup", 1, "no backup host in the inventory")
    nodes = drill_lab.topology.hosts("remote_storage")
    host, peer = nodes[-1], nodes[0]
    since = common.first_sample(drill_lab, host)
    backup, _ = common.playbook("backup.yml")
    taken = time.time()
    problems = common.failed_run(backup, "backup.yml")
    if problems:
        return "backup.yml failed", problems
    # The storage node: destroyed, made anew, filled from its own backup.
    common.remake(drill_lab, host)
    restore, _ = common.playbook("restore.yml", "-e", f"storage_refill_host={host}")
    problems += common.failed_run(restore, "restore.yml (storage)")
    # Counts up to the backup's time: the restored node's against its peer's.
    mine, theirs = (common.sample_counts(drill_lab, node, since, taken - 60) for node in (host, peer))
    counts = common.count_difference(mine, theirs)
    # The secrets: a fresh checkout has none; restored, they converge with nothing changed.
    secrets = drill_lab.topology.secrets_dir
    before = {p.relative_to(secrets): p.read_bytes() for p in secrets.rglob("*") if p.is_file()}
    aside = secrets.with_name(secrets.name + ".drill-aside")
    secrets.rename(aside)
    try:
        restored, _ = common.playbook("restore.yml", "-e", "restore_secrets=true")
        after = {p.relative_to(secrets): p.read_bytes() for p in secrets.rglob("*") if p.is_file()}
        converge, changed = common.site()
    except BaseException:
        if not secrets.exists():
            aside.rename(secrets)
        raise
    same = after == before
    figures = (f"backup.yml rc {backup.returncode}; {host} destroyed and restored from its backup (restore.yml rc "
               f"{restore.returncode}), up to the backup against {peer}: {common.agreement(counts)}; "
               "the secrets directory restored "
               f"into an empty place ({len(after)} files, {'identical' if same else 'DIFFERENT'}), then site.yml rc "
               f"{converge.returncode} changed={sum(changed.values())}")
    problems += common.failed_run(restored, "restore.yml (secrets)") + common.failed_run(converge, "site.yml after the restore")
    if counts["differing"] or not counts["compared"]:
        problems.append(f"after the restore {host} and {peer} differ: {common.agreement(counts)}")
    if not same:
        problems.append(f"the restored secrets differ: {sorted(set(before) ^ set(after))[:5]}")
        secrets.rename(secrets.with_name(secrets.name + ".restored"))
        aside.rename(secrets)
    else:
        shutil.rmtree(aside)
    if sum(changed.values()):
        problems.append(f"site.yml after the secrets restore changed {changed}")
    return figures, problems
