"""Compare what live Prometheus replicas scrape with the shard plan.

The plan is the JSON that playbooks/shard-plan.yml writes (`-e shard_plan_output=...`):
per shard its jobs and their static targets, the servers that run each shard and
their scheme. `check(plan, fetch)` reads every server's `/api/v1/targets` and lists
every difference; the molecule verifier and scripts/shard-check.py (the lab) both
use it, so the lab and the scenario are held to the same rule:

- the replicas of a shard scrape the same targets;
- a job's static and inventory targets are exactly the plan's, shard by shard;
- a discovered target of a spread job is scraped by exactly `replicas` shards, of a
  job on every or on chosen shards, by those shards;
- no shard runs a job the plan does not give it.
"""

import json


def targets_of(text):
    """``{job: {address: lastScrape}}`` from an ``/api/v1/targets?state=active`` answer."""
    found = {}
    for target in json.loads(text)["data"]["activeTargets"]:
        found.setdefault(target["scrapePool"], {})[target["discoveredLabels"]["__address__"]] = target["lastScrape"]
    return found


def layout(plan, fetch):
    """``({shard: {job: set(addresses)}}, problems)`` of the plan's jobs on every server of the plan."""
    jobs = {job["job"] for job in plan["jobs"]}
    result, problems = {}, []
    for shard, servers in sorted(plan["servers"].items(), key=lambda item: int(item[0])):
        seen = {}
        for server in servers:
            answer = targets_of(fetch(f"{plan['scheme']}://{server}/api/v1/targets?state=active"))
            seen[server] = {job: set(addresses) for job, addresses in answer.items() if job in jobs}
        first_server, first = next(iter(seen.items()))
        for server, found in seen.items():
            for job in sorted(set(found) | set(first)):
                differ = found.get(job, set()) ^ first.get(job, set())
                if differ:
                    problems.append(f"shard {shard}: {server} and {first_server} differ in job {job} "
                                    f"({len(differ)} targets, e.g. {sorted(differ)[0]})")
        result[int(shard)] = first
    return result, problems


def check(plan, fetch):
    """``(problems, figures, layout)``: every difference between the plan and the servers, and the counts."""
    now, problems = layout(plan, fetch)
    shards = sorted(now)
    replicas = int(plan["replicas"])
    for job in plan["jobs"]:
        name, placement = job["job"], job["placement"]
        planned = {int(s): info["jobs"].get(name) for s, info in plan["shards"].items() if int(s) in now}
        for shard in shards:
            runs = planned.get(shard) is not None
            live = now[shard].get(name)
            if not runs and live:
                problems.append(f"shard {shard} scrapes job {name}, which the plan gives to other shards")
            if runs and not job["discovered"] and (live or set()) != set(planned[shard]["targets"]):
                differ = (live or set()) ^ set(planned[shard]["targets"])
                problems.append(f"shard {shard}, job {name}: {len(differ)} targets differ from the plan "
                                f"(e.g. {sorted(differ)[0]})")
            if runs and job["discovered"] and set(planned[shard]["targets"]) - (live or set()):
                problems.append(f"shard {shard}, job {name}: planned static targets are not scraped")
        if job["discovered"]:
            static = {t for info in planned.values() if info for t in info["targets"]}
            holders = {}
            for shard in shards:
                for target in now[shard].get(name, set()) - static:
                    holders.setdefault(target, []).append(shard)
            wanted = [s for s in shards if planned.get(s) is not None]
            for target, where in sorted(holders.items()):
                if (placement == "spread" and len(where) != min(replicas, len(shards))) or (
                        placement != "spread" and where != wanted):
                    problems.append(f"job {name}: discovered target {target} is scraped by shards {where}")
                    break
    spread = {job["job"] for job in plan["jobs"] if job["placement"] == "spread"}
    counts = {shard: sum(len(now[shard].get(job, ())) for job in spread) for shard in shards}
    mean = sum(counts.values()) / len(counts) if counts else 0
    figures = {
        "targets": {shard: sum(len(targets) for targets in jobs.values()) for shard, jobs in now.items()},
        "spread": counts,
        "spread_mean": round(mean, 1),
        "spread_deviation": round(max(abs(c - mean) for c in counts.values()) / mean, 4) if mean else 0.0,
    }
    return problems, figures, now
