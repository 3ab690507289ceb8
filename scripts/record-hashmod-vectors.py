#!/usr/bin/env python3
"""Record hashmod test vectors from a real Prometheus (not from our own code).

Runs inside a host that has Debian's `prometheus` package installed (a lab
container): starts a throw-away Prometheus with one scrape job per shard, each
job carrying `hashmod` on `__address__` with the given modulus and `keep` of its
shard, over a file_sd list of synthetic addresses; then reads which job kept each
address from /api/v1/targets. Prints the vectors as JSON on stdout.

    docker cp scripts/record-hashmod-vectors.py HOST:/tmp/r.py
    docker exec HOST python3 /tmp/r.py > tests/unit/data/hashmod_vectors.json
"""

import json
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

MODULI = (2, 3, 7)
ADDRESSES = [f"10.{i // 250}.{i % 250}.{(i * 7) % 251}:{9100 + i % 5}" for i in range(120)] + [
    f"node-{i}.example.org:9100" for i in range(40)] + [f"[fd00::{i:x}]:9100" for i in range(40)]
PORT = 19990


def main():
    work = Path(tempfile.mkdtemp())
    (work / "targets.json").write_text(json.dumps([{"targets": ADDRESSES}]))
    jobs = []
    for modulus in MODULI:
        for shard in range(modulus):
            jobs.append({
                "job_name": f"m{modulus}s{shard}",
                "scrape_interval": "1h",
                "file_sd_configs": [{"files": [str(work / "targets.json")]}],
                "relabel_configs": [
                    {"source_labels": ["__address__"], "modulus": modulus,
                     "target_label": "__tmp_hash", "action": "hashmod"},
                    {"source_labels": ["__tmp_hash"], "regex": str(shard), "action": "keep"},
                ],
            })
    (work / "prometheus.yml").write_text(json.dumps({"scrape_configs": jobs}))
    version = subprocess.run(["prometheus", "--version"], capture_output=True, text=True, check=True)
    proc = subprocess.Popen(["prometheus", f"--config.file={work / 'prometheus.yml'}",
                             f"--storage.tsdb.path={work / 'data'}",
                             f"--web.listen-address=127.0.0.1:{PORT}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        expected = len(ADDRESSES) * len(MODULI)
        for _ in range(120):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/api/v1/targets?state=active") as r:
                    active = json.load(r)["data"]["activeTargets"]
                if len(active) == expected:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        else:
            raise SystemExit(f"Prometheus did not show {expected} active targets")
    finally:
        proc.terminate()
        proc.wait()
    vectors = []
    for target in active:
        job = target["labels"]["job"]
        modulus, shard = job[1:].split("s")
        vectors.append({"address": target["labels"]["instance"],
                        "modulus": int(modulus), "shard": int(shard)})
    vectors.sort(key=lambda v: (v["modulus"], v["address"]))
    print(json.dumps({"source": version.stdout.splitlines()[0],
                      "method": "live /api/v1/targets of one job per (modulus, shard)",
                      "vectors": vectors}, indent=1))


if __name__ == "__main__":
    main()
