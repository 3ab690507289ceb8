"""scripts/drills: how two storage nodes' sample counts and releases are compared, durations read,
writes and notifications counted."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
from drills import common, d11_storage_refill, d14_database_cluster, d16_duplicate_window  # noqa: E402


def test_equal_counts_agree():
    counts = common.count_difference({"a": 80.0, "b": 5.0}, {"a": 80.0, "b": 5.0})
    assert counts == {"compared": 2, "differing": 0, "edge": 0, "largest": 0.0, "alone": 0, "examples": []}


def test_a_series_two_samples_and_over_one_percent_apart_differs():
    counts = common.count_difference({"a": 100.0, "b": 80.0}, {"a": 97.0, "b": 80.0})
    assert counts["differing"] == 1 and counts["largest"] == 3.0


def test_one_sample_apart_is_counted_as_an_edge_not_a_difference():
    counts = common.count_difference({"alert": 6.0, "a": 1000.0}, {"alert": 5.0, "a": 999.0})
    assert counts["differing"] == 0 and counts["edge"] == 1
    assert round(counts["largest"], 2) == 16.67


def test_a_series_on_one_node_only_is_counted():
    counts = common.count_difference({"a": 1.0, "b": 2.0}, {"a": 1.0})
    assert counts["alone"] == 1 and counts["examples"] == ["b 2/0"]


def test_a_series_with_one_sample_on_one_node_only_is_an_edge():
    counts = common.count_difference({"a": 10.0, "new": 1.0}, {"a": 10.0, "gone": 1.0})
    assert (counts["alone"], counts["edge"], counts["examples"]) == (0, 2, [])


def test_a_debian_version_becomes_a_comparable_release():
    assert d11_storage_refill.release_tuple("1.112.0+ds1-1") == (1, 112, 0)
    assert d11_storage_refill.release_tuple("1:1.79.5+ds1-2+b5") == (1, 79, 5)
    assert d11_storage_refill.release_tuple("1.112.0+ds1-1") > d11_storage_refill.release_tuple("1.79.5+ds1-2+b5")


def test_no_package_is_an_unknown_release():
    assert d11_storage_refill.release_tuple("") == ()


def test_the_writers_log_gives_acknowledged_and_failed_writes():
    log = "ok 1 100.000\nok 2 100.050\nerr 3 100.100 OperationalError\nnoise\nok 4 103.2\n"
    acked, failed = d14_database_cluster.write_log(log)
    assert acked == {1: 100.0, 2: 100.05, 4: 103.2} and failed == [(3, 100.1)]


def test_the_longest_pause_counts_the_window_edges():
    acked = {1: 100.0, 2: 100.05, 4: 103.2, 5: 110.0}
    assert round(d14_database_cluster.longest_pause(acked, 99.0, 105.0), 2) == 3.15
    assert d14_database_cluster.longest_pause(acked, 104.0, 105.0) == 1.0
    assert d14_database_cluster.longest_pause({}, 0.0, 4.0) == 4.0


def test_durations_read_as_the_drills_need():
    assert common.seconds("1m") == 60
    assert common.seconds("1m30s") == 90
    assert common.seconds("500ms") == 0.5
    assert common.seconds("2h") == 7200


def test_each_group_notified_once_has_no_duplicate_and_none_missing():
    once = [{"group_key": f"g{i}"} for i in range(5)]
    assert d16_duplicate_window.delivery_counts(once, 5) == {"duplicates": 0, "missing": 0}


def test_a_group_notified_twice_is_a_duplicate_and_one_never_notified_is_missing():
    notified = [{"group_key": "g0"}, {"group_key": "g0"}, {"group_key": "g1"}, {"group_key": "g1"},
                {"group_key": "g1"}, {"group_key": "g2"}]
    assert d16_duplicate_window.delivery_counts(notified, 4) == {"duplicates": 3, "missing": 1}
    assert d16_duplicate_window.delivery_counts([], 3) == {"duplicates": 0, "missing": 3}


def test_a_drill_whose_lab_lacks_the_hosts_it_takes_away_is_not_checked():
    class Lab:
        class topology:  # noqa: N801
            @staticmethod
            def hosts(group):
                return {"mysql": ["db1", "db2"]}.get(group, [])

    assert common.enough_hosts(Lab, "mysql", 2, "unused") == ["db1", "db2"]
    with pytest.raises(common.NotChecked, match="^the database is not a cluster of three members$"):
        d14_database_cluster.drill_database_cluster(Lab, None, short=True)
    with pytest.raises(common.NotChecked, match="^no backup host in the inventory$"):
        common.enough_hosts(Lab, "backup", 1, "no backup host in the inventory")
