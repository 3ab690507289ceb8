"""Unit and property tests for the job-level sharding filters (plugins/filter/shards.py).

A small evaluator below applies the hashmod / keep / drop relabel rules the way
Prometheus does (anchored RE2-compatible regexes, ';'-joined source labels), so the
rules shard_scrape_configs writes for discovered targets are checked by what they
keep, not by their text.
"""

import copy
import re
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.promha.stack.plugins.plugin_utils.shards import (
    STATIC_LABEL,
    TOOLKIT_JOB_NAMES,
    every_shard_scrape_configs,
    file_sd_scrape_configs,
    prometheus_hashmod,
    scrape_job_problems,
    shard_plan,
    shard_scrape_configs,
    shard_targets,
    targets_never_scraped,
)
from hypothesis import given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[4]


def relabel(labels, rules):
    """Apply hashmod/keep/drop/replace/labeldrop rules to one target's labels; None when dropped."""
    labels = dict(labels)
    for rule in rules:
        action = rule.get("action", "replace")
        value = rule.get("separator", ";").join(labels.get(name, "") for name in rule.get("source_labels", []))
        regex = re.compile(f"^(?:{rule.get('regex', '(.*)')})$")
        if action == "hashmod":
            labels[rule["target_label"]] = str(prometheus_hashmod(value, rule["modulus"]))
        elif action == "keep" and not regex.match(value):
            return None
        elif action == "drop" and regex.match(value):
            return None
        elif action == "replace" and regex.match(value):
            labels[rule["target_label"]] = regex.sub(rule.get("replacement", "$1").replace("$", "\\"), value)
    return labels


def kept_by(configs_per_shard, job_name, address, extra_labels=None):
    """The shards whose copy of ``job_name`` keeps a discovered ``address``."""
    kept = []
    for shard, configs in configs_per_shard.items():
        job = next((c for c in configs if c["job_name"] == job_name), None)
        if job and relabel({"__address__": address, **(extra_labels or {})}, job.get("relabel_configs", [])):
            kept.append(shard)
    return kept


def static_holders(configs_per_shard, job_name):
    holders = {}
    for shard, configs in configs_per_shard.items():
        for config in configs:
            if config["job_name"] == job_name:
                for group in config.get("static_configs", []):
                    for target in group["targets"]:
                        holders.setdefault(target, []).append(shard)
    return holders


def every_shard(jobs, count, **kwargs):
    return {shard: shard_scrape_configs(jobs, shard, count, **kwargs) for shard in range(count)}


APP = [f"10.0.0.{i}:8080" for i in range(1, 61)]
JOBS = [
    {"job_name": "app", "static_configs": [{"targets": APP[:40], "labels": {"tier": "web"}},
                                           {"targets": APP[40:]}]},
    {"job_name": "k8s", "kubernetes_sd_configs": [{"role": "pod"}],
     "relabel_configs": [{"source_labels": ["__address__"], "regex": ".*:9999", "action": "drop"}]},
    {"job_name": "probe", "shard": "all", "metrics_path": "/probe", "static_configs": [{"targets": ["x:9115"]}]},
    {"job_name": "db", "shard": [0, 2], "static_configs": [{"targets": ["db:9104"]}]},
    {"job_name": "one", "shard": 1, "dns_sd_configs": [{"names": ["_x._tcp.example"]}]},
]


# --- shard_scrape_configs ---------------------------------------------------------------

def test_docstring_example():
    jobs = [
        {"job_name": "app", "static_configs": [{"targets": ["a:80", "b:80", "c:80"]}]},
        {"job_name": "k8s", "kubernetes_sd_configs": [{"role": "pod"}]},
        {"job_name": "probe", "shard": "all", "static_configs": [{"targets": ["x:9115"]}]},
        {"job_name": "db", "shard": 0, "static_configs": [{"targets": ["db:9104"]}]},
    ]
    assert shard_scrape_configs(jobs, 1, 2) == [
        {"job_name": "app", "static_configs": [{"targets": ["a:80", "c:80"]}]},
        {"job_name": "k8s", "kubernetes_sd_configs": [{"role": "pod"}], "relabel_configs": [
            {"source_labels": ["__address__"], "separator": ";", "modulus": 2, "target_label": "__tmp_hashmod",
             "action": "hashmod"},
            {"source_labels": ["__tmp_hashmod"], "regex": "1", "action": "keep"}]},
        {"job_name": "probe", "static_configs": [{"targets": ["x:9115"]}]},
    ]


@pytest.mark.parametrize("mode", ["hashmod", "rendezvous"])
@pytest.mark.parametrize("replicas", [1, 2])
def test_spread_static_targets_land_on_exactly_replicas_shards(mode, replicas):
    result = every_shard(JOBS, 3, mode=mode, replicas=replicas)
    holders = static_holders(result, "app")
    assert sorted(holders) == sorted(APP)
    assert all(len(set(shards)) == len(shards) == replicas for shards in holders.values())
    # The split is the one shard_targets gives (the plan and the role agree).
    expected = shard_targets(APP, 3, mode=mode, replicas=replicas)
    for shard in range(3):
        assert sorted(t for t, s in holders.items() if shard in s) == expected[shard]


def test_static_groups_keep_their_labels_and_drop_when_empty():
    result = every_shard(JOBS, 3)
    for configs in result.values():
        app = next(c for c in configs if c["job_name"] == "app")
        for group in app["static_configs"]:
            assert group["targets"]
            assert group.get("labels", {}) == ({"tier": "web"} if set(group["targets"]) <= set(APP[:40]) else {})


@pytest.mark.parametrize("replicas", [1, 2, 3])
def test_discovered_targets_kept_by_exactly_replicas_shards_and_user_drops_hold(replicas):
    result = every_shard(JOBS, 4, replicas=replicas)
    for i in range(300):
        address = f"10.1.{i // 200}.{i % 200}:{8000 + i % 7}"
        assert len(kept_by(result, "k8s", address)) == replicas, address
    # The job's own rule still drops its targets, on every shard.
    assert kept_by(result, "k8s", "10.9.9.9:9999") == []


def test_discovered_split_agrees_with_the_controllers_hashmod():
    addresses = [f"10.2.0.{i}:9100" for i in range(200)]
    result = every_shard(JOBS, 3, mode="hashmod", replicas=2)
    expected = shard_targets(addresses, 3, mode="hashmod", replicas=2)
    for address in addresses:
        assert kept_by(result, "k8s", address) == [s for s in range(3) if address in expected[s]]


def test_a_job_with_static_and_discovered_targets_splits_each_once():
    mixed = [{"job_name": "mixed", "static_configs": [{"targets": APP}], "file_sd_configs": [{"files": ["x.json"]}]}]
    result = every_shard(mixed, 3, replicas=1)
    holders = static_holders(result, "mixed")
    assert all(len(shards) == 1 for shards in holders.values())
    for configs in result.values():
        for group in configs[0]["static_configs"]:
            assert group["labels"] == {STATIC_LABEL: "true"}
            # A controller-placed target passes its shard's relabelling whatever its hash.
            for target in group["targets"]:
                assert relabel({"__address__": target, **group["labels"]}, configs[0]["relabel_configs"])
    for i in range(100):
        assert len(kept_by(result, "mixed", f"10.3.0.{i}:80")) == 1


def test_all_pinned_and_single_shard_placements():
    result = every_shard(JOBS, 3)
    names = {shard: [c["job_name"] for c in configs] for shard, configs in result.items()}
    assert names == {0: ["app", "k8s", "probe", "db"], 1: ["app", "k8s", "probe", "one"],
                     2: ["app", "k8s", "probe", "db"]}
    for configs in result.values():
        assert all("shard" not in c for c in configs)
        probe = next(c for c in configs if c["job_name"] == "probe")
        assert probe == {"job_name": "probe", "metrics_path": "/probe", "static_configs": [{"targets": ["x:9115"]}]}
    one = next(c for c in result[1] if c["job_name"] == "one")
    assert "relabel_configs" not in one  # a pinned job is whole, not split
    # One shard: nothing to split.
    single = shard_scrape_configs(JOBS[:2], 0, 1)
    assert single[0]["static_configs"][0]["targets"] == sorted(APP[:40]) and "relabel_configs" not in single[0]
    assert single[1]["relabel_configs"] == JOBS[1]["relabel_configs"]


@pytest.mark.parametrize("mode", ["hashmod", "rendezvous"])
def test_every_shard_at_once_is_each_shard_on_its_own(mode):
    at_once = every_shard_scrape_configs(JOBS, 3, mode=mode, replicas=2)
    assert at_once == [every_shard(JOBS, 3, mode=mode, replicas=2)[shard] for shard in range(3)]
    with pytest.raises(AnsibleFilterError, match=r"^every_shard_scrape_configs: job 'app' is defined twice"):
        every_shard_scrape_configs([JOBS[0], JOBS[0]], 3)


def test_input_is_not_changed():
    jobs = copy.deepcopy(JOBS)
    every_shard(jobs, 3, replicas=2)
    assert jobs == JOBS


@settings(max_examples=40, deadline=None)
@given(count=st.integers(1, 7), data=st.data(),
       targets=st.lists(st.from_regex(r"[a-z]{1,6}\.example:[1-9][0-9]{1,3}", fullmatch=True), max_size=40),
       mode=st.sampled_from(["hashmod", "rendezvous"]))
def test_property_each_spread_target_on_exactly_replicas_shards(count, data, targets, mode):
    replicas = data.draw(st.integers(1, count))
    jobs = [{"job_name": "j", "static_configs": [{"targets": targets or ["only:1"]}]}]
    holders = static_holders(every_shard(jobs, count, mode=mode, replicas=replicas), "j")
    assert set(holders) == set(targets or ["only:1"])
    assert all(len(set(shards)) == len(shards) == replicas for shards in holders.values())


@pytest.mark.parametrize("jobs,kwargs,message", [
    ([JOBS[0], JOBS[0]], {}, r"job 'app' is defined twice \(entries #0 and #1\); job names must be unique"),
    ([{"job_name": "node", "static_configs": [{"targets": ["a:1"]}]}] * 2, {},
     r"job 'node' is defined twice .* one of the toolkit's own jobs .* rename the site's job"),
    ([{"job_name": "db", "shard": 5, "static_configs": [{"targets": ["a:1"]}]}], {},
     r"job 'db': shard 5 names shard\(s\) \[5\], but the inventory has shards 0\.\.2; pin the job to an "
     r"existing shard or add that shard"),
    ([{"job_name": "db", "shard": [0, 0], "static_configs": [{"targets": ["a:1"]}]}], {}, r"names a shard twice"),
    ([{"job_name": "db", "shard": "some", "static_configs": [{"targets": ["a:1"]}]}], {},
     r"job 'db': shard 'some' is not spread, all, a shard index or a list of shard indices"),
    ([{"job_name": "db", "shard": True, "static_configs": [{"targets": ["a:1"]}]}], {}, r"shard True is not spread"),
    ([{"job_name": "db", "shard": [], "static_configs": [{"targets": ["a:1"]}]}], {}, r"shard is an empty list"),
    ([JOBS[0]], {"replicas": 4}, r"replicas=4 is larger than the shard count 3: .* lower prometheus_shard_replicas"),
    ([JOBS[0]], {"replicas": 0}, r"replicas must be a whole number of at least 1"),
    ([{"job_name": "empty", "static_configs": [{"targets": []}]}], {},
     r"job 'empty' has neither targets nor discovery: list static_configs targets, name an inventory group, or "
     r"add a \*_sd_configs section"),
    ([{"job_name": "web", "inventory": {"group": "web", "port": 80}}], {},
     r"job 'web' still names an inventory group; resolve it first with inventory_scrape_jobs"),
    ([{"job_name": "bad name", "static_configs": [{"targets": ["a:1"]}]}], {}, r"entry #0 has job_name 'bad name'"),
    ([{"static_configs": [{"targets": ["a:1"]}]}], {}, r"entry #0 has job_name None"),
    (["app"], {}, r"entry #0 is 'app', not a scrape_config mapping"),
    ([{"job_name": "t", "static_configs": [{"targets": "a:1"}]}], {},
     r"static_configs\[0\]\.targets must be a list of host:port strings"),
    ([{"job_name": "t", "static_configs": [{"targets": ["a:1", ""]}]}], {}, r"static_configs\[0\]\.targets holds ''"),
    ([{"job_name": "t", "static_configs": [{"targets": ["a:1"]}, "b:1"]}], {},
     r"job 't': static_configs\[1\] must be a mapping with targets \(and labels\)"),
])
def test_bad_jobs_are_refused_naming_the_job_and_the_fix(jobs, kwargs, message):
    with pytest.raises(AnsibleFilterError, match=r"^shard_scrape_configs: .*" + message):
        shard_scrape_configs(jobs, 0, 3, **kwargs)


def test_every_problem_is_listed_at_once():
    problems = scrape_job_problems([JOBS[0], JOBS[0], {"job_name": "x", "shard": 9}], 2, replicas=3)
    assert len(problems) == 4, problems  # replicas, duplicate, pinned shard, no targets


def test_reserved_names_for_preflight():
    problems = scrape_job_problems([{"job_name": "node", "static_configs": [{"targets": ["a:1"]}]}], 2,
                                   reserved=TOOLKIT_JOB_NAMES)
    assert problems == ["job 'node' has the name of one of the toolkit's own jobs (prometheus, node, alertmanager, "
                        "remote_storage, mysql, federate, vrrp, front, nginx, grafana); rename it"]


def test_the_roles_own_jobs_are_the_reserved_names():
    # Every job the prometheus role writes itself (templates/jobs/), each on a line of its own.
    templates = sorted((ROOT / "roles" / "prometheus" / "templates" / "jobs").glob("*.yml.j2"))
    names = [name for path in templates for name in re.findall(r"^- job_name: (\S+)$", path.read_text(), re.M)]
    assert len(templates) == 2
    assert sorted(names) == sorted(TOOLKIT_JOB_NAMES)


@pytest.mark.parametrize("shard,message", [(3, r"shard 3 is not one of the shards 0\.\.2"), ("x", r"shard 'x'")])
def test_bad_shard_argument(shard, message):
    with pytest.raises(AnsibleFilterError, match=r"^shard_scrape_configs: " + message):
        shard_scrape_configs(JOBS, shard, 3)


def test_bad_mode():
    with pytest.raises(AnsibleFilterError, match=r"^shard_scrape_configs: unknown mode 'modulo'"):
        shard_scrape_configs(JOBS, 0, 3, mode="modulo")


# --- file_sd_scrape_configs -------------------------------------------------------------

def test_static_targets_move_to_one_file_per_job():
    configs = [
        {"job_name": "app", "scheme": "https", "static_configs": [{"targets": ["a:1"], "labels": {"t": "x"}}]},
        {"job_name": "both", "file_sd_configs": [{"files": ["/srv/own.json"]}], "static_configs": []},
        {"job_name": "k8s", "kubernetes_sd_configs": [{"role": "pod"}]},
    ]
    result = file_sd_scrape_configs(configs, "/etc/prometheus/targets/")
    assert result["files"] == {"app.json": [{"targets": ["a:1"], "labels": {"t": "x"}}], "both.json": []}
    assert result["scrape_configs"] == [
        {"job_name": "app", "scheme": "https", "file_sd_configs": [{"files": ["/etc/prometheus/targets/app.json"]}]},
        {"job_name": "both", "file_sd_configs": [{"files": ["/srv/own.json"]},
                                                 {"files": ["/etc/prometheus/targets/both.json"]}]},
        {"job_name": "k8s", "kubernetes_sd_configs": [{"role": "pod"}]},
    ]


def test_the_config_does_not_change_when_only_targets_do():
    before = file_sd_scrape_configs(shard_scrape_configs(JOBS, 0, 3), "/t")["scrape_configs"]
    grown = copy.deepcopy(JOBS)
    grown[0]["static_configs"][1]["targets"].append("10.0.0.99:8080")
    after = file_sd_scrape_configs(shard_scrape_configs(grown, 0, 3), "/t")
    assert after["scrape_configs"] == before


@pytest.mark.parametrize("configs,directory,message", [
    ([], "relative/dir", r"directory must be an absolute path"),
    ("x", "/t", r"expected a list of scrape_configs"),
    ([{"job_name": "../x", "static_configs": []}], "/t", r"job_name '\.\./x' cannot name a file"),
])
def test_file_sd_errors(configs, directory, message):
    with pytest.raises(AnsibleFilterError, match=r"^file_sd_scrape_configs: " + message):
        file_sd_scrape_configs(configs, directory)


# --- shard_plan -------------------------------------------------------------------------

def deployed_from(plan):
    return {shard: {name: job["targets"] for name, job in info["jobs"].items()}
            for shard, info in plan["shards"].items()}


def test_plan_lists_jobs_shards_and_load():
    plan = shard_plan(JOBS, 3, mode="rendezvous", replicas=1)
    assert [j["job"] for j in plan["jobs"]] == ["app", "k8s", "probe", "db", "one"]
    assert plan["jobs"][3]["placement"] == "shards [0, 2]" and plan["jobs"][2]["placement"] == "all"
    assert plan["jobs"][1]["discovered"] and plan["jobs"][1]["static_targets"] == 0
    assert "split by hashmod relabelling" in plan["shards"][1]["jobs"]["k8s"]["discovered"]
    assert plan["shards"][1]["jobs"]["one"]["discovered"] == "all of them"
    spread = [len(plan["shards"][s]["jobs"]["app"]["targets"]) for s in range(3)]
    assert sum(spread) == len(APP)
    assert plan["spread_load"]["max"] == max(spread)
    assert plan["moves"] == [] and plan["moved"] is None


@pytest.mark.parametrize("mode,low,high", [("rendezvous", 0.30, 0.37), ("hashmod", 0.62, 0.72)])
def test_plan_moves_going_from_two_to_three_shards(mode, low, high):
    jobs = [{"job_name": "app", "static_configs": [{"targets": [f"h{i}:80" for i in range(3000)]}]},
            {"job_name": "probe", "shard": "all", "static_configs": [{"targets": ["x:1"]}]}]
    now = deployed_from(shard_plan(jobs, 2, mode=mode))
    plan = shard_plan(jobs, 3, mode=mode, deployed=now)
    assert low < plan["moved"]["spread_share"] < high
    assert plan["moved"]["spread_total"] == 3000
    moves = {(m["job"], m["target"]): m for m in plan["moves"]}
    assert moves[("probe", "x:1")] == {"job": "probe", "target": "x:1", "from": [], "to": [2]}
    # Each move names exactly the difference between what runs and what is planned.
    after = shard_targets([f"h{i}:80" for i in range(3000)], 3, mode=mode)
    for (job, target), move in moves.items():
        if job == "app":
            was = [s for s in now if target in now[s]["app"]]
            assert sorted(set(was) - set(move["from"]) | set(move["to"])) == [
                s for s in range(3) if target in after[s]]


def test_plan_of_an_unchanged_deployment_moves_nothing():
    plan = shard_plan(JOBS, 3, replicas=2)
    deployed = {str(k): v for k, v in deployed_from(plan).items()}
    deployed["0"]["prometheus"] = ["10.0.0.1:9090", "10.0.0.2:9090"]  # the pair's own job: not sharded
    again = shard_plan(JOBS, 3, replicas=2, deployed=deployed)
    assert again["moves"] == [] and again["moved"]["spread"] == 0


def test_a_job_that_runs_but_is_no_longer_planned_moves_nowhere():
    deployed = {0: {"gone": ["a:1"]}, 1: {}, 2: {}}
    moves = shard_plan(JOBS, 3, deployed=deployed)["moves"]
    assert {"job": "gone", "target": "a:1", "from": [0], "to": []} in moves


def test_plan_refuses_what_the_role_refuses():
    with pytest.raises(AnsibleFilterError, match=r"^shard_plan: job 'db': shard \[0, 2\] names shard\(s\) \[2\]"):
        shard_plan(JOBS, 2)
    with pytest.raises(AnsibleFilterError, match=r"^shard_plan: deployed must be"):
        shard_plan(JOBS, 3, deployed=[1])


# --- targets_never_scraped --------------------------------------------------------------

def test_targets_never_scraped():
    targets = [
        {"scrapePool": "app", "discoveredLabels": {"__address__": "a:1"}, "lastScrape": "0001-01-01T00:00:00Z",
         "scrapeInterval": "15s"},
        {"scrapePool": "app", "discoveredLabels": {"__address__": "b:1"}, "lastScrape": "2026-11-26T03:35:16Z",
         "scrapeInterval": "15s"},
        {"scrapePool": "slow", "discoveredLabels": {"__address__": "c:1"}, "lastScrape": "0001-01-01T00:00:00Z",
         "scrapeInterval": "5m"},
        {"scrapePool": "odd", "discoveredLabels": {"__address__": "d:1"}, "lastScrape": "0001-01-01T00:00:00Z",
         "scrapeInterval": "1m30s"},
    ]
    assert targets_never_scraped(targets) == ["app a:1"]
    assert targets_never_scraped(targets, max_interval=120) == ["app a:1", "odd d:1"]
    with pytest.raises(AnsibleFilterError, match=r"^targets_never_scraped: expected data.activeTargets"):
        targets_never_scraped({"data": {}})
