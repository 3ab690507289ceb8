"""Unit tests for preflight (the whole-inventory problem list: collections/.../plugin_utils/preflight.py
and each subject's check)."""

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.promha.stack.plugins.plugin_utils.domains import failure_domain_problems
from ansible_collections.promha.stack.plugins.plugin_utils.preflight import (
    FilterModule,
    inventory_check,
    inventory_problems,
    inventory_warnings,
)
from ansible_collections.promha.stack.plugins.plugin_utils.prometheus import scrape_settings_need_host
from jinja2 import Undefined

GOOD_SECRET = "k3v9-Qz81-pLm2"


def inventory():
    """A small inventory that passes: one shard pair, two Alertmanagers, the front."""
    hostvars = {
        "p1": {"stack_address": "10.0.0.21", "prometheus_shard": 0},
        "p2": {"stack_address": "10.0.0.22", "prometheus_shard": 0},
        "a1": {"stack_address": "10.0.0.31"},
        "a2": {"stack_address": "10.0.0.32"},
        "db": {"stack_address": "10.0.0.51", "mysql_grafana_password": GOOD_SECRET},
        "g1": {"stack_address": "10.0.0.61"},
        "g2": {"stack_address": "10.0.0.62"},
        "lb1": {"stack_address": "10.0.0.71", "keepalived_virtual_ipaddress": "10.0.0.70/24"},
        "lb2": {"stack_address": "10.0.0.72", "keepalived_virtual_ipaddress": "10.0.0.70/24"},
    }
    for host in hostvars:
        hostvars[host]["stack_plain_http"] = True  # the secure defaults have tests of their own, below
        hostvars[host]["firewall_admin_sources"] = ["10.0.0.1"]
    for host in ("g1", "g2"):
        hostvars[host].update(grafana_database_password=GOOD_SECRET, grafana_admin_password="admin-" + GOOD_SECRET,
                              grafana_secret_key="key-" + GOOD_SECRET)
    groups = {
        "all": sorted(hostvars), "prometheus": ["p1", "p2"], "alertmanager": ["a1", "a2"], "mysql": ["db"],
        "grafana": ["g1", "g2"], "loadbalancer": ["lb1", "lb2"],
    }
    return groups, hostvars


def test_a_good_inventory_has_no_problem():
    groups, hostvars = inventory()
    assert inventory_problems(groups, hostvars) == []


def test_every_problem_is_listed_at_once():
    groups, hostvars = inventory()
    hostvars["p2"]["prometheus_shard"] = 1           # shard 0 and 1 with one replica each
    hostvars["a2"]["stack_address"] = "am-2.example"  # no IP to advertise
    hostvars["db"]["mysql_grafana_password"] = "changeme"
    hostvars["g2"]["grafana_secret_key"] = "another-" + GOOD_SECRET
    hostvars["g1"]["grafana_database_password"] = "other-" + GOOD_SECRET
    del hostvars["g1"]["grafana_admin_password"]
    hostvars["lb2"]["keepalived_virtual_ipaddress"] = "10.0.0.70"
    problems = inventory_problems(groups, hostvars)
    assert len(problems) == 7, problems
    assert "shard 0 has 1 replica(s) (p1); this environment requires at least 2" in problems[0]
    assert "host 'a2' instance '9093' only has the name 'am-2.example'" in problems[1]
    assert problems[2:] == [
        "host db: mysql_grafana_password is a placeholder; set a real value through ansible-vault "
        "(set it in the inventory's vault file)",
        "host g1: grafana_admin_password is not set (set it in the inventory's vault file)",
        "grafana hosts (g1, g2): grafana_secret_key must be identical on every instance; set it once, "
        "for the whole group (group_vars/grafana or the vault file)",
        "host lb2: keepalived_virtual_ipaddress must be the floating address with its prefix length "
        "(for example 10.0.0.70/24); set it in group_vars/loadbalancer",
        # The firewall's rules name their callers by IP address, once for the whole inventory.
        "firewall_rules: host 'a2' has address 'am-2.example', a name; the firewall needs an IP address: "
        "set stack_address for it",
    ]


def test_the_check_builds_the_model_whole_when_there_is_no_problem_and_names_what_it_cannot_build():
    from ansible_collections.promha.stack.plugins.plugin_utils.model import stack_model

    groups, hostvars = inventory()
    check = inventory_check(groups, hostvars)
    assert check == {"problems": [], "model": stack_model(groups, hostvars)}
    hostvars["p1"]["prometheus_port"] = "ninety"  # no other check reads it: the model names it
    hostvars["a2"]["stack_address"] = "am-2.example"
    check = inventory_check(groups, hostvars)
    assert "stack_model: port 'ninety' of host 'p1' (prometheus_port) is not a number" in check["problems"]
    assert sum("'a2'" in problem and "only has the name" in problem for problem in check["problems"]) == 1
    assert "p1" not in check["model"]["endpoints"]["prometheus"]


def test_grafana_uses_the_database_password():
    groups, hostvars = inventory()
    hostvars["g1"]["grafana_database_password"] = "other-" + GOOD_SECRET
    assert inventory_problems(groups, hostvars) == [
        "hosts g1: grafana_database_password must equal mysql_grafana_password of db; set both from the same "
        "vault variable"]


@pytest.mark.parametrize("database,grafana,expected", [
    ({}, {}, None),                                                    # plain: neither side uses TLS
    ({"mysql_tls_enabled": True}, {"grafana_database_ssl_mode": "true"}, None),
    ({"mysql_tls_enabled": True, "mysql_tls_required": False}, {}, None),   # TLS offered, not required
    ({"mysql_tls_enabled": True}, {}, "requires TLS of the grafana account"),
    ({"mysql_tls_enabled": True}, {"grafana_database_ssl_mode": "false"}, "requires TLS of the grafana account"),
    ({}, {"grafana_database_ssl_mode": "true"}, "serves no TLS"),
    ({"mysql_tls_enabled": False}, {"grafana_database_ssl_mode": "skip-verify"}, "serves no TLS"),
])
def test_grafana_and_the_database_agree_on_tls(database, grafana, expected):
    groups, hostvars = inventory()
    hostvars["db"].update(database)
    for host in ("g1", "g2"):
        hostvars[host].update(grafana)
    problems = inventory_problems(groups, hostvars)
    if expected is None:
        assert problems == []
    else:
        assert [p.split(":", 1)[0] for p in problems] == ["host g1", "host g2"], problems
        assert all("grafana_database_ssl_mode" in p and expected in p for p in problems), problems


def test_an_undefined_template_counts_as_not_set():
    groups, hostvars = inventory()
    hostvars["db"]["mysql_grafana_password"] = Undefined(name="vault_grafana_db_password")
    assert inventory_problems(groups, hostvars)[0] == \
        "host db: mysql_grafana_password is not set (set it in the inventory's vault file)"


def test_the_minimum_replicas_come_from_the_inventory():
    groups, hostvars = inventory()
    groups["prometheus"] = ["p1"]
    assert "requires at least 2" in inventory_problems(groups, hostvars)[0]
    hostvars["p1"]["prometheus_min_replicas"] = 1
    assert inventory_problems(groups, hostvars) == []


def test_balancers_must_share_one_address():
    groups, hostvars = inventory()
    hostvars["lb2"]["keepalived_virtual_ipaddress"] = "10.0.0.80/24"
    assert inventory_problems(groups, hostvars) == [
        "loadbalancer hosts: keepalived_virtual_ipaddress differs (10.0.0.70/24, 10.0.0.80/24); "
        "the balancers share one floating address"]
    groups["loadbalancer"] = ["lb1"]  # a single balancer needs no floating address
    assert inventory_problems(groups, hostvars) == []


def test_inventory_warnings_name_group_vars_of_no_group(tmp_path):
    groups, _ = inventory()
    (tmp_path / "group_vars" / "grafna").mkdir(parents=True)
    (tmp_path / "group_vars" / "all").mkdir()
    (tmp_path / "group_vars" / "mysql.yml").write_text("---\n")
    (tmp_path / "group_vars" / "alertmanagers.yaml").write_text("---\n")
    assert inventory_warnings(groups, str(tmp_path)) == [
        "group_vars/alertmanagers names no group of this inventory (a typo? its variables apply to no host)",
        "group_vars/grafna names no group of this inventory (a typo? its variables apply to no host)",
    ]
    assert inventory_warnings(groups, str(tmp_path / "missing")) == []
    assert inventory_warnings(groups, "") == []


def test_filter_module():
    assert set(FilterModule().filters()) == {"inventory_check", "inventory_problems", "inventory_warnings"}
    with pytest.raises(AnsibleFilterError, match="expected the groups mapping"):
        inventory_problems(["p1"], {})


# --- web access: TLS files and basic-auth passwords ------------------------------------

@pytest.fixture()
def secure(tmp_path):
    """The inventory with the secure defaults: a secrets directory laid out as roles/pki writes it."""
    import subprocess
    from pathlib import Path
    script = Path(__file__).resolve().parents[4] / "scripts" / "test-pki.sh"
    secrets = tmp_path / ".secrets"
    groups, hostvars = inventory()
    for host, hvars in hostvars.items():
        del hvars["stack_plain_http"]
        hvars["inventory_dir"] = str(tmp_path)
        for service in ("prometheus", "alertmanager"):
            subprocess.run(["bash", str(script), str(secrets / "web"), f"{host}/{service}",
                            f"IP:{hvars['stack_address']}", f"DNS:{service}"], check=True)
    for host in groups["alertmanager"]:
        subprocess.run(["bash", str(script), str(secrets / "gossip"), host, f"IP:{hostvars[host]['stack_address']}"],
                       check=True)
    (secrets / "credentials").mkdir()
    for name in ("prometheus_web", "alertmanager_web"):
        (secrets / "credentials" / name).write_text("generated-" + GOOD_SECRET)
    return groups, hostvars, secrets


def test_secure_defaults_with_the_generated_secrets_pass(secure):
    groups, hostvars, _secrets = secure
    assert inventory_problems(groups, hostvars) == []


def test_the_stacks_own_missing_files_are_left_to_the_pki_step(secure):
    groups, hostvars, secrets = secure
    (secrets / "credentials" / "alertmanager_web").unlink()
    (secrets / "web" / "p2" / "prometheus.key").unlink()
    (secrets / "gossip" / "a1.crt").unlink()
    assert inventory_problems(groups, hostvars) == []
    # A path the inventory names is read, and a generated password that is there is checked.
    hostvars["p2"]["prometheus_web_tls_key_src"] = str(secrets / "web" / "p2" / "prometheus.key")
    (secrets / "credentials" / "prometheus_web").write_text("changeme")
    assert inventory_problems(groups, hostvars) == [
        "host p1: prometheus_web_basic_auth_password is a placeholder; set a real value through ansible-vault "
        f"(set it in the inventory's vault file, or leave it unset for the generated one under {secrets}/credentials)",
        "host p2: prometheus_web_basic_auth_password is a placeholder; set a real value through ansible-vault "
        f"(set it in the inventory's vault file, or leave it unset for the generated one under {secrets}/credentials)",
        f"host p2: prometheus_web_tls_key_src {secrets / 'web' / 'p2' / 'prometheus.key'} cannot be read: "
        "No such file or directory",
    ]


def test_gossip_certificates_must_come_from_the_gossip_ca(secure):
    groups, hostvars, secrets = secure
    for host in groups["alertmanager"]:
        hostvars[host]["alertmanager_cluster_tls_cert_src"] = str(secrets / "web" / host / "alertmanager.crt")
        hostvars[host]["alertmanager_cluster_tls_key_src"] = str(secrets / "web" / host / "alertmanager.key")
    problems = inventory_problems(groups, hostvars)
    assert len(problems) == 2 and all("alertmanager_cluster_tls_cert_src" in p and "CA" in p for p in problems), problems


def test_given_files_and_passwords_are_checked(secure):
    groups, hostvars, secrets = secure
    hostvars["p1"]["prometheus_web_tls_key_src"] = str(secrets / "web" / "p2" / "prometheus.key")  # another host's key
    # a1's certificate covers 10.0.0.31, not .32
    hostvars["a2"]["alertmanager_web_tls_cert_src"] = str(secrets / "web" / "a1" / "alertmanager.crt")
    hostvars["a2"]["alertmanager_web_tls_key_src"] = str(secrets / "web" / "a1" / "alertmanager.key")
    hostvars["p2"]["prometheus_web_tls_ca_src"] = str(secrets / "missing.crt")
    hostvars["p2"]["prometheus_web_basic_auth_password"] = "CHANGEME"
    # Set for one host only, the CA and the password also differ from what p2's clients read.
    assert inventory_problems(groups, hostvars) == [
        f'prometheus_web_tls_ca_src differs between hosts (a1, a2, db ...: null; p2: "{secrets / "missing.crt"}"); '
        "every tier and its clients must read one value: set it once, in group_vars/all",
        "prometheus_web_basic_auth_password differs between hosts (a1, a2, db ...; p2); every tier and its clients "
        "must read one value: set it once, in group_vars/all",
        "host p1: prometheus_web_tls_cert_src / prometheus_web_tls_key_src: the key does not belong to the certificate",
        "host p2: prometheus_web_basic_auth_password is a placeholder; set a real value through ansible-vault "
        f"(set it in the inventory's vault file, or leave it unset for the generated one under {secrets}/credentials)",
        f"host p2: prometheus_web_tls_ca_src {secrets / 'missing.crt'} cannot be read: No such file or directory",
        "host a2: alertmanager_web_tls_cert_src / alertmanager_web_tls_key_src: the certificate's subjectAltName "
        "does not cover 10.0.0.32",
    ]


def test_stack_wide_settings_must_agree(secure):
    groups, hostvars, _secrets = secure
    hostvars["lb1"]["prometheus_web_tls_enabled"] = False
    problems = inventory_problems(groups, hostvars)
    assert len(problems) == 1 and problems[0].startswith("prometheus_web_tls_enabled differs between hosts ("), problems
    assert "lb1: false" in problems[0] and "set it once, in group_vars/all" in problems[0]


def test_the_storage_metrics_key_set_for_some_hosts_only_is_refused_never_shown(secure):
    # Prometheus passes the key to VictoriaMetrics' /metrics: both sides must read one value.
    groups, hostvars, _secrets = secure
    for host in ("p1", "p2"):
        hostvars[host]["remote_storage_metrics_auth_key"] = "a-key-only-the-storage-hosts-read"
    problems = inventory_problems(groups, hostvars)
    assert len(problems) == 1 and problems[0].startswith("remote_storage_metrics_auth_key differs between hosts ("), problems
    assert "a-key-only-the-storage-hosts-read" not in problems[0]


def test_plain_http_is_refused_in_production():
    groups, hostvars = inventory()
    for hvars in hostvars.values():
        hvars["stack_environment"] = "production"
    problems = [p for p in inventory_problems(groups, hostvars) if "stack_failure_domain" not in p]
    assert len(problems) == len(hostvars) and all("stack_plain_http is true" in p for p in problems), problems
    for hvars in hostvars.values():
        hvars["stack_environment"] = "staging"
    assert inventory_problems(groups, hostvars) == []


@pytest.mark.parametrize("variable,value,expected", [
    ("prometheus_replica_label", "a\nb", "host p1: prometheus_replica_label: the value of label replica must be one "
                                         "non-empty line, got 'a\\nb'"),
    ("prometheus_external_labels_extra", {"bad-name": "x"}, "host p1: prometheus_external_labels_extra: 'bad-name' "
                                                            "is not a valid label name"),
    ("prometheus_external_labels_extra", {"dc": " "}, "the value of label dc must be one non-empty line"),
])
def test_label_values_cannot_add_lines(variable, value, expected):
    groups, hostvars = inventory()
    hostvars["p1"][variable] = value
    problems = inventory_problems(groups, hostvars)
    assert len(problems) == 1 and expected in problems[0], problems


def test_cluster_label_is_one_word():
    groups, hostvars = inventory()
    for host in ("a1", "a2"):
        hostvars[host]["alertmanager_cluster_label"] = "prod\n--cluster.peer=evil:9094"
    problems = inventory_problems(groups, hostvars)
    assert problems == [f"host {h}: alertmanager_cluster_label 'prod\\n--cluster.peer=evil:9094' may hold only "
                        "letters, digits, '.', '_' and '-'" for h in ("a1", "a2")]


def test_every_host_firewall_plan_is_computed_before_any_host_is_touched():
    groups, hostvars = inventory()
    hostvars["db"]["firewall_admin_sources"] = []
    hostvars["g2"]["firewall_extra_rules"] = [{"name": "app", "proto": "sctp", "ports": 1}]
    problems = inventory_problems(groups, hostvars)
    assert any("firewall_admin_sources of 'db' is empty" in p for p in problems)
    assert any("firewall_extra_rules[0] of 'g2'" in p and "proto must be tcp or udp" in p for p in problems)
    # A host whose firewall someone else manages is not planned.
    hostvars["db"]["firewall_enabled"] = False
    hostvars["g2"]["firewall_enabled"] = "false"
    assert inventory_problems(groups, hostvars) == []


# --- failure domains ----------------------------------------------------------------

def with_domains(domains, production=True):
    """The small inventory with a second storage node, each host in ``domains[host]`` (default rack-a/b)."""
    groups, hostvars = inventory()
    hostvars["vm1"] = {"stack_address": "10.0.0.41", "stack_plain_http": True, "firewall_admin_sources": ["10.0.0.1"]}
    hostvars["vm2"] = {"stack_address": "10.0.0.42", "stack_plain_http": True, "firewall_admin_sources": ["10.0.0.1"]}
    groups["all"] = sorted(hostvars)
    groups["remote_storage"] = ["vm1", "vm2"]
    spread = {"p1": "rack-a", "p2": "rack-b", "a1": "rack-a", "a2": "rack-b", "db": "rack-a", "g1": "rack-a",
              "g2": "rack-b", "lb1": "rack-a", "lb2": "rack-b", "vm1": "rack-a", "vm2": "rack-b"}
    spread.update(domains)
    for host, domain in spread.items():
        if domain is not None:
            hostvars[host]["stack_failure_domain"] = domain
        if production:
            hostvars[host]["stack_environment"] = "production"
    return groups, hostvars


def test_hosts_spread_over_domains_pass():
    groups, hostvars = with_domains({})
    assert failure_domain_problems(groups, hostvars) == []


@pytest.mark.parametrize(("moved", "named"), [
    ({"p2": "rack-a"}, "hosts p1, p2: the replicas of shard 0 (all) share stack_failure_domain 'rack-a'"),
    ({"vm2": "rack-a"}, "hosts vm1, vm2: the remote_storage hosts (all) share stack_failure_domain 'rack-a'"),
    ({"lb1": "rack-b"}, "hosts lb1, lb2: the loadbalancer hosts (all) share stack_failure_domain 'rack-b'"),
    ({"a2": "rack-a"}, "hosts a1, a2: the alertmanager hosts (all) share stack_failure_domain 'rack-a'"),
])
def test_a_tier_in_one_domain_is_named_with_its_hosts(moved, named):
    groups, hostvars = with_domains(moved)
    problems = failure_domain_problems(groups, hostvars)
    assert [line for line in problems if line.startswith(named)], problems
    assert len(problems) == 1
    assert named in "\n".join(inventory_problems(groups, hostvars))


def test_a_quorum_majority_in_one_domain_is_refused():
    groups, hostvars = with_domains({})
    for host, address, domain in (("db2", "10.0.0.52", "rack-a"), ("db3", "10.0.0.53", "rack-b")):
        hostvars[host] = dict(hostvars["db"], stack_address=address, stack_failure_domain=domain)
    groups["all"] = sorted(hostvars)
    groups["mysql"] = ["db", "db2", "db3"]
    assert failure_domain_problems(groups, hostvars) == [
        "hosts db, db2: the mysql quorum (2 of 3, a majority) share stack_failure_domain 'rack-a'; "
        "losing it loses them together: put them in different domains"]
    hostvars["db2"]["stack_failure_domain"] = "rack-c"
    assert failure_domain_problems(groups, hostvars) == []


def test_hosts_without_a_domain_and_a_lone_storage_node_are_named():
    groups, hostvars = with_domains({"vm1": None, "lb2": None})
    assert failure_domain_problems(groups, hostvars)[-1].startswith(
        "hosts lb2, vm1: stack_failure_domain is not set")
    groups["remote_storage"] = ["vm1"]
    assert "host vm1: the only remote_storage host" in "\n".join(failure_domain_problems(groups, hostvars))


def test_outside_production_the_domains_only_warn():
    groups, hostvars = with_domains({"vm2": "rack-a"}, production=False)
    assert inventory_problems(groups, hostvars) == []
    warnings = inventory_warnings(groups, None, hostvars)
    assert len(warnings) == 2 and warnings[0].startswith("hosts vm1, vm2: the remote_storage hosts (all)")
    assert warnings[0].endswith("(refused in production)")
    assert warnings[1].startswith("stack_plain_http is on: plain HTTP, no credentials")
    with pytest.raises(AnsibleFilterError, match="^failure_domain_problems: expected the groups mapping"):
        failure_domain_problems("prometheus", hostvars)


def database_cluster(count, arbitrators=0):
    groups, hostvars = inventory()
    members = ["db"] + [f"db{n}" for n in range(2, count + 1)]
    for n, host in enumerate(members[1:], start=2):
        hostvars[host] = dict(hostvars["db"], stack_address=f"10.0.0.5{n}")
    for n in range(1, arbitrators + 1):
        hostvars[f"arb{n}"] = {"stack_address": f"10.0.0.8{n}", "stack_plain_http": True,
                               "firewall_admin_sources": ["10.0.0.1"]}
    groups["mysql"] = members
    groups["mysql_arbitrator"] = [f"arb{n}" for n in range(1, arbitrators + 1)]
    groups["all"] = sorted(hostvars)
    return groups, hostvars


@pytest.mark.parametrize(("count", "arbitrators", "named"), [
    (2, 0, "groups mysql and mysql_arbitrator: 2 voting members (db, db2): a cluster needs three or more"),
    (4, 0, "groups mysql and mysql_arbitrator: 4 voting members (db, db2, db3, db4): an even number"),
    (3, 1, "groups mysql and mysql_arbitrator: 4 voting members (db, db2, db3, arb1): an even number"),
])
def test_a_database_cluster_that_cannot_outvote_one_loss_is_refused_naming_the_hosts(count, arbitrators, named):
    groups, hostvars = database_cluster(count, arbitrators)
    problems = inventory_problems(groups, hostvars)
    assert [line for line in problems if line.startswith(named)], problems


@pytest.mark.parametrize(("count", "arbitrators"), [(1, 0), (3, 0), (2, 1), (5, 0)])
def test_three_or_an_odd_number_of_votes_pass(count, arbitrators):
    groups, hostvars = database_cluster(count, arbitrators)
    assert not [line for line in inventory_problems(groups, hostvars) if "voting members" in line]


def test_arbitrators_are_refused_until_the_role_installs_them():
    groups, hostvars = database_cluster(2, 1)
    assert [line for line in inventory_problems(groups, hostvars) if line.startswith(
        "group mysql_arbitrator (arb1): the mysql role does not install garbd")]
    groups, hostvars = database_cluster(3)
    assert not [line for line in inventory_problems(groups, hostvars) if "mysql_arbitrator" in line]


def test_a_server_setting_that_breaks_the_cluster_or_grafana_is_refused_naming_host_and_variable():
    groups, hostvars = database_cluster(3)
    hostvars["db2"]["mysql_server_extra_config"] = {"innodb_force_primary_key": "ON", "binlog_format": "STATEMENT"}
    problems = [line for line in inventory_problems(groups, hostvars) if "mysql_server_extra_config" in line]
    assert problems == [
        "host db2: mysql_server_extra_config binlog_format: STATEMENT (must be ROW: Galera replicates row events only)",
        "host db2: mysql_server_extra_config innodb_force_primary_key: ON (Grafana's migrations create tables without "
        "a primary key (then copy them into keyed ones) and would fail)"]
    groups, hostvars = database_cluster(1)
    hostvars["db"]["mysql_server_extra_config"] = {"binlog_format": "STATEMENT"}
    assert inventory_problems(groups, hostvars) == []


def test_extra_flags_and_settings_of_every_tier_are_checked_naming_host_and_variable():
    groups, hostvars = inventory()
    hostvars["p2"]["prometheus_extra_args"] = {"web.enable-lifecycle": True}
    hostvars["a1"]["alertmanager_extra_args"] = {"log.level": "debug --cluster.peer=10.9.9.9:9094"}
    hostvars["lb1"]["node_exporter_extra_args"] = {"collector.wifi": True}
    hostvars["db"]["mysql_server_extra_config"] = {"skip_grant_tables": "ON"}
    hostvars["g2"]["grafana_extra_config"] = {"auth.anonymous": {"enabled": True}}
    problems = inventory_problems(groups, hostvars)
    assert problems == [
        "host p2: prometheus_extra_args: web.enable-lifecycle is refused: it would open stop and reload over HTTP",
        "host a1: alertmanager_extra_args: log.level: the value must be one word without spaces, line breaks, "
        "quotes or backslashes",
        "host lb1: node_exporter_extra_args: collector.wifi switches a collector; list it in "
        "node_exporter_enabled_collectors or node_exporter_disabled_collectors",
        "host db: mysql_server_extra_config: skip_grant_tables is refused: it would allow logins without a password",
        "host g2: grafana_extra_config: [auth.anonymous] enabled is refused: it would allow anonymous access to every "
        "dashboard"]
    # A flag set on a host outside the tier's group is not that host's concern.
    hostvars["lb1"]["prometheus_extra_args"] = {"web.enable-admin-api": True}
    assert len(inventory_problems(groups, hostvars)) == 5


def test_gossip_settings_are_checked_per_host_with_the_roles_defaults():
    groups, hostvars = inventory()
    hostvars["a1"]["alertmanager_cluster_probe_timeout"] = "1s"      # not shorter than the default 1s interval
    hostvars["a2"]["alertmanager_cluster_peer_timeout"] = "15"       # no unit
    problems = inventory_problems(groups, hostvars)
    assert len(problems) == 2, problems
    assert problems[0].startswith("host a1: alertmanager_cluster_probe_timeout (1s) must be shorter than "
                                  "alertmanager_cluster_probe_interval (1s)")
    assert problems[1].startswith("host a2: alertmanager_cluster_peer_timeout is '15'")


def test_the_gossip_defaults_are_the_roles():
    import pathlib

    import yaml
    from ansible_collections.promha.stack.plugins.plugin_utils.alertmanager import GOSSIP_DEFAULTS
    defaults = yaml.safe_load((pathlib.Path(__file__).parents[4] / "roles/alertmanager/defaults/main.yml").read_text())
    assert GOSSIP_DEFAULTS == {name: str(defaults[name]) for name in GOSSIP_DEFAULTS}



@pytest.mark.parametrize("variable,value,expected", [
    ("prometheus_front_url", "10.0.0.70", "prometheus_front_url '10.0.0.70' must be http(s)://address[:port]"),
    ("prometheus_front_url", "https://front.example.org/grafana/",
     "prometheus_front_url 'https://front.example.org/grafana/' must be http(s)://address[:port]"),
    ("prometheus_front_probe_timeout", "5", "prometheus_front_probe_timeout '5' must be a duration above zero"),
    ("prometheus_front_probe_timeout", "0s", "prometheus_front_probe_timeout '0s' must be a duration above zero"),
    ("prometheus_blackbox_port", 70000, "prometheus_blackbox_port 70000 must be a port number"),
])
def test_front_probe_settings_are_checked_naming_the_host_and_variable(variable, value, expected):
    groups, hostvars = inventory()
    hostvars["p2"][variable] = value
    problems = inventory_problems(groups, hostvars)
    assert len(problems) == 1 and problems[0].startswith(f"host p2: {expected}"), problems


def test_good_front_probe_settings_pass_and_are_not_checked_without_a_front():
    groups, hostvars = inventory()
    hostvars["p1"].update(prometheus_front_url="https://[fd00::70]:8443", prometheus_front_probe_timeout="4s",
                          prometheus_blackbox_port=19115)
    assert inventory_problems(groups, hostvars) == []
    del groups["loadbalancer"]
    hostvars["p1"]["prometheus_front_url"] = "no url"
    assert not any("prometheus_front_url" in p for p in inventory_problems(groups, hostvars))


def test_a_port_out_of_range_is_listed_once():
    # The stack model meets it as an endpoint and as a flow, the metrics check as a port of nginx.
    groups, hostvars = inventory()
    hostvars["lb1"]["nginx_exporter_port"] = 70000
    assert inventory_problems(groups, hostvars) == [
        "stack_model: port 70000 of host 'lb1' (nginx_exporter_port) is outside 1..65535"]
    hostvars["lb1"]["nginx_exporter_port"] = 9113
    hostvars["p1"]["prometheus_port"] = "ninety"
    assert inventory_problems(groups, hostvars) == [
        "stack_model: port 'ninety' of host 'p1' (prometheus_port) is not a number"]


@pytest.mark.parametrize("host,variable,value,expected", [
    ("lb1", "nginx_exporter_local_port", "x", "nginx_exporter_local_port 'x' must be a port number"),
    ("lb1", "nginx_exporter_port", 443, "nginx_exporter_port 443 is also nginx_tls_port"),
    ("lb2", "nginx_exporter_local_port", 8080, "nginx_exporter_local_port 8080 is also nginx_status_port"),
    ("lb1", "nginx_exporter_basic_auth_password", "short-one", "nginx_exporter_basic_auth_password has 9 characters"),
    ("g2", "grafana_metrics_basic_auth_password", "x" * 15, "grafana_metrics_basic_auth_password has 15 characters"),
])
def test_nginx_metrics_settings_are_checked_naming_the_host_and_variable(host, variable, value, expected):
    groups, hostvars = inventory()
    # A password is the tier's, which its clients read too: set for every host (group_vars/all).
    for name in hostvars if variable.endswith("_password") else [host]:
        hostvars[name][variable] = value
    problems = inventory_problems(groups, hostvars)
    assert any(line.startswith(f"host {host}: {expected}") for line in problems), problems
    # A port: that host's one problem; a password: one line per host of its group.
    assert all(variable in line for line in problems) and (variable.endswith("_password") or len(problems) == 1), \
        problems


def test_a_tier_password_set_for_the_tier_alone_is_refused():
    # The Prometheus hosts scrape nginx's metrics with the password they read themselves.
    groups, hostvars = inventory()
    for host in groups["loadbalancer"]:
        hostvars[host]["nginx_exporter_basic_auth_password"] = "a-long-enough-password"
    problems = inventory_problems(groups, hostvars)
    assert len(problems) == 1 and problems[0].startswith("nginx_exporter_basic_auth_password differs between hosts")
    assert "a-long-enough-password" not in problems[0]


def test_good_metrics_settings_pass_and_a_disabled_metrics_server_is_not_checked():
    groups, hostvars = inventory()
    hostvars["lb1"].update(nginx_exporter_port=9913, nginx_exporter_local_port=19913)
    for host in hostvars:
        hostvars[host]["nginx_exporter_basic_auth_password"] = "a-long-enough-password"
    assert inventory_problems(groups, hostvars) == []
    hostvars["lb2"].update(nginx_exporter_enabled=False, nginx_exporter_port=80)
    assert inventory_problems(groups, hostvars) == []


def test_only_the_hosts_whose_scrape_settings_need_their_own_context_render_them():
    class Hostvars(dict):
        def __getitem__(self, host):
            variables = dict.__getitem__(self, host)

            class Variables:
                def get(self, name, default=None):
                    if variables.get(name) == "needs hostvars":
                        raise AnsibleFilterError("'hostvars' is undefined")
                    return variables.get(name, default)
            return Variables()

    hostvars = Hostvars(p1={"prometheus_scrape_jobs": []}, p2={"prometheus_shard_mode": "needs hostvars"}, p3={})
    assert scrape_settings_need_host(["p1", "p2", "p3"], hostvars) == ["p2"]


def test_a_tls_file_set_empty_is_named(secure):
    groups, hostvars, secrets = secure
    hostvars["p1"]["prometheus_web_tls_cert_src"] = ""
    assert inventory_problems(groups, hostvars) == [
        "host p1: prometheus_web_tls_cert_src is not set (prometheus_web_tls_enabled is true)"]


def test_the_checks_read_the_shards_of_the_model_they_are_given():
    # Each check takes the model preflight built and does not build its parts again: a job
    # pinned to shard 3 fits a model of four shards, and a failure domain is checked over
    # the model's replicas.
    from ansible_collections.promha.stack.plugins.plugin_utils import model, prometheus

    groups, hostvars = inventory()
    hostvars["p1"]["prometheus_scrape_jobs"] = hostvars["p2"]["prometheus_scrape_jobs"] = [
        {"job_name": "pinned", "shard": 3, "static_configs": [{"targets": ["10.0.9.1:80"]}]}]
    stack = model.stack_model(groups, hostvars)
    assert [line for line in inventory_problems(groups, hostvars) if "names shard(s) [3]" in line]
    assert [line for line in prometheus.prometheus_problems(groups, hostvars, stack) if "names shard(s) [3]" in line]
    four = dict(stack, shards={index: ["p1", "p2"] for index in range(4)})
    assert prometheus.prometheus_problems(groups, hostvars, four) == []

    groups, hostvars = with_domains({"p2": "rack-a"})
    shared = "hosts p1, p2: the replicas of shard 0 (all) share stack_failure_domain 'rack-a'"
    assert [line for line in failure_domain_problems(groups, hostvars) if line.startswith(shared)]
    assert [line for line in failure_domain_problems(groups, hostvars, {"shards": {0: ["p1", "p2"]}})
            if line.startswith(shared)]
    assert not [line for line in failure_domain_problems(groups, hostvars, {"shards": {0: ["p1"], 1: ["p2"]}})
                if "replicas of shard" in line]


def test_every_check_of_preflight_takes_the_model_and_passes_a_good_inventory():
    from ansible_collections.promha.stack.plugins.plugin_utils import model, preflight

    groups, hostvars = inventory()
    stack = model.stack_model(groups, hostvars)
    assert len(preflight.CHECKS) == 9
    for check in preflight.CHECKS:
        assert check(groups, hostvars, stack) == [], check.__name__


@pytest.mark.parametrize(("value", "warned"), [(True, True), ("yes", True), (False, False), ("false", False),
                                               (None, False)])
def test_the_insecure_mode_is_warned_about_by_the_access_rule(value, warned):
    groups, hostvars = inventory()
    for host in hostvars:
        hostvars[host].pop("stack_plain_http")
    if value is not None:
        hostvars["g2"]["stack_plain_http"] = value
    warnings = inventory_warnings(groups, None, hostvars)
    assert any(line.startswith("stack_plain_http is on") for line in warnings) is warned, warnings
