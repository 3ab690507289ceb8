"""The common role, checked on each container as a specification."""

from pathlib import Path

import pytest
from live import converge

HOSTS = "ansible://all"
testinfra_hosts = [HOSTS]


def test_systemd_is_pid_1_and_running(host):
    assert host.process.get(pid=1).comm == "systemd"
    state = host.run("systemctl is-system-running").stdout.strip()
    assert state in ("running", "degraded"), host.run("systemctl --failed --no-legend").stdout


@pytest.mark.parametrize("package", ["ca-certificates", "curl", "tzdata", "chrony", "less"])
def test_packages_installed(host, package):
    assert host.package(package).is_installed


def test_time_zone(host):
    assert host.file("/etc/localtime").linked_to == "/usr/share/zoneinfo/Europe/Berlin"
    assert host.file("/etc/timezone").content_string == "Europe/Berlin\n"
    assert host.run("date +%Z").stdout.strip() in ("CET", "CEST")


def test_chrony_configured_but_not_running_in_a_container(host):
    conf = host.file("/etc/chrony/chrony.conf")
    assert conf.content_string.startswith("#")
    assert "Ansible managed" in conf.content_string
    assert "server 0.debian.pool.ntp.org iburst" in conf.content_string
    assert host.run("chronyd -p -f /etc/chrony/chrony.conf").rc == 0
    assert not host.service("chrony").is_running
    assert not host.service("chrony").is_enabled


def test_monitoring_account(host):
    user = host.user("monitoring")
    assert user.group == "monitoring"
    assert user.shell == "/usr/sbin/nologin"
    assert user.uid < 1000


@pytest.mark.parametrize("path,owner,mode", [
    ("/etc/monitoring", "root", 0o755),
    ("/var/lib/monitoring", "monitoring", 0o755),
    ("/var/lib/monitoring/textfile", "monitoring", 0o775),
])
def test_shared_directories(host, path, owner, mode):
    directory = host.file(path)
    assert directory.is_directory
    assert directory.user == owner
    assert directory.group == "monitoring"
    assert directory.mode == mode


def test_unknown_time_zone_is_refused_before_any_change(host):
    """A zone with a valid name that the host does not know stops the run at the first read."""
    scenario = Path(__file__).resolve().parents[1]
    before = host.file("/etc/localtime").linked_to
    result = converge(scenario, {"common_timezone": "Mars/Olympus"}, limit=host.backend.get_hostname())
    assert result.returncode != 0
    assert "common_timezone Mars/Olympus is not in /usr/share/zoneinfo" in result.output
    assert "changed=0" in result.output
    assert host.file("/etc/localtime").linked_to == before
