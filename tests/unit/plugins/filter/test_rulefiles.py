"""Unit tests for the rule files' entries (collections/.../plugin_utils/rulefiles.py)."""

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.promha.stack.plugins.plugin_utils.rulefiles import FilterModule, rule_file_specs

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
    assert FilterModule().filters() == {"rule_file_specs": rule_file_specs}
