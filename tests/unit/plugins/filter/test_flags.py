"""Unit tests for plugins/filter/flags.py."""

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.promha.stack.plugins.plugin_utils.flags import (
    FilterModule,
    extra_args_problems,
    extra_args_words,
    extra_settings_problems,
    go_seconds,
    gossip_problems,
)


def test_plain_flags_of_every_tier_pass():
    assert extra_args_problems({"query.timeout": "1m", "query.max-concurrency": 40}, "prometheus") == []
    assert extra_args_problems({"web.get-concurrency": 4, "log.level": "debug"}, "alertmanager") == []
    assert extra_args_problems({"collector.filesystem.mount-points-exclude": "^/(dev|proc|sys)($|/)",
                                "web.disable-exporter-metrics": True}, "node_exporter") == []
    assert extra_args_problems({"search.maxQueryDuration": "60s", "-memory.allowedPercent": 50},
                               "remote_storage") == []
    assert extra_args_problems({}, "prometheus") == extra_args_problems(None, "alertmanager") == []


@pytest.mark.parametrize("tier,args,expected", [
    ("prometheus", {"web.enable-admin-api": True},
     "prometheus_extra_args: web.enable-admin-api is refused: it would open the TSDB admin API"),
    ("prometheus", {"--web.enable-lifecycle": True}, "prometheus_extra_args: web.enable-lifecycle is refused"),
    ("prometheus", {"web.config.file": "/etc/open.yml"},
     "prometheus_extra_args: web.config.file is set by the role; use the role's web.yml"),
    ("prometheus", {"storage.tsdb.retention.size": "1GB"},
     "prometheus_extra_args: storage.tsdb.retention.size is set by the role; use prometheus_retention_size"),
    ("alertmanager", {"cluster.peer": "10.0.0.9:9094"}, "alertmanager_extra_args: cluster.peer is set by the role"),
    ("alertmanager", {"cluster.listen-address": "0.0.0.0:9094"}, "use alertmanager_cluster_listen_address"),
    ("node_exporter", {"collector.wifi": True},
     "node_exporter_extra_args: collector.wifi switches a collector; list it in node_exporter_enabled_collectors"),
    ("node_exporter", {"no-collector.systemd": True}, "no-collector.systemd switches a collector"),
    ("node_exporter", {"web.listen-address": ":9100"}, "web.listen-address is set by the role"),
    ("remote_storage", {"tls": False}, "remote_storage_extra_args: tls is set by the role; use remote_storage_tls_enabled"),
    ("remote_storage", {"httpAuth.password": "x"}, "use remote_storage_basic_auth_password"),
    ("remote_storage", {"storage.minFreeDiskSpaceBytes": "1"}, "use remote_storage_min_free_disk_space"),
])
def test_flags_the_role_sets_or_that_undo_a_secure_default_are_refused(tier, args, expected):
    problems = extra_args_problems(args, tier)
    assert len(problems) == 1 and expected in problems[0], problems


@pytest.mark.parametrize("value", ["1m --web.enable-lifecycle", "a\nExecStartPre=/bin/sh", '"quoted"', "it's",
                                   "back\\slash", "", "tab\there", ["a"], {"a": 1}])
def test_a_value_that_is_not_one_word_is_refused(value):
    problems = extra_args_problems({"query.timeout": value}, "prometheus")
    assert len(problems) == 1 and problems[0].startswith("prometheus_extra_args: query.timeout: the value "), problems


@pytest.mark.parametrize("name", ["web enable", "a\nb", "", "-", "=x", "x=y"])
def test_a_name_that_is_not_a_flag_is_refused(name):
    problems = extra_args_problems({name: "1"}, "alertmanager")
    assert len(problems) == 1 and "is not a flag name" in problems[0], problems


def test_a_mapping_is_required_and_the_tier_known():
    assert extra_args_problems(["--web.enable-admin-api"], "prometheus") == [
        "prometheus_extra_args must be a mapping of flag names to values, got list"]
    with pytest.raises(AnsibleFilterError, match="unknown tier 'grafana'"):
        extra_args_problems({}, "grafana")


def test_every_problem_is_listed():
    problems = extra_args_problems({"web.enable-admin-api": "yes now", "config.file": "x", "ok": "1"}, "prometheus")
    assert problems == [
        "prometheus_extra_args: config.file is set by the role; use the role's prometheus.yml",
        "prometheus_extra_args: web.enable-admin-api is refused: it would open the TSDB admin API (delete series, "
        "snapshots)",
        "prometheus_extra_args: web.enable-admin-api: the value must be one word without spaces, line breaks, "
        "quotes or backslashes"]


def test_words_are_sorted_with_booleans_lowered_and_systemd_characters_escaped():
    args = {"web.disable-exporter-metrics": True, "--collector.filesystem.mount-points-exclude": "^/(dev|proc)($|/)",
            "log.format": "logfmt", "x.percent": "50%"}
    assert extra_args_words(args) == [
        "--collector.filesystem.mount-points-exclude=^/(dev|proc)($$|/)", "--log.format=logfmt",
        "--web.disable-exporter-metrics=true", "--x.percent=50%%"]
    assert extra_args_words(args, "-", unit=False)[0] == "-collector.filesystem.mount-points-exclude=^/(dev|proc)($|/)"
    assert extra_args_words({}) == extra_args_words(None) == []


def test_plain_settings_pass():
    assert extra_settings_problems({"log": {"level": "warn"}, "auth.anonymous": {"enabled": False}}, "grafana") == []
    assert extra_settings_problems({"innodb_buffer_pool_size": "2G", "max-allowed-packet": 67108864}, "mysql") == []
    assert extra_settings_problems({}, "grafana") == extra_settings_problems(None, "mysql") == []


@pytest.mark.parametrize("tier,settings,expected", [
    ("grafana", {"server": {"protocol": "http"}}, "grafana_extra_config: [server] protocol is set by the role"),
    ("grafana", {"database": {"ssl_mode": "disable"}}, "[database] ssl_mode is set by the role"),
    ("grafana", {"auth.anonymous": {"enabled": True}},
     "grafana_extra_config: [auth.anonymous] enabled is refused: it would allow anonymous access"),
    ("grafana", {"users": {"allow_sign_up": "true"}}, "[users] allow_sign_up is refused"),
    ("grafana", {"log": {"level": "warn\n[server]\nprotocol = http"}}, "[log] level: the value must be one line"),
    ("grafana", {"log]\n[server": {"a": 1}}, "is not a section name"),
    ("grafana", {"log": ["level=warn"]}, "grafana_extra_config: [log] must be a mapping of settings, got list"),
    ("mysql", {"bind-address": "10.0.0.9"}, "mysql_server_extra_config: bind-address is set by the role"),
    ("mysql", {"skip_grant_tables": "ON"}, "skip_grant_tables is refused: it would allow logins without a password"),
    ("mysql", {"skip-networking": 1}, "skip-networking is refused"),
    ("mysql", {"max_connections": "100\nskip_grant_tables"}, "max_connections: the value must be one line"),
    ("mysql", {"a b": 1}, "'a b' is not a setting name"),
])
def test_settings_the_role_owns_insecure_or_multi_line_are_refused(tier, settings, expected):
    problems = extra_settings_problems(settings, tier)
    assert len(problems) == 1 and expected in problems[0], problems


def test_a_switched_off_insecure_setting_passes():
    assert extra_settings_problems({"local_infile": "OFF", "skip_grant_tables": 0}, "mysql") == []


def test_the_filters_are_registered():
    assert set(FilterModule().filters()) == {"extra_args_problems", "extra_args_words", "extra_settings_problems",
                                           "gossip_problems"}


GOSSIP = {"alertmanager_cluster_peer_timeout": "15s", "alertmanager_cluster_gossip_interval": "200ms",
          "alertmanager_cluster_pushpull_interval": "1m0s", "alertmanager_cluster_probe_interval": "1s",
          "alertmanager_cluster_probe_timeout": "500ms", "alertmanager_cluster_tcp_timeout": "10s"}


@pytest.mark.parametrize("text,seconds", [("1s", 1.0), ("500ms", 0.5), ("1m30s", 90.0), ("1m0s", 60.0),
                                          ("1.5s", 1.5), ("2h", 7200.0), ("1", None), ("1 s", None), ("", None),
                                          ("s", None), ("-1s", None)])
def test_go_seconds(text, seconds):
    assert go_seconds(text) == seconds


def test_upstream_gossip_defaults_pass():
    assert gossip_problems(GOSSIP) == []
    assert gossip_problems({**GOSSIP, "alertmanager_cluster_probe_interval": "500ms",
                            "alertmanager_cluster_probe_timeout": "200ms"}) == []


@pytest.mark.parametrize("variable,value", [("alertmanager_cluster_peer_timeout", "15"),
                                            ("alertmanager_cluster_gossip_interval", "0s"),
                                            ("alertmanager_cluster_tcp_timeout", "ten seconds"),
                                            ("alertmanager_cluster_pushpull_interval", "")])
def test_a_gossip_setting_that_is_no_duration_is_refused_by_name(variable, value):
    problems = gossip_problems({**GOSSIP, variable: value})
    assert len(problems) == 1
    assert problems[0].startswith(f"{variable} is {value!r}")


@pytest.mark.parametrize("timeout", ["1s", "2s", "1000ms"])
def test_a_probe_timeout_not_shorter_than_the_interval_is_refused(timeout):
    problems = gossip_problems({**GOSSIP, "alertmanager_cluster_probe_timeout": timeout})
    assert problems == [p for p in problems if p.startswith("alertmanager_cluster_probe_timeout")]
    assert len(problems) == 1 and "shorter than alertmanager_cluster_probe_interval (1s)" in problems[0]


def test_gossip_problems_wants_a_mapping():
    with pytest.raises(AnsibleFilterError):
        gossip_problems(["1s"])
    assert FilterModule().filters()["gossip_problems"] is gossip_problems
