"""Unit tests for plugins/filter/secretfields.py."""

import pytest
from secretfields import FilterModule, carries_secrets


def job(**fields):
    return {"scrape_configs": [{"job_name": "j", "static_configs": [{"targets": ["h:1"]}], **fields}]}


@pytest.mark.parametrize("config", [
    {"receivers": [{"name": "pd", "pagerduty_configs": [{"routing_key": "R0"}]}]},
    {"receivers": [{"name": "pd", "pagerduty_configs": [{"service_key": "S0"}]}]},
    {"receivers": [{"name": "hook", "webhook_configs": [{"url": "https://h.example/T0"}]}]},
    {"receivers": [{"name": "hook", "webhook_configs": [{"url": "https://h", "http_config": {
        "basic_auth": {"username": "u", "password": "p"}}}]}]},
    {"receivers": [{"name": "hook", "webhook_configs": [{"url_file": "/f", "http_config": {
        "authorization": {"credentials": "c"}}}]}]},
    {"receivers": [{"name": "og", "opsgenie_configs": [{"api_key": "k"}]}]},
    {"receivers": [{"name": "tg", "telegram_configs": [{"bot_token": "t", "chat_id": 1}]}]},
    {"global": {"slack_api_url": "https://hooks.slack.example/T0"}},
    {"global": {"smtp_auth_password": "p"}},
    job(basic_auth={"username": "u", "password": "p"}),
    job(authorization={"credentials": "c"}),
    job(oauth2={"client_id": "i", "client_secret": "s", "token_url": "https://t"}),
    job(params={"authKey": ["k"]}),
    {"remote_write": [{"url": "https://vm/api/v1/write", "headers": {"X-Token": "t"}}]},
    {"remote_write": [{"url": "https://vm/api/v1/write", "sigv4": {"access_key": "a", "secret_key": "s"}}]},
])
def test_a_secret_anywhere_is_found(config):
    assert carries_secrets(config) is True


@pytest.mark.parametrize("config", [
    {"route": {"receiver": "blackhole"}, "receivers": [{"name": "blackhole"}]},
    {"receivers": [{"name": "hook", "webhook_configs": [{"url_file": "/etc/am/hook.url"}]}]},
    job(basic_auth={"username": "u", "password_file": "/etc/prometheus/p"}),
    job(oauth2={"client_id": "i", "client_secret_file": "/f", "token_url": "https://t"}),
    job(params={"module": ["http_2xx"]}, tls_config={"ca_file": "/ca", "key_file": "/k", "cert_file": "/c"}),
    {"remote_write": [{"url": "https://vm/api/v1/write", "basic_auth": {"username": "u", "password_file": "/p"}}]},
    {"receivers": [{"name": "pd", "pagerduty_configs": [{"routing_key": ""}]}]},
    job(params={"authKey": []}),
    {},
])
def test_files_names_and_empty_fields_are_not_secrets(config):
    assert carries_secrets(config) is False


def test_the_filter_is_registered():
    assert FilterModule().filters() == {"carries_secrets": carries_secrets}
