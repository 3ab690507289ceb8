"""Unit tests for plugins/filter/frontend.py."""

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.promha.stack.plugins.plugin_utils.frontend import (
    FilterModule,
    front_probes,
    front_url,
    grafana_prometheus_datasources,
    grafana_provisioning_problems,
    ini_problems,
    mysql_stale_accounts,
    not_ip_addresses,
    prometheus_upstreams,
    secret_problem,
    secret_problems,
)
from ansible_collections.promha.stack.plugins.plugin_utils.model import stack_model, stack_view


@pytest.mark.parametrize("value,expected", [
    (None, "is not set"),
    (12345678901234, "must be a string, got int"),
    ("", "is a placeholder; set a real value through ansible-vault"),
    ("changeme", "is a placeholder; set a real value through ansible-vault"),
    ("  Password ", "is a placeholder; set a real value through ansible-vault"),
    ("please-CHANGEME-now-1234", "is a placeholder; set a real value through ansible-vault"),
    ("REPLACE_WITH_VAULT_VALUE", "is a placeholder; set a real value through ansible-vault"),
    ("<grafana db password>", "is a placeholder; set a real value through ansible-vault"),
    ("short-1", "is shorter than 12 characters"),
    ("k3v9-Qz81-pLm2", ""),
])
def test_secret_problem(value, expected):
    assert secret_problem(value) == expected


def test_secret_problem_minimum_length_is_a_parameter():
    assert secret_problem("abcdefgh", min_length=8) == ""
    assert secret_problem("abcdefgh", min_length=9) == "is shorter than 9 characters"


@pytest.mark.parametrize("value", ["k3v9-Qz81-pLm2\nadmin_user = x", "k3v9-Qz81\r-pLm2", 'k3v9-Qz81-"""pLm2', "k3v9-Qz81\0pLm2"])
def test_secret_problem_refuses_what_would_end_a_quoted_value(value):
    assert "line break" in secret_problem(value)


def test_secret_problems_names_each_bad_variable_in_order():
    assert secret_problems({
        "grafana_admin_password": "k3v9-Qz81-pLm2",
        "grafana_secret_key": None,
        "mysql_grafana_password": "changeme",
    }) == [
        "grafana_secret_key is not set",
        "mysql_grafana_password is a placeholder; set a real value through ansible-vault",
    ]
    assert secret_problems({}) == []
    with pytest.raises(AnsibleFilterError, match="expected a mapping"):
        secret_problems(["grafana_secret_key"])


def test_not_ip_addresses():
    assert not_ip_addresses(["10.0.0.5", "fd00::2", "[fd00::3]", "10.0.%", "grafana-1", "localhost"]) \
        == ["grafana-1", "localhost"]
    assert not_ip_addresses([]) == []
    with pytest.raises(AnsibleFilterError, match="expected a list"):
        not_ip_addresses("10.0.0.5")


def test_mysql_stale_accounts():
    users = {
        "localhost": {"root": {}, "mariadb.sys": {}, "": {}},
        "%": {"root": {}},
        "10.0.0.5": {"grafana": {}},
        "10.0.0.6": {"grafana": {}, "reporting": {}},
        "10.0.0.9": {"grafana": {}},
    }
    assert mysql_stale_accounts(users, "grafana", ["10.0.0.5", "10.0.0.6"]) == [
        {"user": "root", "host": "%"},
        {"user": "grafana", "host": "10.0.0.9"},
        {"user": "", "host": "localhost"},
    ]
    # An account the toolkit does not manage (reporting) and root@localhost stay.
    assert mysql_stale_accounts({"localhost": {"root": {}}}, "grafana", []) == []
    with pytest.raises(AnsibleFilterError, match="expected mysql_info users"):
        mysql_stale_accounts([], "grafana", [])


HOSTVARS = {
    "p1": {"stack_address": "10.0.0.21", "prometheus_shard": 0},
    "p2": {"stack_address": "10.0.0.22", "prometheus_shard": 0},
    "p3": {"stack_address": "10.0.0.23", "prometheus_shard": 1, "prometheus_port": 9091},
    "p4": {"stack_address": "10.0.0.24", "prometheus_shard": 1},
    "g1": {"stack_address": "10.0.0.31"},
}


def model_of(shards, global_hosts=()):
    """The stack model of HOSTVARS' Prometheus hosts in ``shards`` and on the global tier."""
    hostvars = {host: dict(HOSTVARS[host], prometheus_shard=shard, prometheus_min_replicas=1)
                for shard, hosts in shards.items() for host in hosts}
    hostvars.update({host: HOSTVARS[host] for host in global_hosts})
    members = [host for hosts in shards.values() for host in hosts]
    return stack_model({"all": members + list(global_hosts), "prometheus": members,
                        "prometheus_global": list(global_hosts)}, hostvars)


TWO_SHARDS = model_of({0: ["p1"], 1: ["p3"]})
TWO_SHARDS_AND_GLOBAL = model_of({0: ["p1"], 1: ["p3"]}, ["g1"])


def test_prometheus_upstreams_one_per_shard_then_global():
    upstreams = prometheus_upstreams(model_of({1: ["p3", "p4"], 0: ["p1", "p2"]}, ["g1"]))
    assert upstreams == [
        {"name": "prometheus_shard_0", "path": "/prometheus/shard-0/",
         "servers": ["10.0.0.21:9090", "10.0.0.22:9090"]},
        {"name": "prometheus_shard_1", "path": "/prometheus/shard-1/",
         "servers": ["10.0.0.23:9091", "10.0.0.24:9090"]},
        {"name": "prometheus_global", "path": "/prometheus/global/", "servers": ["10.0.0.31:9090"]},
    ]
    # A host's view serves as well as the model.
    assert prometheus_upstreams(stack_view("p1", model_of({0: ["p1"]}))) == [
        {"name": "prometheus_shard_0", "path": "/prometheus/shard-0/", "servers": ["10.0.0.21:9090"]}]
    assert prometheus_upstreams({"shards": {}, "global": [], "endpoints": {"prometheus": {}}}) == []
    with pytest.raises(AnsibleFilterError, match="expects the stack model"):
        prometheus_upstreams(["p1", "p2"])
    with pytest.raises(AnsibleFilterError, match="expects the stack model"):
        prometheus_upstreams({"shards": {0: ["p1"]}, "global": []})
    with pytest.raises(AnsibleFilterError, match="no Prometheus endpoint for p2"):
        prometheus_upstreams({"shards": {0: ["p1", "p2"]}, "endpoints": {"prometheus": {"p1": "10.0.0.21:9090"}}})


def test_grafana_datasources_default_is_global_else_shard_0():
    with_global = grafana_prometheus_datasources(
        prometheus_upstreams(TWO_SHARDS_AND_GLOBAL), "http://10.0.0.70/")
    assert [(s["name"], s["url"], s["isDefault"]) for s in with_global] == [
        ("Prometheus shard 0", "http://10.0.0.70/prometheus/shard-0", False),
        ("Prometheus shard 1", "http://10.0.0.70/prometheus/shard-1", False),
        ("Prometheus global", "http://10.0.0.70/prometheus/global", True),
    ]
    assert [s["uid"] for s in with_global] == [
        "promha-prometheus-shard-0", "promha-prometheus-shard-1", "promha-prometheus-global"]
    shards_only = grafana_prometheus_datasources(prometheus_upstreams(TWO_SHARDS), "http://lb")
    assert [s["isDefault"] for s in shards_only] == [True, False]
    assert grafana_provisioning_problems({"apiVersion": 1, "datasources": with_global}, "datasources") == []
    with pytest.raises(AnsibleFilterError, match="expected prometheus_upstreams"):
        grafana_prometheus_datasources("prometheus_shard_0", "http://lb")
    assert all("basicAuth" not in s and "secureJsonData" not in s for s in with_global)
    beside_storage = grafana_prometheus_datasources(
        prometheus_upstreams(TWO_SHARDS_AND_GLOBAL), "http://lb", default="")
    assert [s["isDefault"] for s in beside_storage] == [False, False, False]


def test_grafana_prometheus_datasources_send_basic_auth_when_prometheus_wants_it():
    sources = grafana_prometheus_datasources(prometheus_upstreams(TWO_SHARDS), "https://lb",
                                             basic_auth_user="promha", basic_auth_password="k3v9-Qz81-pLm2")
    assert [(s["basicAuth"], s["basicAuthUser"], s["secureJsonData"]) for s in sources] == [
        (True, "promha", {"basicAuthPassword": "k3v9-Qz81-pLm2"})] * 2
    assert grafana_provisioning_problems({"apiVersion": 1, "datasources": sources}, "datasources") == []


def test_grafana_prometheus_datasources_check_an_https_front_against_its_ca():
    ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    sources = grafana_prometheus_datasources(prometheus_upstreams(TWO_SHARDS), "https://10.0.0.70",
                                             basic_auth_user="promha", basic_auth_password="k3v9-Qz81-pLm2", ca_pem=ca)
    for source in sources:
        assert source["jsonData"] == {"httpMethod": "POST", "tlsAuthWithCACert": True}
        assert source["secureJsonData"] == {"basicAuthPassword": "k3v9-Qz81-pLm2", "tlsCACert": ca}
    # A plain-HTTP front has no certificate to check: the CA is not sent.
    one_shard = prometheus_upstreams(model_of({0: ["p1"]}))
    plain = grafana_prometheus_datasources(one_shard, "http://10.0.0.70", ca_pem=ca)
    assert "secureJsonData" not in plain[0] and "tlsAuthWithCACert" not in plain[0]["jsonData"]


INI = """\
[database]
type = mysql
host = 10.0.0.11:3306
password =
[security]
secret_key = k3v9-Qz81-pLm2
"""


def test_ini_problems():
    assert ini_problems(INI, {"database": ["type", "host"], "security": ["secret_key"]}) == []
    assert ini_problems(INI, {"database": ["type", "password", "name"], "server": ["root_url"]}) == [
        "[database] password is missing or empty",
        "[database] name is missing or empty",
        "section [server] is missing",
    ]
    problems = ini_problems("[database]\ntype = mysql\n[database]\n", {})
    assert len(problems) == 1 and problems[0].startswith("does not parse:") and "\n" not in problems[0]
    assert ini_problems("type = mysql\n", {})[0].startswith("does not parse:")


def test_datasource_provisioning_problems():
    good = {"name": "A", "uid": "a", "type": "prometheus", "access": "proxy", "url": "http://lb/a"}
    assert grafana_provisioning_problems({"apiVersion": 1, "datasources": [good]}, "datasources") == []
    doc = {"apiVersion": 2, "datasources": [
        good,
        dict(good, isDefault=True),
        dict(good, name="B", type="graphite", access="browser", isDefault=True),
        {"name": "C"},
        "not a mapping",
    ]}
    assert grafana_provisioning_problems(doc, "datasources") == [
        "apiVersion must be 1",
        "datasources[1]: name 'A' is used twice",
        "datasources[1]: uid 'a' is used twice",
        "datasources[2]: type 'graphite' is not one this stack provisions",
        "datasources[2]: access must be proxy or direct",
        "datasources[2]: uid 'a' is used twice",
        "datasources[3]: type is required",
        "datasources[3]: access is required",
        "datasources[3]: url is required",
        "datasources[4]: must be a mapping",
        "datasources: 2 are marked isDefault; at most one may be",
    ]
    assert grafana_provisioning_problems({"apiVersion": 1, "datasources": []}, "datasources") == [
        "datasources: a non-empty list is required"]
    assert grafana_provisioning_problems(["datasources"], "datasources") == [
        "datasources: the document must be a mapping"]


def test_dashboard_provider_problems():
    good = {"name": "promha", "type": "file", "options": {"path": "/var/lib/grafana/dashboards/promha"}}
    assert grafana_provisioning_problems({"apiVersion": 1, "providers": [good]}, "dashboards") == []
    doc = {"apiVersion": 1, "providers": [
        {"type": "sql", "options": {"path": "dashboards"}},
        {"name": "x"},
        7,
    ]}
    assert grafana_provisioning_problems(doc, "dashboards") == [
        "providers[0]: name is required",
        "providers[0]: type must be file",
        "providers[0]: options.path must be an absolute directory",
        "providers[1]: options.path must be an absolute directory",
        "providers[2]: must be a mapping",
    ]
    assert grafana_provisioning_problems({"apiVersion": 1}, "dashboards") == [
        "providers: a non-empty list is required"]
    with pytest.raises(AnsibleFilterError, match="unknown kind 'alerts'"):
        grafana_provisioning_problems({}, "alerts")


def test_filter_module_exports_every_filter():
    filters = FilterModule().filters()
    assert set(filters) == {
        "secret_problem", "secret_problems", "not_ip_addresses", "mysql_stale_accounts",
        "prometheus_upstreams", "grafana_prometheus_datasources", "ini_problems",
        "grafana_provisioning_problems", "front_probes", "front_url",
    }
    assert all(callable(f) for f in filters.values())


UPSTREAMS = [{"name": "prometheus_shard_0", "path": "/prometheus/shard-0/"},
             {"name": "prometheus_shard_1", "path": "/prometheus/shard-1/"},
             {"name": "prometheus_global", "path": "/prometheus/global/"}]


def test_every_path_of_the_front_is_probed_with_its_tiers_module():
    assert front_probes("https://10.0.0.70/", UPSTREAMS) == [
        {"targets": ["https://10.0.0.70/prometheus/shard-0/-/ready", "https://10.0.0.70/prometheus/shard-1/-/ready",
                     "https://10.0.0.70/prometheus/global/-/ready"], "labels": {"module": "front_prometheus"}},
        {"targets": ["https://10.0.0.70/alertmanager/-/ready"], "labels": {"module": "front_alertmanager"}},
        {"targets": ["https://10.0.0.70/storage/api/v1/query?query=1"], "labels": {"module": "front_storage"}},
        {"targets": ["https://10.0.0.70/grafana/api/health"], "labels": {"module": "front_grafana"}},
    ]


def test_paths_the_front_does_not_serve_are_not_probed():
    probes = front_probes("http://[fd00::70]:8080", [], alertmanager=False, storage=True, grafana=False)
    assert probes == [{"targets": ["http://[fd00::70]:8080/storage/api/v1/query?query=1"],
                       "labels": {"module": "front_storage"}}]


@pytest.mark.parametrize("url,upstreams", [("10.0.0.70", UPSTREAMS), (None, UPSTREAMS),
                                           ("https://10.0.0.70", [{"name": "x"}]), ("https://10.0.0.70", "x")])
def test_front_probes_refuses_what_it_cannot_use(url, upstreams):
    with pytest.raises(AnsibleFilterError, match="front_probes"):
        front_probes(url, upstreams)


@pytest.mark.parametrize("hostvars,tls,url,expected", [
    ({"lb-1": {"keepalived_virtual_ipaddress": "10.0.0.70/24", "ansible_host": "10.0.0.31"}}, True, "",
     "https://10.0.0.70:443"),
    ({"lb-1": {"keepalived_virtual_ipaddress": "fd00::70/64", "nginx_tls_port": 8443}}, "yes", "", "https://[fd00::70]:8443"),
    ({"lb-1": {"ansible_host": "10.0.0.31", "nginx_listen_port": 8080}}, False, "", "http://10.0.0.31:8080"),
    ({"lb-1": {"keepalived_virtual_ipaddress": ""}}, "false", "", "http://lb-1:80"),
    ({"lb-1": {}}, True, "https://grafana.example.org//", "https://grafana.example.org"),
])
def test_front_url_is_the_address_users_reach(hostvars, tls, url, expected):
    assert front_url("lb-1", hostvars, tls=tls, url=url) == expected


@pytest.mark.parametrize("settings,tls,expected", [
    ({"keepalived_virtual_ipaddress": "10.0.0.70/24"}, True, "https://10.0.0.70"),
    ({"keepalived_virtual_ipaddress": "fd00::70/64"}, True, "https://[fd00::70]"),
    ({"keepalived_virtual_ipaddress": "fd00::70/64", "nginx_tls_port": 8443}, True, "https://[fd00::70]:8443"),
    ({"ansible_host": "10.0.0.31"}, False, "http://10.0.0.31"),
    ({"ansible_host": "10.0.0.31", "nginx_listen_port": 443}, False, "http://10.0.0.31:443"),
])
def test_the_short_front_url_leaves_out_the_schemes_default_port(settings, tls, expected):
    assert front_url("lb-1", {"lb-1": settings}, tls=tls, short=True) == expected


def test_front_url_names_a_bad_port():
    with pytest.raises(AnsibleFilterError, match=r"front_url: port 'x' of host 'lb-1' is not a number"):
        front_url("lb-1", {"lb-1": {"nginx_tls_port": "x"}}, tls=True)
