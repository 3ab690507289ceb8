"""Unit tests for plugins/filter/galera.py."""

from ansible_collections.promha.stack.plugins.plugin_utils.galera import (
    FilterModule,
    galera_bootstrap_plan,
    galera_member_state,
    galera_read_states,
    galera_setting_problems,
    galera_voters_problems,
)

UUID = "6c5f9a1e-8f35-11ef-9a3b-2b7a0c1d2e3f"
MEMBERS = ["db-1", "db-2", "db-3"]

RUNNING_SYNCED = (
    "unit=active\nstate=running\n"
    "wsrep_cluster_size\t3\nwsrep_cluster_state_uuid\t" + UUID + "\n"
    "wsrep_cluster_status\tPrimary\nwsrep_last_committed\t57\nwsrep_local_state\t4\nwsrep_ready\tON\n"
    "# GALERA saved state\nversion: 2.1\nuuid:    " + UUID + "\nseqno:   -1\nsafe_to_bootstrap: 0\n"
)


def stopped(seqno, safe=0, uuid=UUID):
    return (f"unit=inactive\nstate=stopped\n# GALERA saved state\nversion: 2.1\nuuid:    {uuid}\n"
            f"seqno:   {seqno}\nsafe_to_bootstrap: {safe}\n")


def test_a_synced_member_is_primary_with_its_last_committed_position():
    state = galera_member_state(RUNNING_SYNCED)
    assert state["running"] and state["wsrep"] and state["primary"] and state["synced"]
    assert (state["size"], state["seqno"], state["uuid"], state["fresh"]) == (3, 57, UUID, False)


def test_a_member_outside_a_primary_component_is_neither_primary_nor_synced():
    state = galera_member_state(RUNNING_SYNCED.replace("Primary", "non-Primary").replace("local_state\t4", "local_state\t0"))
    assert state["running"] and state["wsrep"] and not state["primary"] and not state["synced"]
    assert state["seqno"] == 57


def test_a_joiner_not_yet_synced_is_primary_but_not_synced():
    state = galera_member_state(RUNNING_SYNCED.replace("wsrep_local_state\t4", "wsrep_local_state\t1"))
    assert state["primary"] and not state["synced"]


def test_a_stopped_member_reads_its_grastate():
    state = galera_member_state(stopped(41, safe=1))
    assert not state["running"] and not state["primary"]
    assert (state["seqno"], state["safe_to_bootstrap"], state["fresh"]) == (41, True, False)


def test_a_crashed_member_takes_the_recovered_position():
    state = galera_member_state(stopped(-1) + f"--wsrep_start_position={UUID}:73\n")
    assert state["seqno"] == 73 and state["uuid"] == UUID


def test_a_server_never_in_a_cluster_is_fresh_even_while_it_runs_standalone():
    assert galera_member_state("state=stopped\n")["fresh"]
    assert galera_member_state("state=running\n")["fresh"]
    standalone = galera_member_state("state=running\nwsrep_cluster_status\tDisconnected\nwsrep_ready\tOFF\n")
    assert standalone["fresh"] and not standalone["wsrep"] and not standalone["primary"]
    assert galera_member_state(stopped(-1, uuid="00000000-0000-0000-0000-000000000000"))["fresh"]


def test_a_running_primary_component_is_joined_never_bootstrapped():
    states = {"db-1": galera_member_state(RUNNING_SYNCED), "db-2": galera_member_state(stopped(50)), "db-3": None}
    plan = galera_bootstrap_plan(states, MEMBERS)
    assert plan["action"] == "join" and plan["host"] == "db-1"


def test_a_new_cluster_bootstraps_its_first_member_only():
    states = {host: galera_member_state("state=stopped\n") for host in MEMBERS}
    assert galera_bootstrap_plan(states, MEMBERS)["host"] == "db-1"
    assert galera_bootstrap_plan(states, ["db-3", "db-1", "db-2"])["host"] == "db-3"


def test_after_a_full_stop_the_member_that_stopped_last_bootstraps():
    states = {"db-1": galera_member_state(stopped(60)), "db-2": galera_member_state(stopped(61)),
              "db-3": galera_member_state(stopped(61, safe=1))}
    plan = galera_bootstrap_plan(states, MEMBERS)
    assert (plan["action"], plan["host"]) == ("bootstrap", "db-3")


def test_after_a_crash_of_all_the_highest_seqno_bootstraps_first_in_order_on_a_tie():
    recovered = stopped(-1) + f"--wsrep_start_position={UUID}:64\n"
    states = {"db-1": galera_member_state(stopped(60)), "db-2": galera_member_state(recovered),
              "db-3": galera_member_state(stopped(64))}
    assert galera_bootstrap_plan(states, MEMBERS)["host"] == "db-2"


def test_a_member_not_read_stops_a_bootstrap_of_a_cluster_with_state():
    states = {"db-1": galera_member_state(stopped(60, safe=1)), "db-2": galera_member_state(stopped(61)), "db-3": None}
    plan = galera_bootstrap_plan(states, MEMBERS)
    assert plan["action"] == "refuse" and "db-3" in plan["reason"]


def test_a_new_cluster_with_a_member_not_read_is_refused_too():
    states = {"db-1": galera_member_state("state=stopped\n"), "db-2": None, "db-3": galera_member_state("state=stopped\n")}
    assert galera_bootstrap_plan(states, MEMBERS)["action"] == "refuse"


def test_the_operator_may_name_the_member_to_start_from_unless_a_component_runs():
    states = {"db-1": galera_member_state(stopped(60)), "db-2": None, "db-3": galera_member_state(stopped(12))}
    assert galera_bootstrap_plan(states, MEMBERS, "db-3") == {
        "action": "bootstrap", "host": "db-3", "reason": "mysql_galera_bootstrap_from names db-3"}
    assert galera_bootstrap_plan(states, MEMBERS, "db-9")["action"] == "refuse"
    states["db-2"] = galera_member_state(RUNNING_SYNCED)
    assert galera_bootstrap_plan(states, MEMBERS, "db-3")["action"] == "refuse"


def test_reads_of_unreachable_or_failed_members_are_unknown():
    reads = {"results": [{"item": "db-1", "rc": 0, "stdout": RUNNING_SYNCED},
                         {"item": "db-2", "unreachable": True, "msg": "ssh: connect refused"},
                         {"item": "db-3", "rc": 2, "stdout": ""}]}
    states = galera_read_states(reads)
    assert states["db-1"]["synced"] and states["db-2"] is None and states["db-3"] is None


def test_voters_three_or_more_and_odd():
    assert galera_voters_problems(["db-1"]) == []
    assert galera_voters_problems(MEMBERS) == []
    assert galera_voters_problems(["db-1", "db-2"], ["arb-1"]) == []
    two = galera_voters_problems(["db-1", "db-2"])
    assert len(two) == 1 and "db-1, db-2" in two[0] and "three" in two[0]
    four = galera_voters_problems(MEMBERS + ["db-4"])
    assert len(four) == 1 and "even" in four[0] and "db-4" in four[0]
    assert "arbitrators hold no data" in galera_voters_problems(["db-1"], ["arb-1", "arb-2"])[0]


def test_settings_that_break_the_cluster_or_grafana_are_named():
    problems = galera_setting_problems({"innodb_force_primary_key": 1, "binlog_format": "MIXED",
                                        "innodb-autoinc-lock-mode": 1, "wsrep_mode": "STRICT_REPLICATION,REQUIRED_PRIMARY_KEY",
                                        "wsrep_certify_nonPK": "OFF", "wsrep_on": "OFF", "max_allowed_packet": "64M"})
    assert [problem.split(":")[0] for problem in problems] == [
        "binlog_format", "innodb-autoinc-lock-mode", "innodb_force_primary_key", "wsrep_certify_nonPK", "wsrep_mode",
        "wsrep_on"]


def test_the_settings_a_cluster_needs_pass():
    assert galera_setting_problems({"binlog_format": "row", "innodb_autoinc_lock_mode": 2, "wsrep_certify_nonPK": 1,
                                    "innodb_force_primary_key": 0, "default_storage_engine": "InnoDB"}) == []
    assert galera_setting_problems({}) == []


def test_filters_are_registered():
    assert set(FilterModule().filters()) == {"galera_member_state", "galera_read_states", "galera_bootstrap_plan",
                                             "galera_voters_problems", "galera_setting_problems"}
