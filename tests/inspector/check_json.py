#!/usr/bin/env python3
"""Checks hermes-inspector --json against what tests/inspector/writer wrote,
field by field, before or after the end-to-end test invalidated tag alpha.

usage: check_json.py FILE before|after WRITER_PID HOST
Prints one line per failed check and exits 1 if any failed."""
import json
import sys

path, phase, pid, host = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
after = phase == "after"
doc = json.load(open(path))
failed = []


def check(what, got, want):
    if got != want:
        failed.append(f"{what}: got {got!r}, want {want!r}")


check("schema", doc["schema"], 1)
check("backend", doc["backend"], "redis")
check("prefix", doc["prefix"], "insptest")
check("error", doc["error"], None)
check("keys_scanned >= 12", doc["keys_scanned"] >= 12, True)

# what the writer wrote: function -> (tags, arguments, value bytes)
written = {
    "profile": (["alpha"], 4, 100),
    "feed": (["alpha", "beta"], 3, 200),
    "other": (["gamma"], 2, 50),
}
entries = doc["entries"]
check("entry count", len(entries), 9)
for e in entries:
    fn = e["function"]
    if fn not in written:
        failed.append(f"unexpected entry {e['key']} of {fn!r}")
        continue
    tags, _, size = written[fn]
    where = e["key"]
    check(f"{where} key", e["key"].startswith(f"insptest:entry:{fn}:"), True)
    check(f"{where} id is the 22-character argument hash", len(e["id"]), 22)
    check(f"{where} tags", sorted(t["name"] for t in e["tags"]), tags)
    check(f"{where} size covers the {size}-byte value",
          size < e["size"] < size + 100, True)
    check(f"{where} TTL left within the 600 s given",
          0 < e["ttl_left_ms"] <= 600000, True)
    check(f"{where} created", e["created_ms"] <= doc["taken_ms"], True)
    stale = after and "alpha" in tags
    check(f"{where} state", e["state"], "stale" if stale else "fresh")
    check(f"{where} moved", e["moved"], "alpha" if stale else None)
    for t in e["tags"]:
        moved = after and t["name"] == "alpha"
        check(f"{where} tag {t['name']} moved", t["moved"], moved)
        check(f"{where} tag {t['name']} current",
              t["current"] is None if moved else t["current"] == t["stored"],
              True)
for fn, (_, count, _) in written.items():
    check(f"entries of {fn}",
          sum(1 for e in entries if e["function"] == fn), count)

tags = {t["name"]: t for t in doc["tags"]}
if after:
    # a fresh --json has no earlier snapshot: the cleaned tag is not listed
    check("alpha's key is gone", "alpha" in tags, False)
else:
    check("alpha", (tags["alpha"]["entries"], tags["alpha"]["stale"],
                    tags["alpha"]["gone"]), (7, 0, False))
    check("alpha's version is 22 characters", len(tags["alpha"]["version"]), 22)
check("beta", (tags["beta"]["entries"], tags["beta"]["stale"]),
      (3, 3 if after else 0))
check("gamma", (tags["gamma"]["entries"], tags["gamma"]["stale"]), (2, 0))
check("states", doc["states"],
      {"fresh": 2 if after else 9, "stale": 7 if after else 0,
       "expired": 0, "foreign": 0, "corrupt": 0})

g = doc["garbage"]
check("garbage entries", g["entries"], 9)
check("garbage stale", g["stale"], 7 if after else 0)
sizes = {e["function"]: 0 for e in entries}
for e in entries:
    sizes[e["function"]] += e["size"]
check("garbage bytes", g["bytes"], sum(sizes.values()))
check("garbage stale bytes", g["stale_bytes"],
      sizes["profile"] + sizes["feed"] if after else 0)
per = {f["function"]: f for f in g["functions"]}
for fn, (tags_, count, _) in written.items():
    stale = count if after and "alpha" in tags_ else 0
    check(f"garbage of {fn}", (per[fn]["entries"], per[fn]["stale"],
                               per[fn]["bytes"]), (count, stale, sizes[fn]))

locks = doc["locks"]
check("one lock", len(locks), 1)
if locks:
    lk = locks[0]
    check("lock entry", lk["entry"].startswith("slow:"), True)
    check("lock owner", (lk["host"], lk["pid"]), (host, pid))
    check("lock age", lk["age_ms"] is not None and lk["age_ms"] >= 0, True)
    check("lock TTL within 600 s", 0 < lk["ttl_left_ms"] <= 600000, True)

procs = [p for p in doc["processes"] if p["pid"] == pid]
check("the writer's published counters", len(procs), 1)
if procs:
    p = procs[0]
    check("writer host", p["host"], host)
    check("writer computations (9 values; slow still computing)",
          p["computations"] >= 9, True)
    check("writer misses", p["misses"] >= 10, True)
    fns = {f["name"]: f for f in p["functions"]}
    for fn, (_, count, _) in written.items():
        check(f"writer's {fn} misses", fns.get(fn, {}).get("misses"), count)
        check(f"writer's {fn} hits", fns.get(fn, {}).get("hits"), 0)
    check("percentiles are numbers",
          all(isinstance(p[k], int)
              for k in ("wait_p50_us", "wait_p90_us", "wait_p99_us")), True)

for f in failed:
    print(f"FAIL: --json {phase}: {f}")
sys.exit(1 if failed else 0)
