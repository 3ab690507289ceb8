"""Unit tests for the certificate filters of the stack model's pki module."""

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.promha.stack.plugins.plugin_utils.pki import san_name, stack_certificates, stack_pki_plan

GROUPS = {"all": ["prom-a", "am-1", "lb-1"], "prometheus": ["prom-a"], "alertmanager": ["am-1"],
          "loadbalancer": ["lb-1"]}
HOSTVARS = {
    "prom-a": {"stack_address": "10.0.0.11", "prometheus_web_tls_server_name": "prom.internal"},
    "am-1": {"stack_address": "fd00::21"},
    "lb-1": {"stack_address": "10.0.0.31", "keepalived_virtual_ipaddress": "10.0.0.30/24",
             "nginx_server_name": "monitoring.example.org"},
}


def by(certificates, host, service):
    return next(c["names"] for c in certificates if c["host"] == host and c["service"] == service)


def test_one_certificate_per_service_a_host_runs_each_with_only_that_services_name():
    certs = stack_certificates(GROUPS, HOSTVARS)
    assert [(c["host"], c["service"], c["path"]) for c in certs] == [
        ("am-1", "node-exporter", "web/am-1/node-exporter"), ("am-1", "alertmanager", "web/am-1/alertmanager"),
        ("lb-1", "node-exporter", "web/lb-1/node-exporter"), ("lb-1", "nginx", "web/lb-1/nginx"),
        ("lb-1", "nginx-exporter", "web/lb-1/nginx-exporter"),
        ("prom-a", "node-exporter", "web/prom-a/node-exporter"), ("prom-a", "prometheus", "web/prom-a/prometheus"),
        ("prom-a", "blackbox-exporter", "web/prom-a/blackbox-exporter"), ("am-1", "gossip", "gossip/am-1")]
    assert by(certs, "prom-a", "prometheus") == ["IP:10.0.0.11", "DNS:prom-a", "DNS:prom.internal"]
    assert by(certs, "prom-a", "node-exporter") == ["IP:10.0.0.11", "DNS:prom-a", "DNS:node-exporter"]
    assert by(certs, "am-1", "alertmanager") == ["IP:fd00::21", "DNS:am-1", "DNS:alertmanager"]
    # Server use only, but where a service must call its peers with it (gossip).
    assert {(c["service"], c["client"]) for c in certs} == {
        ("node-exporter", False), ("alertmanager", False), ("nginx", False), ("prometheus", False),
        ("nginx-exporter", False), ("blackbox-exporter", False), ("gossip", True)}


def test_the_front_probes_certificate_is_for_the_loopback_address_and_only_where_there_is_a_front():
    assert by(stack_certificates(GROUPS, HOSTVARS), "prom-a", "blackbox-exporter") == [
        "IP:10.0.0.11", "DNS:prom-a", "IP:127.0.0.1"]
    no_front = {"all": ["prom-a"], "prometheus": ["prom-a"]}
    assert [c["service"] for c in stack_certificates(no_front, HOSTVARS)] == ["node-exporter", "prometheus"]


def test_balancer_carries_floating_address_and_server_name_on_nginx_only():
    certs = stack_certificates(GROUPS, HOSTVARS)
    assert by(certs, "lb-1", "nginx") == ["IP:10.0.0.31", "DNS:lb-1", "IP:10.0.0.30", "DNS:monitoring.example.org"]
    assert "IP:10.0.0.30" not in by(certs, "lb-1", "node-exporter")


def test_a_database_member_carries_the_database_address_on_mysql_only_which_is_also_a_client():
    groups = dict(GROUPS, all=GROUPS["all"] + ["db-1"], mysql=["db-1"])
    hostvars = dict(HOSTVARS, **{"db-1": {"stack_address": "10.0.0.51", "mysql_virtual_ipaddress": "10.0.0.55/24"},
                                 "prom-a": dict(HOSTVARS["prom-a"], mysql_virtual_ipaddress="10.0.0.55/24")})
    certs = stack_certificates(groups, hostvars)
    assert by(certs, "db-1", "mysql") == ["IP:10.0.0.51", "DNS:db-1", "IP:10.0.0.55"]
    assert by(certs, "db-1", "mysqld-exporter") == ["IP:10.0.0.51", "DNS:db-1"]
    assert [c["client"] for c in certs if c["host"] == "db-1"] == [False, True, False]
    assert not any("IP:10.0.0.55" in c["names"] for c in certs if c["service"] != "mysql")


def test_gossip_only_for_alertmanagers_and_only_own_names():
    certs = stack_certificates(GROUPS, HOSTVARS)
    assert [(c["host"]) for c in certs if c["kind"] == "gossip"] == ["am-1"]
    assert by(certs, "am-1", "gossip") == ["IP:fd00::21", "DNS:am-1"]


def test_host_without_address_uses_its_name():
    certs = stack_certificates({"all": ["node-9"]}, {"node-9": {}})
    assert by(certs, "node-9", "node-exporter") == ["DNS:node-9", "DNS:node-exporter"]


@pytest.mark.parametrize("value,expected", [("10.1.2.3", "IP:10.1.2.3"), ("[fd00::1]", "IP:fd00::1"),
                                            ("grafana.example.org", "DNS:grafana.example.org")])
def test_san_name(value, expected):
    assert san_name(value) == expected


@pytest.mark.parametrize("value", ["", None, "bad name", "a\nDNS:evil", "prom-a\n", "-x"])
def test_san_name_refuses(value):
    with pytest.raises(AnsibleFilterError, match="neither an IP address nor a DNS name"):
        san_name(value)


def test_groups_must_be_a_mapping():
    with pytest.raises(AnsibleFilterError, match="groups mapping"):
        stack_certificates(["prom-a"], HOSTVARS)


def test_registered():
    from ansible_collections.promha.stack.plugins.plugin_utils.pki import FilterModule
    assert {"stack_certificates", "stack_pki_plan", "san_name"} <= set(FilterModule().filters())


def paths_of(plan):
    return [c["path"] for c in plan["certificates"]]


ALL_PATHS = ["web/am-1/node-exporter", "web/am-1/alertmanager", "web/lb-1/node-exporter", "web/lb-1/nginx",
             "web/lb-1/nginx-exporter", "web/prom-a/node-exporter", "web/prom-a/prometheus",
             "web/prom-a/blackbox-exporter", "gossip/am-1"]


def test_plan_of_an_empty_directory_issues_everything():
    plan = stack_pki_plan(GROUPS, HOSTVARS, [], ["prometheus_web"])
    assert plan["cas"] == ["web", "gossip"]
    assert paths_of(plan) == ALL_PATHS
    assert plan["credentials"] == ["prometheus_web"]


def test_plan_fills_gaps_only():
    present = ["web/ca.crt", "gossip/ca.crt", "credentials/prometheus_web"] + [
        f"{path}.crt" for path in ALL_PATHS if path != "web/lb-1/nginx"]
    plan = stack_pki_plan(GROUPS, HOSTVARS, present, ["prometheus_web", "alertmanager_web"])
    assert plan == {"cas": [], "certificates": [c for c in stack_certificates(GROUPS, HOSTVARS)
                                                 if c["path"] == "web/lb-1/nginx"],
                    "credentials": ["alertmanager_web"]}


def test_a_host_certificate_of_the_old_layout_does_not_count():
    present = ["web/ca.crt", "gossip/ca.crt", "web/prom-a.crt"] + [f"{p}.crt" for p in ALL_PATHS
                                                                   if p != "web/prom-a/prometheus"]
    assert paths_of(stack_pki_plan(GROUPS, HOSTVARS, present, [])) == ["web/prom-a/prometheus"]


def test_a_new_ca_reissues_its_kind():
    present = ["web/ca.crt"] + [f"{p}.crt" for p in ALL_PATHS]
    assert paths_of(stack_pki_plan(GROUPS, HOSTVARS, present, [])) == ["gossip/am-1"]


def test_plan_refuses_non_lists():
    with pytest.raises(AnsibleFilterError, match="must be lists"):
        stack_pki_plan(GROUPS, HOSTVARS, "web/ca.crt", [])


def write_certificate(path, names, days):
    """A self-signed certificate with these subjectAltNames, ending in ``days``."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    sans = [x509.IPAddress(ipaddress.ip_address(n[3:])) if n.startswith("IP:") else x509.DNSName(n[4:]) for n in names]
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test")])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False).sign(key, hashes.SHA256()))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def test_a_certificate_whose_names_or_time_ran_out_is_reissued(tmp_path):
    certs = {c["path"]: c["names"] for c in stack_certificates(GROUPS, HOSTVARS)}
    for path, names in certs.items():
        write_certificate(tmp_path / f"{path}.crt", names, 400)
    # lb-1's address changed since its certificate was issued.
    write_certificate(tmp_path / "web/lb-1/nginx.crt", ["IP:10.0.0.99"] + certs["web/lb-1/nginx"][1:], 400)
    write_certificate(tmp_path / "web/am-1/alertmanager.crt", certs["web/am-1/alertmanager"], 10)  # ends in 10 days
    (tmp_path / "gossip" / "am-1.crt").write_text("not a certificate")
    present = ["web/ca.crt", "gossip/ca.crt"] + [f"{path}.crt" for path in certs]
    plan = stack_pki_plan(GROUPS, HOSTVARS, present, [], secrets_dir=str(tmp_path))
    assert [(c["path"], c.get("reissue")) for c in plan["certificates"]] == [
        ("web/am-1/alertmanager", True), ("web/lb-1/nginx", True), ("gossip/am-1", True)]
    assert paths_of(stack_pki_plan(GROUPS, HOSTVARS, present, [], secrets_dir=str(tmp_path), renew_days=5)) == [
        "web/lb-1/nginx", "gossip/am-1"]
