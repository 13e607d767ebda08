#!/usr/bin/env python3
"""Detection under bursty traffic (issue 14, item 5): scan's speed on the
three corpus profiles, and its cost per record as a window fills.

Part of `make bench` (scripts/bench.sh runs it after bench.py); needs the
release build, pigz and a background day (bench.py's, or one it makes).

1. `trailwatch gen --profile sparse|dense|burst` over the same background
   (BURST_SIZE decompressed, default 400MB; the burst: 100,000 records by one
   principal within five minutes). For each: `pigz -p 1 -dc` over every
   object (the floor) and `trailwatch scan` with the built-in pack and the
   SigmaHQ CloudTrail rules on 2 threads: wall, CPU, peak RSS, records/s and
   the ratio of scan's wall to the floor's; alerts at medium or above and
   how many of them the burst's principal raised, per rule.
2. CPU per record against events per window: the burst profile over a small
   background with 1k, 10k, 100k and 1M burst events (all within five
   minutes); the CPU scan spends per burst event, (cpu - cpu of the
   background alone) / events, should stay flat (within 20%).

The runs are medians of RUNS (default 3) taken side by side (at least 9 for
the short scans of part 2); the table is printed and written to
bench/burst.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
TW = REPO / "target" / "release" / "trailwatch"
LEVELS = {"informational": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}


def timed(cmd: list[str], stdout=subprocess.DEVNULL) -> dict:
    """Wall, CPU (user+sys of the children) and peak RSS of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=stdout, stderr=subprocess.PIPE, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0,):
        sys.exit(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr.decode()[-2000:]}")
    return {
        "wall": wall,
        "cpu": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        # ru_maxrss of children is the largest so far: measured in a fresh
        # child below (via /usr/bin/time) instead.
        "stderr": proc.stderr.decode(),
    }


def peak_rss_mb(cmd: list[str]) -> float:
    out = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, check=False)
    last = out.stderr.decode().strip().splitlines()[-1]
    return int(last) / 1024


def median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def gen(background: Path, out: Path, size: str, profile: str, extra: list[str]) -> dict:
    manifest = out / "corpus.manifest"
    if not manifest.exists():
        print(f"generating {out.name}", flush=True)
        subprocess.run([str(TW), "gen", "--background", str(background), "--out", str(out),
                        "--size", size, "--profile", profile, *extra], check=True)
    return json.loads(manifest.read_text())


def objects(corpus: Path) -> list[str]:
    return sorted(str(p) for p in corpus.rglob("*.json.gz"))


def scan_cmd(corpus: Path, sigma: Path, threads: int) -> list[str]:
    return [str(TW), "scan", "--format", "jsonl", "--threads", str(threads),
            "--rules", str(sigma), str(corpus)]


def floor_cmd(files: list[str]) -> list[str]:
    return ["pigz", "-p", "1", "-dc", *files]


def alerts_of(corpus: Path, sigma: Path) -> list[dict]:
    out = subprocess.run(scan_cmd(corpus, sigma, 2), capture_output=True, check=True)
    return [json.loads(l) for l in out.stdout.decode().splitlines() if l.strip()]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", default=os.environ.get("BURST_SIZE", "400MB"))
    p.add_argument("--runs", type=int, default=int(os.environ.get("RUNS", "3")))
    p.add_argument("--window-events", default=os.environ.get("BURST_WINDOWS", "1000,10000,100000,1000000"))
    p.add_argument("--background", type=Path, default=None,
                   help="background day (JSON lines); default: bench.py's, else one of 300k records")
    p.add_argument("--datasets", type=Path,
                   default=Path(os.environ.get("TRAILWATCH_DATASETS", REPO.parent / "shared/datasets")))
    args = p.parse_args()
    if not TW.exists():
        sys.exit(f"{TW} is missing: cargo build --release")
    BENCH.mkdir(exist_ok=True)
    sigma = args.datasets / "sigma-cloudtrail"
    background = args.background or BENCH / "background-1000000-seed1.jsonl"
    if not background.exists():
        background = BENCH / "background-300000-seed1.jsonl"
        if not background.exists():
            print("generating a background day (300,000 records)", flush=True)
            tmp = background.with_suffix(".tmp")
            subprocess.run([sys.executable, str(REPO / "scripts/benign_day.py"), "--out", str(tmp),
                            "--records", "300000", "--seed", "1", "--no-panther",
                            "--datasets", str(args.datasets)], check=True, stdout=subprocess.DEVNULL)
            tmp.rename(background)

    lines = ["# Detection under bursty traffic", "",
             f"Corpora of {args.size} decompressed over `{background.name}`; built-in pack + "
             f"SigmaHQ rules ({sigma.name}); medians of {args.runs} runs side by side.", "",
             "| profile | records | floor `pigz -p 1 -dc` s | scan 2 threads s | scan CPU s | "
             "records/s | scan / floor | peak RSS MB | medium+ alerts | burst principal's medium+ alerts (per rule) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    rates = {}
    for profile in ("sparse", "dense", "burst"):
        corpus = BENCH / f"burst-{profile}-{args.size}"
        manifest = gen(background, corpus, args.size, profile, [])
        files = objects(corpus)
        floors, scans = [], []
        for _ in range(args.runs):
            floors.append(timed(floor_cmd(files)))
            scans.append(timed(scan_cmd(corpus, sigma, 2)))
        rss = peak_rss_mb(scan_cmd(corpus, sigma, 2))
        alerts = alerts_of(corpus, sigma)
        medium = [a for a in alerts if LEVELS.get(a["rule"]["severity"], 0) >= 2]
        actor = manifest.get("burst_principal")
        per_rule: dict[str, int] = {}
        for a in medium:
            if actor and a["event"].get("principal") == actor:
                per_rule[a["rule"]["id"]] = per_rule.get(a["rule"]["id"], 0) + 1
        records = manifest["records"]
        floor, scan = median(floors, "wall"), median(scans, "wall")
        rates[profile] = records / scan
        lines.append(
            f"| {profile} | {records:,} | {floor:.2f} | {scan:.2f} | {median(scans, 'cpu'):.2f} | "
            f"{records / scan:,.0f} | {scan / floor:.2f} | {rss:.1f} | {len(medium)} | "
            f"{', '.join(f'{k}: {v}' for k, v in sorted(per_rule.items())) or '-'} |")
        print(lines[-1], flush=True)
    lines += ["", f"dense / sparse records/s: {rates['dense'] / rates['sparse']:.2f}; "
                  f"burst / sparse: {rates['burst'] / rates['sparse']:.2f}", ""]

    # CPU per burst event as the window fills.
    small = "40MB"
    base_corpus = BENCH / f"burst-window-0-{small}"
    gen(background, base_corpus, small, "sparse", ["--attack-every", "0"])
    # These scans are short (0.1 s for the background alone), so a few
    # milliseconds of noise move a small window's figure: more runs here.
    window_runs = max(args.runs, 9)
    base = median([timed(scan_cmd(base_corpus, sigma, 1)) for _ in range(window_runs)], "cpu")
    lines += ["| events in the window | records | scan CPU s (1 thread) | CPU per burst event µs |",
              "|---|---|---|---|", f"| 0 (background only) | - | {base:.2f} | - |"]
    per_event = []
    for n in [int(x) for x in args.window_events.split(",")]:
        corpus = BENCH / f"burst-window-{n}-{small}"
        manifest = gen(background, corpus, small, "burst", ["--attack-every", "0", "--burst-events", str(n)])
        cpu = median([timed(scan_cmd(corpus, sigma, 1)) for _ in range(window_runs)], "cpu")
        us = (cpu - base) / n * 1e6
        per_event.append(us)
        lines.append(f"| {n:,} | {manifest['records']:,} | {cpu:.2f} | {us:.2f} |")
        print(lines[-1], flush=True)
    big = [u for n, u in zip([int(x) for x in args.window_events.split(",")], per_event) if n >= 10_000]
    if big:
        lines += ["", f"CPU per burst event, 10k to 1M events in the window: max/min "
                      f"{max(big) / min(big):.2f} (flat within 20%: {'yes' if max(big) / min(big) <= 1.2 else 'no'})"]
    text = "\n".join(lines) + "\n"
    (BENCH / "burst.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
