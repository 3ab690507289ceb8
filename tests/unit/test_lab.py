"""scripts/lab.py: a second `up` keeps the containers that match, and the inotify limit
is checked before containers start."""

from pathlib import Path

import pytest
from loadfile import load_file

ROOT = Path(__file__).resolve().parents[2]
lab = load_file("scripts/lab.py")


@pytest.mark.parametrize("reported", ["CAP_NET_ADMIN,CAP_SYS_ADMIN", "NET_ADMIN,SYS_ADMIN", "SYS_ADMIN, NET_ADMIN"])
def test_net_admin_is_recognised_as_every_engine_reports_it(reported):
    assert "NET_ADMIN" in lab.normalised_caps(reported)


@pytest.mark.parametrize("reported", ["", "CAP_SYS_ADMIN", "NET_RAW"])
def test_a_container_without_net_admin_is_told_apart(reported):
    assert "NET_ADMIN" not in lab.normalised_caps(reported)


def test_the_lab_sysctls_are_recognised_and_a_container_without_them_told_apart():
    assert lab.sysctls_set("net.ipv4.ip_nonlocal_bind=1,")
    assert lab.sysctls_set("net.core.somaxconn=512,net.ipv4.ip_nonlocal_bind=1,")
    assert not lab.sysctls_set("")
    assert not lab.sysctls_set("net.ipv4.ip_nonlocal_bind=0,")


def test_a_low_inotify_limit_is_raised(tmp_path, capsys):
    limit = tmp_path / "max_user_instances"
    limit.write_text("128\n")
    assert lab.ensure_inotify(17, path=limit) == 1024
    assert limit.read_text().strip() == "1024"
    assert "raised from 128 to 1024" in capsys.readouterr().out


def test_a_limit_high_enough_is_left_alone(tmp_path):
    limit = tmp_path / "max_user_instances"
    limit.write_text("8192\n")
    assert lab.ensure_inotify(40, path=limit) == 8192
    assert limit.read_text().strip() == "8192"


def test_a_limit_that_cannot_be_raised_stops_with_the_command(tmp_path, monkeypatch):
    limit = tmp_path / "max_user_instances"
    limit.write_text("128\n")

    def refuse(self, *args, **kwargs):
        raise PermissionError("read-only")

    monkeypatch.setattr(Path, "write_text", refuse)
    with pytest.raises(SystemExit) as stopped:
        lab.ensure_inotify(20, path=limit)
    assert "sysctl -w fs.inotify.max_user_instances=1024" in str(stopped.value)


def test_a_mixed_lab_alternates_images_but_keeps_the_database_cluster_on_one_release():
    hosts = {name: {"groups": groups} for name, groups in (
        ("am-1", ["alertmanager"]), ("am-2", ["alertmanager"]), ("db-1", ["mysql"]), ("db-2", ["mysql"]),
        ("db-3", ["mysql"]), ("vm-1", ["remote_storage"]), ("vm-2", ["remote_storage"]))}
    images = lab.host_images(hosts, "d12", "d13")
    assert [images[h] for h in ("am-1", "am-2", "vm-1", "vm-2")] == ["d12", "d13", "d13", "d12"]
    assert {images[h] for h in ("db-1", "db-2", "db-3")} == {"d12"}
    assert set(lab.host_images(hosts, "d12").values()) == {"d12"}
