"""scripts/release-archives.py: upstream's archive layout from Debian packages, and
a package whose bytes differ from the index is refused.

The mirror is replaced by a dictionary of URLs; the packages are real .deb files
built here with dpkg-deb."""

import hashlib
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from loadfile import load_file

ROOT = Path(__file__).resolve().parents[2]
release_archives = load_file("scripts/release-archives.py")

pytestmark = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb (Debian)")


def deb(tmp_path, package, version, files):
    """A .deb of ``package`` holding ``files`` ({path: content}) and its copyright file."""
    root = tmp_path / f"{package}-root"
    for path, content in {**files, f"usr/share/doc/{package}/copyright": f"{package} licence\n"}.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(content)
        (root / path).chmod(0o755 if "/bin/" in path else 0o644)
    (root / "DEBIAN").mkdir()
    (root / "DEBIAN" / "control").write_text(
        f"Package: {package}\nVersion: {version}\nArchitecture: amd64\nMaintainer: t <t@example.org>\n"
        "Description: test\n")
    out = tmp_path / f"{package}.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(root), str(out)], check=True,
                   capture_output=True)
    return out.read_bytes()


def mirror(monkeypatch, tmp_path, tamper=False):
    debs = {
        "prometheus": ("3.5.3+ds1-6", {"usr/bin/prometheus": "#!/bin/sh\necho prometheus\n"}),
        "promtool": ("3.5.3+ds1-6", {"usr/bin/promtool": "#!/bin/sh\necho promtool\n"}),
    }
    served, index = {}, []
    for package, (version, files) in debs.items():
        data = deb(tmp_path, package, version, files)
        filename = f"pool/main/p/{package}/{package}_{version}_amd64.deb"
        served[f"http://mirror/{filename}"] = data + (b"x" if tamper and package == "promtool" else b"")
        index.append(f"Package: {package}\nVersion: {version}\nFilename: {filename}\n"
                     f"SHA256: {hashlib.sha256(data).hexdigest()}\n")
    monkeypatch.setattr(release_archives, "fetch", lambda url: served[url])
    return "\n".join(index)


def test_archive_has_upstreams_layout_and_checksum(monkeypatch, tmp_path):
    index = mirror(monkeypatch, tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    built = release_archives.build("prometheus", release_archives.RELEASES["prometheus"], "http://mirror", index, out)
    assert built["version"] == "3.5.3"
    assert built["file"].name == "prometheus-3.5.3.linux-amd64.tar.gz"
    assert built["sha256"] == hashlib.sha256(built["file"].read_bytes()).hexdigest()
    with tarfile.open(built["file"]) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert set(members) == {f"prometheus-3.5.3.linux-amd64/{name}" for name in ("prometheus", "promtool", "LICENSE")}
        binary = members["prometheus-3.5.3.linux-amd64/prometheus"]
        assert binary.mode & 0o111 and binary.uid == 0 and binary.gid == 0
        assert tar.extractfile(binary).read() == b"#!/bin/sh\necho prometheus\n"
        assert tar.extractfile("prometheus-3.5.3.linux-amd64/LICENSE").read() == b"prometheus licence\n"


def test_a_package_that_differs_from_the_index_is_refused(monkeypatch, tmp_path):
    index = mirror(monkeypatch, tmp_path, tamper=True)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(SystemExit, match="promtool_3.5.3.*does not match the index"):
        release_archives.build("prometheus", release_archives.RELEASES["prometheus"], "http://mirror", index, out)
    assert not list(out.iterdir())


def test_a_package_missing_from_the_index_is_named():
    with pytest.raises(SystemExit, match="no package prometheus-alertmanager"):
        release_archives.stanza("Package: prometheus\nVersion: 1\n", "prometheus-alertmanager")
