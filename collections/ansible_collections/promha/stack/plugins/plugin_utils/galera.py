"""Read a Galera member's state and decide how the cluster starts.

The mysql role reads every member with one command (tasks/galera.yml) before it
starts or restarts anything: whether MariaDB runs, its ``wsrep_*`` status when it
does, and its ``grastate.dat`` (the position it last committed, and whether it may
bootstrap). These filters turn those reads into one decision, made the same way
on every run, so the role bootstraps only when no member runs in a primary
component and always from the member holding the newest writes.

Filters
-------
``galera_member_state``
    ``read.stdout | galera_member_state`` -> ``{'running': True, 'primary': True,
    'synced': True, 'size': 3, 'uuid': '…', 'seqno': 41, 'safe_to_bootstrap':
    False, 'fresh': False, 'wsrep': True}``. The read prints ``state=running`` or
    ``state=stopped``, then (running) tab-separated ``wsrep_*`` status lines, then
    ``grastate.dat``, then (a stopped member whose seqno is -1) the
    ``--wsrep_start_position=uuid:seqno`` line of ``galera_recovery``. ``fresh``:
    no cluster state at all (no grastate, or the all-zero uuid), a member that has
    never been in a cluster. ``wsrep``: it runs with replication on.
    Example: ``"state=stopped\\nseqno: 12\\nsafe_to_bootstrap: 1\\n" | galera_member_state``
    -> ``{'running': False, 'seqno': 12, 'safe_to_bootstrap': True, ...}``.
``galera_read_states``
    ``reads | galera_read_states`` -> ``{member: galera_member_state or None}`` from
    the registered loop of that read over the members (``item`` names the member):
    ``None`` where the member was unreachable or the read failed.
    Example: ``{'results': [{'item': 'db-1', 'rc': 0, 'stdout': 'state=stopped'},
    {'item': 'db-2', 'unreachable': True}]} | galera_read_states`` -> ``{'db-1':
    {...}, 'db-2': None}``.
``galera_bootstrap_plan``
    ``states | galera_bootstrap_plan(members, bootstrap_from='')`` -> ``{'action':
    'join'|'bootstrap'|'refuse', 'host': <member>, 'reason': <text>}``.
    ``states`` maps every member to its ``galera_member_state`` (``None`` when it
    could not be read). A running primary component: ``join`` (start normally).
    None, and every member fresh: ``bootstrap`` the first member. None, and the
    cluster has state: every member must have been read (a member not read may
    hold the newest writes), then ``bootstrap`` the member with
    ``safe_to_bootstrap``, else the highest seqno, the first in ``members`` on a
    tie. ``bootstrap_from`` names the member to bootstrap from regardless (the
    operator's choice after a loss, when a member is gone for good); it is refused
    while a primary component runs.
    Example: ``{'db-1': {'seqno': 5, ...}, 'db-2': {'seqno': 9, ...}} |
    galera_bootstrap_plan(['db-1', 'db-2'])`` -> ``{'action': 'bootstrap', 'host':
    'db-2', ...}``.
``galera_voters_problems``
    ``members | galera_voters_problems(arbitrators)`` -> one line when the voting
    members (database members and ``garbd`` arbitrators) cannot keep a majority
    after losing one: fewer than three, or an even number. Empty for one member
    (a plain server, not a cluster).
    Example: ``['db-1', 'db-2'] | galera_voters_problems([])`` -> ``['2 voting
    members (db-1, db-2): ...']``.
``galera_setting_problems``
    ``mysql_server_extra_config | galera_setting_problems`` -> one line per server
    setting that breaks a replicated cluster or Grafana's schema on it: a binlog
    format other than ROW, ``innodb_autoinc_lock_mode`` other than 2, an engine
    other than InnoDB, ``innodb_force_primary_key``, ``wsrep_certify_nonPK`` off or
    ``wsrep_mode`` with ``REQUIRED_PRIMARY_KEY`` (Grafana's migrations create
    tables without a primary key before they copy them into keyed ones).
    Example: ``{'innodb_force_primary_key': 1} | galera_setting_problems`` ->
    ``['innodb_force_primary_key: ...']``.

:func:`database_problems` is preflight's check of the database hosts: their votes
and, for a cluster, their server settings.
"""

from __future__ import annotations

from ansible_collections.promha.stack.plugins.plugin_utils.filters import filter_module
from ansible_collections.promha.stack.plugins.plugin_utils.inventory import variable

ZERO_UUID = "00000000-0000-0000-0000-000000000000"


def _flag(value):
    return str(value).strip().lower() in ("1", "on", "true", "yes")


def galera_member_state(output):
    """Return the state of one member from the role's read (see the module doc)."""
    state = {"running": False, "wsrep": False, "primary": False, "synced": False, "size": 0,
             "uuid": "", "seqno": -1, "safe_to_bootstrap": False, "fresh": True}
    status = {}
    grastate = False
    for line in str(output or "").splitlines():
        line = line.strip()
        if line.startswith("state="):
            state["running"] = line == "state=running"
        elif line.startswith("wsrep_") and "\t" in line:
            name, _, value = line.partition("\t")
            status[name.lower()] = value.strip()
        elif line.startswith("uuid:"):
            grastate = True
            state["uuid"] = line.split(":", 1)[1].strip()
        elif line.startswith("seqno:"):
            grastate = True
            state["seqno"] = int(line.split(":", 1)[1].strip() or -1)
        elif line.startswith("safe_to_bootstrap:"):
            state["safe_to_bootstrap"] = _flag(line.split(":", 1)[1])
        elif line.startswith("--wsrep_start_position="):
            uuid, _, seqno = line.split("=", 1)[1].rpartition(":")
            state["uuid"], state["seqno"] = uuid or state["uuid"], int(seqno or -1)
    if status:
        # A server without replication reports wsrep_ready OFF and Disconnected.
        state["wsrep"] = (status.get("wsrep_ready", "").upper() == "ON"
                          or status.get("wsrep_cluster_status", "Disconnected") != "Disconnected")
        state["primary"] = state["running"] and status.get("wsrep_cluster_status", "") == "Primary"
        state["synced"] = state["primary"] and status.get("wsrep_local_state", "") == "4"
        state["size"] = int(status.get("wsrep_cluster_size", "0") or 0)
        if status.get("wsrep_cluster_state_uuid", ZERO_UUID) != ZERO_UUID:
            state["uuid"] = status["wsrep_cluster_state_uuid"]
        if status.get("wsrep_last_committed", "-1") not in ("", "-1"):
            state["seqno"] = int(status["wsrep_last_committed"])
    state["fresh"] = not state["wsrep"] and (not grastate or state["uuid"] in ("", ZERO_UUID))
    return state


def galera_read_states(reads):
    """Return every member's state from the registered loop of reads (see the module doc)."""
    states = {}
    for result in (reads or {}).get("results", []):
        failed = result.get("unreachable") or result.get("skipped") or result.get("rc", 1) != 0
        states[result["item"]] = None if failed else galera_member_state(result.get("stdout", ""))
    return states


def galera_bootstrap_plan(states, members, bootstrap_from=""):
    """Return how the cluster starts: join, bootstrap a member, or refuse (see the module doc)."""
    members = list(members)
    primary = [host for host in members if (states.get(host) or {}).get("primary")]
    if primary:
        if bootstrap_from:
            return {"action": "refuse", "host": bootstrap_from,
                    "reason": f"mysql_galera_bootstrap_from={bootstrap_from}, but {', '.join(primary)} runs in a "
                              "primary component: a second bootstrap would split the cluster; join it instead"}
        return {"action": "join", "host": primary[0], "reason": f"{', '.join(primary)} runs in a primary component"}
    if bootstrap_from:
        if bootstrap_from not in members:
            return {"action": "refuse", "host": bootstrap_from,
                    "reason": f"mysql_galera_bootstrap_from={bootstrap_from} is not a member ({', '.join(members)})"}
        return {"action": "bootstrap", "host": bootstrap_from,
                "reason": f"mysql_galera_bootstrap_from names {bootstrap_from}"}
    unread = [host for host in members if states.get(host) is None]
    known = {host: states[host] for host in members if states.get(host) is not None}
    if known and all(state["fresh"] for state in known.values()) and not unread:
        return {"action": "bootstrap", "host": members[0], "reason": "a new cluster: no member has cluster state"}
    if unread:
        return {"action": "refuse", "host": "",
                "reason": f"no member runs in a primary component and {', '.join(unread)} could not be read: it may "
                          "hold the newest writes; bring it back, or name the member to start from with "
                          "mysql_galera_bootstrap_from (writes only the others hold are then lost)"}
    safe = [host for host in members if known[host]["safe_to_bootstrap"]]
    pool = safe or members
    newest = max(known[host]["seqno"] for host in pool)
    host = next(host for host in pool if known[host]["seqno"] == newest)
    reason = ("it stopped last (safe_to_bootstrap)" if safe else f"it holds the newest writes (seqno {newest})")
    return {"action": "bootstrap", "host": host, "reason": f"the whole cluster was down; {host}: {reason}"}


def galera_voters_problems(members, arbitrators=()):
    """Return why the voting members cannot outlive the loss of one (see the module doc)."""
    members, arbitrators = list(members), list(arbitrators or [])
    voters = members + arbitrators
    if len(members) <= 1 and not arbitrators:
        return []
    named = ", ".join(voters)
    if len(voters) < 3:
        return [f"{len(voters)} voting members ({named}): a cluster needs three or more (database members and "
                "garbd arbitrators, group mysql_arbitrator) to keep a majority when one is lost"]
    if len(voters) % 2 == 0:
        return [f"{len(voters)} voting members ({named}): an even number splits into halves that both stop; add a "
                "member or an arbitrator (group mysql_arbitrator), or remove one"]
    if len(members) < 2:
        return [f"one database member ({', '.join(members)}) with arbitrators: arbitrators hold no data, so losing "
                "the member loses the database; add members"]
    return []


_REQUIRED = {
    "binlog_format": ("ROW", "Galera replicates row events only"),
    "innodb_autoinc_lock_mode": ("2", "interleaved locking, which Galera's parallel applying needs"),
    "default_storage_engine": ("InnoDB", "only InnoDB tables are replicated"),
    "wsrep_certify_nonpk": ("ON", "Grafana creates tables without a primary key during its migrations"),
}
_REFUSED_ON = {
    "innodb_force_primary_key": "Grafana's migrations create tables without a primary key (then copy them into "
                                "keyed ones) and would fail",
}


def galera_setting_problems(settings):
    """Return the extra server settings that break the cluster or Grafana's schema (see the module doc)."""
    problems = []
    for key, value in sorted((settings or {}).items()):
        name = str(key).strip().lower().replace("-", "_")
        text = str(value).strip()
        if name in _REQUIRED:
            wanted, why = _REQUIRED[name]
            if text.upper() != wanted.upper() and not (wanted == "ON" and _flag(text)):
                problems.append(f"{key}: {text} (must be {wanted}: {why})")
        elif name in _REFUSED_ON and _flag(text):
            problems.append(f"{key}: {text} ({_REFUSED_ON[name]})")
        elif name == "wsrep_mode" and "REQUIRED_PRIMARY_KEY" in text.upper():
            problems.append(f"{key}: {text} (REQUIRED_PRIMARY_KEY: {_REFUSED_ON['innodb_force_primary_key']})")
        elif name == "wsrep_on" and not _flag(text):
            problems.append(f"{key}: {text} (replication off: the members would drift apart)")
    return problems


def database_problems(groups, hostvars, model=None):
    """Preflight's check of the database hosts: two or more form a Galera cluster, whose votes
    must keep a majority after one loss and whose settings must suit replication."""
    problems = []
    members = groups.get("mysql", [])
    arbitrators = groups.get("mysql_arbitrator", [])
    problems += [f"groups mysql and mysql_arbitrator: {line}" for line in galera_voters_problems(members, arbitrators)]
    if arbitrators:
        problems.append(f"group mysql_arbitrator ({', '.join(arbitrators)}): the mysql role does not install garbd "
                        "arbitrators yet; make every vote a database member (group mysql)")
    if len(members) < 2:
        return problems
    for host in members:
        settings = variable(hostvars, host, "mysql_server_extra_config", {})
        if isinstance(settings, dict):  # else flags.extra_problems names it
            problems += [f"host {host}: mysql_server_extra_config {line}" for line in galera_setting_problems(settings)]
    return problems


FilterModule = filter_module(
    galera_member_state, galera_read_states, galera_bootstrap_plan, galera_voters_problems,
    galera_setting_problems)
