#!/usr/bin/env python3
"""Build a CloudTrail-style S3 directory tree from the public sample records.

The records come from the shared, read-only datasets (see
``../shared/datasets/README.md``); they are never copied into the repository.
The tree is written to ``--out DIR`` (put it under a git-ignored folder) and
looks exactly like what CloudTrail delivers to S3::

    AWSLogs/<account>/CloudTrail/<region>/<YYYY>/<MM>/<DD>/
        <account>_CloudTrail_<region>_<YYYYMMDDTHHMMZ>_<16 alnum>.json.gz
    AWSLogs/<account>/CloudTrail-Digest/<region>/<YYYY>/<MM>/<DD>/
        <account>_CloudTrail-Digest_<region>_<trail>_<region>_<YYYYMMDDTHHMMSSZ>.json.gz

Log objects are gzipped ``{"Records":[...]}`` envelopes; every (account,
region) also gets one digest object (not a Records envelope) so that readers
can check that digests are skipped.

Two modes:

* normal (default): every selected record is written once, unchanged, grouped
  by (account, region) into objects of ``--records-per-object`` (default 50).
* scale (``--target-bytes N``): the records are cycled, each copy getting a
  fresh deterministic ``eventID`` (and ``requestID`` when it has one) and an
  ``eventTime`` on the chosen day, until the decompressed size of the written
  envelopes reaches N.  Objects then hold ``--records-per-object`` records
  (default 1000).  Meant for throughput benchmarks.

Output is deterministic: the same inputs, ``--seed`` and ``--date`` give
byte-identical files (gzip is written with mtime=0).  A one-line summary goes
to stderr.

Examples::

    scripts/sample_tree.py --out target/sample-tree
    scripts/sample_tree.py --out target/bench-tree --target-bytes 500MB --force
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import hashlib
import json
import random
import re
import shutil
import string
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATASETS = REPO.parent / "shared" / "datasets"

SOURCES = ("stratus", "traildiscover", "panther")
DEFAULT_ACCOUNT = "123456789012"
DEFAULT_REGION = "us-east-1"
TRAIL_NAME = "trailwatch-sample"
BUCKET = "trailwatch-sample-bucket"
GZIP_LEVEL = 6
MINUTES_PER_DAY = 24 * 60

# Real account ids are 12 digits.  Region names in the anonymised Stratus logs
# look like "sagov-westsouth-1r", so only insist on a path-safe, region-shaped
# token ending in a digit (plus an optional letter).
ACCOUNT_RE = re.compile(r"\d{12}")
REGION_RE = re.compile(r"[a-z][a-z0-9-]*\d[a-z]?")

ALNUM = string.ascii_letters + string.digits

# Compact separators, as CloudTrail itself writes; UTF-8 rather than \u escapes.
_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def dumps(obj) -> bytes:
    return _encoder.encode(obj).encode("utf-8")


def gz(data: bytes) -> bytes:
    # mtime=0 and no file name in the header: identical input, identical bytes.
    return gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0)


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------

_SIZE_RE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)\s*", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12,
               "ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40}


def parse_size(text: str) -> int:
    """'500MB' -> 500_000_000, '1GiB' -> 1_073_741_824, '2048' -> 2048."""
    m = _SIZE_RE.fullmatch(text)
    unit = m and m.group(2).lower().removesuffix("b")
    if not m or unit not in _SIZE_UNITS:
        raise argparse.ArgumentTypeError(f"bad size {text!r} (e.g. 500MB, 1GiB, 2048)")
    size = int(float(m.group(1)) * _SIZE_UNITS[unit])
    if size <= 0:
        raise argparse.ArgumentTypeError("size must be positive")
    return size


def parse_sources(text: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in names if s not in SOURCES]
    if bad or not names:
        raise argparse.ArgumentTypeError(
            f"unknown source(s) {', '.join(bad) or '(none)'}; choose from {','.join(SOURCES)}")
    return names


def parse_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad date {text!r}, expected YYYY-MM-DD") from None


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Write a CloudTrail-style S3 tree (AWSLogs/...) built from the shared sample records.")
    p.add_argument("--out", required=True, type=Path, help="output directory (created)")
    p.add_argument("--datasets", type=Path, default=DEFAULT_DATASETS,
                   help=f"shared datasets folder (default {DEFAULT_DATASETS})")
    p.add_argument("--date", type=parse_date, help="day in the key paths, YYYY-MM-DD (default: today, UTC)")
    p.add_argument("--seed", type=int, default=1, help="seed for names, ids and times (default 1)")
    p.add_argument("--records-per-object", type=positive_int,
                   help="records per log object (default 50, or 1000 with --target-bytes)")
    p.add_argument("--target-bytes", type=parse_size,
                   help="scale mode: cycle the records until this many decompressed bytes (500MB, 1GiB, ...)")
    p.add_argument("--sources", type=parse_sources, default=list(SOURCES),
                   help="comma-separated subset of stratus,traildiscover,panther (default all)")
    p.add_argument("--panther-all", action="store_true",
                   help="include Panther test events with expected=false too (default: only expected=true)")
    p.add_argument("--force", action="store_true",
                   help="write into a non-empty --out, replacing its AWSLogs/ folder")
    args = p.parse_args(argv)
    if args.records_per_object is None:
        args.records_per_object = 1000 if args.target_bytes else 50
    if args.date is None:
        args.date = dt.datetime.now(dt.timezone.utc).date()
    return args


# --------------------------------------------------------------------------
# Loading the records
# --------------------------------------------------------------------------

def load_json(path: Path):
    with path.open(encoding="utf-8") as f:
        return json.load(f)


def load_stratus(root: Path) -> list[dict]:
    """stratus-detonations/<technique id>.json: a JSON array of records."""
    records = []
    for path in sorted((root / "stratus-detonations").glob("*.json")):
        records.extend(load_json(path))
    return records


def load_traildiscover(root: Path) -> list[dict]:
    """traildiscover/events/<Service>/<Event>.json.cloudtrail: an array of
    records (possibly empty) or one bare record.  The plain .json files beside
    them are metadata and are ignored."""
    records = []
    for path in sorted((root / "traildiscover" / "events").glob("*/*.json.cloudtrail")):
        data = load_json(path)
        records.extend(data if isinstance(data, list) else [data])
    return records


def load_panther(root: Path, include_all: bool) -> list[dict]:
    """panther-tests/cloudtrail_tests.jsonl: {rule_id, test_name, expected, event}."""
    records = []
    with (root / "panther-tests" / "cloudtrail_tests.jsonl").open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                test = json.loads(line)
                if include_all or test.get("expected") is True:
                    records.append(test["event"])
    return records


def load_records(args) -> list[dict]:
    loaders = {
        "stratus": lambda: load_stratus(args.datasets),
        "traildiscover": lambda: load_traildiscover(args.datasets),
        "panther": lambda: load_panther(args.datasets, args.panther_all),
    }
    records = []
    for name in SOURCES:  # fixed order, whatever order --sources lists them in
        if name in args.sources:
            records.extend(loaders[name]())
    skipped = sum(not isinstance(r, dict) for r in records)
    if skipped:
        print(f"sample_tree: skipped {skipped} non-object record(s)", file=sys.stderr)
    return [r for r in records if isinstance(r, dict)]


def group_key(record: dict) -> tuple[str, str]:
    """(account, region) the record is filed under.  Values that could not be
    a real account id / region (placeholders such as 'redacted') fall back to
    the next candidate, then to the defaults."""
    identity = record.get("userIdentity")
    candidates = [record.get("recipientAccountId"),
                  identity.get("accountId") if isinstance(identity, dict) else None]
    account = next((a for a in candidates if isinstance(a, str) and ACCOUNT_RE.fullmatch(a)),
                   DEFAULT_ACCOUNT)
    region = record.get("awsRegion")
    if not (isinstance(region, str) and REGION_RE.fullmatch(region)):
        region = DEFAULT_REGION
    return account, region


# --------------------------------------------------------------------------
# Writing the tree
# --------------------------------------------------------------------------

@dataclass
class Stats:
    objects: int = 0
    records: int = 0
    raw_bytes: int = 0
    gz_bytes: int = 0


@dataclass
class Writer:
    """Writes log objects and remembers them for the per-group digests."""
    out: Path
    day: dt.date
    rng: random.Random
    stats: Stats = field(default_factory=Stats)
    written: dict = field(default_factory=dict)  # (account, region) -> [log file entry]

    def stamp(self, minute: int) -> str:
        return f"{self.day:%Y%m%d}T{minute // 60:02d}{minute % 60:02d}Z"

    def iso(self, second: int) -> str:
        return f"{self.day:%Y-%m-%d}T{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}Z"

    def day_dir(self, account: str, kind: str, region: str) -> Path:
        return self.out / "AWSLogs" / account / kind / region / f"{self.day:%Y}" / f"{self.day:%m}" / f"{self.day:%d}"

    def write_log(self, account: str, region: str, minute: int, records: list[bytes]) -> None:
        """records: already-serialised JSON records."""
        body = b'{"Records":[' + b",".join(records) + b"]}"
        packed = gz(body)
        suffix = "".join(self.rng.choices(ALNUM, k=16))
        name = f"{account}_CloudTrail_{region}_{self.stamp(minute)}_{suffix}.json.gz"
        directory = self.day_dir(account, "CloudTrail", region)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / name).write_bytes(packed)

        self.stats.objects += 1
        self.stats.records += len(records)
        self.stats.raw_bytes += len(body)
        self.stats.gz_bytes += len(packed)
        # Digest entries carry the SHA-256 of the uncompressed log, as CloudTrail's do.
        self.written.setdefault((account, region), []).append({
            "s3Bucket": BUCKET,
            "s3Object": (directory / name).relative_to(self.out).as_posix(),
            "hashValue": hashlib.sha256(body).hexdigest(),
            "hashAlgorithm": "SHA-256",
            "newestEventTime": self.iso(minute * 60),
        })

    def write_digests(self) -> None:
        """One digest per (account, region), covering the whole day.  It is a
        digest-shaped object, not a Records envelope, and is not signed."""
        for (account, region), log_files in sorted(self.written.items()):
            end = MINUTES_PER_DAY * 60 - 1
            name = (f"{account}_CloudTrail-Digest_{region}_{TRAIL_NAME}_{region}_"
                    f"{self.day:%Y%m%d}T{end // 3600:02d}{end // 60 % 60:02d}{end % 60:02d}Z.json.gz")
            directory = self.day_dir(account, "CloudTrail-Digest", region)
            digest = {
                "awsAccountId": account,
                "digestStartTime": self.iso(0),
                "digestEndTime": self.iso(end),
                "digestS3Bucket": BUCKET,
                "digestS3Object": (directory / name).relative_to(self.out).as_posix(),
                "digestPublicKeyFingerprint": "0" * 32,
                "digestSignatureAlgorithm": "SHA256withRSA",
                "newestEventTime": max(f["newestEventTime"] for f in log_files),
                "oldestEventTime": min(f["newestEventTime"] for f in log_files),
                "previousDigestS3Bucket": None,
                "previousDigestS3Object": None,
                "previousDigestHashValue": None,
                "previousDigestHashAlgorithm": None,
                "previousDigestSignature": None,
                "logFiles": log_files,
            }
            directory.mkdir(parents=True, exist_ok=True)
            (directory / name).write_bytes(gz(dumps(digest)))


def write_normal(records: list[dict], writer: Writer, per_object: int) -> None:
    """Each record once, unchanged.  Each group's objects are spread over the
    day: object k of n lands at a seeded minute inside slot k of n."""
    groups: dict[tuple[str, str], list[bytes]] = {}
    for record in records:
        groups.setdefault(group_key(record), []).append(dumps(record))
    for (account, region), items in sorted(groups.items()):
        chunks = [items[i:i + per_object] for i in range(0, len(items), per_object)]
        n = len(chunks)
        for k, chunk in enumerate(chunks):
            start, end = k * MINUTES_PER_DAY // n, (k + 1) * MINUTES_PER_DAY // n
            minute = start + writer.rng.randrange(max(1, end - start))
            writer.write_log(account, region, minute, chunk)


# Placeholders put into a record before it is serialised once; each copy then
# only splices fresh values into the pre-serialised pieces.
_HOLES = {"eventID": "@@TW-EVENTID@@", "requestID": "@@TW-REQUESTID@@", "eventTime": "@@TW-EVENTTIME@@"}
_HOLE_RE = re.compile('"(' + "|".join(re.escape(h) for h in _HOLES.values()) + ')"')


def make_template(record: dict) -> list:
    """Serialise a record once with placeholders for eventID, requestID (only
    when it has a string one) and eventTime (added when missing).  Returns the
    literal byte pieces interleaved with field names: [b, name, b, name, b]."""
    copy = dict(record)
    copy["eventID"] = _HOLES["eventID"]
    copy["eventTime"] = _HOLES["eventTime"]
    if isinstance(record.get("requestID"), str):
        copy["requestID"] = _HOLES["requestID"]
    parts = _HOLE_RE.split(_encoder.encode(copy))
    holes = sum(v in _HOLES.values() for v in copy.values())
    if len(parts) != 2 * holes + 1:  # a placeholder string occurs in the data itself
        raise ValueError(f"record {record.get('eventID')!r} contains a placeholder string")
    by_hole = {h: name for name, h in _HOLES.items()}
    return [p.encode("utf-8") if i % 2 == 0 else by_hole[p] for i, p in enumerate(parts)]


def uuid_like(digest: bytes) -> bytes:
    """16 bytes -> b'"xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx"' (a version-4 shape)."""
    h = digest.hex()
    variant = "89ab"[digest[8] & 3]
    return f'"{h[:8]}-{h[8:12]}-4{h[13:16]}-{variant}{h[17:20]}-{h[20:32]}"'.encode()


def write_scaled(records: list[dict], writer: Writer, per_object: int, target: int, seed: int) -> None:
    """Cycle through the records (copy 0, 1, 2, ...) until `target`
    decompressed bytes are written.  Copies are buffered per (account, region)
    and a group's object is written when its buffer is full; partial buffers
    left when the target is reached are dropped.  An object's time advances
    with the share of the target written so far, and its records' eventTimes
    lie in the five minutes before it."""
    templates = [make_template(r) for r in records]
    keys = [group_key(r) for r in records]
    buffers: dict[tuple[str, str], list[tuple[int, int]]] = {}
    seed_bytes = str(seed).encode()

    def render(index: int, copy: int, second: int) -> bytes:
        ids = hashlib.blake2b(b"%d:%d" % (copy, index), digest_size=32, key=seed_bytes).digest()
        values = {"eventID": uuid_like(ids[:16]), "requestID": uuid_like(ids[16:]),
                  "eventTime": b'"' + writer.iso(second).encode() + b'"'}
        template = templates[index]
        return b"".join(values[p] if isinstance(p, str) else p for p in template)

    copy = 0
    while True:
        for index, key in enumerate(keys):
            buffer = buffers.setdefault(key, [])
            buffer.append((index, copy))
            if len(buffer) < per_object:
                continue
            minute = min(MINUTES_PER_DAY - 1, writer.stats.raw_bytes * MINUTES_PER_DAY // target)
            end = minute * 60
            n = len(buffer)
            # record i of n: ascending times ending at the object's minute, clipped at midnight
            chunk = [render(i, c, max(0, end - (n - 1 - j) * 300 // n)) for j, (i, c) in enumerate(buffer)]
            buffer.clear()
            writer.write_log(key[0], key[1], minute, chunk)
            if writer.stats.raw_bytes >= target:
                return
        copy += 1


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def check_not_tracked(out: Path) -> None:
    """Refuse an --out inside this repository unless git ignores it, so that
    the records are never committed by accident."""
    try:
        out.relative_to(REPO)
    except ValueError:
        return  # outside the repository
    try:
        ignored = subprocess.run(["git", "-C", str(REPO), "check-ignore", "-q", str(out)],
                                 capture_output=True).returncode == 0
    except FileNotFoundError:
        ignored = False
    if not ignored:
        sys.exit(f"sample_tree: {out} is inside the repository but not git-ignored; "
                 "the records must not be committed (use e.g. target/...)")


def prepare_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        sys.exit(f"sample_tree: {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            sys.exit(f"sample_tree: {out} is not empty (use --force to replace its AWSLogs/)")
        awslogs = out / "AWSLogs"
        if awslogs.is_symlink() or awslogs.is_file():
            awslogs.unlink()
        elif awslogs.is_dir():
            shutil.rmtree(awslogs)  # only the folder this script writes
    out.mkdir(parents=True, exist_ok=True)


def main(argv=None) -> int:
    args = parse_args(argv)
    if not args.datasets.is_dir():
        sys.exit(f"sample_tree: datasets folder {args.datasets} not found (use --datasets)")
    out = args.out.resolve()
    check_not_tracked(out)

    started = time.monotonic()
    records = load_records(args)
    if not records:
        sys.exit("sample_tree: no records selected")
    prepare_out(out, args.force)

    writer = Writer(out=out, day=args.date, rng=random.Random(args.seed))
    if args.target_bytes:
        write_scaled(records, writer, args.records_per_object, args.target_bytes, args.seed)
    else:
        write_normal(records, writer, args.records_per_object)
    writer.write_digests()

    s = writer.stats
    print(f"sample_tree: {s.objects} objects, {s.records} records, "
          f"{s.raw_bytes} bytes decompressed, {s.gz_bytes} bytes compressed, "
          f"{len(writer.written)} digests, {time.monotonic() - started:.1f}s -> {out}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
