#!/usr/bin/env python3
"""Crawler throughput against LocalStack: `once` over many objects at several
concurrencies, each from a fresh state, side by side in one run.

    localstack/up.sh
    localstack/.venv-moto/bin/python scripts/crawl_bench.py [--objects 1000] \
        [--concurrency 1,8] [--binary target/release/trailwatch]

The objects are a CloudTrail-style tree from scripts/sample_tree.py (records
from ../shared/datasets with fresh event ids, `--records-per-object` each),
uploaded once to the bucket `tw-bench-logs` on LocalStack (skipped when it
already holds them). trailwatch reads it as a static trail (no discovery).
Prints objects/s and records/s per concurrency, the CPU time trailwatch used
(user+sys), and the CPU time the emulator used meanwhile (every process of
LocalStack's session, from /proc): with both beside the wall time and the
machine's cores, it tells whether the crawl was bound by trailwatch's CPU, by
the emulator, or by neither (waiting on I/O).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
from botocore.config import Config

REPO = Path(__file__).resolve().parent.parent
BUCKET = "tw-bench-logs"


def s3():
    return boto3.client(
        "s3",
        endpoint_url=os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:4566"),
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(s3={"addressing_style": "path"}, max_pool_connections=32),
    )


def ensure_objects(objects: int, per_object: int, datasets: str) -> int:
    """Uploads the tree unless the bucket already holds `objects` log objects."""
    client = s3()
    try:
        client.head_bucket(Bucket=BUCKET)
    except Exception:
        client.create_bucket(Bucket=BUCKET)
    have = sum(
        1
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
        for o in page.get("Contents", [])
        if "/CloudTrail/" in o["Key"]
    )
    if have >= objects:
        return have
    tree = Path(tempfile.mkdtemp(prefix="tw-bench-tree-"))
    try:
        # ~1.35 KB a record: enough bytes for the object count wanted.
        target = int(objects * per_object * 1400 * 1.02)
        subprocess.run(
            [sys.executable, str(REPO / "scripts/sample_tree.py"), "--out", str(tree / "t"),
             "--datasets", datasets, "--records-per-object", str(per_object),
             "--target-bytes", str(target)],
            check=True,
        )
        files = [p for p in (tree / "t").rglob("*.json.gz")]
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda p: client.upload_file(str(p), BUCKET, str(p.relative_to(tree / "t"))), files))
        return sum(1 for p in files if "/CloudTrail/" in str(p))
    finally:
        shutil.rmtree(tree, ignore_errors=True)


def emulator_cpu() -> float | None:
    """CPU seconds used so far by LocalStack's session (up.sh starts it in its own)."""
    try:
        pid = (REPO / "localstack/run/localstack.pid").read_text().split()[0]
        session = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[3]
    except (OSError, IndexError):
        return None
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[3] == session:
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def run_once(binary: str, concurrency: int, activity: bool = True) -> dict:
    work = Path(tempfile.mkdtemp(prefix="tw-bench-"))
    try:
        config = work / "trailwatch.toml"
        config.write_text(f"""
[state]
path = "state.db"
[aws]
region = "us-east-1"
endpoint_url = "{os.environ.get('AWS_ENDPOINT_URL', 'http://127.0.0.1:4566')}"
[discovery]
enabled = false
[[trails]]
bucket = "{BUCKET}"
region = "us-east-1"
[crawl]
concurrency = {concurrency}
start_from = "48h"
[store]
activity = {"true" if activity else "false"}
[log]
level = "warn"
[[sinks]]
type = "file"
path = "alerts.jsonl"
""")
        env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
                   AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE="/dev/null",
                   AWS_SHARED_CREDENTIALS_FILE="/dev/null")
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        emulator_before = emulator_cpu()
        start = time.monotonic()
        out = subprocess.run([binary, "once", "--config", str(config)], env=env,
                             capture_output=True, text=True)
        wall = time.monotonic() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        emulator_after = emulator_cpu()
        if out.returncode != 0:
            sys.exit(f"once failed:\n{out.stderr}")
        m = re.search(r"(\d+) objects processed .*?, (\d+) records, (\d+) new alerts", out.stderr)
        objects, records, alerts = (int(x) for x in m.groups())
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        emulator = (emulator_after - emulator_before
                    if emulator_before is not None and emulator_after is not None else float("nan"))
        return {"concurrency": concurrency, "objects": objects, "records": records,
                "alerts": alerts, "wall": wall, "cpu": cpu, "emulator": emulator,
                "activity": activity, "state_bytes": state_bytes(work)}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def state_bytes(work: Path) -> int:
    return sum(p.stat().st_size for p in work.glob("state.db*"))


def activity_cost(binary: str, concurrencies: list[int], runs: int) -> None:
    """The activity index's cost: each concurrency with the index on and off,
    interleaved `runs` times; medians, and on/off ratios of objects/s and of
    trailwatch's CPU per record."""
    import statistics
    print(f"\nactivity index on and off, medians of {runs} interleaved runs:")
    print(f"{'concurrency':>11} {'activity':>8} {'objects/s':>10} {'tw cpu µs/record':>16} {'state MB':>8}")
    for c in concurrencies:
        got = {True: [], False: []}
        for _ in range(runs):
            for on in (True, False):
                got[on].append(run_once(binary, c, on))
        rates, cpus = {}, {}
        for on in (True, False):
            rs = got[on]
            rates[on] = statistics.median(r["objects"] / r["wall"] for r in rs)
            cpus[on] = statistics.median(r["cpu"] / r["records"] * 1e6 for r in rs)
            mb = statistics.median(r["state_bytes"] for r in rs) / 1e6
            print(f"{c:>11} {'on' if on else 'off':>8} {rates[on]:>10.1f} {cpus[on]:>16.1f} {mb:>8.1f}")
        print(f"{c:>11} {'on/off':>8} {rates[True] / rates[False]:>10.2f} {cpus[True] / cpus[False]:>16.2f}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--objects", type=int, default=1000)
    p.add_argument("--records-per-object", type=int, default=50)
    p.add_argument("--concurrency", default="1,8")
    p.add_argument("--binary", default=str(REPO / "target/release/trailwatch"))
    p.add_argument("--activity-runs", type=int, default=0,
                   help="also measure the activity index on and off, this many interleaved runs")
    p.add_argument("--datasets", default=os.environ.get("TRAILWATCH_DATASETS", str(REPO.parent / "shared/datasets")))
    args = p.parse_args()
    have = ensure_objects(args.objects, args.records_per_object, args.datasets)
    print(f"bucket {BUCKET}: {have} log objects on LocalStack")
    cores = os.cpu_count() or 1
    print(f"{'concurrency':>11} {'objects':>8} {'records':>9} {'wall s':>7} {'objects/s':>10} "
          f"{'records/s':>10} {'tw cpu s':>8} {'emu cpu s':>9} {'busy':>5}")
    for c in [int(x) for x in args.concurrency.split(",")]:
        r = run_once(args.binary, c)
        busy = (r["cpu"] + r["emulator"]) / (r["wall"] * cores)
        print(f"{c:>11} {r['objects']:>8} {r['records']:>9} {r['wall']:>7.2f} "
              f"{r['objects'] / r['wall']:>10.1f} {r['records'] / r['wall']:>10.0f} "
              f"{r['cpu']:>8.2f} {r['emulator']:>9.2f} {busy:>5.0%}")
    print(f"busy: the CPU time of trailwatch and the emulator over wall time x {cores} cores")
    if args.activity_runs:
        activity_cost(args.binary, [int(x) for x in args.concurrency.split(",")], args.activity_runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
