"""Unit tests for the Prometheus configuration filters (collections/.../plugin_utils/prometheus.py)."""

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.promha.stack.plugins.plugin_utils.prometheus import (
    FilterModule,
    prometheus_called_tiers,
    prometheus_clients,
    remote_write_configs,
    retention_size,
    rule_file_specs,
)

VALIDATE = "/usr/bin/promtool check rules %s"
WEB = "/etc/prometheus/web"


def test_a_replica_calls_the_exporters_some_host_serves_and_grafana_and_the_front_when_asked():
    view = {"endpoints": {"mysql_exporter": {"db-1": "10.0.0.51:9104"}, "nginx_exporter": {}}}
    assert prometheus_called_tiers(view) == ["alertmanager", "node_exporter", "remote_storage", "mysql_exporter"]
    assert prometheus_called_tiers(view, grafana="true", front=True)[-2:] == ["grafana_metrics", "front"]
    with pytest.raises(AnsibleFilterError, match="expects the stack model or a host's view"):
        prometheus_called_tiers(["alertmanager"])


def test_the_clients_of_a_replica_with_tls_and_accounts(tmp_path):
    ca = tmp_path / "ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    reached = {"tls": True, "user": "promha", "password": "pw", "ca": str(ca)}
    tiers = {"alertmanager": reached, "remote_storage": dict(reached, user=""), "grafana_metrics": reached,
             "front": dict(reached, user="")}
    found = prometheus_clients(tiers, {"tls": True, "user": "promha", "password": "own"}, WEB, "prometheus",
                               blackbox_ca="/etc/prometheus/blackbox/ca.crt")
    # Grafana's /metrics takes the client files and the jobs' tier name "grafana".
    assert sorted(found["tiers"]) == ["alertmanager", "front", "grafana", "remote_storage"]
    assert found["blocks"]["grafana"] == {"scheme": "https", "tls_config": {"ca_file": f"{WEB}/grafana-ca.crt"},
                                          "basic_auth": {"username": "promha", "password_file": f"{WEB}/grafana.password"}}
    own = {"scheme": "https", "tls_config": {"ca_file": f"{WEB}/ca.crt"},
           "basic_auth": {"username": "promha", "password_file": f"{WEB}/client.password"}}
    assert found["blocks"]["prometheus"] == own
    assert found["blocks"]["blackbox"] == dict(own, tls_config={"ca_file": "/etc/prometheus/blackbox/ca.crt"})
    assert [f["path"] for f in found["files"]] == [
        f"{WEB}/client.password", f"{WEB}/alertmanager.password", f"{WEB}/alertmanager-ca.crt", f"{WEB}/front-ca.crt",
        f"{WEB}/grafana.password", f"{WEB}/grafana-ca.crt", f"{WEB}/remote_storage-ca.crt"]
    assert found["files"][0]["secret_content"] == "own" and found["files"][1]["secret_content"] == "pw"
    assert found["front_modules"] == {
        "prometheus": own["basic_auth"], "storage": {}, "grafana": {},
        "alertmanager": {"username": "promha", "password_file": f"{WEB}/alertmanager.password"}}


def test_the_clients_of_a_plain_replica_send_nothing():
    plain = {"tls": False, "user": "", "password": "", "ca": ""}
    found = prometheus_clients({"alertmanager": plain, "node_exporter": plain}, {"tls": False, "user": ""}, WEB, "p")
    assert found["files"] == []
    assert found["blocks"] == {"alertmanager": {}, "node_exporter": {}, "prometheus": {}, "blackbox": {}}
    assert found["front_modules"] == {"prometheus": {}, "alertmanager": {}, "storage": {}, "grafana": {}}
    with pytest.raises(AnsibleFilterError, match="expects {tier: access}"):
        prometheus_clients({"grafana": plain}, {}, WEB, "p")


def test_the_default_rules_then_each_site_file_under_its_base_name(tmp_path):
    (tmp_path / "site").mkdir()
    web = tmp_path / "site" / "web.yaml"
    web.write_text("groups: []\n\n")
    db = tmp_path / "db.rules.yml"
    db.write_text("groups:\n  - name: db\n")
    found = rule_file_specs([str(web), str(db)], "/etc/prometheus/rules/", "prometheus", VALIDATE,
                            default="groups: [promha]\n")
    assert [entry["path"] for entry in found] == [
        "/etc/prometheus/rules/promha.yml", "/etc/prometheus/rules/web.yml", "/etc/prometheus/rules/db.rules.yml"]
    # Content as it is (trailing blank lines kept), each entry checked before it goes live.
    assert found[1] == {"path": "/etc/prometheus/rules/web.yml", "content": "groups: []\n\n",
                        "group": "prometheus", "mode": "0644", "validate": VALIDATE}
    assert rule_file_specs([], "/r", "prometheus", VALIDATE) == []


def test_two_files_on_one_name_are_refused_naming_both(tmp_path):
    for name in ("a.yml", "a.yaml"):
        (tmp_path / name).write_text("groups: []\n")
    with pytest.raises(AnsibleFilterError, match=r"a.yaml and .*a.yml would both be written as /r/a.yml"):
        rule_file_specs([str(tmp_path / "a.yml"), str(tmp_path / "a.yaml")], "/r", "prometheus")
    (tmp_path / "promha.yml").write_text("groups: []\n")
    with pytest.raises(AnsibleFilterError, match="the stack's default rules would both be written"):
        rule_file_specs([str(tmp_path / "promha.yml")], "/r", "prometheus", default="groups: []\n")


def test_a_missing_file_and_a_string_are_clear_errors(tmp_path):
    with pytest.raises(AnsibleFilterError, match=r"none.yml cannot be read"):
        rule_file_specs([str(tmp_path / "none.yml")], "/r", "prometheus")
    with pytest.raises(AnsibleFilterError, match="must be a list"):
        rule_file_specs("rules.yml", "/r", "prometheus")
    assert set(FilterModule().filters()) == {"rule_file_specs", "remote_write_configs", "retention_size",
                                             "prometheus_called_tiers", "prometheus_clients", "scrape_settings_need_host"}


def test_remote_write_goes_to_every_storage_node_with_the_tiers_access():
    auth = {"tls_config": {"ca_file": "/w/remote_storage-ca.crt"},
            "basic_auth": {"username": "promha", "password_file": "/w/remote_storage.password"}}
    relabel = [{"action": "labeldrop", "regex": "replica"}]
    extra = [{"url": "https://elsewhere/api/v1/write"}]
    found = remote_write_configs(["10.0.0.41:8428", "[fd00::42]:8428"], tls=True, auth=auth,
                                 queue={"max_shards": 10}, relabel=relabel, extra=extra)
    assert found == [
        {"url": "https://10.0.0.41:8428/api/v1/write", "queue_config": {"max_shards": 10},
         "write_relabel_configs": relabel, **auth},
        {"url": "https://[fd00::42]:8428/api/v1/write", "queue_config": {"max_shards": 10},
         "write_relabel_configs": relabel, **auth},
        extra[0]]
    assert remote_write_configs(["s:8428"], tls="false") == [{"url": "http://s:8428/api/v1/write"}]
    assert remote_write_configs([], extra=extra) == extra


@pytest.mark.parametrize("setting,percent,fs_bytes,expected", [
    ("20GB", 80, None, "20GB"),
    ("0", 80, "x", "0"),
    ("auto", 80, "107374182400", "81920MB"),
    ("auto", "30", " 10737418240\n", "3072MB"),
    ("auto", 1, "1048575", "0MB"),
])
def test_retention_size_is_the_setting_or_a_share_of_the_filesystem(setting, percent, fs_bytes, expected):
    assert retention_size(setting, percent, fs_bytes) == expected


def test_retention_size_names_an_unread_filesystem():
    with pytest.raises(AnsibleFilterError, match="prometheus_retention_size is auto, and the data filesystem"):
        retention_size("auto", 80, "")
