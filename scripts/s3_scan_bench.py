#!/usr/bin/env python3
"""Hunting straight from S3 against copying first (issue 22, item 2):
`trailwatch scan s3://bucket` beside `aws s3 sync` (awscli from PyPI, in
bench/.venv-awscli) followed by a local `trailwatch scan`, over the same
objects on LocalStack, side by side in one run.

    localstack/up.sh
    localstack/.venv-moto/bin/python scripts/s3_scan_bench.py [--objects 1000] [--runs 3]

The objects are crawl_bench.py's tree in the bucket `tw-bench-logs` (uploaded
once). For each way: wall time, trailwatch's CPU (and awscli's), the CPU the
emulator used meanwhile (every process of LocalStack's session): on two cores
the emulator is the limit. Prints the table and writes bench/s3_scan.md.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import crawl_bench  # noqa: E402  (its bucket, uploader and emulator CPU meter)

REPO = Path(__file__).resolve().parent.parent
VENV = REPO / "bench/.venv-awscli"
ENV = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
           AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE="/dev/null",
           AWS_SHARED_CREDENTIALS_FILE="/dev/null", AWS_REGION="us-east-1",
           AWS_ENDPOINT_URL=os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:4566"))


def awscli() -> Path:
    aws = VENV / "bin/aws"
    if not aws.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(VENV / "bin/pip"), "install", "--quiet", "awscli"], check=True)
    return aws


def timed(cmd: list[str]) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    emulator_before = crawl_bench.emulator_cpu()
    start = time.monotonic()
    out = subprocess.run(cmd, env=ENV, capture_output=True, text=True)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    emulator_after = crawl_bench.emulator_cpu()
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd[:3])} failed ({out.returncode}):\n{out.stderr[-2000:]}")
    emulator = (emulator_after - emulator_before
                if emulator_before is not None and emulator_after is not None else float("nan"))
    return {"wall": wall, "cpu": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
            "emulator": emulator, "stderr": out.stderr}


def scanned(stderr: str) -> tuple[int, int]:
    m = re.search(r"scanned (\d+) objects \(\d+ failed\), \d+ records, (\d+) alerts", stderr)
    if not m:
        sys.exit(f"no summary line in:\n{stderr[-2000:]}")
    return int(m.group(1)), int(m.group(2))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--objects", type=int, default=int(os.environ.get("CRAWL_OBJECTS", "1000")))
    p.add_argument("--runs", type=int, default=int(os.environ.get("RUNS", "3")))
    p.add_argument("--binary", default=str(REPO / "target/release/trailwatch"))
    p.add_argument("--datasets", default=os.environ.get("TRAILWATCH_DATASETS", str(REPO.parent / "shared/datasets")))
    args = p.parse_args()
    have = crawl_bench.ensure_objects(args.objects, 50, args.datasets)
    aws = awscli()
    bucket = f"s3://{crawl_bench.BUCKET}"
    direct, copied = [], []
    # The tree's keys span today, later hours included: until the day's end.
    until = time.strftime("%Y-%m-%dT23:59:59Z", time.gmtime())
    for _ in range(args.runs):
        r = timed([args.binary, "scan", "--format", "jsonl", "--threads", "2", "--since", "30d",
                   "--until", until, bucket])
        r["objects"], r["alerts"] = scanned(r["stderr"])
        direct.append(r)
        work = Path(tempfile.mkdtemp(prefix="tw-s3sync-"))
        try:
            sync = timed([str(aws), "s3", "sync", "--quiet", "--endpoint-url", ENV["AWS_ENDPOINT_URL"],
                          bucket, str(work)])
            local = timed([args.binary, "scan", "--format", "jsonl", "--threads", "2", str(work)])
            objects, alerts = scanned(local["stderr"])
            copied.append({"wall": sync["wall"] + local["wall"], "sync_wall": sync["wall"],
                           "cpu": local["cpu"], "aws_cpu": sync["cpu"],
                           "emulator": sync["emulator"] + local["emulator"],
                           "objects": objects, "alerts": alerts})
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def med(rows: list[dict], key: str) -> float:
        return statistics.median(r[key] for r in rows)

    lines = [
        "# Hunting straight from S3",
        "",
        f"{have} log objects of `{crawl_bench.BUCKET}` on LocalStack (host mode), 2 threads; "
        f"medians of {args.runs} runs, the two ways interleaved.",
        "",
        "| way | objects | alerts | wall s | trailwatch CPU s | awscli CPU s | LocalStack CPU s |",
        "|---|---|---|---|---|---|---|",
        f"| `trailwatch scan s3://…` | {direct[0]['objects']} | {direct[0]['alerts']} | "
        f"{med(direct, 'wall'):.2f} | {med(direct, 'cpu'):.2f} | - | {med(direct, 'emulator'):.2f} |",
        f"| `aws s3 sync` then `trailwatch scan DIR` | {copied[0]['objects']} | {copied[0]['alerts']} | "
        f"{med(copied, 'wall'):.2f} (sync {med(copied, 'sync_wall'):.2f}) | {med(copied, 'cpu'):.2f} | "
        f"{med(copied, 'aws_cpu'):.2f} | {med(copied, 'emulator'):.2f} |",
        "",
        f"Direct / copy-then-scan wall: {med(direct, 'wall') / med(copied, 'wall'):.2f}.",
    ]
    text = "\n".join(lines) + "\n"
    (REPO / "bench").mkdir(exist_ok=True)
    (REPO / "bench/s3_scan.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
