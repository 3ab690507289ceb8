"""Unit tests for the Prometheus configuration filters (collections/.../plugin_utils/prometheus.py)."""

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.promha.stack.plugins.plugin_utils.prometheus import (
    FilterModule,
    remote_write_configs,
    retention_size,
    rule_file_specs,
)

VALIDATE = "/usr/bin/promtool check rules %s"


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
    assert set(FilterModule().filters()) == {"rule_file_specs", "remote_write_configs", "retention_size"}


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
