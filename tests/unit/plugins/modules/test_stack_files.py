"""Unit tests for plugins/modules/stack_files.py, run as Ansible runs it (module args in, JSON out)."""

import grp
import json
import os
import pwd
import stat

import pytest
from ansible.module_utils.testing import patch_module_args
from loadfile import load_file

stack_files = load_file("plugins/modules/stack_files.py")

ME = pwd.getpwuid(os.getuid()).pw_name
MY_GROUP = grp.getgrgid(os.getgid()).gr_name


def run(capsys, check_mode=False, diff=False, **args):
    """Run the module with these args; the parsed JSON result."""
    args = dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)
    with patch_module_args(args), pytest.raises(SystemExit):
        stack_files.main()
    return json.loads(capsys.readouterr().out)


def file_spec(path, mode="0640", **extra):
    return dict(path=str(path), owner=ME, group=MY_GROUP, mode=mode, **extra)


def mode_of(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_creates_directories_and_files_then_changes_nothing(tmp_path, capsys):
    web = tmp_path / "etc" / "web"
    args = dict(directories=[file_spec(web, "0750")],
                files=[file_spec(web / "server.crt", "0644", content="CERT\n"),
                       file_spec(web / "server.key", "0600", secret_content="KEY\n")])
    first = run(capsys, **args)
    assert first["changed"] is True
    assert first["changed_paths"] == [str(web), str(web / "server.crt"), str(web / "server.key")]
    assert (web / "server.key").read_text() == "KEY\n"
    assert (mode_of(web), mode_of(web / "server.crt"), mode_of(web / "server.key")) == (0o750, 0o644, 0o600)
    second = run(capsys, **args)
    assert second["changed"] is False
    assert second["changed_paths"] == []


def test_a_mode_change_alone_is_a_change(tmp_path, capsys):
    path = tmp_path / "f"
    path.write_text("x")
    path.chmod(0o644)
    result = run(capsys, files=[file_spec(path, "0600", content="x")])
    assert result["changed_paths"] == [str(path)]
    assert mode_of(path) == 0o600


def test_diff_shows_plain_content_and_never_a_secret(tmp_path, capsys):
    (tmp_path / "a").write_text("old\n")
    result = run(capsys, diff=True, files=[file_spec(tmp_path / "a", content="new\n"),
                                           file_spec(tmp_path / "b", secret_content="s3cret-value\n")])
    assert result["diff"] == [{"before_header": str(tmp_path / "a"), "after_header": str(tmp_path / "a"),
                               "before": "old\n", "after": "new\n"}]
    assert "s3cret-value" not in json.dumps(result)
    assert (tmp_path / "b").read_text() == "s3cret-value\n"


def test_check_mode_reports_and_writes_nothing(tmp_path, capsys):
    (tmp_path / "a").write_text("old\n")
    result = run(capsys, check_mode=True, directories=[file_spec(tmp_path / "d", "0755")],
                 files=[file_spec(tmp_path / "a", content="new\n")])
    assert result["changed_paths"] == [str(tmp_path / "d"), str(tmp_path / "a")]
    assert not (tmp_path / "d").exists()
    assert (tmp_path / "a").read_text() == "old\n"


def test_a_file_that_fails_validation_leaves_the_old_one(tmp_path, capsys):
    path = tmp_path / "web.yml"
    path.write_text("good\n")
    result = run(capsys, files=[file_spec(path, content="bad\n", validate="grep -q good %s")])
    assert result["failed"] is True
    assert str(path) in result["msg"] and "failed validation" in result["msg"]
    assert path.read_text() == "good\n"
    assert sorted(os.listdir(tmp_path)) == ["web.yml"]


def test_files_settle_in_order_and_a_refused_one_stops_the_rest(tmp_path, capsys):
    cert, web, unit = tmp_path / "server.crt", tmp_path / "web.yml", tmp_path / "a.service"
    unit.write_text("old unit\n")
    # web.yml's check reads the certificate listed before it: it is in place by then.
    result = run(capsys, files=[file_spec(cert, content="cert\n"),
                                file_spec(web, content="good\n", validate=f"grep -q cert {cert} %s"),
                                file_spec(unit, content="new unit\n")])
    assert result["changed_paths"] == [str(cert), str(web), str(unit)]
    result = run(capsys, files=[file_spec(web, content="bad\n", validate="grep -q good %s"),
                                file_spec(unit, content="newer unit\n")])
    assert result["failed"] is True
    assert web.read_text() == "good\n" and unit.read_text() == "new unit\n"


def test_a_file_that_passes_validation_is_written(tmp_path, capsys):
    path = tmp_path / "web.yml"
    result = run(capsys, files=[file_spec(path, content="good\n", validate="grep -q good %s")])
    assert result["changed"] is True
    assert path.read_text() == "good\n"


def test_links_are_created_and_repointed(tmp_path, capsys):
    for name in ("UTC", "Berlin"):
        (tmp_path / name).write_text(name)
    link = tmp_path / "localtime"
    assert run(capsys, links=[{"path": str(link), "src": str(tmp_path / "UTC")}])["changed"] is True
    assert run(capsys, links=[{"path": str(link), "src": str(tmp_path / "UTC")}])["changed"] is False
    assert run(capsys, links=[{"path": str(link), "src": str(tmp_path / "Berlin")}])["changed"] is True
    assert os.readlink(link) == str(tmp_path / "Berlin")


def test_a_link_to_nothing_is_refused_naming_both(tmp_path, capsys):
    result = run(capsys, links=[{"path": str(tmp_path / "localtime"), "src": str(tmp_path / "Mars/Base")}])
    assert result["failed"] is True
    assert str(tmp_path / "Mars/Base") in result["msg"]
    assert not (tmp_path / "localtime").exists()


@pytest.mark.parametrize("kind", ["owner", "group"])
def test_an_unknown_owner_or_group_is_refused_naming_it(tmp_path, capsys, kind):
    spec_ = dict(file_spec(tmp_path / "f", content="x"), **{kind: "no-such-name-here"})
    result = run(capsys, files=[spec_])
    assert result["failed"] is True
    assert result["msg"] == f"{kind} no-such-name-here does not exist on this host"
    assert not (tmp_path / "f").exists()


def test_content_and_secret_content_are_exclusive(tmp_path, capsys):
    result = run(capsys, files=[file_spec(tmp_path / "f", content="a", secret_content="b")])
    assert result["failed"] is True
    assert "mutually exclusive" in result["msg"]


def test_new_files_only_writes_the_missing_and_leaves_the_rest(tmp_path, capsys):
    (tmp_path / "old.json").write_text("running\n")
    result = run(capsys, new_files_only=True, prune=[dict(path=str(tmp_path), pattern="*.json")],
                 files=[file_spec(tmp_path / "old.json", content="changed\n"),
                        file_spec(tmp_path / "new.json", content="new\n")])
    assert result["changed_paths"] == [str(tmp_path / "new.json")]
    assert (tmp_path / "old.json").read_text() == "running\n"
    assert (tmp_path / "new.json").read_text() == "new\n"


def test_prune_removes_unlisted_matching_files_only(tmp_path, capsys):
    for name in ("kept.json", "gone.json", "site.yml"):
        (tmp_path / name).write_text("x\n")
        (tmp_path / name).chmod(0o640)
    (tmp_path / "sub.json").mkdir()
    (tmp_path / "link.json").symlink_to(tmp_path / "site.yml")
    args = dict(prune=[dict(path=str(tmp_path) + "/", pattern="*.json"), dict(path=str(tmp_path / "missing"))],
                files=[file_spec(tmp_path / "kept.json", content="x\n")])
    checked = run(capsys, check_mode=True, **args)
    assert checked["changed_paths"] == [str(tmp_path / "gone.json")]
    assert (tmp_path / "gone.json").exists()
    result = run(capsys, **args)
    assert result["changed_paths"] == [str(tmp_path / "gone.json")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.json", "link.json", "site.yml", "sub.json"]
    assert run(capsys, **args)["changed"] is False
