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
    ``shard | hashmod_relabel_configs(shard_count, source_labels=['__address__'],
    replicas=1, static_label=None)`` -> the two ``relabel_configs`` entries that make
    shard ``shard`` of ``shard_count`` keep exactly its targets: hashmod into a
    temporary label, then keep the buckets ``shard, shard-1, ..., shard-replicas+1``
    (mod ``shard_count``), so each target lands on ``replicas`` consecutive shards.
    With ``static_label``, targets carrying ``static_label="true"`` (placed by the
    controller already) pass untouched.

    Example: ``prometheus_shard | hashmod_relabel_configs(prometheus_shard_count)``

``shard_targets``
    ``targets | shard_targets(shard_count, mode='rendezvous', replicas=1, weights=None)``
    -> ``{0: [...], 1: [...], ..., N-1: [...]}``: every shard index (empty shards
    included) mapped to its sorted, de-duplicated target list.

    * ``mode='hashmod'``: the shard Prometheus' hashmod on the target string picks,
      and with ``replicas`` > 1 the next ones after it (the same shards the
      relabelling above keeps a discovered target on).
    * ``mode='rendezvous'``: highest-random-weight hashing. Each target goes to the
      ``replicas`` shards with the highest score. Adding shard N moves about
      1/(N+1) of the assignments (hashmod moves about N/(N+1)); removing the last
      shard moves only that shard's targets. ``weights`` (one positive number per
      shard) skews the share of each shard in proportion.

    Example: ``groups['all'] | map('regex_replace', '$', ':9100')
    | shard_targets(2, replicas=1)``

``shard_scrape_configs``
    ``jobs | shard_scrape_configs(shard, shard_count, mode='hashmod', replicas=1)``
    -> the complete ``scrape_configs`` list of shard ``shard``. ``jobs`` are ordinary
    Prometheus scrape_config mappings with one more key, ``shard``:

    * ``spread`` (the default): static targets are split here, on the controller
      (``mode``, ``replicas`` as in ``shard_targets``), and only this shard's share
      stays under ``static_configs``; targets found by service discovery
      (``*_sd_configs``) are split on the server by the hashmod relabelling above,
      put before the job's own ``relabel_configs`` (a target the job drops stays
      dropped on every shard). Either way each target is scraped by exactly
      ``replicas`` shards.
    * ``all``: the whole job on every shard.
    * a shard index or a list of them: the whole job on those shards only.

    No ``shard`` key is left in the result. Bad input (a name used twice, a pinned
    shard that does not exist, ``replicas`` larger than ``shard_count``, an unknown
    ``shard`` value, a job with neither targets nor discovery) raises one error that
    lists every problem. Jobs that name an inventory group go through
    ``inventory_scrape_jobs`` (plugins/filter/inventory.py) first.

    Example, shard 1 of 2::

        [{job_name: app, static_configs: [{targets: [a:80, b:80, c:80]}]},
         {job_name: k8s, kubernetes_sd_configs: [{role: pod}]},
         {job_name: probe, shard: all, static_configs: [{targets: [x:9115]}]},
         {job_name: db, shard: 0, static_configs: [{targets: [db:9104]}]}]
        | shard_scrape_configs(1, 2)
        -> [{job_name: app, static_configs: [{targets: [a:80, c:80]}]},
            {job_name: k8s, kubernetes_sd_configs: [{role: pod}], relabel_configs:
               [{source_labels: [__address__], separator: ';', modulus: 2,
                 target_label: __tmp_hashmod, action: hashmod},
                {source_labels: [__tmp_hashmod], regex: '1', action: keep}]},
            {job_name: probe, static_configs: [{targets: [x:9115]}]}]

``every_shard_scrape_configs``
    ``jobs | every_shard_scrape_configs(shard_count, mode='hashmod', replicas=1)`` ->
    ``[configs of shard 0, ..., configs of shard N-1]``: what ``shard_scrape_configs``
    gives each shard, every target placed once for all of them (the prometheus role
    computes it once for all the replicas it configures together).

``file_sd_scrape_configs``
    ``configs | file_sd_scrape_configs('/etc/prometheus/targets')`` ->
    ``{'scrape_configs': [...], 'files': {'app.json': [groups]}}``: each job's
    static targets moved into a file_sd file of its own, so adding or removing a
    target later rewrites only that file (no reload, no restart).

``scrape_job_problems``
    ``jobs | scrape_job_problems(shard_count, replicas=1, reserved=())`` -> the list
    of problems ``shard_scrape_configs`` would refuse, for preflight.

``shard_plan``
    ``jobs | shard_plan(shard_count, mode, replicas, deployed=None)`` -> per job its
    placement and target count, per shard its jobs and targets (discovered jobs
    reported as split by relabelling), the load (max/mean), and with ``deployed``
    every (job, target) whose shards change. playbooks/shard-plan.yml prints it.

``targets_never_scraped``
    ``targets_api.data.activeTargets | targets_never_scraped(max_interval=60)`` ->
    ``['job address', ...]`` of the targets a replica has not scraped yet (jobs
    with longer intervals left out): the rollout's gate before the next replica.

``shard_moves``
    ``old_assignment | shard_moves(new_assignment)`` -> the list of moves
    ``{target, from: [...], to: [...]}`` between two ``shard_targets`` results,
    sorted by target: what would change when the plan is applied.

``deployed_shard_targets``
    ``config_text | deployed_shard_targets({path: file_sd_text})`` ->
    ``{shard: {job: [targets]}}`` for one running replica: its
    ``external_labels.shard`` and, per job, the targets of its file_sd files. Used
    by playbooks/shard-plan.yml to read what runs now.

``target_file_specs``
    ``_prometheus_scrape.files | target_file_specs(directory, group)``
    -> the ``stack_files`` entries (path, content, group, mode 0644) of the file_sd
    files ``{name: groups}`` that ``file_sd_scrape_configs`` returns, in
    ``directory``, with the JSON ``to_nice_json`` writes (so files written by an
    earlier release compare equal).

    Example: ``{'node.json': []} | target_file_specs('/etc/prometheus/targets', 'prometheus')``

``shard_load``
    ``assignment | shard_load`` -> ``{targets, shards, min, max, mean, imbalance}``
    for an operator's plan (``imbalance`` = max / mean).

Determinism: the rendezvous score of a (target, shard) pair is the shard-th 64-bit
word of SHAKE-128(target); SHAKE is an extendable-output function, so the word for
shard j does not depend on how many shards there are. No ``hash()``, no set
ordering: the same input gives the same output on every machine and Python version.
"""

from __future__ import annotations

import functools
import hashlib
import heapq
import json
import math
import os
import re
import struct

import yaml
from ansible.errors import AnsibleFilterError
from ansible_collections.promha.stack.plugins.plugin_utils.filters import filter_module, is_list, listed, whole_number

MODES = ("rendezvous", "hashmod")
# Rendezvous scores keep the shard index in their low 16 bits, so ties (vanishingly
# rare in 48 random bits) are broken by index, deterministically.
_INDEX_BITS = 16
_MAX_SHARDS = 1 << _INDEX_BITS
_HIGH_MASK = ((1 << 64) - 1) ^ (_MAX_SHARDS - 1)


def _check_count(filter_name, shard_count):
    if isinstance(shard_count, bool) or not isinstance(shard_count, int):
        shard_count = whole_number(shard_count, f"{filter_name}: shard_count must be a whole number, got {shard_count!r}")
    if not 1 <= shard_count <= _MAX_SHARDS:
        raise AnsibleFilterError(
            f"{filter_name}: shard_count must be between 1 and {_MAX_SHARDS}, got {shard_count}"
        )
    return shard_count


def _check_targets(filter_name, targets):
    targets = listed(targets, f"{filter_name}: expected a list of targets (host:port strings), got {type(targets).__name__}")
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


def _hashmod_buckets(shard, shard_count, replicas):
    """The hashmod values whose targets shard ``shard`` keeps: its own and the ``replicas - 1`` before it."""
    return sorted({(shard - k) % shard_count for k in range(replicas)})


def hashmod_relabel_configs(shard, shard_count, source_labels=None, separator=";",
                            target_label="__tmp_hashmod", replicas=1, static_label=None):
    """Return the ``relabel_configs`` that keep only shard ``shard`` of ``shard_count``."""
    shard_count = _check_count("hashmod_relabel_configs", shard_count)
    shard = whole_number(shard, f"hashmod_relabel_configs: shard must be a whole number, got {shard!r}")
    if not 0 <= shard < shard_count:
        raise AnsibleFilterError(
            f"hashmod_relabel_configs: shard {shard} is outside 0..{shard_count - 1}"
        )
    replicas = _check_replicas("hashmod_relabel_configs", replicas, shard_count)
    labels = list(source_labels) if source_labels is not None else ["__address__"]
    if not labels or not all(isinstance(label, str) and label for label in labels):
        raise AnsibleFilterError(
            f"hashmod_relabel_configs: source_labels must be a non-empty list of label names, got {source_labels!r}"
        )
    buckets = "|".join(str(bucket) for bucket in _hashmod_buckets(shard, shard_count, replicas))
    keep = {"source_labels": [target_label], "regex": buckets, "action": "keep"}
    if static_label:
        # Targets the controller already placed carry static_label="true" and pass.
        keep = {"source_labels": [static_label, target_label], "separator": ";",
                "regex": f"true;.*|;(?:{buckets})", "action": "keep"}
    return [
        {
            "source_labels": labels,
            "separator": separator,
            "modulus": shard_count,
            "target_label": target_label,
            "action": "hashmod",
        },
        keep,
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


def _check_replicas(filter_name, replicas, shard_count):
    if isinstance(replicas, bool):
        replicas = None
    replicas = whole_number(replicas, f"{filter_name}: replicas must be a whole number, got {replicas!r}")
    if replicas < 1:
        raise AnsibleFilterError(f"{filter_name}: replicas must be at least 1, got {replicas}")
    if replicas > shard_count:
        raise AnsibleFilterError(
            f"{filter_name}: replicas={replicas} is larger than the shard count {shard_count}; "
            "a target cannot sit twice on one shard"
        )
    return replicas


def _check_mode(filter_name, mode):
    if mode not in MODES:
        raise AnsibleFilterError(
            f"{filter_name}: unknown mode {mode!r}; use one of {', '.join(MODES)}"
        )
    return mode


def _placer(shard_count, mode, replicas, weights=None):
    """A function target -> tuple of the shards that scrape it (memoised per call of a filter)."""
    if mode == "hashmod":
        def place(target):
            digest = hashlib.md5(target.encode("utf-8")).digest()  # noqa: S324 - Prometheus' choice
            first = int.from_bytes(digest[8:], "big") % shard_count
            return tuple(sorted((first + k) % shard_count for k in range(replicas)))
    else:
        mask = _MAX_SHARDS - 1

        def place(target):
            words = _rendezvous_words(target, shard_count)
            if weights is not None:
                return tuple(sorted(_weighted_pick(words, weights, replicas)))
            if replicas == 1:
                return (max(words) & mask,)
            return tuple(sorted(word & mask for word in heapq.nlargest(replicas, words)))
    return place


def shard_targets(targets, shard_count, mode="rendezvous", replicas=1, weights=None):
    """Assign every target to ``replicas`` shard(s); return ``{shard: sorted targets}``."""
    shard_count = _check_count("shard_targets", shard_count)
    _check_mode("shard_targets", mode)
    replicas = _check_replicas("shard_targets", replicas, shard_count)
    if mode == "hashmod" and weights is not None:
        raise AnsibleFilterError("shard_targets: mode='hashmod' takes no weights; use mode='rendezvous'")
    weights = _check_weights(weights, shard_count)
    unique = _check_targets("shard_targets", targets)

    result = {index: [] for index in range(shard_count)}
    place = _placer(shard_count, mode, replicas, weights)
    for target in unique:  # sorted, so every list below comes out sorted
        for index in place(target):
            result[index].append(target)
    return result


def _normalise_assignment(filter_name, assignment):
    if not isinstance(assignment, dict):
        raise AnsibleFilterError(
            f"{filter_name}: expected a shard_targets result (a dict of shard -> targets), got {type(assignment).__name__}"
        )
    by_target = {}
    for shard, targets in assignment.items():
        index = whole_number(shard, f"{filter_name}: shard key {shard!r} is not a shard index")
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


# --- whole scrape jobs ---------------------------------------------------------------

SPREAD, ALL = "spread", "all"
# Labels the sharding rules use; both start with "__" so Prometheus drops them after relabelling.
BUCKET_LABEL = "__tmp_hashmod"
STATIC_LABEL = "__tmp_promha_static"
# The jobs the prometheus role builds itself (roles/prometheus/vars/main.yml); a site's
# own job may not take these names. The first and the last are not sharded (a pair
# scrapes itself; the global tier federates every shard), so plans leave them out.
TOOLKIT_JOB_NAMES = ("prometheus", "node", "alertmanager", "remote_storage", "mysql", "federate", "vrrp", "front", "nginx",
                     "grafana")
UNSHARDED_JOB_NAMES = ("prometheus", "federate")
_JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")


def _is_discovered(job):
    """Does the job find targets through service discovery (any ``*_sd_configs`` section)?"""
    return any(key.endswith("_sd_configs") and value for key, value in job.items())


def _placement(value, shard_count):
    """``(SPREAD, None)``, ``(ALL, None)`` or ``('pinned', (shards...))``; ValueError says what is wrong."""
    if value is None or value == SPREAD:
        return SPREAD, None
    if value == ALL:
        return ALL, None
    values = value if isinstance(value, (list, tuple)) else [value]
    if not values:
        raise ValueError("shard is an empty list; name at least one shard, or use spread or all")
    pins = []
    for item in values:
        if isinstance(item, bool) or not (isinstance(item, int) or (isinstance(item, str) and item.isdigit())):
            raise ValueError(f"shard {value!r} is not spread, all, a shard index or a list of shard indices")
        pins.append(int(item))
    wrong = sorted({pin for pin in pins if pin >= shard_count})
    if wrong:
        raise ValueError(f"shard {value!r} names shard(s) {wrong}, but the inventory has shards "
                         f"0..{shard_count - 1}; pin the job to an existing shard or add that shard")
    if len(set(pins)) != len(pins):
        raise ValueError(f"shard {value!r} names a shard twice")
    return "pinned", tuple(sorted(pins))


def _mappings(items, problems, refusal):
    """``(position, item)`` for each mapping of ``items``; for any other item, ``refusal`` (a format
    string of ``position`` and ``item``) is added to ``problems``."""
    for position, item in enumerate(items):
        if isinstance(item, dict):
            yield position, item
        else:
            problems.append(refusal.format(position=position, item=item))


def _static_problems(job):
    problems, count = [], 0
    groups = job.get("static_configs")
    if groups is None:
        return problems, count
    if not is_list(groups):
        return ["static_configs must be a list of {targets, labels}"], count
    for position, group in _mappings(groups, problems, "static_configs[{position}] must be a mapping with targets "
                                     "(and labels)"):
        targets = group.get("targets") or []
        if not is_list(targets):
            problems.append(f"static_configs[{position}].targets must be a list of host:port strings")
            continue
        bad = [t for t in targets if not isinstance(t, str) or not t.strip()]
        if bad:
            problems.append(f"static_configs[{position}].targets holds {bad[0]!r}; every target is a host:port string")
        count += len(targets) - len(bad)
        if not isinstance(group.get("labels", {}) or {}, dict):
            problems.append(f"static_configs[{position}].labels must be a mapping of label names to values")
    return problems, count


def scrape_job_problems(jobs, shard_count, replicas=1, reserved=()):
    """Every problem of a list of sharded scrape jobs, one line each, naming the job and the fix."""
    if not is_list(jobs):
        return [f"the scrape jobs must be a list of scrape_config mappings, got {type(jobs).__name__}"]
    problems = []
    try:
        count = int(shard_count)
    except (TypeError, ValueError):
        count = 0
    if isinstance(replicas, bool) or not str(replicas).strip().isdigit() or int(replicas) < 1:
        problems.append(f"replicas must be a whole number of at least 1, got {replicas!r}")
    elif count and int(replicas) > count:
        problems.append(f"replicas={replicas} is larger than the shard count {count}: a target cannot be "
                        f"scraped by more shards than exist; lower prometheus_shard_replicas or add shards")
    seen = {}
    for position, job in _mappings(jobs, problems, "entry #{position} is {item!r}, not a scrape_config mapping "
                                   "with a job_name"):
        name = job.get("job_name")
        if not isinstance(name, str) or not _JOB_NAME.match(name):
            problems.append(f"entry #{position} has job_name {name!r}; give every job a name of letters, digits, "
                            "'_', '.', ':' and '-' (it also names the job's target file)")
            continue
        where = f"job {name!r}"
        if name in seen:
            own = (f"; {name!r} is one of the toolkit's own jobs ({', '.join(TOOLKIT_JOB_NAMES)}): rename the "
                   "site's job" if name in TOOLKIT_JOB_NAMES else "")
            problems.append(f"{where} is defined twice (entries #{seen[name]} and #{position}); job names must be "
                            f"unique{own}")
            continue
        seen[name] = position
        if name in reserved:
            problems.append(f"{where} has the name of one of the toolkit's own jobs ({', '.join(reserved)}); "
                            "rename it")
        if count:
            try:
                _placement(job.get("shard"), count)
            except ValueError as error:
                problems.append(f"{where}: {error}")
        if "inventory" in job:
            problems.append(f"{where} still names an inventory group; resolve it first with "
                            "inventory_scrape_jobs(groups, hostvars)")
            continue
        static, targets = _static_problems(job)
        problems += [f"{where}: {problem}" for problem in static]
        if not static and not targets and not _is_discovered(job):
            problems.append(f"{where} has neither targets nor discovery: list static_configs targets, name an "
                            "inventory group, or add a *_sd_configs section")
    return problems


def _clean_groups(job):
    """The job's static groups, targets stripped, sorted and de-duplicated, labels kept when set."""
    groups = []
    for group in job.get("static_configs") or []:
        clean = {"targets": sorted({t.strip() for t in group.get("targets") or []})}
        if not clean["targets"]:
            continue
        if group.get("labels"):
            clean["labels"] = dict(group["labels"])
        groups.append(clean)
    return groups


def _sharded_jobs(filter_name, jobs, shard_count, mode, replicas, reserved=()):
    shard_count = _check_count(filter_name, shard_count)
    _check_mode(filter_name, mode)
    problems = scrape_job_problems(jobs, shard_count, replicas, reserved)
    if problems:
        raise AnsibleFilterError(f"{filter_name}: " + "; ".join(problems))
    replicas = int(replicas)
    return shard_count, replicas, [(job, *_placement(job.get("shard"), shard_count)) for job in jobs]


def shard_scrape_configs(jobs, shard, shard_count, mode="hashmod", replicas=1):
    """Return the complete ``scrape_configs`` list of shard ``shard`` (see the module docstring)."""
    if isinstance(shard, bool) or not str(shard).strip().isdigit() or not 0 <= int(shard) < _check_count(
            "shard_scrape_configs", shard_count):
        raise AnsibleFilterError(
            f"shard_scrape_configs: shard {shard!r} is not one of the shards 0..{int(shard_count) - 1}"
        )
    return _every_shard("shard_scrape_configs", jobs, shard_count, mode, replicas)[int(shard)]


def every_shard_scrape_configs(jobs, shard_count, mode="hashmod", replicas=1):
    """``[scrape_configs of shard 0, ..., of shard N-1]``, each target placed once for all shards.

    What ``shard_scrape_configs`` gives each shard, computed in one pass: the prometheus
    role runs it once for every replica of a rollout wave, where one call per replica
    would place every target again on each of them.
    """
    return _every_shard("every_shard_scrape_configs", jobs, shard_count, mode, replicas)


def _every_shard(filter_name, jobs, shard_count, mode, replicas):
    shard_count, replicas, placed = _sharded_jobs(filter_name, jobs, shard_count, mode, replicas)
    place = functools.lru_cache(maxsize=None)(_placer(shard_count, mode, replicas))
    shards = [[] for _ in range(shard_count)]
    for job, placement, pins in placed:
        base = {key: value for key, value in job.items() if key != "shard"}
        groups = _clean_groups(job)
        spread = placement == SPREAD and shard_count > 1
        per_shard = [groups] * shard_count
        if spread:
            # Static targets: each shard's share, placed here on the controller.
            per_shard = [[] for _ in range(shard_count)]
            for group in groups:
                buckets = {}
                for target in group["targets"]:
                    for index in place(target):
                        buckets.setdefault(index, []).append(target)
                for index, targets in sorted(buckets.items()):
                    per_shard[index].append({**group, "targets": targets})
        for index in range(shard_count):
            if placement == "pinned" and index not in pins:
                continue
            config = dict(base)
            shard_groups = per_shard[index]
            if spread and _is_discovered(job):
                # Discovered targets: split on the server, before the job's own rules (so a
                # blackbox-style rewrite of __address__ does not change where a target goes).
                mixed = bool(job.get("static_configs"))
                config["relabel_configs"] = hashmod_relabel_configs(
                    index, shard_count, target_label=BUCKET_LABEL, replicas=replicas,
                    static_label=STATIC_LABEL if mixed else None) + list(job.get("relabel_configs") or [])
                shard_groups = [{**group, "labels": {**group.get("labels", {}), STATIC_LABEL: "true"}}
                                for group in shard_groups]
            if "static_configs" in job:
                config["static_configs"] = shard_groups
            shards[index].append(config)
    return shards


def file_sd_scrape_configs(configs, directory):
    """Move every job's ``static_configs`` into a file_sd file of its own under ``directory``.

    Returns ``{'scrape_configs': [...], 'files': {'<job_name>.json': [groups]}}``: each
    job that had static_configs now reads ``directory/<job_name>.json`` (an empty list
    when it has no target on this shard), so a target added or removed later changes
    only the file, which Prometheus re-reads without a reload.
    """
    configs = listed(configs, lambda: f"file_sd_scrape_configs: expected a list of scrape_configs, got {configs!r}")
    if not isinstance(directory, str) or not directory.startswith("/"):
        raise AnsibleFilterError(f"file_sd_scrape_configs: directory must be an absolute path, got {directory!r}")
    result, files = [], {}
    for config in configs:
        if "static_configs" not in config:
            result.append(config)
            continue
        name = config.get("job_name")
        if not isinstance(name, str) or not _JOB_NAME.match(name):
            raise AnsibleFilterError(f"file_sd_scrape_configs: job_name {name!r} cannot name a file")
        filename = f"{name}.json"
        files[filename] = [{"targets": list(group.get("targets") or []), "labels": dict(group.get("labels") or {})}
                           for group in config["static_configs"]]
        moved = {key: value for key, value in config.items() if key != "static_configs"}
        moved["file_sd_configs"] = [*(config.get("file_sd_configs") or []),
                                    {"files": [f"{directory.rstrip('/')}/{filename}"]}]
        result.append(moved)
    return {"scrape_configs": result, "files": files}


def target_file_specs(files, directory, group):
    """``stack_files`` entries of the file_sd files ``files`` in ``directory`` (see the module doc)."""
    if not isinstance(files, dict):
        raise AnsibleFilterError(f"target_file_specs: expected a mapping of file name to target groups, got {files!r}")
    if not isinstance(directory, str) or not directory.startswith("/"):
        raise AnsibleFilterError(f"target_file_specs: directory must be an absolute path, got {directory!r}")
    return [{"path": f"{directory.rstrip('/')}/{name}", "group": group, "mode": "0644",
             # as to_nice_json writes it, so files written before compare equal
             "content": json.dumps(groups, indent=4, sort_keys=True, separators=(",", ": ")) + "\n"}
            for name, groups in sorted(files.items())]


def shard_plan(jobs, shard_count, mode="hashmod", replicas=1, deployed=None):
    """Where every job and static target goes with ``shard_count`` shards, and what moves.

    Returns ``{mode, shard_count, replicas, jobs, shards, load, spread_load, moves,
    moved}``. ``jobs``: per job its placement, static target count and whether it
    discovers targets (split on the servers by hashmod relabelling: the controller
    does not know those targets). ``shards``: per shard its jobs with their static
    targets. ``deployed`` (``{shard: {job: [targets]}}``, what runs now, e.g. from
    ``deployed_shard_targets``) adds the moves, one per (job, target) whose shards change.
    """
    shard_count, replicas, placed = _sharded_jobs("shard_plan", jobs, shard_count, mode, replicas)
    place = _placer(shard_count, mode, replicas)
    shards = {index: {} for index in range(shard_count)}
    where, summary, spread_jobs = {}, [], set()
    for job, placement, pins in placed:
        name = job["job_name"]
        targets = sorted({t for group in _clean_groups(job) for t in group["targets"]})
        discovered = _is_discovered(job)
        if placement == SPREAD:
            spread_jobs.add(name)
            owners = {t: place(t) for t in targets} if shard_count > 1 else {t: (0,) for t in targets}
            chosen = range(shard_count)
        else:
            chosen = range(shard_count) if placement == ALL else pins
            owners = {t: tuple(chosen) for t in targets}
        for index in chosen:
            shards[index][name] = {
                "targets": [t for t in targets if index in owners[t]],
                "discovered": ("split by hashmod relabelling on the servers (buckets "
                               f"{_hashmod_buckets(index, shard_count, replicas)} of {shard_count})"
                               if placement == SPREAD and shard_count > 1 else "all of them")
                if discovered else None,
            }
        for target, owner in owners.items():
            where[(name, target)] = owner
        summary.append({"job": name, "placement": placement if placement != "pinned" else f"shards {list(pins)}",
                        "static_targets": len(targets), "discovered": discovered})
    plan = {
        "mode": mode, "shard_count": shard_count, "replicas": replicas, "jobs": summary,
        "shards": {index: {"targets": sum(len(j["targets"]) for j in members.values()), "jobs": members}
                   for index, members in shards.items()},
    }
    plan["load"] = _load([plan["shards"][i]["targets"] for i in range(shard_count)])
    plan["spread_load"] = _load([sum(len(j["targets"]) for n, j in members.items() if n in spread_jobs)
                                 for members in shards.values()])
    plan["moves"], plan["moved"] = [], None
    if deployed is not None:
        before = {}
        for index, members in _deployed_items("shard_plan", deployed):
            for name, targets in members.items():
                if name in UNSHARDED_JOB_NAMES:
                    continue
                for target in targets or []:
                    before.setdefault((name, target), set()).add(index)
        for key in sorted(set(before) | set(where)):
            was, now = before.get(key, set()), set(where.get(key, ()))
            if was != now:
                plan["moves"].append({"job": key[0], "target": key[1], "from": sorted(was - now),
                                      "to": sorted(now - was)})
        spread_total = sum(1 for key in where if key[0] in spread_jobs)
        spread_moved = sum(1 for move in plan["moves"] if move["job"] in spread_jobs and move["to"])
        plan["moved"] = {"spread": spread_moved, "spread_total": spread_total,
                         "spread_share": round(spread_moved / spread_total, 4) if spread_total else 0.0,
                         "all": len(plan["moves"])}
    return plan


def _load(sizes):
    mean = sum(sizes) / len(sizes) if sizes else 0.0
    return {"min": min(sizes, default=0), "max": max(sizes, default=0), "mean": round(mean, 2),
            "imbalance": round(max(sizes) / mean, 3) if mean else 0.0}


def _deployed_items(filter_name, deployed):
    if not isinstance(deployed, dict):
        raise AnsibleFilterError(f"{filter_name}: deployed must be {{shard: {{job: [targets]}}}}, got {deployed!r}")
    for shard, members in deployed.items():
        index = whole_number(shard, f"{filter_name}: deployed shard key {shard!r} is not a shard index")
        if not isinstance(members, dict):
            raise AnsibleFilterError(f"{filter_name}: deployed shard {index} must map job names to targets")
        yield index, members


def deployed_shard_targets(config_text, files):
    """Return ``{shard: {job: [targets]}}`` of one running replica, from its files.

    ``config_text`` is its prometheus.yml (for ``external_labels.shard`` and each job's
    file_sd files), ``files`` maps those file paths (or their base names) to their
    JSON text. Jobs whose targets come only from discovery are left out: the
    controller does not know their targets.
    """
    try:
        config = yaml.safe_load(config_text) or {}
        texts = {str(path): json.loads(text) for path, text in (files or {}).items()}
    except (yaml.YAMLError, ValueError, AttributeError) as error:
        raise AnsibleFilterError(f"deployed_shard_targets: cannot parse the deployed files: {error}") from None
    try:
        shard = int(config["global"]["external_labels"]["shard"])
    except (KeyError, TypeError, ValueError):
        raise AnsibleFilterError(
            "deployed_shard_targets: the deployed prometheus.yml has no global.external_labels.shard"
        ) from None
    jobs = {}
    for scrape in config.get("scrape_configs") or []:
        for sd in scrape.get("file_sd_configs") or []:
            for path in sd.get("files") or []:
                groups = texts.get(path, texts.get(os.path.basename(path)))
                if groups is None:
                    continue
                found = jobs.setdefault(scrape["job_name"], set())
                found.update(t for group in groups for t in group.get("targets") or [])
    return {shard: {job: sorted(targets) for job, targets in jobs.items()}}


_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def _seconds(duration):
    """Seconds of a Prometheus duration such as ``15s`` or ``1m30s``; None when it is not one."""
    text = str(duration or "")
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(int(number) * _UNIT_SECONDS[unit] for number, unit in parts)


def targets_never_scraped(active_targets, max_interval=60):
    """``job address`` of every active target not scraped yet, among jobs scraped at least every ``max_interval`` s.

    ``active_targets`` is ``data.activeTargets`` of Prometheus' ``/api/v1/targets``; a
    target that was never scraped reports ``lastScrape`` 0001-01-01. The rollout waits
    for an empty list before it changes the next replica, so a target moving between
    shards is always held by a replica that already scrapes it.
    """
    active_targets = listed(active_targets, lambda: "targets_never_scraped: expected data.activeTargets of "
                            f"/api/v1/targets, got {active_targets!r}")
    waiting = []
    for target in active_targets:
        interval = _seconds(target.get("scrapeInterval"))
        if str(target.get("lastScrape", "")).startswith("0001-") and (interval is None or interval <= max_interval):
            waiting.append(f"{target.get('scrapePool')} {target.get('discoveredLabels', {}).get('__address__')}")
    return sorted(waiting)


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


FilterModule = filter_module(
    prometheus_hashmod, hashmod_relabel_configs, shard_targets, shard_moves, deployed_shard_targets, shard_load,
    shard_scrape_configs, every_shard_scrape_configs, file_sd_scrape_configs, target_file_specs,
    scrape_job_problems, shard_plan, targets_never_scraped)
