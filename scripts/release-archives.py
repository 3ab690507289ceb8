#!/usr/bin/env python3
"""Build upstream-layout release archives of Prometheus, Alertmanager and node_exporter.

Upstream's release pages cannot be reached from the lab machines, so the archive
install path is exercised with archives built from Debian's own newer builds (the
suite given, unstable by default), laid out as upstream lays them out:

    prometheus-3.5.3.linux-amd64.tar.gz
      prometheus-3.5.3.linux-amd64/{prometheus,promtool,LICENSE}
    sha256sums.txt                      (<sha256>  <file>, as upstream publishes)

exactly what a site's internal mirror of the release pages serves. Every download
is verified: the suite's InRelease with gpgv against Debian's archive keyring, the
Packages index against InRelease, each .deb against the index.

It also writes ``vars.yml``: the roles' ``*_install_method: archive``,
``*_version``, ``*_archive_src`` and ``*_archive_sha256`` for these archives, for
``ansible-playbook -e @<out>/vars.yml``.

    release-archives.py [--suite sid] [--out .lab/releases]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import lzma
import re
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
# role variable prefix -> {Debian package: {path in the .deb: name in the archive}};
# the first package gives the version and the LICENSE (its copyright file).
RELEASES = {
    "prometheus": {"prometheus": {"usr/bin/prometheus": "prometheus"},
                   "promtool": {"usr/bin/promtool": "promtool"}},
    "alertmanager": {"prometheus-alertmanager": {"usr/bin/prometheus-alertmanager": "alertmanager",
                                                 "usr/bin/amtool": "amtool"}},
    "node_exporter": {"prometheus-node-exporter": {"usr/bin/prometheus-node-exporter": "node_exporter"}},
}


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=120) as response:  # noqa: S310 - the host's own Debian mirror
        return response.read()


def mirror() -> str:
    """The first Debian (non-security) URI in the host's apt sources, as scripts/base-image.sh takes it."""
    sources = list(Path("/etc/apt/sources.list.d").glob("*.sources")) + [Path("/etc/apt/sources.list")]
    for path in sources:
        if not path.is_file():
            continue
        for line in path.read_text().splitlines():
            match = re.match(r"^(?:URIs:\s*|deb\s+(?:\[[^]]*\]\s*)?)(\S+)", line)
            if match and "security" not in match.group(1):
                return match.group(1).rstrip("/")
    sys.exit("release-archives: no Debian mirror in /etc/apt/sources.list{,.d/}")


def verified_index(base: str, suite: str) -> str:
    """The suite's amd64 Packages index, checked against its gpgv-verified InRelease."""
    signed = fetch(f"{base}/dists/{suite}/InRelease")
    with tempfile.NamedTemporaryFile() as tmp:
        tmp.write(signed)
        tmp.flush()
        check = subprocess.run(["gpgv", "--keyring", KEYRING, "--output", "-", tmp.name],
                               capture_output=True, check=False)
    if check.returncode != 0:
        sys.exit(f"release-archives: {suite}'s InRelease failed gpgv against {KEYRING}:\n"
                 f"{check.stderr.decode(errors='replace')}")
    release = check.stdout.decode()
    want = re.search(r"^ ([0-9a-f]{64}) +\d+ main/binary-amd64/Packages\.xz$", release, re.M)
    if not want:
        sys.exit(f"release-archives: {suite}'s InRelease lists no main/binary-amd64/Packages.xz")
    packed = fetch(f"{base}/dists/{suite}/main/binary-amd64/Packages.xz")
    if hashlib.sha256(packed).hexdigest() != want.group(1):
        sys.exit(f"release-archives: {suite}'s Packages.xz does not match its InRelease")
    return lzma.decompress(packed).decode()


def stanza(index: str, package: str) -> dict:
    for block in index.split("\n\n"):
        fields = dict(re.findall(r"^([A-Za-z0-9-]+): (.*)$", block, re.M))
        if fields.get("Package") == package:
            return fields
    sys.exit(f"release-archives: no package {package} in the index")


def unpack(package: str, base: str, index: str, into: Path) -> str:
    """Unpack one verified .deb of the index into ``into``; its Debian version."""
    fields = stanza(index, package)
    deb = fetch(f"{base}/{fields['Filename']}")
    if hashlib.sha256(deb).hexdigest() != fields["SHA256"]:
        sys.exit(f"release-archives: {fields['Filename']} does not match the index")
    (into / "pkg.deb").write_bytes(deb)
    subprocess.run(["dpkg-deb", "-x", str(into / "pkg.deb"), str(into / "root")], check=True)
    (into / "pkg.deb").unlink()
    return fields["Version"]


def build(prefix: str, packages: dict, base: str, index: str, out: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "root"
        versions = [unpack(package, base, index, Path(tmp)) for package in packages]
        # Upstream versions: Debian's 3.5.3+ds1-6 is upstream 3.5.3.
        version = re.match(r"^(?:\d+:)?([0-9.]+)", versions[0]).group(1)
        top = f"{prefix}-{version}.linux-amd64"
        first = next(iter(packages))
        files = {source: name for members in packages.values() for source, name in members.items()}
        files[f"usr/share/doc/{first}/copyright"] = "LICENSE"
        archive = out / f"{top}.tar.gz"
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            for source, name in files.items():
                info = tar.gettarinfo(str(root / source), arcname=f"{top}/{name}")
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                with open(root / source, "rb") as handle:
                    tar.addfile(info, handle)
        archive.write_bytes(buffer.getvalue())
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    print(f"release-archives: {archive.name} from {', '.join(packages)} {versions[0]} (sha256 {digest[:12]}...)")
    return {"prefix": prefix, "version": version, "file": archive, "sha256": digest}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", default="sid")
    parser.add_argument("--out", type=Path, default=ROOT / ".lab" / "releases")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    base = mirror()
    index = verified_index(base, args.suite)
    built = [build(prefix, packages, base, index, args.out.resolve()) for prefix, packages in RELEASES.items()]
    (args.out / "sha256sums.txt").write_text("".join(f"{b['sha256']}  {b['file'].name}\n" for b in built))
    lines = ["---", f"# Written by scripts/release-archives.py from Debian {args.suite}: the archive install path."]
    for b in built:
        lines += [f"{b['prefix']}_install_method: archive", f"{b['prefix']}_version: \"{b['version']}\"",
                  f"{b['prefix']}_archive_src: {b['file']}", f"{b['prefix']}_archive_sha256: {b['sha256']}"]
    (args.out / "vars.yml").write_text("\n".join(lines) + "\n")
    print(f"release-archives: {args.out / 'vars.yml'}")


if __name__ == "__main__":
    main()
