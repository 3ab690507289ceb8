"""Unit tests for plugins/modules/host_state.py, run as Ansible runs it (module args in, JSON out)."""

import grp
import hashlib
import json
import pwd

import pytest
from ansible.module_utils.testing import patch_module_args
from loadfile import load_file

host_state = load_file("plugins/modules/host_state.py")

DPKG = "ii  curl\nii tzdata\nrc nginx\niU chrony\nii libc6:amd64\n"
LIST_UNITS = ("nginx.service loaded active running nginx\n"
              "alertmanager@19093.service loaded active running Alertmanager\n")
SHOW = ("Id=a.service\nUnitFileState=masked\nActiveState=inactive\n\n"
        "Id=b.service\nUnitFileState=\nActiveState=inactive\n")


@pytest.fixture
def host(tmp_path, monkeypatch):
    """A host tree under tmp_path and the commands' answers; returns (tree, commands run)."""
    (tmp_path / "zoneinfo" / "Europe").mkdir(parents=True)
    (tmp_path / "zoneinfo" / "Europe" / "Berlin").write_text("TZif")
    wants = tmp_path / "systemd" / "multi-user.target.wants"
    wants.mkdir(parents=True)
    (wants / "nginx.service").symlink_to("/lib/systemd/system/nginx.service")
    (wants / "ssh.socket").write_text("")
    (tmp_path / "promha").mkdir()
    ran = []
    answers = {"dpkg-query": (0, DPKG, ""), "list-units": (0, LIST_UNITS, ""), "show": (0, SHOW, "")}

    def run_command(self, argv, **_):
        ran.append(argv)
        key = argv[0] if argv[0] == "dpkg-query" else argv[1]
        return answers[key]

    monkeypatch.setattr(host_state.AnsibleModule, "run_command", run_command)
    return tmp_path, ran, answers


def run(capsys, tree, **args):
    """Run the module; the parsed JSON result."""
    args = {"zoneinfo_dir": str(tree / "zoneinfo"), "systemd_dir": str(tree / "systemd"),
            "firewall_dir": str(tree / "promha"), **args}
    with patch_module_args(args), pytest.raises(SystemExit):
        host_state.main()
    return json.loads(capsys.readouterr().out)


def test_reads_packages_services_accounts_and_changes_nothing(host, capsys):
    tree, ran, _ = host
    result = run(capsys, tree, timezone="Europe/Berlin", timezone_variable="common_timezone")
    assert result["changed"] is False
    assert result["installed"] == ["curl", "libc6", "tzdata"]
    assert result["services"] == {"active": ["alertmanager@19093.service", "nginx.service"],
                                  "enabled": ["nginx.service"]}
    assert "root" in result["accounts"] and pwd.getpwuid(0).pw_name in result["accounts"]
    assert grp.getgrgid(0).gr_name in result["groups"]
    assert result["firewall"] == {"written": "", "loaded": ""}
    assert result["units"] == []
    assert [argv[1] for argv in ran] == ["--show", "list-units"]


def test_units_are_read_when_asked(host, capsys):
    tree, ran, _ = host
    result = run(capsys, tree, units=["a.service", "b.service"])
    assert result["units"] == [
        {"id": "a.service", "unit_file_state": "masked", "active_state": "inactive"},
        {"id": "b.service", "unit_file_state": "", "active_state": "inactive"}]
    assert ran[-1][-2:] == ["a.service", "b.service"]


def test_firewall_file_and_its_load_record(host, capsys):
    tree, _, _ = host
    (tree / "promha" / "firewall.nft").write_bytes(b"table inet promha {}\n")
    digest = hashlib.sha256(b"table inet promha {}\n").hexdigest()
    (tree / "promha" / "firewall.loaded").write_text(digest + "\n")
    assert run(capsys, tree)["firewall"] == {"written": digest, "loaded": digest}


def test_unknown_time_zone_names_the_variable(host, capsys):
    tree, ran, _ = host
    result = run(capsys, tree, timezone="Mars/Olympus", timezone_variable="common_timezone")
    assert result["failed"] is True
    assert result["msg"] == f"common_timezone Mars/Olympus is not in {tree / 'zoneinfo'} on this host"
    assert ran == []


def test_zone_is_not_checked_without_zoneinfo(host, capsys):
    tree, _, _ = host
    assert "failed" not in run(capsys, tree, timezone="Mars/Olympus", zoneinfo_dir=str(tree / "none"))


def test_systemd_that_does_not_answer_shows_nothing_running(host, capsys):
    tree, _, answers = host
    answers["list-units"] = (1, "", "System has not been booted with systemd")
    assert run(capsys, tree)["services"]["active"] == []


@pytest.mark.parametrize("command,units,message", [
    ("dpkg-query", [], "dpkg-query failed (rc 2): broken"),
    ("show", ["a.service"], "systemctl show failed (rc 2): broken"),
])
def test_failed_reads_fail_the_task(host, capsys, command, units, message):
    tree, _, answers = host
    answers[command] = (2, "", "broken\n")
    result = run(capsys, tree, units=units)
    assert result["failed"] is True and result["msg"] == message
