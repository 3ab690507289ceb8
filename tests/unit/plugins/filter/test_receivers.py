"""Unit tests for plugins/filter/receivers.py."""

import pytest
from ansible.errors import AnsibleFilterError
from receivers import FilterModule, alertmanager_simple_receivers, alertmanager_smtp_global


def test_each_kind_becomes_a_receiver_in_alertmanagers_format():
    assert alertmanager_simple_receivers([{"name": "mail", "to": "ops@example.org"}], "email") == [
        {"name": "mail", "email_configs": [{"to": "ops@example.org", "send_resolved": True}]}]
    assert alertmanager_simple_receivers(
        [{"name": "chat", "api_url": "https://hooks.slack.example/T0", "channel": "#ops", "title": "{{ .Status }}"}],
        "slack") == [{"name": "chat", "slack_configs": [
            {"api_url": "https://hooks.slack.example/T0", "channel": "#ops", "title": "{{ .Status }}",
             "send_resolved": True}]}]
    assert alertmanager_simple_receivers([{"name": "hook", "url": "http://h:8080/", "send_resolved": False}],
                                         "webhook") == [
        {"name": "hook", "webhook_configs": [{"url": "http://h:8080/", "send_resolved": False}]}]
    assert alertmanager_simple_receivers([], "email") == []


@pytest.mark.parametrize("entries,kind,message", [
    ([{"name": "chat", "channel": "#ops"}], "slack", r"alertmanager_slack_receivers\[0\] \(chat\) lacks api_url"),
    ([{"to": "a@b"}], "email", r"alertmanager_email_receivers\[0\] lacks name"),
    ([{"name": "a", "url": "u"}, {"name": "a", "url": "v"}], "webhook", "the name 'a' is used twice"),
    ({"name": "a"}, "webhook", "must be a list of mappings"),
    (["a"], "email", r"alertmanager_email_receivers\[0\] must be a mapping"),
    ([], "pager", "kind must be one of email, slack, webhook"),
])
def test_bad_entries_are_named(entries, kind, message):
    with pytest.raises(AnsibleFilterError, match=message):
        alertmanager_simple_receivers(entries, kind)


def test_smtp_settings_become_global_keys_with_tls_required_by_default():
    assert alertmanager_smtp_global({}) == {}
    assert alertmanager_smtp_global({"smarthost": "mx.example.org:587", "from": "am@example.org",
                                     "auth_username": "am", "auth_password": "vaulted-secret"}) == {
        "smtp_smarthost": "mx.example.org:587", "smtp_from": "am@example.org", "smtp_auth_username": "am",
        "smtp_auth_password": "vaulted-secret", "smtp_require_tls": True}
    assert alertmanager_smtp_global({"smarthost": "h:25", "from": "a@b", "require_tls": False})[
        "smtp_require_tls"] is False


@pytest.mark.parametrize("smtp,message", [
    ({"smarthost": "h:25"}, "lacks from"),
    ({"smarthost": "mx.example.org", "from": "a@b"}, "must be host:port"),
    ({"smarthost": "h:25", "from": "a@b", "password": "x"}, "unknown key"),
    ("h:25", "must be a mapping"),
])
def test_bad_smtp_settings_are_named(smtp, message):
    with pytest.raises(AnsibleFilterError, match=message):
        alertmanager_smtp_global(smtp)


def test_filter_module_exports():
    assert set(FilterModule().filters()) == {"alertmanager_simple_receivers", "alertmanager_smtp_global"}
