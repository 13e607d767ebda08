#!/usr/bin/env python3
"""Scale-out figures (issue 16), printed as Markdown for BENCHMARKS.md:

1. objects/s with 1, 2 and 3 `trailwatch run` instances on one SQS queue (shared
   state in moto's DynamoDB): N objects are uploaded and notified first, then the
   instances start and drain the queue; the time from their start to the last alert
   at the webhook receiver. Our CPU (the instances) and the emulators' CPU
   (LocalStack and moto, every process of theirs) are reported side by side: on one
   two-core machine the emulators are the limit.
2. AWS requests per 1,000 objects in SQS mode (counted by fault proxies in front of
   LocalStack and moto, by service and call), against polling: the listing requests
   one poll cycle costs with 10, 100 and 1,000 cursors when nothing is new (counted
   the same way from `trailwatch once`), and what that comes to for 1,000 objects
   arriving over an hour at the default 60 s poll interval.

    scaleout_bench.py --trailwatch BIN --receiver-python PY [--objects 600]

Run with localstack/.venv-moto's Python (boto3); `make bench` runs it.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
import scaleout  # noqa: E402  (the world, configs and daemons of scaleout.py)

LOCALSTACK = scaleout.LOCALSTACK
MOTO = scaleout.MOTO
CLK = os.sysconf("SC_CLK_TCK")


def cpu_of(pids: list[int]) -> float:
    """CPU seconds of these processes and all their descendants."""
    children = collections.defaultdict(list)
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
                children[int(fields[1])].append(int(d.name))
            except (OSError, IndexError, ValueError):
                pass
    total, todo, seen = 0.0, list(pids), set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / CLK
        except (OSError, IndexError, ValueError):
            continue
        todo.extend(children.get(pid, []))
    return total


def emulator_pids() -> list[int]:
    out = []
    for name in ["localstack", "moto"]:
        f = REPO / "localstack" / "run" / f"{name}.pid"
        if f.exists():
            out.append(int(f.read_text().split()[0]))
    return out


class Proxy:
    def __init__(self, upstream: str, work: Path, name: str):
        port_file = work / f"{name}.port"
        self.proc = subprocess.Popen(
            [sys.executable, str(REPO / "tests/support/fault_proxy.py"), "--listen",
             "127.0.0.1:0", "--upstream", upstream, "--port-file", str(port_file)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 20
        while not (port_file.exists() and port_file.read_text().strip()):
            if time.time() > deadline:
                raise SystemExit("the fault proxy did not start")
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{port_file.read_text().strip()}"

    def calls(self) -> collections.Counter:
        reqs = scaleout.get(f"{self.url}/__proxy/requests")["requests"]
        out = collections.Counter()
        for r in reqs:
            service = r.get("service") or "?"
            call = (r.get("target") or "").split(".")[-1] or r.get("operation") or r["method"]
            out[f"{service} {call}"] += 1
        return out

    def reset(self) -> None:
        req = urllib.request.Request(f"{self.url}/__proxy/reset", data=b'{"config": false}',
                                     method="POST")
        urllib.request.urlopen(req, timeout=10).read()

    def stop(self) -> None:
        self.proc.terminate()


def configure(path: Path, w: dict, tag: str, receiver: str, s3_url: str, ddb_url: str) -> None:
    scaleout.config(path, w, tag, receiver, path.parent.name)
    text = path.read_text()
    future = (datetime.now(timezone.utc) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    text = text.replace(f'endpoint_url = "{LOCALSTACK}"', f'endpoint_url = "{s3_url}"')
    text = text.replace(f'dynamodb_endpoint_url = "{MOTO}"', f'dynamodb_endpoint_url = "{ddb_url}"')
    # Only the queue reads: the reconciler's first pass starts in the future.
    text = text.replace('start_from = "1h"', f'start_from = "{future}"')
    path.write_text(text)


def drain_run(args, k: int, receiver: str, work: Path, s3p: Proxy, ddbp: Proxy) -> dict:
    tag = f"tw-sob{k}-{os.getpid()}"
    w = scaleout.world(tag)
    s3 = boto3.client("s3", endpoint_url=LOCALSTACK, **scaleout.KW)
    sns = boto3.client("sns", endpoint_url=LOCALSTACK, **scaleout.KW)
    sqs = boto3.client("sqs", endpoint_url=LOCALSTACK, **scaleout.KW)
    now = datetime.now(timezone.utc)
    when = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    shapes = ["direct", "sns", "raw", "eb", "ct"]
    for n in range(args.objects):
        shape = shapes[n % len(shapes)]
        key = scaleout.key_for(n, now)
        s3.put_object(Bucket=w["buckets"][shape], Key=key, Body=scaleout.records(tag, n, when))
        if shape == "ct":
            sns.publish(TopicArn=w["ct_topic_arn"], Message=json.dumps(
                {"s3Bucket": w["buckets"][shape], "s3ObjectKey": [key]}))
    # Every notification on the queue (a few are S3's set-up test events).
    deadline = time.time() + 120
    while True:
        a = sqs.get_queue_attributes(QueueUrl=w["queue_url"],
                                     AttributeNames=["ApproximateNumberOfMessages"])
        if int(a["Attributes"]["ApproximateNumberOfMessages"]) >= args.objects or time.time() > deadline:
            break
        time.sleep(1)
    dirs = work / tag
    dirs.mkdir()
    # scaleout.py's rules: a correlation and a grouped rule, both shared.
    (dirs / "rules").mkdir()
    (dirs / "rules" / "scaleout.yml").write_text(scaleout.CORRELATION)
    (dirs / "rules" / "describe.yml").write_text(scaleout.DESCRIBE)
    for i in range(k):
        (dirs / f"i{i}").mkdir()
        configure(dirs / f"i{i}" / "trailwatch.toml", w, tag, receiver, s3p.url, ddbp.url)
    env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test")
    subprocess.run([args.trailwatch, "state", "init", "--config",
                    str(dirs / "i0" / "trailwatch.toml")], check=True, capture_output=True, env=env)
    urllib.request.urlopen(urllib.request.Request(f"{receiver}/__receiver/reset", data=b"{}",
                                                  method="POST"), timeout=10).read()
    s3p.reset()
    ddbp.reset()
    emu_before = cpu_of(emulator_pids())
    t0 = time.time()
    procs = [scaleout.start(args.trailwatch, dirs, i) for i in range(k)]
    # Three StopLogging alerts an object, and per user of scaleout.py's
    # rules one correlation burst (ten calls or more) and one grouped burst.
    calls = [0] * scaleout.USERS
    for n in range(args.objects):
        calls[n % scaleout.USERS] += 3
    want = 3 * args.objects + sum(1 for c in calls if c >= 10) + sum(1 for c in calls if c)
    ours = 0.0
    while True:
        got = len(scaleout.get(f"{receiver}/__receiver/accepted?path=/hook/")["accepted"])
        if got >= want or time.time() - t0 > args.timeout:
            break
        ours = cpu_of([p.pid for p in procs])
        time.sleep(0.25)
    elapsed = time.time() - t0
    ours = max(ours, cpu_of([p.pid for p in procs]))
    emu = cpu_of(emulator_pids()) - emu_before
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        p.wait(timeout=60)
    calls = s3p.calls() + ddbp.calls()
    return {"instances": k, "objects": args.objects, "alerts": got, "seconds": elapsed,
            "ours_cpu": ours, "emulator_cpu": emu, "calls": calls}


def polling_cost(args, work: Path, s3p: Proxy, cursors: int) -> collections.Counter:
    """Requests of one `trailwatch once` pass with nothing new, over `cursors`
    account/region folders (one object each, read by a first pass)."""
    s3 = boto3.client("s3", endpoint_url=LOCALSTACK, **scaleout.KW)
    bucket = f"tw-poll{cursors}-{os.getpid()}"
    s3.create_bucket(Bucket=bucket)
    now = datetime.now(timezone.utc)
    regions = ["us-east-1", "us-east-2", "us-west-1", "us-west-2", "eu-west-1",
               "eu-west-2", "eu-central-1", "ap-south-1", "ap-northeast-1", "sa-east-1"]
    for c in range(cursors):
        account = f"{100000000000 + c // len(regions):012d}"
        region = regions[c % len(regions)]
        key = (f"AWSLogs/{account}/CloudTrail/{region}/{now:%Y/%m/%d}/"
               f"{account}_CloudTrail_{region}_{now:%Y%m%dT%H%MZ}_c{c}.json.gz")
        s3.put_object(Bucket=bucket, Key=key, Body=scaleout.records(bucket, c, now.isoformat()))
    d = work / bucket
    d.mkdir()
    cfg = d / "trailwatch.toml"
    cfg.write_text(f"""[state]
path = "state.db"
[aws]
region = "us-east-1"
endpoint_url = "{s3p.url}"
[discovery]
enabled = false
[[trails]]
bucket = "{bucket}"
region = "us-east-1"
[crawl]
start_from = "1h"
concurrency = 16
[[sinks]]
type = "file"
path = "alerts.jsonl"
""")
    env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
               AWS_EC2_METADATA_DISABLED="true")
    subprocess.run([args.trailwatch, "once", "--config", str(cfg)], cwd=d, check=True,
                   capture_output=True, env=env)
    s3p.reset()
    subprocess.run([args.trailwatch, "once", "--config", str(cfg)], cwd=d, check=True,
                   capture_output=True, env=env)
    return s3p.calls()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trailwatch", required=True)
    ap.add_argument("--receiver-python", required=True)
    ap.add_argument("--objects", type=int, default=600)
    ap.add_argument("--timeout", type=float, default=900)
    args = ap.parse_args()
    args.trailwatch = str(Path(args.trailwatch).resolve())
    work = Path(tempfile.mkdtemp(prefix="tw-scaleout-bench-"))
    port_file = work / "receiver.port"
    receiver = subprocess.Popen(
        [args.receiver_python, str(REPO / "tests/support/receiver.py"), "--listen",
         "127.0.0.1:0", "--port-file", str(port_file)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not (port_file.exists() and port_file.read_text().strip()):
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port_file.read_text().strip()}"
    s3p = Proxy(LOCALSTACK, work, "s3proxy")
    ddbp = Proxy(MOTO, work, "ddbproxy")
    try:
        runs = [drain_run(args, k, base, work, s3p, ddbp) for k in (1, 2, 3)]
        polls = {c: polling_cost(args, work, s3p, c) for c in (10, 100, 1000)}
    finally:
        s3p.stop()
        ddbp.stop()
        receiver.terminate()

    print(f"### Draining {args.objects} notified objects (3 alerts each, and one correlation and one grouped burst per user)\n")
    print("| instances | alerts | seconds | objects/s | our CPU s | emulators' CPU s |")
    print("|---|---|---|---|---|---|")
    for r in runs:
        print(f"| {r['instances']} | {r['alerts']} | {r['seconds']:.1f} | "
              f"{r['objects'] / r['seconds']:.1f} | {r['ours_cpu']:.1f} | {r['emulator_cpu']:.1f} |")
    print("\n### Requests per 1,000 objects, SQS mode (3 alerts each and the bursts, one webhook)\n")
    print("| call | 1 instance | 2 instances | 3 instances |")
    print("|---|---|---|---|")
    names = sorted(set().union(*(r["calls"] for r in runs)))
    for name in names:
        cells = " | ".join(f"{1000 * r['calls'][name] / r['objects']:.0f}" for r in runs)
        print(f"| {name} | {cells} |")
    totals = " | ".join(f"{1000 * sum(r['calls'].values()) / r['objects']:.0f}" for r in runs)
    print(f"| **all** | {totals} |")
    print("\n### Polling: one cycle with nothing new\n")
    print("| cursors | requests a cycle | by call | 1,000 objects over an hour at 60 s polls |")
    print("|---|---|---|---|")
    for c, calls in polls.items():
        per = sum(calls.values())
        by = ", ".join(f"{k} {v}" for k, v in sorted(calls.items()))
        print(f"| {c} | {per} | {by} | {60 * per + 1000} (60 cycles + 1,000 GetObject) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
