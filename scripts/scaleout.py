#!/usr/bin/env python3
"""Scale-out check: several `trailwatch run` instances on one SQS queue, sharing
their state in DynamoDB (moto), one of them killed with SIGKILL while it reads and
started again; a webhook receiver on loopback counts what arrives.

    scaleout.py --trailwatch BIN --receiver-python PY [--instances 3]
                [--notifications 2000] [--seed 1]

Run by scripts/scaleout.sh with localstack/.venv-moto's Python (boto3). The world
(tests/support/sqs_world.py) has one bucket per notification shape: S3 -> SQS,
S3 -> SNS -> SQS (raw delivery off, and on), EventBridge -> SQS, and a trail's own
SNS topic (CloudTrail's message, published by this script). Each notification is one
object of three StopLogging calls, each an alert (grouping off); one object in ten is
notified a second time, straight on the queue, as at-least-once delivery does.

Prints, last: `instances N, notifications N, alerts N, lost N, duplicated N`, and
exits 0 only with 0 lost and 0 duplicated.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import boto3

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests" / "support"))
LOCALSTACK = os.environ.get("LOCALSTACK_URL", "http://127.0.0.1:4566")
MOTO = os.environ.get("MOTO_URL", "http://127.0.0.1:5000")
PREFIX = "tw"
KW = dict(region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")


def world(tag: str) -> dict:
    out = subprocess.run(
        [sys.executable, str(REPO / "tests/support/sqs_world.py"), "--tag", tag,
         "--max-receive-count", "5"],
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout)


def records(tag: str, n: int, when: str) -> bytes:
    recs = [
        {
            "eventVersion": "1.08", "eventID": f"{tag}-{n}-{i}", "eventTime": when,
            "eventSource": "cloudtrail.amazonaws.com", "eventName": "StopLogging",
            "awsRegion": "us-east-1", "sourceIPAddress": "203.0.113.9",
            "userAgent": "aws-cli/2.15", "recipientAccountId": "111122223333",
            "userIdentity": {"type": "IAMUser", "userName": f"u{n % USERS}",
                             "arn": f"arn:aws:iam::111122223333:user/u{n % USERS}",
                             "accountId": "111122223333"},
            "requestParameters": {"name": f"trail-{n}-{i}"},
        }
        for i in range(3)
    ]
    describe = dict(recs[0], eventID=f"{tag}-{n}-d", eventName="DescribeTrails",
                    eventSource="cloudtrail.amazonaws.com", requestParameters={})
    recs.append(describe)
    return gzip.compress(json.dumps({"Records": recs}).encode(), 1)


def key_for(n: int, now: datetime) -> str:
    stamp = now.strftime("%Y%m%dT%H%MZ")
    return (f"{PREFIX}/AWSLogs/111122223333/CloudTrail/us-east-1/{now:%Y/%m/%d}/"
            f"111122223333_CloudTrail_us-east-1_{stamp}_n{n}.json.gz")


# A correlation over the StopLogging calls: one user's calls come in objects
# that different instances read, so each burst is split across instances and
# must still be one alert (the stateful rules' shared feed and leader).
CORRELATION = """title: Scale-out stops
id: tw-scaleout-stops
level: high
correlation:
  type: event_count
  rules: [aws-cloudtrail-stop-logging]
  group-by: [userIdentity.arn]
  timespan: 1h
  condition:
    gte: 10
  generate: true
"""
# A rule whose repeats are grouped: one DescribeTrails per object, by the
# object's user; each user's calls are one burst, counted once across
# instances (the shared grouping windows in DynamoDB).
DESCRIBE = """title: Scale-out describes
id: tw-scaleout-describe
level: low
logsource:
  product: aws
  service: cloudtrail
detection:
  sel:
    eventName: DescribeTrails
  condition: sel
"""
USERS = 17


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def config(path: Path, w: dict, table_prefix: str, receiver: str, instance: str,
           listen: int | None = None) -> None:
    trails = "".join(
        f'[[trails]]\nbucket = "{b}"\nprefix = "{PREFIX}"\nregion = "us-east-1"\n'
        for b in w["buckets"].values()
    )
    path.write_text(f"""[state]
path = "state.db"
backend = "dynamodb"
table_prefix = "{table_prefix}"
claim_timeout = "30s"
[aws]
region = "us-east-1"
endpoint_url = "{LOCALSTACK}"
dynamodb_endpoint_url = "{MOTO}"
[discovery]
enabled = false
{trails}[crawl]
start_from = "1h"
concurrency = 4
[source]
mode = "sqs"
queue_url = "{w['queue_url']}"
wait_time = "1s"
lease = "20s"
reconcile_interval = "1h"
[rules]
builtin = true
paths = ["{path.parent.parent / 'rules'}"]
[rules.grouping]
enabled = true
window = "1h"
exclude = ["aws-cloudtrail-stop-logging"]
[log]
level = "info"
[[sinks]]
type = "webhook"
name = "hook"
url = "{receiver}/hook/scaleout"
headers = {{ "X-Scaleout-Instance" = "{instance}" }}
""" + (f'[server]\nlisten = "127.0.0.1:{listen}"\n' if listen else ""))


def start(bin_: str, dirs: Path, i: int) -> subprocess.Popen:
    d = dirs / f"i{i}"
    env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
               AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE="/dev/null",
               AWS_SHARED_CREDENTIALS_FILE="/dev/null")
    for v in ["AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_ENDPOINT_URL", "RUST_LOG"]:
        env.pop(v, None)
    log = open(d / "daemon.log", "ab")
    return subprocess.Popen([bin_, "run", "--config", str(d / "trailwatch.toml")], cwd=d,
                            stdout=subprocess.DEVNULL, stderr=log, env=env)


def window_counts(tag: str) -> dict[str, int]:
    """Per principal, the repeats its shared grouping window counted."""
    ddb = boto3.client("dynamodb", endpoint_url=MOTO, **KW)
    out: dict[str, int] = {}
    pages = ddb.get_paginator("scan").paginate(TableName=f"{tag}-rules")
    for page in pages:
        for item in page["Items"]:
            if not item["name"]["S"].startswith("window#"):
                continue
            alert, _ = json.loads(item["first"]["S"])
            if (alert.get("rule") or {}).get("id") == "tw-scaleout-describe":
                who = (alert.get("event") or {}).get("principal") or "?"
                out[who] = out.get(who, 0) + int(item["count"]["N"])
    return out


def crash_allowed(reqs: list[dict], instance: str, kill_time: float | None) -> set[str]:
    """The alert the delivery contract may deliver twice after `instance` was
    killed at `kill_time`: the last one the receiver accepted from it before."""
    if kill_time is None:
        return set()
    before = [r for r in reqs
              if r.get("outcome") == "accepted" and r.get("alert_id")
              and (r.get("headers") or {}).get("x-scaleout-instance") == instance
              and r["time_wall"] <= kill_time]
    if not before:
        return set()
    return {max(before, key=lambda r: r["time_wall"])["alert_id"]}


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trailwatch", required=True)
    ap.add_argument("--receiver-python", required=True)
    ap.add_argument("--instances", type=int, default=3)
    ap.add_argument("--notifications", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=900)
    args = ap.parse_args()
    args.trailwatch = str(Path(args.trailwatch).resolve())
    rng = random.Random(args.seed)
    tag = f"tw-so-{os.getpid()}"
    w = world(tag)
    s3 = boto3.client("s3", endpoint_url=LOCALSTACK, **KW)
    sns = boto3.client("sns", endpoint_url=LOCALSTACK, **KW)
    sqs = boto3.client("sqs", endpoint_url=LOCALSTACK, **KW)

    work = Path(tempfile.mkdtemp(prefix="tw-scaleout-"))
    port_file = work / "receiver.port"
    receiver = subprocess.Popen(
        [args.receiver_python, str(REPO / "tests/support/receiver.py"), "--listen",
         "127.0.0.1:0", "--port-file", str(port_file)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    while not (port_file.exists() and port_file.read_text().strip()):
        if time.time() > deadline:
            print("scaleout: the receiver did not start", file=sys.stderr)
            return 1
        time.sleep(0.1)
    base = f"http://127.0.0.1:{port_file.read_text().strip()}"

    (work / "rules").mkdir()
    (work / "rules" / "scaleout.yml").write_text(CORRELATION)
    (work / "rules" / "describe.yml").write_text(DESCRIBE)
    procs: list[subprocess.Popen] = []
    try:
        ports = [free_port() for _ in range(args.instances)]
        for i in range(args.instances):
            (work / f"i{i}").mkdir()
            config(work / f"i{i}" / "trailwatch.toml", w, tag, base, f"i{i}", ports[i])
        init = subprocess.run([args.trailwatch, "state", "init", "--config",
                               str(work / "i0" / "trailwatch.toml")],
                              capture_output=True, text=True, env=dict(
                                  os.environ, AWS_ACCESS_KEY_ID="test",
                                  AWS_SECRET_ACCESS_KEY="test"))
        if init.returncode != 0:
            print(f"scaleout: state init failed: {init.stderr}", file=sys.stderr)
            return 1
        procs = [start(args.trailwatch, work, i) for i in range(args.instances)]

        shapes = ["direct", "sns", "raw", "eb", "ct"]
        now = datetime.now(timezone.utc)
        when = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        expected: set[str] = set()
        killed_at = args.notifications // 3
        victim = 0
        kill_time = None
        for n in range(args.notifications):
            shape = shapes[n % len(shapes)]
            bucket = w["buckets"][shape]
            key = key_for(n, now)
            s3.put_object(Bucket=bucket, Key=key, Body=records(tag, n, when))
            expected.update(f"{tag}-{n}-{i}" for i in range(3))
            if shape == "ct":
                sns.publish(TopicArn=w["ct_topic_arn"],
                            Message=json.dumps({"s3Bucket": bucket, "s3ObjectKey": [key]}))
            # At-least-once delivery: one notification in ten comes twice.
            if rng.random() < 0.1:
                sqs.send_message(QueueUrl=w["queue_url"], MessageBody=json.dumps(
                    {"s3Bucket": bucket, "s3ObjectKey": [key]}))
            if n == killed_at:
                # Kill one instance while it reads, then bring it back.
                kill_time = time.time()
                procs[victim].send_signal(signal.SIGKILL)
                procs[victim].wait()
                time.sleep(2)
                procs[victim] = start(args.trailwatch, work, victim)

        # Wait for the receiver to have every alert and the queue to drain.
        deadline = time.time() + args.timeout
        while True:
            acc = get(f"{base}/__receiver/accepted?path=/hook/")
            attrs = sqs.get_queue_attributes(
                QueueUrl=w["queue_url"],
                AttributeNames=["ApproximateNumberOfMessages",
                                "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
            depth = int(attrs["ApproximateNumberOfMessages"]) + int(
                attrs["ApproximateNumberOfMessagesNotVisible"])
            got = len(acc["accepted"])
            if (got >= len(expected) and depth == 0) or time.time() > deadline:
                break
            time.sleep(2)
        time.sleep(5)  # anything late still counts
        # One instance runs the stateful rules, whichever it is.
        leaders = 0
        for port in ports:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
                    text = r.read().decode()
            except OSError:
                continue
            leaders += any(line.strip() == "trailwatch_stateful_rules_leader 1"
                           for line in text.splitlines())
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()

    reqs = get(f"{base}/__receiver/requests?path=/hook/")["requests"]
    counts = get(f"{base}/__receiver/accepted?path=/hook/")
    accepted = counts["accepted"]
    receiver.terminate()
    by_event: dict[str, int] = {}
    for r in reqs:
        alert = r.get("body")
        if r.get("outcome") != "accepted" or not isinstance(alert, dict):
            continue
        ev = (alert.get("event") or {}).get("id")
        if ev:
            by_event[ev] = by_event.get(ev, 0) + 1
    by_id = {k: int(v) for k, v in accepted.items()}
    # The delivery contract allows a second delivery after a request whose
    # outcome was unknown (timed out), and after a crash between the answer
    # and its commit: the last alert the killed instance had sent before the
    # kill. Counted apart, not as duplicates.
    timed_out = set(counts.get("timed_out", {})) | crash_allowed(reqs, f"i{victim}", kill_time)
    lost = len(expected - set(by_event))
    # Each user's burst is one alert, whichever instances read its calls.
    bursts: dict[str, set[str]] = {}
    for r in reqs:
        alert = r.get("body")
        if r.get("outcome") == "accepted" and isinstance(alert, dict) \
                and (alert.get("rule") or {}).get("id") == "tw-scaleout-stops":
            who = (alert.get("event") or {}).get("principal") or "?"
            bursts.setdefault(who, set()).add(alert.get("id"))
    split = sum(len(ids) - 1 for ids in bursts.values())
    # Each user's DescribeTrails calls: one opening alert, and one shared
    # window counting every object once.
    openers: dict[str, set[str]] = {}
    for r in reqs:
        alert = r.get("body")
        if r.get("outcome") == "accepted" and isinstance(alert, dict) \
                and (alert.get("rule") or {}).get("id") == "tw-scaleout-describe":
            who = (alert.get("event") or {}).get("principal") or "?"
            openers.setdefault(who, set()).add(alert.get("id"))
    counted = window_counts(tag)
    objects_of = [0] * USERS
    for n in range(args.notifications):
        objects_of[n % USERS] += 1
    users = [f"arn:aws:iam::111122223333:user/u{u}" for u in range(USERS) if objects_of[u]]
    right = sum(1 for u in users
                if counted.get(u) == objects_of[int(u.rsplit("u", 1)[1])])
    split += sum(len(ids) - 1 for ids in openers.values())
    lost += len(users) - len(openers) + (len(users) - right)
    print(f"grouped bursts {len(openers)} (expected {len(users)}), "
          f"windows counting each object once: {right} of {len(users)}")
    calls = [0] * USERS
    for n in range(args.notifications):
        calls[n % USERS] += 3
    want_bursts = sum(1 for c in calls if c >= 10)
    lost += max(0, want_bursts - len(bursts))
    print(f"correlation bursts {len(bursts)} (expected {want_bursts}), "
          f"raised more than once: {split}")
    duplicated = sum(n - 1 for i, n in by_id.items() if n > 1 and i not in timed_out) + split
    allowed = sum(n - 1 for i, n in by_id.items() if n > 1 and i in timed_out)
    for i, n in by_id.items():
        if n > 1 and i not in timed_out:
            sends = [(r.get("headers", {}).get("x-scaleout-instance"), round(r["time_wall"], 3))
                     for r in reqs if r.get("alert_id") == i and r.get("outcome") == "accepted"]
            print(f"duplicated {i}: accepted from (instance, time) {sends}; "
                  f"i{victim} killed at {kill_time}", file=sys.stderr)
    print(f"logs and state: {work}", file=sys.stderr)
    print(f"instances leading the stateful rules: {leaders} of {args.instances}")
    print(f"second deliveries the contract allows (timed out, crash after the answer): {allowed}")
    print(f"instances {args.instances}, notifications {args.notifications}, "
          f"alerts {len(by_id)}, lost {lost}, duplicated {duplicated}")
    return 0 if lost == 0 and duplicated == 0 and leaders == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
