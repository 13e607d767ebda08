#!/usr/bin/env python3
"""The end-to-end benchmark of `make bench`: trailwatch scan beside the
decompression floor and two peers, over one generated corpus, in one run.

    scripts/bench.sh            # sets everything up, then runs this
    python3 scripts/bench.py [--size 1GB] [--runs 3] [--big 10GB] [--report FILE]

What runs, RUNS times each, interleaved (so that a noisy neighbour hits all alike):
  (a) pigz -dc over the corpus's objects to /dev/null, the decompression floor;
      both `pigz -p 1` and pigz's default threads, the faster median is the floor;
  (b) trailwatch scan, built-in pack + the SigmaHQ CloudTrail rules, alerts to a
      file: with both cores, and with --threads 1;
  (c) the same Sigma rules through pySigma's DuckDB backend over the records as
      JSON lines (scripts/bench_peers.py duckdb --sigma-semantics);
  (d) `rsigma engine eval` 0.23.0 over the same JSON lines, its output to a file.
      The timed run prints rule matches only (its fastest mode); an untimed run
      with --include-event gives the matched records for the check.
(c) and (d) read JSON lines that `trailwatch gen --jsonl` wrote: converting is
not timed. Reported per command: the median wall time, CPU time (user+sys),
peak RSS, and records/s (corpus records / median wall).

Checks, each failing the script:
  - the Sigma matches of (b), (c) and (d) agree (bench_peers.py compare; the
    rsigma differences it explains are printed, not failures);
  - scan's built-in alerts at medium or above are exactly the ones the corpus
    manifest expects (every sprinkled attack, nothing from the background).
Targets, printed as met or not (a miss is reported, not a failure):
  - (b) 2 cores wall <= 1.0 x (a); (b) 1 thread wall <= 2.0 x (a);
  - (b) records/s >= 5 x (c) and >= 5 x (d);
  - peak RSS of scan over one 1 GB object <= 128 MB, and over a --big corpus
    within 10% of the --size corpus.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
TW = REPO / "target/release/trailwatch"
RSIGMA = BENCH / "tools/bin/rsigma"
PEERS_PY = REPO / ".venv-conformance/bin/python"
LEVELS = {"informational": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}


def run(cmd: list[str], stdout=subprocess.DEVNULL, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, stdout=stdout, stderr=subprocess.PIPE, text=True)
    if check and result.returncode != 0:
        sys.exit(f"failed ({result.returncode}): {' '.join(map(str, cmd))}\n{result.stderr[-2000:]}")
    return result


def measure(cmd: list[str], out_path: str = os.devnull) -> dict:
    """Wall, CPU and peak RSS of one run of cmd (stdout to out_path)."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as t, open(out_path, "wb") as out:
        started = time.monotonic()
        proc = subprocess.run(["/usr/bin/time", "-o", t.name, "-f", "%e %U %S %M", *cmd],
                              stdout=out, stderr=subprocess.PIPE, text=True)
        wall = time.monotonic() - started
        if proc.returncode != 0:
            sys.exit(f"failed ({proc.returncode}): {' '.join(map(str, cmd))}\n{proc.stderr[-2000:]}")
        _, user, sys_, rss = t.read().split()[-4:]
    return {"wall": wall, "cpu": float(user) + float(sys_), "rss_mb": int(rss) / 1024,
            "stderr": proc.stderr}


def median_run(runs: list[dict]) -> dict:
    ordered = sorted(runs, key=lambda r: r["wall"])
    m = ordered[len(ordered) // 2]
    return {"wall": m["wall"], "cpu": m["cpu"], "rss_mb": max(r["rss_mb"] for r in runs),
            "walls": [round(r["wall"], 2) for r in runs]}


def gen(background: Path, out: Path, size: str, seed: int, extra: list[str]) -> dict:
    manifest = out / "corpus.manifest"
    if not manifest.exists():
        print(f"generating {out.name} ({size})", flush=True)
        run([str(TW), "gen", "--background", str(background), "--out", str(out),
             "--size", size, "--seed", str(seed), *extra])
    return json.loads(manifest.read_text())


def objects_of(corpus: Path) -> list[str]:
    return sorted(str(p) for p in corpus.rglob("*.json.gz"))


def check_expected(alerts: Path, manifest: dict) -> tuple[bool, str]:
    """Built-in alerts at the manifest's level or above == the expected ones."""
    floor = LEVELS[manifest["expected_level"]]
    expected = {(rule, a["event_id"]) for a in manifest["attacks"] for rule in a["fires"]}
    got = set()
    with alerts.open() as f:
        for line in f:
            a = json.loads(line)
            if a["rule"]["source"] == "builtin" and LEVELS.get(a["rule"]["severity"], 0) >= floor:
                got.add((a["rule"]["id"], a["event"]["id"]))
    missing, extra = expected - got, got - expected
    ok = not missing and not extra
    text = (f"{len(got)} built-in alerts at {manifest['expected_level']} or above, "
            f"{len(expected)} expected: {len(missing)} missing, {len(extra)} unexpected")
    for rule, event in sorted(missing)[:10]:
        text += f"\n    missing {rule} {event}"
    for rule, event in sorted(extra)[:10]:
        text += f"\n    unexpected {rule} {event}"
    return ok, text


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", default=os.environ.get("BENCH_SIZE", "1GB"))
    p.add_argument("--big", default=os.environ.get("BENCH_BIG", "10GB"),
                   help="corpus for the flat-memory check ('0' to skip)")
    p.add_argument("--runs", type=int, default=int(os.environ.get("RUNS", "3")))
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--background-records", type=int, default=1_000_000)
    p.add_argument("--datasets", type=Path,
                   default=Path(os.environ.get("TRAILWATCH_DATASETS", REPO.parent / "shared/datasets")))
    p.add_argument("--report", type=Path, default=BENCH / "report.md")
    args = p.parse_args()
    sigma = args.datasets / "sigma-cloudtrail"
    BENCH.mkdir(exist_ok=True)

    background = BENCH / f"background-{args.background_records}-seed{args.seed}.jsonl"
    if not background.exists():
        print(f"generating the background day ({args.background_records} records)", flush=True)
        tmp = background.with_suffix(".tmp")
        run([sys.executable, str(REPO / "scripts/benign_day.py"), "--out", str(tmp),
             "--records", str(args.background_records), "--seed", str(args.seed),
             "--no-panther", "--datasets", str(args.datasets)])
        tmp.rename(background)

    corpus = BENCH / f"corpus-{args.size}-seed{args.seed}"
    jsonl = BENCH / f"corpus-{args.size}-seed{args.seed}.jsonl"
    manifest = gen(background, corpus, args.size, args.seed, ["--jsonl", str(jsonl)])
    files = objects_of(corpus)
    records = manifest["records"]
    listing = BENCH / "objects.txt"
    listing.write_text("\n".join(files) + "\n")
    print(f"corpus: {len(files)} objects, {records} records, "
          f"{manifest['decompressed_bytes']} bytes decompressed, "
          f"{manifest['compressed_bytes']} gzipped", flush=True)

    alerts = BENCH / "scan-alerts.jsonl"
    duck_matches = BENCH / "duckdb.matches"
    commands = {
        "a_pigz_p1": (["sh", "-c", f"xargs -a {listing} pigz -p 1 -dc"], os.devnull),
        "a_pigz": (["sh", "-c", f"xargs -a {listing} pigz -dc"], os.devnull),
        "b_scan_2": ([str(TW), "scan", "--no-grouping", "--format", "jsonl", "--rules", str(sigma), str(corpus)],
                     str(alerts)),
        "b_scan_1": ([str(TW), "scan", "--no-grouping", "--format", "jsonl", "--threads", "1", "--rules", str(sigma),
                      str(corpus)], str(alerts)),
        "c_duckdb": ([str(PEERS_PY), str(REPO / "scripts/bench_peers.py"), "duckdb",
                      "--sigma-semantics", str(sigma), str(jsonl), str(duck_matches)], os.devnull),
        "d_rsigma": ([str(RSIGMA), "engine", "eval", "--rules", str(sigma), "--event", f"@{jsonl}",
                      "--input-format", "json", "--output-format", "ndjson", "--config", os.devnull],
                     str(BENCH / "rsigma-out.ndjson")),
    }
    results: dict[str, list[dict]] = {k: [] for k in commands}
    for r in range(args.runs):
        for name, (cmd, out) in commands.items():
            print(f"run {r + 1}/{args.runs}: {name}", flush=True)
            results[name].append(measure(cmd, out))
    med = {k: median_run(v) for k, v in results.items()}

    # The match check.
    print("checking matches", flush=True)
    tw_matches = BENCH / "trailwatch.matches"
    rs_matches = BENCH / "rsigma.matches"
    run([str(PEERS_PY), str(REPO / "scripts/bench_peers.py"), "trailwatch", "--rules", str(sigma),
         str(alerts), str(tw_matches)])
    run([str(PEERS_PY), str(REPO / "scripts/bench_peers.py"), "rsigma", str(RSIGMA), str(sigma),
         str(jsonl), str(rs_matches)])
    compare = run([str(PEERS_PY), str(REPO / "scripts/bench_peers.py"), "compare", str(sigma),
                   f"trailwatch={tw_matches}", f"duckdb={duck_matches}", f"rsigma={rs_matches}"],
                  stdout=subprocess.PIPE, check=False)
    expected_ok, expected_text = check_expected(alerts, manifest)

    # Memory: one object of --size, and the --big corpus.
    single = BENCH / f"single-{args.size}-seed{args.seed}"
    gen(background, single, args.size, args.seed, ["--single-object"])
    mem_single = measure([str(TW), "scan", "--no-grouping", "--format", "jsonl", "--rules", str(sigma), str(single)],
                         str(BENCH / "single-alerts.jsonl"))
    mem_big = None
    if args.big not in ("0", ""):
        big = BENCH / f"corpus-{args.big}-seed{args.seed}"
        big_manifest = gen(background, big, args.big, args.seed, [])
        mem_big = measure([str(TW), "scan", "--no-grouping", "--format", "jsonl", "--rules", str(sigma), str(big)])
        mem_big["records"] = big_manifest["records"]

    # The report.
    floor_name = min(("a_pigz_p1", "a_pigz"), key=lambda k: med[k]["wall"])
    floor = med[floor_name]["wall"]
    rps = {k: records / med[k]["wall"] for k in med}
    labels = {
        "a_pigz_p1": "(a) pigz -p 1 -dc", "a_pigz": "(a) pigz -dc (default threads)",
        "b_scan_2": "(b) trailwatch scan, 2 cores", "b_scan_1": "(b) trailwatch scan, 1 thread",
        "c_duckdb": "(c) pySigma DuckDB backend", "d_rsigma": "(d) rsigma engine eval",
    }
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}; "
        f"{time.strftime('%Y-%m-%d')}",
        f"Corpus: `trailwatch gen --seed {args.seed} --size {args.size}` over a "
        f"{args.background_records}-record benign day: {len(files)} objects, {records} records "
        f"({manifest['attack_records']} attack records), {manifest['decompressed_bytes'] / 1e9:.2f} GB "
        f"decompressed, {manifest['compressed_bytes'] / 1e6:.0f} MB gzipped",
        f"Rules: built-in pack + {len(list(sigma.glob('*.yml')))} SigmaHQ CloudTrail rules for (b); "
        f"the SigmaHQ rules for (c) and (d). Medians of {args.runs} runs.",
        "",
        "| command | wall s (median) | runs | CPU s | peak RSS MB | records/s |",
        "|---|---|---|---|---|---|",
    ]
    for k in commands:
        m = med[k]
        lines.append(f"| {labels[k]} | {m['wall']:.2f} | {' '.join(map(str, m['walls']))} | "
                     f"{m['cpu']:.2f} | {m['rss_mb']:.1f} | {rps[k]:,.0f} |")
    lines.append(f"| scan of one {args.size} object, 2 cores | {mem_single['wall']:.2f} | 1 | "
                 f"{mem_single['cpu']:.2f} | {mem_single['rss_mb']:.1f} | "
                 f"{records / mem_single['wall']:,.0f} |")
    if mem_big:
        lines.append(f"| scan of the {args.big} corpus, 2 cores | {mem_big['wall']:.2f} | 1 | "
                     f"{mem_big['cpu']:.2f} | {mem_big['rss_mb']:.1f} | "
                     f"{mem_big['records'] / mem_big['wall']:,.0f} |")

    def target(name: str, value: float, limit: float, op: str) -> str:
        met = value <= limit if op == "<=" else value >= limit
        return f"| {name} | {value:.2f} | {op} {limit:g} | {'met' if met else 'NOT met'} |"

    lines += ["", f"Floor (a) = {labels[floor_name]}, {floor:.2f} s.", "",
              "| target | measured | goal | |", "|---|---|---|---|",
              target("(b) 2 cores wall / (a) wall", med["b_scan_2"]["wall"] / floor, 1.0, "<="),
              target("(b) 1 thread wall / (a) wall", med["b_scan_1"]["wall"] / floor, 2.0, "<="),
              target("(b) records/s / (c) records/s", rps["b_scan_2"] / rps["c_duckdb"], 5.0, ">="),
              target("(b) records/s / (d) records/s", rps["b_scan_2"] / rps["d_rsigma"], 5.0, ">="),
              target(f"peak RSS MB, one {args.size} object", mem_single["rss_mb"], 128, "<=")]
    if mem_big:
        lines.append(target(f"peak RSS {args.big} corpus / {args.size} corpus",
                            mem_big["rss_mb"] / med["b_scan_2"]["rss_mb"], 1.10, "<="))
    lines += ["", f"Match check (Sigma rules, (b) vs (c) vs (d)): "
                  f"{'passed' if compare.returncode == 0 else 'FAILED'}",
              f"Manifest check: {'passed' if expected_ok else 'FAILED'}: {expected_text}"]
    report = "\n".join(lines) + "\n"
    args.report.write_text(report + "\n## Match comparison\n\n```\n" + compare.stdout + "```\n")
    print()
    print(compare.stdout)
    print(report)
    print(f"(also in {args.report})")
    return 0 if compare.returncode == 0 and expected_ok else 1


if __name__ == "__main__":
    sys.exit(main())
