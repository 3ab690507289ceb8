"""Unit tests for plugins/filter/webaccess.py."""

import datetime
import ipaddress

import bcrypt
import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible_collections.promha.stack.plugins.plugin_utils.webaccess import (
    AEAD_CIPHER_SUITES,
    FilterModule,
    tls_file_problems,
    tls_problems,
    tls_server_settings,
    web_access_files,
    web_users,
)
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

NOW = datetime.datetime(2026, 11, 25, 12, 0, tzinfo=datetime.UTC)


# --- web_users -------------------------------------------------------------------------

def test_web_users_hashes_with_bcrypt_and_never_returns_the_plain_password():
    hashed = web_users({"promha": "s3cret-password-1", "alice": "another-pass-22"})
    assert sorted(hashed) == ["alice", "promha"]
    assert all(h.startswith("$2b$") and "s3cret" not in h for h in hashed.values())
    assert bcrypt.checkpw(b"s3cret-password-1", hashed["promha"].encode())
    assert not bcrypt.checkpw(b"another-pass-22", hashed["promha"].encode())


def test_web_users_keeps_a_hash_that_still_matches_so_the_file_does_not_change():
    first = web_users({"promha": "s3cret-password-1"})
    existing = yaml.safe_dump({"basic_auth_users": first})
    assert web_users({"promha": "s3cret-password-1"}, existing) == first
    # A mapping works as well as the file's text.
    assert web_users({"promha": "s3cret-password-1"}, {"basic_auth_users": first}) == first


def test_web_users_rehashes_a_changed_password_and_drops_removed_users():
    old = web_users({"promha": "old-password-1", "gone": "old-password-2"})
    new = web_users({"promha": "new-password-1"}, yaml.safe_dump({"basic_auth_users": old}))
    assert list(new) == ["promha"]
    assert new["promha"] != old["promha"]
    assert bcrypt.checkpw(b"new-password-1", new["promha"].encode())



KEY = "hash-key-0123456789abcdef"


def test_a_seed_gives_a_stable_hash_per_host_and_user_without_reading_the_host():
    import bcrypt
    first = web_users({"promha": "s3cret-password-1", "alice": "s3cret-password-1"}, seed="prom-a", hash_key=KEY)
    assert web_users({"promha": "s3cret-password-1", "alice": "s3cret-password-1"}, seed="prom-a",
                     hash_key=KEY) == first
    assert bcrypt.checkpw(b"s3cret-password-1", first["promha"].encode())
    assert first["promha"] != first["alice"]                       # another user, another salt
    other_host = web_users({"promha": "s3cret-password-1"}, seed="prom-b", hash_key=KEY)
    assert other_host["promha"] != first["promha"]                 # another host, another salt
    changed = web_users({"promha": "s3cret-password-2"}, seed="prom-a", hash_key=KEY)
    assert changed["promha"] != first["promha"] and bcrypt.checkpw(b"s3cret-password-2", changed["promha"].encode())
    other_key = web_users({"promha": "s3cret-password-1"}, seed="prom-a", hash_key=KEY + "2")
    assert other_key["promha"] != first["promha"]                  # another key, another salt


def test_rounds_sets_bcrypts_cost_and_a_cost_out_of_range_is_refused():
    cheap = web_users({"promha": "s3cret-password-1"}, seed="lb-1", hash_key=KEY, rounds=4)
    assert cheap["promha"].startswith("$2b$04$") and bcrypt.checkpw(b"s3cret-password-1", cheap["promha"].encode())
    assert web_users({"promha": "s3cret-password-1"}, seed="lb-1", hash_key=KEY)["promha"].startswith("$2b$10$")
    assert web_users({"promha": "s3cret-password-1"}, rounds=5)["promha"].startswith("$2b$05$")
    for bad in (3, 32, "4", True):
        with pytest.raises(AnsibleFilterError, match="rounds must be an integer from 4 to 31"):
            web_users({"promha": "s3cret-password-1"}, rounds=bad)


def test_the_salt_cannot_be_computed_from_a_guess_without_the_key():
    """The old derivation (HMAC of the password over host and user) let a guess be checked at HMAC speed
    against the salt in web.yml; with the controller's key in the HMAC, the known inputs do not give it."""
    import base64
    import hashlib
    import hmac
    hashed = web_users({"promha": "guessable-1"}, seed="prom-a", hash_key=KEY)["promha"]
    salt = hashed[7:29]
    alphabet = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
                             "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")

    def unkeyed(password):
        digest = hmac.new(password.encode(), b"prom-a\0promha", hashlib.sha256).digest()[:16]
        return base64.b64encode(digest).decode()[:22].translate(alphabet)
    assert salt != unkeyed("guessable-1")
    assert web_users({"promha": "guessable-1"}, seed="prom-a", hash_key=KEY)["promha"][7:29] == salt


@pytest.mark.parametrize("key", ["", None, "short"])
def test_a_seed_without_the_hash_key_is_refused(key):
    with pytest.raises(AnsibleFilterError, match="credentials/web_hash_key under stack_secrets_dir"):
        web_users({"promha": "s3cret-password-1"}, seed="prom-a", hash_key=key)
    assert web_users({}, seed="prom-a", hash_key=key) == {}


@pytest.mark.parametrize("existing", ["", "{not yaml: [", "basic_auth_users: 3", "- a list",
                                      "basic_auth_users: {promha: not-a-bcrypt-hash}"])
def test_web_users_treats_an_unusable_existing_file_as_absent(existing):
    hashed = web_users({"promha": "s3cret-password-1"}, existing)
    assert bcrypt.checkpw(b"s3cret-password-1", hashed["promha"].encode())


@pytest.mark.parametrize("users,message", [
    (["promha"], "expected a mapping"),
    ({"": "s3cret-password-1"}, "must be a non-empty string"),
    ({"a:b": "s3cret-password-1"}, "without ':'"),
    ({"promha": ""}, "password of user 'promha' is empty"),
    ({"promha": None}, "password of user 'promha' is empty"),
    ({"promha": "x" * 73}, "longer than 72 bytes"),
])
def test_web_users_rejects_bad_input_without_echoing_the_password(users, message):
    with pytest.raises(AnsibleFilterError, match=message) as error:
        web_users(users)
    assert "x" * 73 not in str(error.value)


# --- tls_problems ----------------------------------------------------------------------

def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject_key, issuer_key, issuer_cn, sans=(), days=(-1, 30), ca=False):
    builder = (x509.CertificateBuilder()
               .subject_name(_name("ca" if ca else "server"))
               .issuer_name(_name(issuer_cn))
               .public_key(subject_key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(NOW + datetime.timedelta(days=days[0]))
               .not_valid_after(NOW + datetime.timedelta(days=days[1])))
    if sans:
        entries = []
        for san in sans:
            try:
                entries.append(x509.IPAddress(ipaddress.ip_address(san)))
            except ValueError:
                entries.append(x509.DNSName(san))
        builder = builder.add_extension(x509.SubjectAlternativeName(entries), critical=False)
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    return builder.sign(issuer_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def _key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


@pytest.fixture(scope="module")
def pki():
    ca_key, key, other_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    ca = _cert(ca_key, ca_key, "ca", ca=True)
    return {
        "ca": ca, "ca_key": ca_key, "key": key, "other_key": other_key,
        "cert": _cert(key, ca_key, "ca", sans=["10.0.0.1", "prometheus", "*.mon.example"]),
    }


def test_a_good_pair_has_no_problems(pki):
    assert tls_problems(pki["cert"], _key_pem(pki["key"]), ["10.0.0.1", "prometheus", "a.mon.example"],
                        pki["ca"], now=NOW) == []


def test_a_key_of_another_certificate_is_named(pki):
    assert tls_problems(pki["cert"], _key_pem(pki["other_key"]), now=NOW) == [
        "the key does not belong to the certificate"]


def test_names_outside_the_subject_alt_names_are_listed(pki):
    assert tls_problems(pki["cert"], _key_pem(pki["key"]), ["10.0.0.1", "10.0.0.2", "alertmanager",
                                                             "a.b.mon.example"], now=NOW) == [
        "the certificate's subjectAltName does not cover 10.0.0.2, alertmanager, a.b.mon.example"]


def test_expired_and_future_certificates(pki):
    expired = _cert(pki["key"], pki["ca_key"], "ca", days=(-30, -1))
    future = _cert(pki["key"], pki["ca_key"], "ca", days=(2, 30))
    assert tls_problems(expired, _key_pem(pki["key"]), now=NOW)[0].startswith("the certificate expired on 2026-11-24")
    assert tls_problems(future, _key_pem(pki["key"]), now=NOW)[0].startswith("the certificate is not valid before")


def test_a_certificate_from_another_ca_is_refused(pki):
    stranger_key = ec.generate_private_key(ec.SECP256R1())
    stranger = _cert(stranger_key, stranger_key, "ca", ca=True)
    assert tls_problems(pki["cert"], _key_pem(pki["key"]), ca_pem=stranger, now=NOW) == [
        "the certificate was not issued by that CA"]


def test_unreadable_files_are_named_not_raised(pki):
    assert tls_problems("", "", now=NOW) == ["the certificate is empty", "the key is empty"]
    problems = tls_problems("-----BEGIN CERTIFICATE-----\nnope\n", _key_pem(pki["key"]), now=NOW)
    assert problems[0].startswith("the certificate is not PEM")
    assert tls_problems(pki["cert"], _key_pem(pki["key"]), ca_pem="garbage", now=NOW)[0].startswith(
        "the CA certificate is not PEM")


def test_filter_module_exports():
    assert set(FilterModule().filters()) == {"web_users", "tls_problems", "tls_file_problems", "web_access_files",
                                           "tls_server_settings", "client_settings", "tier_clients", "client_blocks",
                                           "with_clients"}


def test_tls_file_problems_name_missing_and_unreadable_files(tmp_path):
    assert tls_file_problems("", "", "") == [f"the {kind} file is not set" for kind in ("certificate", "key", "CA")]
    missing = tmp_path / "none.crt"
    problems = tls_file_problems(str(missing), str(missing), str(missing))
    assert problems[0] == f"the certificate file {missing} cannot be read: No such file or directory"


# --- web_access_files ------------------------------------------------------------------

@pytest.fixture
def tls_files(pki, tmp_path):
    paths = {}
    for name, text in (("cert", pki["cert"]), ("key", _key_pem(pki["key"])), ("ca", pki["ca"])):
        paths[name] = tmp_path / f"{name}.pem"
        paths[name].write_text(text)
    return paths


def test_web_access_files_with_tls_and_users(tls_files):
    files = web_access_files("/etc/prometheus/web", "prometheus", "prometheus", tls=True,
                             cert_src=str(tls_files["cert"]), key_src=str(tls_files["key"]), ca_src=str(tls_files["ca"]),
                             users={"promha": "s3cret-password-1"}, seed="prom-1", hash_key=KEY,
                             validate="/usr/bin/promtool check web-config %s")
    assert [f["path"] for f in files] == ["/etc/prometheus/web/" + n for n in ("server.crt", "server.key", "ca.crt", "web.yml")]
    assert {f["path"].rsplit("/", 1)[1]: f["mode"] for f in files} == {
        "server.crt": "0644", "server.key": "0640", "ca.crt": "0644", "web.yml": "0640"}
    assert all(f["group"] == "prometheus" for f in files)
    # The key and a web.yml holding hashes are secret: stack_files never shows them in a diff or a log.
    assert [("secret_content" in f) for f in files] == [False, True, False, True]
    assert files[1]["secret_content"] == tls_files["key"].read_text()
    web = files[3]
    assert web["validate"] == "/usr/bin/promtool check web-config %s"
    assert web["secret_content"].startswith("# Managed by Ansible")
    config = yaml.safe_load(web["secret_content"])
    assert config["tls_server_config"] == {"cert_file": "/etc/prometheus/web/server.crt",
                                           "key_file": "/etc/prometheus/web/server.key", "min_version": "TLS12",
                                           "cipher_suites": list(AEAD_CIPHER_SUITES)}
    assert bcrypt.checkpw(b"s3cret-password-1", config["basic_auth_users"]["promha"].encode())
    assert "s3cret-password-1" not in web["secret_content"]


def test_web_access_files_renders_the_same_text_twice(tls_files):
    def render():
        return web_access_files("/etc/x", "x", "x", users={"promha": "s3cret-password-1"}, seed="host-a",
                                hash_key=KEY)
    assert render() == render()


def test_web_access_files_without_users_is_not_secret_and_has_no_tls_files():
    files = web_access_files("/etc/node_exporter", "node-exporter", "node_exporter")
    assert len(files) == 1 and "content" in files[0] and "validate" not in files[0]


def test_web_access_files_names_the_tier_and_the_unreadable_file(tls_files, tmp_path):
    with pytest.raises(AnsibleFilterError, match=r"\(alertmanager\): the TLS key file .*none.pem.* cannot be read"):
        web_access_files("/etc/am", "am", "alertmanager", tls=True, cert_src=str(tls_files["cert"]),
                         key_src=str(tmp_path / "none.pem"), ca_src=str(tls_files["ca"]))
    (tmp_path / "plain.txt").write_text("not a certificate")
    with pytest.raises(AnsibleFilterError, match="the TLS CA file .*plain.txt is not PEM"):
        web_access_files("/etc/am", "am", "alertmanager", tls=True, cert_src=str(tls_files["cert"]),
                         key_src=str(tls_files["key"]), ca_src=str(tmp_path / "plain.txt"))
    with pytest.raises(AnsibleFilterError, match="absolute path"):
        web_access_files("etc/am", "am", "alertmanager")


def test_tls_server_settings_allow_forward_secret_aead_suites_only():
    settings = tls_server_settings({"cert_file": "/etc/x/server.crt", "client_auth_type": "RequireAndVerifyClientCert"})
    assert settings["cert_file"] == "/etc/x/server.crt"
    assert settings["client_auth_type"] == "RequireAndVerifyClientCert"
    assert settings["min_version"] == "TLS12"
    suites = settings["cipher_suites"]
    assert suites and len(set(suites)) == len(suites)
    for suite in suites:
        assert suite.startswith(("TLS_ECDHE_ECDSA_WITH_", "TLS_ECDHE_RSA_WITH_")), suite
        assert suite.endswith(("_GCM_SHA256", "_GCM_SHA384", "_CHACHA20_POLY1305_SHA256")), suite
        assert "CBC" not in suite
    # Both key types the stack may serve: its own CAs' ECDSA keys, a site's RSA keys.
    assert any("ECDSA" in s for s in suites) and any("_RSA_" in s for s in suites)
    assert tls_server_settings() == {"min_version": "TLS12", "cipher_suites": list(AEAD_CIPHER_SUITES)}


def test_tls_server_settings_refuses_what_is_not_a_mapping():
    with pytest.raises(AnsibleFilterError, match="tls_server_settings: expected a mapping, got str"):
        tls_server_settings("TLS12")


def test_client_settings_for_tls_and_a_user():
    from ansible_collections.promha.stack.plugins.plugin_utils.webaccess import client_settings
    assert client_settings(True, "promha", "/w/ca.crt", "/w/am.password") == {
        "scheme": "https", "tls_config": {"ca_file": "/w/ca.crt"},
        "basic_auth": {"username": "promha", "password_file": "/w/am.password"}}
    # remote_write's URL carries the scheme; inventory booleans as text count.
    assert client_settings("yes", "", "/w/ca.crt", "/w/x", scheme=False) == {"tls_config": {"ca_file": "/w/ca.crt"}}
    assert client_settings(False, "promha", "/w/ca.crt", "/w/p") == {
        "basic_auth": {"username": "promha", "password_file": "/w/p"}}
    assert client_settings("false", "", "/w/ca.crt", "/w/p") == {}


def test_tier_clients_give_each_tier_its_block_and_files(tmp_path):
    from ansible_collections.promha.stack.plugins.plugin_utils.webaccess import tier_clients
    ca = tmp_path / "ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\n\n")
    tiers = {"alertmanager": {"tls": True, "user": "promha", "password": "pw", "ca": str(ca)},
             "front": {"tls": "yes", "user": "", "password": "", "ca": str(ca)},
             "node_exporter": {"tls": False, "user": "", "password": "", "ca": ""}}
    found = tier_clients(tiers, "/w", "prometheus")
    assert found["clients"]["alertmanager"] == {
        "tls": True, "user": "promha",
        "auth": {"tls_config": {"ca_file": "/w/alertmanager-ca.crt"},
                 "basic_auth": {"username": "promha", "password_file": "/w/alertmanager.password"}},
        "client": {"scheme": "https", "tls_config": {"ca_file": "/w/alertmanager-ca.crt"},
                   "basic_auth": {"username": "promha", "password_file": "/w/alertmanager.password"}}}
    assert found["clients"]["node_exporter"] == {"tls": False, "user": "", "auth": {}, "client": {}}
    assert found["files"] == [
        {"path": "/w/alertmanager.password", "secret_content": "pw", "group": "prometheus", "mode": "0640"},
        {"path": "/w/alertmanager-ca.crt", "content": "-----BEGIN CERTIFICATE-----", "group": "prometheus",
         "mode": "0640"},
        {"path": "/w/front-ca.crt", "content": "-----BEGIN CERTIFICATE-----", "group": "prometheus", "mode": "0640"}]


def test_tier_clients_name_the_tier_of_a_ca_that_cannot_be_read(tmp_path):
    from ansible_collections.promha.stack.plugins.plugin_utils.webaccess import tier_clients
    tiers = {"remote_storage": {"tls": True, "user": "", "password": "", "ca": str(tmp_path / "none.crt")}}
    with pytest.raises(AnsibleFilterError, match=r"tier_clients \(remote_storage's tier\): the TLS CA file .*none.crt.* cannot"):
        tier_clients(tiers, "/w", "prometheus")
    (tmp_path / "text.crt").write_text("not a certificate")
    tiers["remote_storage"]["ca"] = str(tmp_path / "text.crt")
    with pytest.raises(AnsibleFilterError, match="the TLS CA file .*text.crt is not PEM"):
        tier_clients(tiers, "/w", "prometheus")


def test_jobs_take_the_client_block_of_the_tier_they_name():
    from ansible_collections.promha.stack.plugins.plugin_utils.webaccess import client_blocks, with_clients
    tls = {"scheme": "https", "tls_config": {"ca_file": "/w/node_exporter-ca.crt"}}
    blocks = client_blocks({"node_exporter": {"tls": True, "user": "", "auth": {}, "client": tls}},
                           prometheus={"scheme": "https"})
    assert blocks == {"node_exporter": tls, "prometheus": {"scheme": "https"}}
    jobs = [{"job_name": "node", "tier": "node_exporter", "scheme": "http", "shard": "spread"},
            {"job_name": "site", "static_configs": []}]
    assert with_clients(jobs, blocks) == [
        {"job_name": "node", "scheme": "https", "shard": "spread", "tls_config": {"ca_file": "/w/node_exporter-ca.crt"}},
        {"job_name": "site", "static_configs": []}]
    assert jobs[0]["tier"] == "node_exporter"  # the input is left alone
    with pytest.raises(AnsibleFilterError, match="job 'db' calls tier 'mysql_exporter', which has no client block"):
        with_clients([{"job_name": "db", "tier": "mysql_exporter"}], blocks)
