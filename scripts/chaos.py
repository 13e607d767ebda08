#!/usr/bin/env python3
"""Chaos suite (issue 17): `trailwatch run` against the emulators through fault
proxies, a world that keeps writing CloudTrail objects (late and out of order), a
seeded schedule of faults, and a checker at the end.

    chaos.py --trailwatch BIN --receiver-python PY [--minutes 3] [--seed 1]

Run by scripts/chaos.sh with localstack/.venv-moto's Python (boto3). BIN is built
with `--features failpoints` (the kill points inside a commit and between a
receiver's answer and its commit).

The world: one trail in moto (CloudTrail), its bucket in LocalStack (S3); the daemon
discovers the trail through a fault proxy in front of moto and reads the bucket
through one in front of LocalStack. A writer puts an object about every second:
a few StopLogging calls (each an alert) among benign filler; one object in five is
filed under a key time up to 40 minutes back, and objects are put in a shuffled
order. Every object is also kept in a local folder, which `trailwatch scan` reads at
the end with the same rules: its alerts are the alerts the world implies.

Faults, one at a time at seeded random points: kill -9 (and a restart), a kill point
(the daemon started with FAILPOINTS so that it aborts inside a commit or between an
answer and its commit), SIGTERM and restart, a storm of SIGHUPs with a broken config
and a broken rule among them, the receiver down, answering 429 with and without
Retry-After, 500, slower than the sink's timeout, closing connections; S3 answering
503 SlowDown, 500, resets and truncated bodies; the CloudTrail API throttling and
failing.

The checker, per sink (webhook, Datadog, file): every implied alert arrived (lost
otherwise), none twice (duplicated otherwise), except where the delivery contract
allows a second delivery: after a request that timed out, and after a crash between
the receiver's answer and its commit (the last alert a sink accepted before a crash);
those are counted apart. It also greps everything the run logged, printed and wrote
for the secrets it configured (the Datadog API key, the webhook secret, the AWS
secret key), and samples the daemon's RSS.

Prints, last: `faults N, runs N, alerts expected N, delivered N, lost N, duplicated N`
and exits 0 only with 0 lost, 0 duplicated, no secret found and the RSS bound held.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
LOCALSTACK = os.environ.get("LOCALSTACK_URL", "http://127.0.0.1:4566")
MOTO = os.environ.get("MOTO_URL", "http://127.0.0.1:5000")
ACCOUNT = "111122223333"
REGION = "us-east-1"
RSS_BOUND_MB = 256
POLL = 10  # the daemon's poll interval, seconds
RECOVER_SHORT, RECOVER_LONG = 120, 300  # seconds for the lag to come back after a fault
FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
KILL_POINTS = [
    "state.commit_object.before_commit",
    "state.commit_object.after_commit",
    "sinks.http.after_answer",
    "sinks.file.after_write",
]
BROKEN_RULE = """title: broken on purpose by the chaos suite
id: 5c1b2a3e-0000-4000-8000-00000000c4a5
logsource: {product: aws, service: cloudtrail}
detection:
  selection:
    eventName: [unclosed
  condition: selection
"""
CUSTOM_RULE = """title: Chaos suite marker rule
id: 5c1b2a3e-0000-4000-8000-00000000c4a6
status: experimental
description: StopLogging by the chaos suite's users (a rule from a directory, reloaded by SIGHUP)
author: trailwatch chaos suite
level: high
logsource: {product: aws, service: cloudtrail}
detection:
  selection:
    eventName: StopLogging
    userIdentity.userName|startswith: chaos-
  condition: selection
"""


def log(msg: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_json(url: str, body=None, timeout=10):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def wait_port_file(path: Path, what: str) -> int:
    deadline = time.time() + 30
    while not (path.exists() and path.read_text().strip()):
        if time.time() > deadline:
            raise SystemExit(f"chaos: {what} did not start")
        time.sleep(0.1)
    return int(path.read_text().strip())


class World:
    """Writes CloudTrail objects to the bucket and to a local mirror."""

    def __init__(self, tag: str, bucket: str, s3, mirror: Path, seed: int):
        self.tag, self.bucket, self.s3, self.mirror = tag, bucket, s3, mirror
        self.rng = random.Random(seed)
        self.n = 0
        self.stop = threading.Event()
        self.objects = 0
        self.errors = 0
        # (put time, the eventIDs that raise alerts) of each object put.
        self.puts: list[tuple[float, list[str]]] = []
        self.lock = threading.Lock()

    def body(self, n: int, when: datetime) -> tuple[bytes, list[str]]:
        recs = []
        alerts = self.rng.randint(1, 4)
        filler = self.rng.randint(20, 300)
        for i in range(alerts + filler):
            t = (when - timedelta(seconds=self.rng.randint(0, 240))).strftime("%Y-%m-%dT%H:%M:%SZ")
            if i < alerts:
                user = f"chaos-{self.rng.randint(0, 9)}"
                recs.append({
                    "eventVersion": "1.08", "eventID": f"{self.tag}-{n}-{i}", "eventTime": t,
                    "eventSource": "cloudtrail.amazonaws.com", "eventName": "StopLogging",
                    "awsRegion": REGION, "sourceIPAddress": "203.0.113.9",
                    "userAgent": "aws-cli/2.15", "recipientAccountId": ACCOUNT,
                    "userIdentity": {"type": "IAMUser", "userName": user,
                                     "arn": f"arn:aws:iam::{ACCOUNT}:user/{user}",
                                     "accountId": ACCOUNT},
                    "requestParameters": {"name": f"trail-{n}-{i}"},
                })
            else:
                recs.append({
                    "eventVersion": "1.08", "eventID": f"{self.tag}-{n}-{i}", "eventTime": t,
                    "eventSource": "ec2.amazonaws.com", "eventName": "DescribeInstances",
                    "awsRegion": REGION, "sourceIPAddress": "10.0.0.7",
                    "userAgent": "aws-sdk-go/1.44", "recipientAccountId": ACCOUNT,
                    "readOnly": True, "eventType": "AwsApiCall",
                    "userIdentity": {"type": "AssumedRole",
                                     "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/app/i-0abc",
                                     "accountId": ACCOUNT},
                    "requestParameters": {"instancesSet": {}, "filterSet": {}},
                })
        ids = [r["eventID"] for r in recs if r["eventName"] == "StopLogging"]
        self.rng.shuffle(recs)
        return gzip.compress(json.dumps({"Records": recs}).encode(), 5), ids

    def key(self, n: int, when: datetime) -> str:
        stamp = when.strftime("%Y%m%dT%H%MZ")
        return (f"AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/{when:%Y/%m/%d}/"
                f"{ACCOUNT}_CloudTrail_{REGION}_{stamp}_{self.tag}n{n:06d}.json.gz")

    def put(self, key: str, body: bytes, ids: list[str]) -> None:
        local = self.mirror / key
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(body)
        for attempt in range(5):
            try:
                self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)
                self.objects += 1
                with self.lock:
                    self.puts.append((time.time(), ids))
                return
            except Exception as e:  # noqa: BLE001 - the emulator is not under test here
                self.errors += 1
                log(f"world: put {key} failed ({e}); again")
                time.sleep(0.5 * (attempt + 1))
        raise SystemExit(f"chaos: the world could not put {key}")

    def run(self) -> None:
        held: list[tuple[str, bytes, list[str]]] = []
        while not self.stop.is_set():
            now = datetime.now(timezone.utc)
            late = self.rng.random() < 0.2
            when = now - timedelta(minutes=self.rng.randint(1, 40)) if late else now
            # Keys are never in the future, nor before today (listing is by key date).
            if when.date() != now.date():
                when = now
            self.n += 1
            item = (self.key(self.n, when), *self.body(self.n, when))
            # Out of order: an object is sometimes held back behind the next ones.
            if self.rng.random() < 0.3:
                held.append(item)
            else:
                self.put(*item)
            if held and self.rng.random() < 0.5:
                self.put(*held.pop(self.rng.randrange(len(held))))
            self.stop.wait(self.rng.uniform(0.3, 1.5))
        for item in held:
            self.put(*item)


class Daemon:
    """The daemon under test: started, killed, restarted; its RSS sampled."""

    def __init__(self, bin_: str, work: Path, env: dict, prefix: list[str]):
        self.bin, self.work, self.env, self.prefix = bin_, work, env, prefix
        self.proc: subprocess.Popen | None = None
        self.runs = 0
        self.crashes: list[float] = []  # when each crash was noticed (wall time)
        self.max_rss_kb = 0
        self.lock = threading.Lock()
        self.unexpected_exits: list[str] = []

    def start(self, failpoints: str | None = None) -> None:
        env = dict(self.env)
        if failpoints:
            env["FAILPOINTS"] = failpoints
        out = open(self.work / "daemon.log", "ab")
        self.proc = subprocess.Popen(
            [*self.prefix, self.bin, "run", "--config", str(self.work / "trailwatch.toml")],
            cwd=self.work,
            stdout=out, stderr=out, env=env, preexec_fn=no_core_dumps)
        self.runs += 1

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.crashes.append(time.time())

    def sigterm(self, timeout=60) -> int | None:
        if not self.alive():
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.unexpected_exits.append("did not stop within 60 s of SIGTERM")
            self.kill9()
            return None

    def sample_rss(self) -> None:
        if not self.alive():
            return
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    self.max_rss_kb = max(self.max_rss_kb, int(line.split()[1]))
        except OSError:
            pass


class StateFs:
    """The state file's folder on a small tmpfs in a private mount namespace
    (root only): a process holds the namespace, the daemon runs in it (nsenter),
    and the suite fills it (disk full) or remounts it read-only."""

    def __init__(self, folder: Path, size_mb: int):
        self.folder = folder
        folder.mkdir()
        self.holder = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c",
             f"mount -t tmpfs -o size={size_mb}m tmpfs '{folder}' && touch '{folder}/.ns' "
             "&& exec sleep infinity"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 10
        while not self.inside(".ns").exists():
            if self.holder.poll() is not None or time.time() > deadline:
                raise OSError(f"no private tmpfs: {self.holder.stderr.read().decode(errors='replace')}")
            time.sleep(0.05)

    def inside(self, name: str) -> Path:
        """A path in the folder as the namespace sees it, from outside."""
        return Path(f"/proc/{self.holder.pid}/root") / str(self.folder).lstrip("/") / name

    def prefix(self) -> list[str]:
        return ["nsenter", "-t", str(self.holder.pid), "-m", "--"]

    def run(self, *cmd: str) -> None:
        subprocess.run([*self.prefix(), *cmd], check=False, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)

    def fill(self) -> None:
        self.run("sh", "-c", f"dd if=/dev/zero of='{self.folder}/filler' bs=64k 2>/dev/null; true")

    def unfill(self) -> None:
        self.run("rm", "-f", f"{self.folder}/filler")

    def read_only(self, on: bool) -> None:
        self.run("mount", "-o", "remount," + ("ro" if on else "rw"), str(self.folder))

    def stop(self) -> None:
        self.holder.kill()
        self.holder.wait()


def no_core_dumps() -> None:
    import resource
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def config_text(bucket_trail: str, s3_proxy: str, ct_proxy: str, receiver: str,
                server_port: int, state_path: Path, poll: int) -> str:
    return f"""[state]
path = "{state_path}"
[aws]
region = "{REGION}"
endpoint_url = "{s3_proxy}"
cloudtrail_endpoint_url = "{ct_proxy}"
[discovery]
regions = ["{REGION}"]
trails = ["{bucket_trail}"]
refresh_interval = "20s"
[crawl]
poll_interval = "{poll}s"
start_from = "2h"
lookback = "1h"
concurrency = 4
[rules]
builtin = true
paths = ["rules"]
[rules.grouping]
enabled = false
[store]
activity = true
[log]
level = "info"
[server]
listen = "127.0.0.1:{server_port}"
[[sinks]]
type = "webhook"
name = "hook"
url = "{receiver}/hook/chaos"
secret_file = "webhook.secret"
timeout = "2s"
[[sinks]]
type = "datadog"
name = "datadog"
url = "{receiver}/api/v1/events"
api_key_file = "dd.key"
timeout = "2s"
[[sinks]]
type = "file"
name = "file"
path = "alerts.jsonl"
fsync = "always"
"""


class Faults:
    """The schedule's faults; each returns a line for the log."""

    def __init__(self, rng: random.Random, daemon: Daemon, work: Path, receiver_ctl: str,
                 s3_proxy: str, ct_proxy: str, short: bool, statefs: StateFs | None,
                 state_file: Path, clock_file: Path | None):
        self.rng, self.d, self.work = rng, daemon, work
        self.rc, self.s3p, self.ctp = receiver_ctl, s3_proxy, ct_proxy
        self.short = short
        self.statefs, self.state_file, self.clock_file = statefs, state_file, clock_file
        # The state file as the daemon names it (inside its mount namespace).
        self.daemon_state_path = (statefs.folder if statefs else work) / "state.db"
        self.count = 0
        self.tour: list[str] | None = None
        self.kinds: dict[str, int] = {}
        # (kind, start, end) of each fault: the window in which it acted.
        self.windows: list[tuple[str, float, float]] = []

    def hold(self) -> float:
        return self.rng.uniform(5, 10) if self.short else self.rng.uniform(20, 60)

    def pick(self) -> str:
        # A short run first goes through every kind once, in a seeded order.
        if self.short:
            if self.tour is None:
                self.tour = [name for name, _ in self.table()]
                self.rng.shuffle(self.tour)
            if self.tour:
                return self.tour.pop()
        table = self.table()
        total = sum(w for _, w in table)
        r = self.rng.uniform(0, total)
        for name, w in table:
            r -= w
            if r <= 0:
                return name
        return table[-1][0]

    def table(self) -> list[tuple[str, int]]:
        # The long run kills often: at least 50 times in an hour.
        kills = [("kill9", 5), ("kill_point", 4)] if self.short else [("kill9", 35), ("kill_point", 12)]
        table = [*kills, ("sigterm", 2), ("sighup_storm", 2),
                 ("receiver_down", 2), ("receiver_429", 2), ("receiver_500", 2),
                 ("receiver_slow", 2), ("receiver_close", 1), ("s3_chaos", 3),
                 ("cloudtrail_errors", 2), ("state_locked", 2), ("stall_webhook", 2),
                 ("stall_datadog", 2)]
        if self.statefs is not None:
            table += [("disk_full", 2), ("read_only", 2)]
        if self.clock_file is not None:
            table += [("clock_step", 2)]
        return table

    def run(self, name: str) -> str:
        self.count += 1
        self.kinds[name] = self.kinds.get(name, 0) + 1
        start = time.time()
        out = getattr(self, name)()
        self.windows.append((name, start, time.time()))
        return out

    def state_locked(self) -> str:
        # Longer than SQLite's busy timeout (10 s): the daemon cannot write.
        # The locker runs where the daemon does (SQLite's locks on the WAL's
        # shared memory do not meet through /proc/PID/root).
        secs = self.rng.uniform(20, 25) if self.short else self.rng.uniform(30, 60)
        script = ("import sqlite3, sys, time\n"
                  "c = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)\n"
                  "c.execute('BEGIN EXCLUSIVE')\n"
                  "time.sleep(float(sys.argv[2]))\n"
                  "c.execute('ROLLBACK')\n")
        prefix = self.statefs.prefix() if self.statefs else []
        subprocess.run([*prefix, sys.executable, "-c", script, str(self.daemon_state_path),
                        str(secs)], check=False)
        return f"state file locked by another process for {secs:.0f} s"

    def disk_full(self) -> str:
        secs = self.rng.uniform(10, 15) if self.short else self.rng.uniform(30, 60)
        self.statefs.fill()
        time.sleep(secs)
        self.statefs.unfill()
        return f"state disk full for {secs:.0f} s"

    def read_only(self) -> str:
        # A file system with files open for writing cannot be remounted
        # read-only: the daemon is stopped first and started on the read-only
        # disk, as after a reboot that left it so.
        self.d.sigterm()
        self.statefs.read_only(True)
        log_at = (self.work / "daemon.log").stat().st_size
        self.d.start()
        deadline = time.time() + 15
        while time.time() < deadline and self.d.alive():
            time.sleep(0.2)
        if self.d.alive():
            outcome = "kept running"
        else:
            text = (self.work / "daemon.log").read_bytes()[log_at:].decode(errors="replace")
            named = str(self.daemon_state_path) in text and "Read-only file system" in text
            if self.d.proc.returncode == 0 or not named:
                self.d.unexpected_exits.append(
                    f"on a read-only state disk: exit {self.d.proc.returncode}, "
                    f"error naming the file: {named}")
            outcome = f"refused to start (exit {self.d.proc.returncode}, the file named: {named})"
        time.sleep(self.hold() if self.d.alive() else 1)
        self.d.sigterm()
        self.statefs.read_only(False)
        self.d.start()
        return f"state disk read-only at start: {outcome}; writable again, restarted"

    def clock_step(self) -> str:
        step = self.rng.choice(["+2h", "+20m", "-30m", "-5m", "+1d"])
        secs = self.hold()
        self.clock_file.write_text(step + "\n")
        time.sleep(secs)
        self.clock_file.write_text("+0\n")
        time.sleep(2)  # the daemon reads the clock file once a second
        return f"clock stepped {step} for {secs:.0f} s, then back"

    def kill9(self) -> str:
        self.d.kill9()
        time.sleep(self.rng.uniform(0.2, 3))
        self.d.start()
        return "kill -9, restarted"

    def kill_point(self) -> str:
        point = self.rng.choice(KILL_POINTS)
        self.d.sigterm()
        self.d.start(failpoints=f"{point}=25%return")
        deadline = time.time() + (20 if self.short else 40)
        while time.time() < deadline and self.d.alive():
            time.sleep(0.2)
        fired = not self.d.alive()
        if fired:
            self.d.crashes.append(time.time())
        else:
            self.d.sigterm()
        self.d.start()
        return f"kill point {point}: {'fired' if fired else 'not reached in 40 s'}, restarted"

    def sigterm(self) -> str:
        code = self.d.sigterm()
        if code not in (0, None):
            self.d.unexpected_exits.append(f"exit {code} after SIGTERM")
        self.d.start()
        return f"SIGTERM (exit {code}), restarted"

    def sighup_storm(self) -> str:
        cfg = self.work / "trailwatch.toml"
        good = cfg.read_text()
        rule = self.work / "rules" / "broken.yml"
        steps = []
        for i in range(6):
            if i == 1:
                cfg.write_text(good + "\n[crawl\nbroken = \n")
                steps.append("broken config")
            elif i == 2:
                cfg.write_text(good)
            elif i == 3:
                rule.write_text(BROKEN_RULE)
                steps.append("broken rule")
            elif i == 5:
                rule.unlink(missing_ok=True)
            if self.d.alive():
                self.d.proc.send_signal(signal.SIGHUP)
            time.sleep(self.rng.uniform(0.05, 0.4))
        cfg.write_text(good)
        rule.unlink(missing_ok=True)
        if self.d.alive():
            self.d.proc.send_signal(signal.SIGHUP)
        time.sleep(1)
        if not self.d.alive():
            self.d.unexpected_exits.append(f"died in a SIGHUP storm (exit {self.d.proc.returncode})")
            self.d.start()
        return f"SIGHUP storm with {', '.join(steps)}"

    def receiver(self, faults: list | None = None, **kw) -> None:
        body = dict(kw)
        if faults is not None:
            body["faults"] = faults
        http_json(f"{self.rc}/__receiver/config", body)

    def receiver_down(self) -> str:
        secs = self.rng.uniform(5, 10) if self.short else self.rng.uniform(30, 60)
        self.receiver(down=True, down_for=secs)
        time.sleep(secs)
        return f"receiver down for {secs:.0f} s"

    def receiver_429(self) -> str:
        n = self.rng.randint(2, 8)
        with_header = self.rng.random() < 0.5
        f = {"count": n, "status": 429}
        if with_header:
            f["retry_after"] = 1
        self.receiver([dict(f, path="/hook/"), dict(f, path="/api/v1/events")])
        return f"receiver 429 x{n} {'with' if with_header else 'without'} Retry-After"

    def receiver_500(self) -> str:
        n = self.rng.randint(2, 8)
        self.receiver([{"path": "/hook/", "count": n, "status": 500},
                       {"path": "/api/v1/events", "count": n, "status": 503}])
        return f"receiver 500/503 x{n}"

    def receiver_slow(self) -> str:
        n = self.rng.randint(1, 3)
        self.receiver([{"path": "/hook/", "count": n, "action": "timeout", "seconds": 4},
                       {"path": "/api/v1/events", "count": n, "action": "timeout", "seconds": 4}])
        return f"receiver slower than the timeout x{n}"

    def stall(self, path: str) -> str:
        # Every request to one sink hangs past its timeout for a while; the
        # other sink must not wait for it (checked by Monitor.independence).
        secs = self.rng.uniform(12, 18) if self.short else self.rng.uniform(30, 60)
        self.receiver([{"path": path, "count": int(secs), "action": "timeout", "seconds": 4}])
        time.sleep(secs)
        self.receiver([])
        return f"{path} stalled (answers after the timeout) for {secs:.0f} s"

    def stall_webhook(self) -> str:
        return self.stall("/hook/")

    def stall_datadog(self) -> str:
        return self.stall("/api/v1/events")

    def receiver_close(self) -> str:
        n = self.rng.randint(1, 4)
        self.receiver([{"path": "/hook/", "count": n, "action": "close"},
                       {"path": "/api/v1/events", "count": n, "action": "close"}])
        return f"receiver closes connections x{n}"

    def s3_chaos(self) -> str:
        rate = self.rng.choice([0.1, 0.3, 0.6])
        secs = self.rng.uniform(6, 10) if self.short else self.rng.uniform(20, 60)
        http_json(f"{self.s3p}/__proxy/config",
                  {"chaos": {"seed": self.rng.randint(0, 1 << 30), "rate": rate}})
        time.sleep(secs)
        http_json(f"{self.s3p}/__proxy/config", {})
        return f"S3 503/500/reset/truncated at {rate:.0%} for {secs:.0f} s"

    def cloudtrail_errors(self) -> str:
        secs = self.rng.uniform(6, 10) if self.short else self.rng.uniform(30, 60)
        http_json(f"{self.ctp}/__proxy/config",
                  {"chaos": {"seed": self.rng.randint(0, 1 << 30), "rate": 0.8,
                             "kinds": ["slow_down", "internal_error", "reset"]}})
        time.sleep(secs)
        http_json(f"{self.ctp}/__proxy/config", {})
        return f"CloudTrail API throttling/failing at 80% for {secs:.0f} s"

    def heal(self) -> None:
        http_json(f"{self.rc}/__receiver/config", {"faults": [], "down": False})
        http_json(f"{self.s3p}/__proxy/config", {})
        http_json(f"{self.ctp}/__proxy/config", {})
        if self.statefs is not None:
            self.statefs.unfill()
            self.statefs.read_only(False)
        if self.clock_file is not None:
            self.clock_file.write_text("+0\n")


class Monitor:
    """Once a second: the daemon's RSS, its /readyz, and the lag: the age of the
    oldest object put whose alerts have not all reached the webhook."""

    def __init__(self, daemon: Daemon, world: World, receiver_ctl: str, server_port: int):
        self.d, self.world, self.rc, self.port = daemon, world, receiver_ctl, server_port
        self.stop = threading.Event()
        self.since = 0
        self.delivered: set[str] = set()
        self.pending: list[tuple[float, list[str]]] = []
        self.taken = 0
        self.samples: list[tuple[float, float, bool | None]] = []  # (t, lag, ready)
        # (time, alerts accepted so far) per sink, and objects put so far.
        self.accepted = {"/hook/": 0, "/api/v1/events": 0}
        self.progress: list[tuple[float, dict, int]] = []

    def ready(self) -> bool | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2) as r:
                return r.status == 200
        except urllib.error.HTTPError:
            return False
        except OSError:
            return None  # the daemon is down (killed, restarting)

    def tick(self) -> None:
        self.d.sample_rss()
        try:
            out = http_json(f"{self.rc}/__receiver/requests?since={self.since}")
        except OSError:
            return
        for r in out["requests"]:
            self.since = max(self.since, r["seq"] + 1)
            body = r.get("body")
            for prefix in self.accepted:
                if r["outcome"] == "accepted" and r["path"].startswith(prefix):
                    self.accepted[prefix] += 1
            if r["outcome"] == "accepted" and r["path"].startswith("/hook/") \
                    and isinstance(body, dict):
                ev = (body.get("event") or {}).get("id")
                if ev:
                    self.delivered.add(ev)
        with self.world.lock:
            self.pending.extend(self.world.puts[self.taken:])
            self.taken = len(self.world.puts)
        self.pending = [p for p in self.pending if not set(p[1]) <= self.delivered]
        now = time.time()
        lag = now - min(p[0] for p in self.pending) if self.pending else 0.0
        self.samples.append((now, lag, self.ready()))
        self.progress.append((now, dict(self.accepted), self.taken))

    def run(self) -> None:
        while not self.stop.wait(1):
            self.tick()

    def independence(self, windows, poll: float) -> list[str]:
        """While one HTTP sink is stalled, the other keeps delivering: at least
        one alert per object put early enough in the window (each raises two)."""
        problems = []
        for kind, start, end in windows:
            if not kind.startswith("stall_"):
                continue
            other = "/api/v1/events" if kind == "stall_webhook" else "/hook/"
            inside = [p for p in self.progress if start <= p[0] <= end]
            if len(inside) < 2:
                continue
            cutoff = end - poll - 5
            puts = sum(1 for t, _ in self.world.puts if start <= t <= cutoff)
            grew = inside[-1][1][other] - inside[0][1][other]
            if grew < puts:
                problems.append(f"{kind} at {time.strftime('%H:%M:%S', time.gmtime(start))}: "
                                f"the other sink got {grew} alerts for {puts} objects")
        return problems

    def recovery(self, windows, poll: float) -> tuple[float, list[str]]:
        """The longest time from a fault's end until the lag was back under one
        poll interval, and the faults that degrade readiness but did not show
        (or did not end) in /readyz."""
        worst, problems = 0.0, []
        for kind, start, end in windows:
            after = [(t, lag, ready) for t, lag, ready in self.samples if t >= end]
            back = next((t for t, lag, _ in after if lag <= poll), None)
            took = (back - end) if back is not None else float("inf")
            worst = max(worst, took)
            if kind in DEGRADING:
                during = [ready for t, _, ready in self.samples if start <= t <= end]
                if False not in during:
                    problems.append(f"{kind} at {time.strftime('%H:%M:%S', time.gmtime(start))}: /readyz never said degraded")
                if next((t for t, _, ready in after if ready), None) is None:
                    problems.append(f"{kind} at {time.strftime('%H:%M:%S', time.gmtime(start))}: /readyz never ready again")
        return worst, problems


# Faults /readyz must show as degraded while they last (the state store cannot
# be written).
DEGRADING = {"state_locked"}


def sink_counts(requests: list[dict], prefix: str) -> tuple[dict, list[dict]]:
    counts: dict[str, int] = {}
    accepted = []
    for r in requests:
        if r["path"].startswith(prefix) and r["outcome"] == "accepted" and r.get("alert_id"):
            counts[r["alert_id"]] = counts.get(r["alert_id"], 0) + 1
            accepted.append(r)
    return counts, accepted


def crash_allowed(accepted: list[dict], crashes: list[float]) -> set[str]:
    """Alerts the delivery contract may deliver twice after a crash: for each
    crash, the last alert the sink accepted before it."""
    out = set()
    for t in crashes:
        before = [r for r in accepted if r["time_wall"] <= t]
        if before:
            out.add(max(before, key=lambda r: r["seq"])["alert_id"])
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trailwatch", required=True)
    ap.add_argument("--receiver-python", required=True)
    ap.add_argument("--minutes", type=float, default=4)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--settle", type=float, default=600, help="seconds to wait for delivery at the end")
    args = ap.parse_args()
    # A SIGTERM (CI's timeout) still cleans up: helpers stopped, namespace gone.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    bin_ = str(Path(args.trailwatch).resolve())
    rng = random.Random(args.seed)
    short = args.minutes <= 10
    tag = f"tw-chaos-{os.getpid()}"
    work = Path(tempfile.mkdtemp(prefix="tw-chaos-"))
    (work / "rules").mkdir()
    (work / "rules" / "chaos.yml").write_text(CUSTOM_RULE)
    mirror = work / "world"

    # Secrets the run configures, and must never show anywhere.
    dd_key = secrets.token_hex(16)
    hook_secret = "whsec-" + secrets.token_hex(16)
    aws_secret = "chaosAwsSecret" + secrets.token_hex(13)
    (work / "dd.key").write_text(dd_key + "\n")
    (work / "webhook.secret").write_text(hook_secret + "\n")
    aws = dict(region_name=REGION, aws_access_key_id="test", aws_secret_access_key=aws_secret)

    # The world: the bucket in both emulators, the trail in moto.
    bucket = tag
    boto3.client("s3", endpoint_url=LOCALSTACK, **aws).create_bucket(Bucket=bucket)
    boto3.client("s3", endpoint_url=MOTO, **aws).create_bucket(Bucket=bucket)
    ct = boto3.client("cloudtrail", endpoint_url=MOTO, **aws)
    ct.create_trail(Name=tag, S3BucketName=bucket, IsMultiRegionTrail=True)
    ct.start_logging(Name=tag)

    procs: list[subprocess.Popen] = []

    def helper(cmd: list[str], name: str) -> None:
        procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                      stderr=open(work / f"{name}.log", "ab")))

    helper([args.receiver_python, str(REPO / "tests/support/receiver.py"), "--listen",
            "127.0.0.1:0", "--port-file", str(work / "receiver.port"), "--control-port-file",
            str(work / "receiver.control"), "--api-key-sha256",
            hashlib.sha256(dd_key.encode()).hexdigest(), "--webhook-secret-file",
            str(work / "webhook.secret")], "receiver")
    for name, upstream in (("s3proxy", LOCALSTACK), ("ctproxy", MOTO)):
        helper([sys.executable, str(REPO / "tests/support/fault_proxy.py"), "--listen",
                "127.0.0.1:0", "--upstream", upstream, "--port-file", str(work / f"{name}.port")],
               name)
    receiver = f"http://127.0.0.1:{wait_port_file(work / 'receiver.port', 'the receiver')}"
    receiver_ctl = f"http://127.0.0.1:{wait_port_file(work / 'receiver.control', 'the receiver')}"
    s3_proxy = f"http://127.0.0.1:{wait_port_file(work / 's3proxy.port', 'the S3 proxy')}"
    ct_proxy = f"http://127.0.0.1:{wait_port_file(work / 'ctproxy.port', 'the CloudTrail proxy')}"
    server_port = free_port()
    statefs = None
    if os.geteuid() == 0 and shutil.which("unshare") and shutil.which("nsenter"):
        try:
            statefs = StateFs(work / "statefs", 1024)
        except OSError as e:
            log(f"disk faults left out: {e}")
    else:
        log("disk faults left out: they need root (a tmpfs in a private mount namespace)")
    state_path = (statefs.folder if statefs else work) / "state.db"
    state_file = statefs.inside("state.db") if statefs else state_path
    (work / "trailwatch.toml").write_text(
        config_text(tag, s3_proxy, ct_proxy, receiver, server_port, state_path, POLL))

    env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY=aws_secret,
               AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE="/dev/null",
               AWS_SHARED_CREDENTIALS_FILE="/dev/null")
    for v in ["AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_ENDPOINT_URL",
              "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_CLOUDTRAIL", "RUST_LOG", "FAILPOINTS"]:
        env.pop(v, None)
    # The clock steps through libfaketime (wall clock only; monotonic time is
    # left alone, as when NTP steps a host's clock).
    clock_file = None
    if Path(FAKETIME_LIB).exists():
        clock_file = work / "clock"
        clock_file.write_text("+0\n")
        env.update(LD_PRELOAD=FAKETIME_LIB, FAKETIME_TIMESTAMP_FILE=str(clock_file),
                   FAKETIME_CACHE_DURATION="1", FAKETIME_DONT_FAKE_MONOTONIC="1")
    else:
        log(f"clock steps left out: no {FAKETIME_LIB} (Debian's faketime package)")
    scan_env = {k: v for k, v in env.items() if not k.startswith(("LD_PRELOAD", "FAKETIME"))}
    daemon = Daemon(bin_, work, env, statefs.prefix() if statefs else [])
    world = World(tag, bucket, boto3.client("s3", endpoint_url=LOCALSTACK, **aws), mirror,
                  args.seed)
    faults = Faults(rng, daemon, work, receiver_ctl, s3_proxy, ct_proxy, short, statefs,
                    state_file, clock_file)
    writer = threading.Thread(target=world.run, daemon=True)
    monitor = Monitor(daemon, world, receiver_ctl, server_port)

    ok = True
    try:
        daemon.start()
        writer.start()
        threading.Thread(target=monitor.run, daemon=True).start()
        end = time.time() + args.minutes * 60
        gap = (2, 6) if short else (5, 15)
        while time.time() < end:
            time.sleep(rng.uniform(*gap))
            if time.time() >= end:
                break
            if not daemon.alive():
                daemon.unexpected_exits.append(f"exited by itself (code {daemon.proc.returncode})")
                daemon.start()
            name = faults.pick()
            log(f"fault {faults.count + 1}: {faults.run(name)}")
        world.stop.set()
        writer.join()
        faults.heal()
        if not daemon.alive():
            daemon.start()
        log(f"world wrote {world.objects} objects; waiting for every alert")

        scan = subprocess.run([bin_, "scan", "--rules", str(work / "rules"), "--no-grouping",
                               "--format", "jsonl", str(mirror)], capture_output=True, text=True,
                              env=scan_env)
        (work / "scan.err").write_text(scan.stderr)
        expected_alerts = [json.loads(x) for x in scan.stdout.splitlines() if x.strip()]
        expected = {a["id"] for a in expected_alerts}

        deadline = time.time() + args.settle
        while time.time() < deadline:
            reqs = http_json(f"{receiver_ctl}/__receiver/requests")["requests"]
            hook, _ = sink_counts(reqs, "/hook/")
            dd, _ = sink_counts(reqs, "/api/v1/events")
            if expected <= set(hook) and expected <= set(dd):
                break
            time.sleep(3)
        time.sleep(5)
        code = daemon.sigterm()
        if code not in (0, None):
            daemon.unexpected_exits.append(f"exit {code} after the final SIGTERM")
    finally:
        world.stop.set()
        monitor.stop.set()
        if daemon.alive():
            daemon.kill9()
        if statefs is not None:
            # What the namespace's tmpfs holds, kept beside the logs (and
            # searched for secrets with them).
            subprocess.run(["cp", "-a", str(statefs.inside("")), str(work / "statefs-copy")],
                           check=False)
            statefs.stop()
        reqs_final = None
        try:
            reqs_final = http_json(f"{receiver_ctl}/__receiver/requests")
        except OSError:
            ok = False
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()

    if reqs_final is None:
        print("chaos: the receiver could not be read at the end", file=sys.stderr)
        return 1
    requests = reqs_final["requests"]
    timed_out = {r["alert_id"] for r in requests if r["outcome"] == "timed_out" and r.get("alert_id")}
    lost = duplicated = allowed = delivered = 0
    report = []
    for sink, prefix in (("webhook", "/hook/"), ("datadog", "/api/v1/events")):
        counts, accepted = sink_counts(requests, prefix)
        ok_twice = timed_out | crash_allowed(accepted, daemon.crashes)
        s_lost = len(expected - set(counts))
        s_dup = sum(n - 1 for i, n in counts.items() if n > 1 and i not in ok_twice)
        s_allowed = sum(n - 1 for i, n in counts.items() if n > 1 and i in ok_twice)
        extra = len(set(counts) - expected)
        report.append(f"{sink}: delivered {len(set(counts) & expected)}, lost {s_lost}, "
                      f"duplicated {s_dup}, allowed second deliveries {s_allowed}, "
                      f"not implied by the world {extra}")
        lost += s_lost
        duplicated += s_dup
        allowed += s_allowed
        delivered += len(set(counts) & expected)
        if s_lost:
            report.append(f"  {sink} lost, first few: {sorted(expected - set(counts))[:5]}")
        if s_dup:
            report.append(f"  {sink} duplicated: {[i for i, n in counts.items() if n > 1 and i not in ok_twice][:5]}")
    file_counts: dict[str, int] = {}
    alerts_file = work / "alerts.jsonl"
    bad_lines = 0
    if alerts_file.exists():
        for line in alerts_file.read_text(errors="replace").splitlines():
            try:
                i = json.loads(line)["id"]
            except (ValueError, KeyError, TypeError):
                bad_lines += 1
                continue
            file_counts[i] = file_counts.get(i, 0) + 1
    f_lost = len(expected - set(file_counts))
    f_dup = sum(n - 1 for n in file_counts.values() if n > 1)
    report.append(f"file: delivered {len(set(file_counts) & expected)}, lost {f_lost}, "
                  f"duplicated {f_dup}, unreadable lines {bad_lines}")
    lost += f_lost
    duplicated += f_dup + bad_lines
    delivered += len(set(file_counts) & expected)

    # Secrets: nothing the run logged, printed or wrote may hold one.
    leaks = []
    for path in work.rglob("*"):
        if not path.is_file() or path.name in ("dd.key", "webhook.secret"):
            continue
        data = path.read_bytes()
        for name, secret in (("Datadog API key", dd_key), ("webhook secret", hook_secret),
                             ("AWS secret key", aws_secret)):
            if secret.encode() in data:
                leaks.append(f"{name} in {path.relative_to(work)}")
    rss_mb = daemon.max_rss_kb / 1024
    recover_bound = RECOVER_SHORT if short else RECOVER_LONG
    worst, ready_problems = monitor.recovery(faults.windows, POLL)
    independence = monitor.independence(faults.windows, POLL)

    for line in report:
        print(line)
    print(f"faults by kind: {json.dumps(faults.kinds, sort_keys=True)}")
    print(f"crashes (kill -9 and kill points fired): {len(daemon.crashes)}")
    print(f"world: {world.objects} objects; max RSS {rss_mb:.0f} MB (bound {RSS_BOUND_MB} MB)")
    print(f"secrets found in logs, output and files: {len(leaks)} {leaks[:5]}")
    print(f"lag (oldest object put whose alerts are not all at the webhook) back under one "
          f"poll interval ({POLL} s) at most {worst:.0f} s after a fault ended "
          f"(bound {recover_bound} s)")
    print(f"/readyz: {len(ready_problems)} problems {ready_problems[:5]}")
    print(f"a stalled sink delaying the other: {len(independence)} {independence[:5]}")
    if daemon.unexpected_exits:
        print(f"unexpected exits: {daemon.unexpected_exits}")
    print(f"second deliveries the contract allows (timed out, crash after the answer): {allowed}")
    print(f"logs and state: {work}", file=sys.stderr)
    n_expected = len(expected) * 3
    print(f"faults {faults.count}, runs {daemon.runs}, alerts expected {n_expected}, "
          f"delivered {delivered}, lost {lost}, duplicated {duplicated}")
    good = (ok and lost == 0 and duplicated == 0 and not leaks and rss_mb <= RSS_BOUND_MB
            and not daemon.unexpected_exits and len(expected) > 0 and worst <= recover_bound
            and not ready_problems and not independence)
    if good and os.environ.get("CHAOS_KEEP") is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
