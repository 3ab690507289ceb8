"""Scrape-shard assignment filters: Prometheus' own hashmod, and rendezvous hashing.

Filters
-------
``prometheus_hashmod``
    ``value | prometheus_hashmod(modulus)`` -> the integer Prometheus' ``hashmod``
    relabel action gives ``value``: md5 of the (already joined) source-label values,
    the last 8 bytes of the digest read as a big-endian unsigned integer, modulo
    ``modulus``. Bit-for-bit what ``model/relabel`` does in Prometheus 2.x.

    Example: ``'10.0.0.1:9100' | prometheus_hashmod(2)``

``hashmod_relabel_configs``
    ``shard | hashmod_relabel_configs(shard_count, source_labels=['__address__'])``
    -> the two ``relabel_configs`` entries that make shard ``shard`` of
    ``shard_count`` keep exactly its targets (hashmod into a temporary label, then
    keep). Put them last in every scrape job of that shard.

    Example: ``prometheus_shard | hashmod_relabel_configs(prometheus_shard_count)``

``shard_targets``
    ``targets | shard_targets(shard_count, mode='rendezvous', replicas=1, weights=None)``
    -> ``{0: [...], 1: [...], ..., N-1: [...]}``: every shard index (empty shards
    included) mapped to its sorted, de-duplicated target list.

    * ``mode='hashmod'``: the shard Prometheus' hashmod on the target string picks
      (``replicas`` must be 1). Use when the live servers shard with relabelling.
    * ``mode='rendezvous'``: highest-random-weight hashing. Each target goes to the
      ``replicas`` shards with the highest score. Adding shard N moves about
      1/(N+1) of the assignments (hashmod moves about N/(N+1)); removing the last
      shard moves only that shard's targets. ``weights`` (one positive number per
      shard) skews the share of each shard in proportion.

    Example: ``groups['all'] | map('regex_replace', '$', ':9100')
    | shard_targets(2, replicas=1)``

``shard_moves``
    ``old_assignment | shard_moves(new_assignment)`` -> the list of moves
    ``{target, from: [...], to: [...]}`` between two ``shard_targets`` results,
    sorted by target: what would change when the plan is applied.

``deployed_shard_targets``
    ``config_text | deployed_shard_targets(file_sd_text)`` -> ``{shard: [targets]}``
    for one running replica: its ``external_labels.shard`` and the targets its
    ``node`` job keeps (the file_sd list, filtered by the job's hashmod relabelling
    when there is one). Used by playbooks/shard-plan.yml to read what runs now.

``shard_load``
    ``assignment | shard_load`` -> ``{targets, shards, min, max, mean, imbalance}``
    for an operator's plan (``imbalance`` = max / mean).

Determinism: the rendezvous score of a (target, shard) pair is the shard-th 64-bit
word of SHAKE-128(target); SHAKE is an extendable-output function, so the word for
shard j does not depend on how many shards there are. No ``hash()``, no set
ordering: the same input gives the same output on every machine and Python version.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import math
import struct

import yaml

try:  # Ansible is present when the filter runs inside a play; the unit tests import it too.
    from ansible.errors import AnsibleFilterError
except ImportError:  # pragma: no cover - lets the benchmark run without Ansible
    class AnsibleFilterError(Exception):
        """Stand-in used when Ansible is not importable (benchmarks only)."""


MODES = ("rendezvous", "hashmod")
# Rendezvous scores keep the shard index in their low 16 bits, so ties (vanishingly
# rare in 48 random bits) are broken by index, deterministically.
_INDEX_BITS = 16
_MAX_SHARDS = 1 << _INDEX_BITS
_HIGH_MASK = ((1 << 64) - 1) ^ (_MAX_SHARDS - 1)


def _check_count(filter_name, shard_count):
    if isinstance(shard_count, bool) or not isinstance(shard_count, int):
        try:
            shard_count = int(shard_count)
        except (TypeError, ValueError):
            raise AnsibleFilterError(
                f"{filter_name}: shard_count must be a whole number, got {shard_count!r}"
            ) from None
    if not 1 <= shard_count <= _MAX_SHARDS:
        raise AnsibleFilterError(
            f"{filter_name}: shard_count must be between 1 and {_MAX_SHARDS}, got {shard_count}"
        )
    return shard_count


def _check_targets(filter_name, targets):
    if isinstance(targets, (str, bytes)) or not hasattr(targets, "__iter__"):
        raise AnsibleFilterError(
            f"{filter_name}: expected a list of targets (host:port strings), got {type(targets).__name__}"
        )
    clean = []
    for position, target in enumerate(targets):
        if not isinstance(target, str) or not target.strip():
            raise AnsibleFilterError(
                f"{filter_name}: target #{position} is {target!r}; every target must be a non-empty string"
            )
        clean.append(target.strip())
    return sorted(set(clean))


def prometheus_hashmod(value, modulus):
    """Return the shard Prometheus' ``hashmod`` relabel action gives ``value``.

    ``value`` is the joined source-label string (for the default
    ``source_labels: [__address__]`` simply the address). Prometheus computes
    ``md5(value)``, reads digest bytes 8..15 as a big-endian uint64 and takes it
    modulo ``modulus``.
    """
    if not isinstance(value, str):
        raise AnsibleFilterError(
            f"prometheus_hashmod: value must be a string (the joined source labels), got {value!r}"
        )
    if isinstance(modulus, bool) or not isinstance(modulus, int) or modulus < 1:
        raise AnsibleFilterError(
            f"prometheus_hashmod: modulus must be a positive whole number, got {modulus!r}"
        )
    digest = hashlib.md5(value.encode("utf-8")).digest()  # noqa: S324 - Prometheus' choice
    return int.from_bytes(digest[8:], "big") % modulus


def hashmod_relabel_configs(shard, shard_count, source_labels=None, separator=";",
                            target_label="__tmp_hashmod"):
    """Return the ``relabel_configs`` that keep only shard ``shard`` of ``shard_count``."""
    shard_count = _check_count("hashmod_relabel_configs", shard_count)
    try:
        shard = int(shard)
    except (TypeError, ValueError):
        raise AnsibleFilterError(
            f"hashmod_relabel_configs: shard must be a whole number, got {shard!r}"
        ) from None
    if not 0 <= shard < shard_count:
        raise AnsibleFilterError(
            f"hashmod_relabel_configs: shard {shard} is outside 0..{shard_count - 1}"
        )
    labels = list(source_labels) if source_labels is not None else ["__address__"]
    if not labels or not all(isinstance(label, str) and label for label in labels):
        raise AnsibleFilterError(
            f"hashmod_relabel_configs: source_labels must be a non-empty list of label names, got {source_labels!r}"
        )
    return [
        {
            "source_labels": labels,
            "separator": separator,
            "modulus": shard_count,
            "target_label": target_label,
            "action": "hashmod",
        },
        {
            "source_labels": [target_label],
            "regex": str(shard),
            "action": "keep",
        },
    ]


def _rendezvous_words(target, shard_count):
    """The per-shard 64-bit words of SHAKE-128(target), shard index in the low bits."""
    raw = hashlib.shake_128(target.encode("utf-8")).digest(8 * shard_count)
    words = struct.unpack(f">{shard_count}Q", raw)
    return [(word & _HIGH_MASK) | index for index, word in enumerate(words)]


def _check_weights(weights, shard_count):
    if weights is None:
        return None
    if isinstance(weights, dict):
        missing = [i for i in range(shard_count) if i not in weights and str(i) not in weights]
        if missing:
            raise AnsibleFilterError(
                f"shard_targets: weights has no entry for shard(s) {missing}; give one weight per shard 0..{shard_count - 1}"
            )
        weights = [weights[i] if i in weights else weights[str(i)] for i in range(shard_count)]
    weights = list(weights)
    if len(weights) != shard_count:
        raise AnsibleFilterError(
            f"shard_targets: weights has {len(weights)} entries for {shard_count} shards; give one weight per shard"
        )
    clean = []
    for index, weight in enumerate(weights):
        try:
            value = float(weight)
        except (TypeError, ValueError):
            value = float("nan")
        if not value > 0 or math.isinf(value):
            raise AnsibleFilterError(
                f"shard_targets: weight of shard {index} is {weight!r}; weights must be positive finite numbers"
            )
        clean.append(value)
    if len(set(clean)) == 1:
        return None  # equal weights: the exact integer path gives the same ranking
    return clean


def _weighted_pick(words, weights, replicas):
    # Weighted rendezvous (Schindelhauer/Schomaker): score = -w / ln(u), u in (0, 1).
    scores = []
    for index, word in enumerate(words):
        unit = ((word >> 11) + 0.5) / 9007199254740992.0  # 2**53
        scores.append((-weights[index] / math.log(unit), index))
    return [index for _, index in heapq.nlargest(replicas, scores)]


def shard_targets(targets, shard_count, mode="rendezvous", replicas=1, weights=None):
    """Assign every target to ``replicas`` shard(s); return ``{shard: sorted targets}``."""
    shard_count = _check_count("shard_targets", shard_count)
    if mode not in MODES:
        raise AnsibleFilterError(
            f"shard_targets: unknown mode {mode!r}; use one of {', '.join(MODES)}"
        )
    try:
        replicas = int(replicas)
    except (TypeError, ValueError):
        raise AnsibleFilterError(
            f"shard_targets: replicas must be a whole number, got {replicas!r}"
        ) from None
    if replicas < 1:
        raise AnsibleFilterError(f"shard_targets: replicas must be at least 1, got {replicas}")
    if replicas > shard_count:
        raise AnsibleFilterError(
            f"shard_targets: replicas={replicas} is larger than the shard count {shard_count}; "
            "a target cannot sit twice on one shard"
        )
    if mode == "hashmod" and replicas != 1:
        raise AnsibleFilterError(
            "shard_targets: mode='hashmod' puts each target on exactly one shard; use replicas=1 "
            "or mode='rendezvous'"
        )
    if mode == "hashmod" and weights is not None:
        raise AnsibleFilterError("shard_targets: mode='hashmod' takes no weights; use mode='rendezvous'")
    weights = _check_weights(weights, shard_count)
    unique = _check_targets("shard_targets", targets)

    result = {index: [] for index in range(shard_count)}
    if mode == "hashmod":
        for target in unique:
            digest = hashlib.md5(target.encode("utf-8")).digest()  # noqa: S324
            result[int.from_bytes(digest[8:], "big") % shard_count].append(target)
        return result

    mask = _MAX_SHARDS - 1
    for target in unique:  # sorted, so every list below comes out sorted
        words = _rendezvous_words(target, shard_count)
        if weights is not None:
            chosen = _weighted_pick(words, weights, replicas)
        elif replicas == 1:
            chosen = (max(words) & mask,)
        else:
            chosen = [word & mask for word in heapq.nlargest(replicas, words)]
        for index in chosen:
            result[index].append(target)
    return result


def _normalise_assignment(filter_name, assignment):
    if not isinstance(assignment, dict):
        raise AnsibleFilterError(
            f"{filter_name}: expected a shard_targets result (a dict of shard -> targets), got {type(assignment).__name__}"
        )
    by_target = {}
    for shard, targets in assignment.items():
        try:
            index = int(shard)
        except (TypeError, ValueError):
            raise AnsibleFilterError(f"{filter_name}: shard key {shard!r} is not a shard index") from None
        for target in targets or []:
            by_target.setdefault(target, set()).add(index)
    return by_target


def shard_moves(old, new):
    """List the targets whose shard set differs between two assignments."""
    before = _normalise_assignment("shard_moves", old)
    after = _normalise_assignment("shard_moves", new)
    moves = []
    for target in sorted(set(before) | set(after)):
        was, now = before.get(target, set()), after.get(target, set())
        if was != now:
            moves.append({"target": target, "from": sorted(was - now), "to": sorted(now - was)})
    return moves


def deployed_shard_targets(config_text, file_sd_text, job="node"):
    """Return ``{shard: targets}`` that a deployed replica scrapes in ``job``."""
    try:
        config = yaml.safe_load(config_text) or {}
        file_sd = json.loads(file_sd_text)
    except (yaml.YAMLError, ValueError) as error:
        raise AnsibleFilterError(f"deployed_shard_targets: cannot parse the deployed files: {error}") from None
    try:
        shard = int(config["global"]["external_labels"]["shard"])
    except (KeyError, TypeError, ValueError):
        raise AnsibleFilterError(
            "deployed_shard_targets: the deployed prometheus.yml has no global.external_labels.shard"
        ) from None
    targets = sorted({t for group in file_sd for t in group.get("targets", [])})
    scrape = next((c for c in config.get("scrape_configs") or [] if c.get("job_name") == job), None)
    if scrape is None:
        raise AnsibleFilterError(f"deployed_shard_targets: the deployed prometheus.yml has no job {job!r}")
    hashmods = [r for r in scrape.get("relabel_configs") or [] if r.get("action") == "hashmod"]
    if hashmods:
        modulus = int(hashmods[0]["modulus"])
        targets = [t for t in targets if prometheus_hashmod(t, modulus) == shard]
    return {shard: targets}


def shard_load(assignment):
    """Summarise an assignment: target count, per-shard min/max/mean and imbalance."""
    _normalise_assignment("shard_load", assignment)
    sizes = [len(targets or []) for targets in assignment.values()]
    if not sizes:
        raise AnsibleFilterError("shard_load: the assignment has no shards")
    unique = {target for targets in assignment.values() for target in (targets or [])}
    mean = sum(sizes) / len(sizes)
    return {
        "targets": len(unique),
        "shards": len(sizes),
        "min": min(sizes),
        "max": max(sizes),
        "mean": round(mean, 2),
        "imbalance": round(max(sizes) / mean, 3) if mean else 0.0,
    }


class FilterModule:
    """Shard assignment filters."""

    def filters(self):
        return {
            "prometheus_hashmod": prometheus_hashmod,
            "hashmod_relabel_configs": hashmod_relabel_configs,
            "shard_targets": shard_targets,
            "shard_moves": shard_moves,
            "deployed_shard_targets": deployed_shard_targets,
            "shard_load": shard_load,
        }
