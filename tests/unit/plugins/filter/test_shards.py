"""Unit and property tests for plugins/filter/shards.py."""

import json
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.promha.stack.plugins.plugin_utils.shards import (
    FilterModule,
    deployed_shard_targets,
    hashmod_relabel_configs,
    prometheus_hashmod,
    shard_load,
    shard_moves,
    shard_targets,
    target_file_specs,
)
from hypothesis import given, settings
from hypothesis import strategies as st

VECTORS = Path(__file__).resolve().parents[2] / "data" / "hashmod_vectors.json"

targets_st = st.lists(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789.-:", min_size=1, max_size=24).filter(str.strip),
    min_size=0, max_size=60,
)


def pairs(assignment):
    return {(target, shard) for shard, targets in assignment.items() for target in targets}


# --- prometheus_hashmod -----------------------------------------------------------

def test_hashmod_matches_vectors_read_from_a_live_prometheus():
    data = json.loads(VECTORS.read_text())
    assert data["source"].startswith("prometheus"), "vectors must come from a real Prometheus"
    assert len(data["vectors"]) >= 300
    wrong = [v for v in data["vectors"]
             if prometheus_hashmod(v["address"], v["modulus"]) != v["shard"]]
    assert wrong == []


def test_hashmod_known_value_from_md5_tail():
    # md5("") = d41d8cd98f00b204 e9800998ecf8427e; tail as big-endian uint64:
    assert prometheus_hashmod("", 2**63) == 0xE9800998ECF8427E % 2**63
    assert prometheus_hashmod("", 7) == 0xE9800998ECF8427E % 7


@pytest.mark.parametrize("modulus", [0, -1, "3", True, None])
def test_hashmod_refuses_bad_modulus(modulus):
    with pytest.raises(AnsibleFilterError, match=r"^prometheus_hashmod: modulus"):
        prometheus_hashmod("a:1", modulus)


def test_hashmod_refuses_non_string():
    with pytest.raises(AnsibleFilterError, match=r"^prometheus_hashmod: value must be a string"):
        prometheus_hashmod(42, 2)


# --- hashmod_relabel_configs ------------------------------------------------------

def test_relabel_configs_with_replicas_keep_the_buckets_before_the_shard():
    rules = hashmod_relabel_configs(0, 4, replicas=2)
    assert rules[1] == {"source_labels": ["__tmp_hashmod"], "regex": "0|3", "action": "keep"}


def test_relabel_configs_let_controller_placed_targets_pass():
    rules = hashmod_relabel_configs(2, 3, replicas=2, static_label="__tmp_static")
    assert rules[1] == {"source_labels": ["__tmp_static", "__tmp_hashmod"], "separator": ";",
                        "regex": "true;.*|;(?:1|2)", "action": "keep"}


def test_relabel_configs_shape():
    rules = hashmod_relabel_configs(1, 3)
    assert rules == [
        {"source_labels": ["__address__"], "separator": ";", "modulus": 3,
         "target_label": "__tmp_hashmod", "action": "hashmod"},
        {"source_labels": ["__tmp_hashmod"], "regex": "1", "action": "keep"},
    ]


@pytest.mark.parametrize("shard,count,message", [
    (3, 3, r"shard 3 is outside 0\.\.2"),
    (-1, 2, r"shard -1 is outside"),
    ("x", 2, r"shard must be a whole number"),
    (0, 0, r"shard_count must be between 1"),
])
def test_relabel_configs_errors(shard, count, message):
    with pytest.raises(AnsibleFilterError, match=r"^hashmod_relabel_configs: " + message):
        hashmod_relabel_configs(shard, count)


# --- shard_targets ----------------------------------------------------------------

def test_every_shard_present_even_when_empty():
    result = shard_targets(["a:1"], 4)
    assert sorted(result) == [0, 1, 2, 3]
    assert sum(len(v) for v in result.values()) == 1


def test_hashmod_mode_agrees_with_prometheus_hashmod():
    targets = [f"10.0.{i // 256}.{i % 256}:9100" for i in range(500)]
    result = shard_targets(targets, 3, mode="hashmod")
    for shard, members in result.items():
        assert all(prometheus_hashmod(t, 3) == shard for t in members)
    assert sorted(t for m in result.values() for t in m) == sorted(targets)


def test_hashmod_replicas_take_the_next_shards():
    targets = [f"10.0.{i // 256}.{i % 256}:9100" for i in range(300)]
    result = shard_targets(targets, 5, mode="hashmod", replicas=3)
    for target in targets:
        first = prometheus_hashmod(target, 5)
        assert sorted(s for s, members in result.items() if target in members) == sorted(
            (first + k) % 5 for k in range(3)), target


def test_output_sorted_and_deduplicated():
    result = shard_targets(["b:1", "a:1", "b:1", " a:1 "], 1)
    assert result == {0: ["a:1", "b:1"]}


def test_known_rendezvous_assignment_is_pinned():
    # Golden output: a change here re-deals every deployed file_sd list, so it must be deliberate.
    assert shard_targets([f"t{i}:80" for i in range(8)], 3) == {
        0: ["t0:80", "t2:80", "t3:80", "t5:80"],
        1: ["t4:80", "t6:80", "t7:80"],
        2: ["t1:80"],
    }


def test_weights_skew_share():
    targets = [f"host{i}:9100" for i in range(6000)]
    result = shard_targets(targets, 3, weights=[1, 1, 4])
    share = len(result[2]) / len(targets)
    assert 0.62 < share < 0.71  # 4/6 = 0.667


def test_equal_weights_equal_unweighted():
    targets = [f"host{i}:9100" for i in range(300)]
    assert shard_targets(targets, 5, weights=[2] * 5) == shard_targets(targets, 5)


def test_weights_as_mapping():
    targets = [f"host{i}:9100" for i in range(50)]
    assert shard_targets(targets, 2, weights={0: 1, 1: 3}) == shard_targets(targets, 2, weights=[1, 3])


@pytest.mark.parametrize("kwargs,message", [
    ({"shard_count": 0}, r"shard_count must be between 1"),
    ({"shard_count": "two"}, r"shard_count must be a whole number"),
    ({"shard_count": 2, "mode": "modulo"}, r"unknown mode 'modulo'"),
    ({"shard_count": 2, "replicas": 3}, r"replicas=3 is larger than the shard count 2"),
    ({"shard_count": 2, "replicas": 0}, r"replicas must be at least 1"),
    ({"shard_count": 2, "weights": [1, 0]}, r"weight of shard 1 is 0; weights must be positive"),
    ({"shard_count": 2, "weights": [1, -2]}, r"weight of shard 1 is -2"),
    ({"shard_count": 2, "weights": [1, "x"]}, r"weight of shard 1 is 'x'"),
    ({"shard_count": 2, "weights": [1]}, r"weights has 1 entries for 2 shards"),
    ({"shard_count": 2, "weights": {0: 1}}, r"weights has no entry for shard\(s\) \[1\]"),
    ({"shard_count": 2, "mode": "hashmod", "weights": [1, 2]}, r"mode='hashmod' takes no weights"),
])
def test_shard_targets_errors(kwargs, message):
    with pytest.raises(AnsibleFilterError, match=r"^shard_targets: " + message):
        shard_targets(["a:1", "b:2"], **kwargs)


@pytest.mark.parametrize("targets,message", [
    ("a:1", r"expected a list of targets"),
    (["a:1", ""], r"target #1 is ''"),
    (["a:1", None], r"target #1 is None"),
])
def test_shard_targets_bad_targets(targets, message):
    with pytest.raises(AnsibleFilterError, match=r"^shard_targets: " + message):
        shard_targets(targets, 2)


@settings(max_examples=60, deadline=None)
@given(targets=targets_st, count=st.integers(1, 12), data=st.data())
def test_property_each_target_in_exactly_replicas_distinct_shards(targets, count, data):
    replicas = data.draw(st.integers(1, count))
    result = shard_targets(targets, count, replicas=replicas)
    placed = {}
    for shard, members in result.items():
        assert members == sorted(set(members))
        for target in members:
            placed.setdefault(target, []).append(shard)
    assert set(placed) == {t.strip() for t in targets}
    assert all(len(set(v)) == len(v) == replicas for v in placed.values())


@settings(max_examples=40, deadline=None)
@given(targets=targets_st, count=st.integers(1, 10), mode=st.sampled_from(["rendezvous", "hashmod"]))
def test_property_deterministic_and_order_independent(targets, count, mode):
    first = shard_targets(targets, count, mode=mode)
    assert first == shard_targets(list(reversed(targets)), count, mode=mode)
    assert json.dumps(first, sort_keys=True) == json.dumps(shard_targets(targets, count, mode=mode), sort_keys=True)


@settings(max_examples=25, deadline=None)
@given(count=st.integers(1, 20), replicas=st.integers(1, 3))
def test_property_adding_a_shard_only_moves_onto_the_new_shard(count, replicas):
    replicas = min(replicas, count)
    targets = [f"node{i}.example:9100" for i in range(400)]
    before = pairs(shard_targets(targets, count, replicas=replicas))
    after = pairs(shard_targets(targets, count + 1, replicas=replicas))
    gained = after - before
    # Every new assignment is onto the new shard; nothing shuffles between old shards.
    assert {shard for _, shard in gained} <= {count}
    # Removing that shard again moves only its own targets back.
    lost = before - after
    assert {t for t, _ in lost} == {t for t, _ in gained}


def test_movement_bound_64_to_65():
    targets = [f"10.{i // 65536}.{(i // 256) % 256}.{i % 256}:9100" for i in range(20000)]
    for replicas in (1, 2):
        before = pairs(shard_targets(targets, 64, replicas=replicas))
        after = pairs(shard_targets(targets, 65, replicas=replicas))
        moved = len(after - before) / len(after)
        assert moved <= 1.1 / 65, (replicas, moved)
        assert moved >= 0.9 / 65, (replicas, moved)
    hm_before = pairs(shard_targets(targets, 64, mode="hashmod"))
    hm_after = pairs(shard_targets(targets, 65, mode="hashmod"))
    assert len(hm_after - hm_before) / len(targets) > 0.9  # hashmod reshuffles ~N/(N+1)


def test_balance():
    targets = [f"host{i}:9100" for i in range(16000)]
    load = shard_load(shard_targets(targets, 16))
    assert load["targets"] == 16000
    assert load["imbalance"] < 1.1


# --- plan helpers -----------------------------------------------------------------

def test_shard_moves_lists_only_changes():
    old = {0: ["a", "b"], 1: ["c"]}
    new = {0: ["a"], 1: ["c", "b"], 2: ["d"]}
    assert shard_moves(old, new) == [
        {"target": "b", "from": [0], "to": [1]},
        {"target": "d", "from": [], "to": [2]},
    ]


def test_shard_moves_accepts_string_keys_from_json():
    assert shard_moves({"0": ["a"]}, {0: ["a"]}) == []


def test_shard_moves_errors():
    with pytest.raises(AnsibleFilterError, match=r"^shard_moves: expected a shard_targets result"):
        shard_moves(["a"], {})
    with pytest.raises(AnsibleFilterError, match=r"^shard_moves: shard key 'x' is not a shard index"):
        shard_moves({"x": ["a"]}, {})


def test_shard_load_summary():
    assert shard_load({0: ["a", "b", "c"], 1: ["d"]}) == {
        "targets": 4, "shards": 2, "min": 1, "max": 3, "mean": 2.0, "imbalance": 1.5,
    }
    with pytest.raises(AnsibleFilterError, match=r"^shard_load: the assignment has no shards"):
        shard_load({})


DEPLOYED = """
global:
  external_labels: {cluster: lab, shard: '1', replica: p1}
scrape_configs:
  - job_name: prometheus
    file_sd_configs: [{files: [/etc/prometheus/targets/prometheus.json]}]
  - job_name: app
    file_sd_configs: [{files: [/etc/prometheus/targets/app.json]}]
  - job_name: k8s
    kubernetes_sd_configs: [{role: pod}]
"""


def test_deployed_shard_targets_reads_each_jobs_file():
    files = {
        "/etc/prometheus/targets/app.json": json.dumps([{"targets": ["b:1", "a:1"]}, {"targets": ["c:1"]}]),
        "prometheus.json": json.dumps([{"targets": ["p:9090"], "labels": {}}]),  # by base name
        "/etc/prometheus/targets/stale.json": json.dumps([{"targets": ["x:1"]}]),  # no job reads it
    }
    assert deployed_shard_targets(DEPLOYED, files) == {1: {"app": ["a:1", "b:1", "c:1"], "prometheus": ["p:9090"]}}


@pytest.mark.parametrize("config,files,message", [
    ("global: {}", {}, r"the deployed prometheus.yml has no global.external_labels.shard"),
    ("global: [", {}, r"cannot parse the deployed files"),
    (DEPLOYED, {"app.json": "{not json"}, r"cannot parse the deployed files"),
])
def test_deployed_shard_targets_errors(config, files, message):
    with pytest.raises(AnsibleFilterError, match=r"^deployed_shard_targets: " + message):
        deployed_shard_targets(config, files)


def test_filter_map():
    assert set(FilterModule().filters()) == {
        "prometheus_hashmod", "hashmod_relabel_configs", "shard_targets", "shard_moves", "shard_load",
        "deployed_shard_targets", "shard_scrape_configs", "every_shard_scrape_configs", "file_sd_scrape_configs",
        "scrape_job_problems", "shard_plan", "targets_never_scraped", "target_file_specs",
    }


FILES = {"node.json": [{"targets": ["10.0.0.1:9100"], "labels": {"é": "x"}}], "app.json": []}


def test_target_file_specs_write_what_to_nice_json_writes():
    from ansible.plugins.filter.core import to_nice_json
    specs = target_file_specs(FILES, "/etc/prometheus/targets/", "prometheus")
    assert [s["path"] for s in specs] == ["/etc/prometheus/targets/app.json", "/etc/prometheus/targets/node.json"]
    for spec in specs:
        name = spec["path"].rsplit("/", 1)[1]
        assert spec["content"] == to_nice_json(FILES[name]) + "\n"
        assert (spec["group"], spec["mode"]) == ("prometheus", "0644")


@pytest.mark.parametrize("files,directory,message", [
    ([], "/t", "expected a mapping"),
    (FILES, "t", "must be an absolute path"),
])
def test_target_file_specs_bad_input(files, directory, message):
    with pytest.raises(AnsibleFilterError, match=message):
        target_file_specs(files, directory, "p")
