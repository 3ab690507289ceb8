"""Unit tests for the certificate filters of plugins/filter/peers.py."""

import pytest
from ansible.errors import AnsibleFilterError
from peers import san_name, stack_certificates, stack_pki_plan

GROUPS = {"all": ["prom-a", "am-1", "lb-1"], "alertmanager": ["am-1"], "loadbalancer": ["lb-1"]}
HOSTVARS = {
    "prom-a": {"stack_address": "10.0.0.11", "prometheus_web_tls_server_name": "prom.internal"},
    "am-1": {"stack_address": "fd00::21"},
    "lb-1": {"stack_address": "10.0.0.31", "keepalived_virtual_ipaddress": "10.0.0.30/24",
             "nginx_server_name": "monitoring.example.org"},
}


def by(certificates, host, kind):
    return next(c["names"] for c in certificates if c["host"] == host and c["kind"] == kind)


def test_web_certificate_names():
    certs = stack_certificates(GROUPS, HOSTVARS)
    assert by(certs, "prom-a", "web") == ["IP:10.0.0.11", "DNS:prom-a", "DNS:prom.internal", "DNS:alertmanager",
                                          "DNS:node-exporter", "DNS:remote-storage", "DNS:grafana"]
    assert by(certs, "am-1", "web")[0] == "IP:fd00::21"


def test_balancer_carries_floating_address_and_server_name():
    names = by(stack_certificates(GROUPS, HOSTVARS), "lb-1", "web")
    assert names[-2:] == ["IP:10.0.0.30", "DNS:monitoring.example.org"]


def test_a_database_member_carries_the_database_address_and_no_other_host_does():
    groups = dict(GROUPS, all=GROUPS["all"] + ["db-1"], mysql=["db-1"])
    hostvars = dict(HOSTVARS, **{"db-1": {"stack_address": "10.0.0.51", "mysql_virtual_ipaddress": "10.0.0.55/24"},
                                 "prom-a": dict(HOSTVARS["prom-a"], mysql_virtual_ipaddress="10.0.0.55/24")})
    certs = stack_certificates(groups, hostvars)
    assert by(certs, "db-1", "web")[0] == "IP:10.0.0.51" and by(certs, "db-1", "web")[-1] == "IP:10.0.0.55"
    assert "IP:10.0.0.55" not in by(certs, "prom-a", "web")


def test_gossip_only_for_alertmanagers_and_only_own_names():
    certs = stack_certificates(GROUPS, HOSTVARS)
    assert [(c["host"]) for c in certs if c["kind"] == "gossip"] == ["am-1"]
    assert by(certs, "am-1", "gossip") == ["IP:fd00::21", "DNS:am-1"]


def test_host_without_address_uses_its_name():
    certs = stack_certificates({"all": ["node-9"]}, {"node-9": {}})
    assert by(certs, "node-9", "web")[0] == "DNS:node-9"
    assert by(certs, "node-9", "web").count("DNS:node-9") == 1


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
    from peers import FilterModule
    assert {"stack_certificates", "stack_pki_plan", "san_name"} <= set(FilterModule().filters())


def hosts_of(plan):
    return [(c["kind"], c["host"]) for c in plan["certificates"]]


def test_plan_of_an_empty_directory_issues_everything():
    plan = stack_pki_plan(GROUPS, HOSTVARS, [], ["prometheus_web"])
    assert plan["cas"] == ["web", "gossip"]
    assert hosts_of(plan) == [("web", "am-1"), ("web", "lb-1"), ("web", "prom-a"), ("gossip", "am-1")]
    assert plan["credentials"] == ["prometheus_web"]


def test_plan_fills_gaps_only():
    present = ["web/ca.crt", "gossip/ca.crt", "web/am-1.crt", "web/prom-a.crt", "gossip/am-1.crt",
               "credentials/prometheus_web"]
    plan = stack_pki_plan(GROUPS, HOSTVARS, present, ["prometheus_web", "alertmanager_web"])
    assert plan == {"cas": [], "certificates": [c for c in stack_certificates(GROUPS, HOSTVARS)
                                                 if (c["kind"], c["host"]) == ("web", "lb-1")],
                    "credentials": ["alertmanager_web"]}


def test_a_new_ca_reissues_its_kind():
    present = ["web/ca.crt", "web/am-1.crt", "web/lb-1.crt", "web/prom-a.crt", "gossip/am-1.crt"]
    assert hosts_of(stack_pki_plan(GROUPS, HOSTVARS, present, [])) == [("gossip", "am-1")]


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
    certs = {(c["kind"], c["host"]): c["names"] for c in stack_certificates(GROUPS, HOSTVARS)}
    write_certificate(tmp_path / "web" / "prom-a.crt", certs[("web", "prom-a")], 400)
    # lb-1's address changed since its certificate was issued.
    write_certificate(tmp_path / "web" / "lb-1.crt", ["IP:10.0.0.99"] + certs[("web", "lb-1")][1:], 400)
    write_certificate(tmp_path / "web" / "am-1.crt", certs[("web", "am-1")], 10)  # ends in 10 days
    (tmp_path / "gossip").mkdir()
    (tmp_path / "gossip" / "am-1.crt").write_text("not a certificate")
    present = ["web/ca.crt", "gossip/ca.crt", "web/am-1.crt", "web/lb-1.crt", "web/prom-a.crt", "gossip/am-1.crt"]
    plan = stack_pki_plan(GROUPS, HOSTVARS, present, [], secrets_dir=str(tmp_path))
    assert [(c["kind"], c["host"], c.get("reissue")) for c in plan["certificates"]] == [
        ("web", "am-1", True), ("web", "lb-1", True), ("gossip", "am-1", True)]
    assert stack_pki_plan(GROUPS, HOSTVARS, present, [], secrets_dir=str(tmp_path), renew_days=5)["certificates"][0][
        "host"] == "lb-1"
