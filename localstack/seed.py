#!/usr/bin/env python3
"""Seed the emulators started by localstack/up.sh with a small, realistic CloudTrail world.

Run it with the moto virtual environment's interpreter (it has the pinned boto3):

    localstack/seed.sh [--datasets DIR] [--manifest FILE] [--seed N]
    # = localstack/.venv-moto/bin/python localstack/seed.py ...

What it builds (every run first resets what it owns: its buckets are emptied and
deleted, its trails deleted, then everything is created again):

* accounts 111111111111 (home; the one the trails belong to) and 222222222222
  (member of organisation o-exampleorg1); home region us-east-1;
* ``main-trail``: multi-region, logging, bucket ``tw-main-logs`` in **eu-west-1**,
  no prefix; objects for 111111111111 in us-east-1, eu-west-1 and ap-southeast-2;
* ``org-trail``: organisation trail, logging, S3KeyPrefix ``org``, bucket
  ``tw-org-logs`` (us-east-1); objects under ``org/AWSLogs/o-exampleorg1/<account>/``
  for both accounts in us-east-1 and eu-west-1;
* ``old-trail``: single-region, **not logging** (StopLogging after creation), bucket
  ``tw-old-logs`` (us-east-1) whose objects must never be crawled (they hold copies,
  with their own eventIDs, of trail-tampering detonations, so crawling them shows);
* in every bucket hourly digest files under ``.../CloudTrail-Digest/...`` (never to
  be parsed as records) and in ``tw-main-logs`` one CloudTrail Insights file under
  ``.../CloudTrail-Insight/...`` (a Records envelope, but not to be read either).

Log objects are gzipped ``{"Records":[...]}`` envelopes made of the public
Stratus Red Team detonations (one detonation per object, never split), TrailDiscover
samples (``traildiscover/events/<Service>/*.json.cloudtrail``; the ``*.json`` beside
them are metadata) and generated benign filler. Every record's
``recipientAccountId`` and ``awsRegion`` are rewritten to the account and region of
the key it is filed under, and its ``eventTime`` is moved to the minutes before the
object's delivery time (a detonation moves as a block, so its internal timing is
kept). eventIDs stay those of the datasets (a repeated one gets a derived UUID), so an
alert id can be traced back; every eventID in the world is unique.

Keys are CloudTrail's: ``[prefix/]AWSLogs/[o-org/]<account>/CloudTrail/<region>/
YYYY/MM/DD/<account>_CloudTrail_<region>_<YYYYMMDDTHHMMZ>_<16 alnum>.json.gz``, all
under today's UTC date, delivery times spread over the hours of today that have
passed (never in the future). Objects are stored with ``Content-Type:
application/json`` and ``Content-Encoding: gzip``, as CloudTrail stores them.

Trails live in moto (CloudTrail API); moto's CreateTrail insists that the bucket
exists in moto's own S3, so each trail bucket is also created there, empty. The
objects live in LocalStack's S3.

The manifest (``--manifest``, default localstack/run/manifest.json) tells tests what
to expect: trails, buckets with their region, every object key with its account,
region, delivery time, record count and eventIDs, the digest and insight keys, and
where each Stratus detonation went.

Endpoints: ``--s3-endpoint`` (default $AWS_ENDPOINT_URL or http://127.0.0.1:4566)
and ``--cloudtrail-endpoint`` (default $AWS_ENDPOINT_URL_CLOUDTRAIL or
http://127.0.0.1:5000). Credentials are the dummy ones of localstack/env.sh.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import hashlib
import io
import json
import os
import random
import string
import sys
import uuid
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def default_datasets() -> Path:
    """$TRAILWATCH_DATASETS, else ../shared/datasets beside the checkout."""
    if os.environ.get("TRAILWATCH_DATASETS"):
        return Path(os.environ["TRAILWATCH_DATASETS"])
    return REPO.parent / "shared" / "datasets"


DEFAULT_DATASETS = default_datasets()
DEFAULT_MANIFEST = HERE / "run" / "manifest.json"

HOME_ACCOUNT = "111111111111"
MEMBER_ACCOUNT = "222222222222"
HOME_REGION = "us-east-1"
ORG_ID = "o-exampleorg1"

# name, bucket, bucket region, prefix, logging, multi-region, organisation, slots
TRAILS = [
    {
        "name": "main-trail",
        "bucket": "tw-main-logs",
        "bucket_region": "eu-west-1",
        "prefix": None,
        "logging": True,
        "multi_region": True,
        "organization": False,
        "slots": [(HOME_ACCOUNT, r) for r in ("us-east-1", "eu-west-1", "ap-southeast-2")],
    },
    {
        "name": "org-trail",
        "bucket": "tw-org-logs",
        "bucket_region": "us-east-1",
        "prefix": "org",
        "logging": True,
        "multi_region": True,
        "organization": True,
        "slots": [(a, r) for a in (HOME_ACCOUNT, MEMBER_ACCOUNT) for r in ("us-east-1", "eu-west-1")],
    },
    {
        "name": "old-trail",
        "bucket": "tw-old-logs",
        "bucket_region": "us-east-1",
        "prefix": None,
        "logging": False,
        "multi_region": False,
        "organization": False,
        "slots": [(HOME_ACCOUNT, "us-east-1")],
    },
]

# Detonations whose copies fill the inactive trail's bucket: if trailwatch ever reads
# it, the built-in trail-tampering rules fire on eventIDs the manifest lists.
OLD_TRAIL_TECHNIQUES = (
    "aws.defense-evasion.cloudtrail-stop",
    "aws.defense-evasion.cloudtrail-delete",
    "aws.defense-evasion.cloudtrail-event-selectors",
)

TRAILDISCOVER_PER_OBJECT = 12
FILLER_ONLY_OBJECTS_PER_SLOT = 2
ALNUM = string.ascii_letters + string.digits
GZIP_LEVEL = 6
_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def dumps(obj) -> bytes:
    return _encoder.encode(obj).encode("utf-8")


def gz(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=GZIP_LEVEL, mtime=0) as f:
        f.write(data)
    return buf.getvalue()


def iso(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00"))


# ---- inputs ---------------------------------------------------------------------------

def load_stratus(datasets: Path) -> dict[str, list[dict]]:
    folder = datasets / "stratus-detonations"
    out = {}
    for f in sorted(folder.glob("*.json")):
        recs = json.loads(f.read_text())
        if not isinstance(recs, list):
            raise SystemExit(f"seed: {f}: expected a JSON array of records")
        out[f.name[: -len(".json")]] = recs
    if not out:
        raise SystemExit(f"seed: no Stratus detonations in {folder}")
    return out


def load_traildiscover(datasets: Path) -> list[tuple[str, dict]]:
    folder = datasets / "traildiscover" / "events"
    out = []
    for f in sorted(folder.glob("*/*.json.cloudtrail")):
        data = json.loads(f.read_text())
        if isinstance(data, dict) and "Records" in data:
            data = data["Records"]
        recs = data if isinstance(data, list) else [data]
        for r in recs:
            if isinstance(r, dict) and r.get("eventName"):
                out.append((f"{f.parent.name}/{f.name}", r))
    if not out:
        raise SystemExit(f"seed: no TrailDiscover records in {folder}")
    return out


# ---- benign filler --------------------------------------------------------------------

FILLER_TEMPLATES = [
    ("ec2.amazonaws.com", "DescribeInstances", {"instancesSet": {}, "filterSet": {}}),
    ("ec2.amazonaws.com", "DescribeVolumes", {"volumeSet": {}, "filterSet": {}}),
    ("ec2.amazonaws.com", "DescribeSecurityGroups", {"securityGroupSet": {}, "filterSet": {}}),
    ("monitoring.amazonaws.com", "DescribeAlarms", {"maxRecords": 100}),
    ("logs.amazonaws.com", "DescribeLogGroups", {"limit": 50}),
    ("kms.amazonaws.com", "Decrypt", {"encryptionAlgorithm": "SYMMETRIC_DEFAULT"}),
    ("kms.amazonaws.com", "GenerateDataKey", {"keySpec": "AES_256"}),
    ("s3.amazonaws.com", "GetBucketAcl", {"acl": "", "bucketName": "app-assets"}),
    ("ssm.amazonaws.com", "DescribeInstanceInformation", {"maxResults": 50}),
    ("rds.amazonaws.com", "DescribeDBInstances", None),
    ("lambda.amazonaws.com", "ListFunctions20150331", {"maxItems": 50}),
    ("sts.amazonaws.com", "AssumeRole", {"roleSessionName": "ops-automation", "durationSeconds": 3600}),
]

FILLER_AGENTS = [
    "aws-sdk-go-v2/1.30.3 os/linux lang/go#1.22.5 md/GOOS#linux md/GOARCH#amd64 api/ec2#1.171.0",
    "Boto3/1.35.10 md/Botocore#1.35.10 ua/2.0 os/linux#6.1.0 md/arch#x86_64 lang/python#3.12.4",
    "config.amazonaws.com",
    "aws-internal/3 aws-sdk-java/1.12.720 Linux/5.10 OpenJDK_64-Bit_Server_VM/25.412-b09",
]


def filler_record(rng: random.Random, account: str, region: str, when: dt.datetime) -> dict:
    source, name, params = rng.choice(FILLER_TEMPLATES)
    agent = rng.choice(FILLER_AGENTS)
    if agent == "config.amazonaws.com":
        identity = {
            "type": "AssumedRole",
            "principalId": "AROAEXAMPLECONFIG0001:AWSConfig-Describe",
            "arn": f"arn:aws:sts::{account}:assumed-role/AWSServiceRoleForConfig/AWSConfig-Describe",
            "accountId": account,
            "accessKeyId": "ASIAEXAMPLECONFIG001",
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": "AROAEXAMPLECONFIG0001",
                    "arn": f"arn:aws:iam::{account}:role/aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig",
                    "accountId": account,
                    "userName": "AWSServiceRoleForConfig",
                },
                "attributes": {"creationDate": iso(when - dt.timedelta(minutes=20)), "mfaAuthenticated": "false"},
            },
            "invokedBy": "config.amazonaws.com",
        }
        source_ip = "config.amazonaws.com"
    else:
        identity = {
            "type": "AssumedRole",
            "principalId": "AROAEXAMPLEOPSAUTO001:ops-automation",
            "arn": f"arn:aws:sts::{account}:assumed-role/ops-automation/ops-automation",
            "accountId": account,
            "accessKeyId": "ASIAEXAMPLEOPSAUTO01",
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": "AROAEXAMPLEOPSAUTO001",
                    "arn": f"arn:aws:iam::{account}:role/ops-automation",
                    "accountId": account,
                    "userName": "ops-automation",
                },
                "attributes": {"creationDate": iso(when - dt.timedelta(minutes=45)), "mfaAuthenticated": "false"},
            },
        }
        source_ip = f"198.51.100.{rng.randint(10, 60)}"
    rec = {
        "eventVersion": "1.09",
        "userIdentity": identity,
        "eventTime": iso(when),
        "eventSource": source,
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": source_ip,
        "userAgent": agent,
        "requestParameters": params,
        "responseElements": None,
        "requestID": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "eventID": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "readOnly": True,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account,
        "eventCategory": "Management",
        "tlsDetails": {
            "tlsVersion": "TLSv1.3",
            "cipherSuite": "TLS_AES_128_GCM_SHA256",
            "clientProvidedHostHeader": f"{source.split('.')[0]}.{region}.amazonaws.com",
        },
    }
    if name in ("Decrypt", "GenerateDataKey"):
        rec["resources"] = [
            {
                "accountId": account,
                "type": "AWS::KMS::Key",
                "ARN": f"arn:aws:kms:{region}:{account}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            }
        ]
    return rec


# ---- the world ------------------------------------------------------------------------

class World:
    def __init__(self, rng: random.Random, now: dt.datetime):
        self.rng = rng
        self.now = now
        self.seen_ids: set[str] = set()
        # bucket -> list of object dicts (key, body, ... manifest fields)
        self.objects: dict[str, list[dict]] = defaultdict(list)
        self.digests: dict[str, list[dict]] = defaultdict(list)
        self.insights: dict[str, list[dict]] = defaultdict(list)
        self.stratus_index: dict[str, dict] = {}

    def unique_id(self, event_id: str | None, salt: str) -> str:
        eid = event_id or str(uuid.uuid5(uuid.NAMESPACE_URL, f"tw-seed:{salt}"))
        n = 0
        while eid in self.seen_ids:
            n += 1
            eid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"tw-seed:{event_id}:{salt}:{n}"))
        self.seen_ids.add(eid)
        return eid

    def suffix(self) -> str:
        return "".join(self.rng.choice(ALNUM) for _ in range(16))


def account_root(trail: dict, account: str) -> str:
    parts = []
    if trail["prefix"]:
        parts.append(trail["prefix"])
    parts.append("AWSLogs")
    if trail["organization"]:
        parts.append(ORG_ID)
    parts.append(account)
    return "/".join(parts)


def log_key(trail: dict, account: str, region: str, t: dt.datetime, suffix: str, kind: str = "CloudTrail") -> str:
    day = t.strftime("%Y/%m/%d")
    stamp = t.strftime("%Y%m%dT%H%MZ")
    return (
        f"{account_root(trail, account)}/{kind}/{region}/{day}/"
        f"{account}_{kind}_{region}_{stamp}_{suffix}.json.gz"
    )


def digest_key(trail: dict, account: str, region: str, t: dt.datetime) -> str:
    day = t.strftime("%Y/%m/%d")
    stamp = t.strftime("%Y%m%dT%H%M%SZ")
    return (
        f"{account_root(trail, account)}/CloudTrail-Digest/{region}/{day}/"
        f"{account}_CloudTrail-Digest_{region}_{trail['name']}_{HOME_REGION}_{stamp}.json.gz"
    )


def delivery_times(rng: random.Random, now: dt.datetime, n: int) -> list[dt.datetime]:
    """n delivery times (minute resolution) spread over today's past, oldest first."""
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    latest = now.replace(second=0, microsecond=0) - dt.timedelta(minutes=1)
    if latest < midnight:
        latest = midnight
    span = int((latest - midnight).total_seconds() // 60)
    minutes = sorted(rng.randint(0, span) for _ in range(n))
    out = []
    for m in minutes:
        t = midnight + dt.timedelta(minutes=m, seconds=rng.randint(0, 59))
        out.append(min(t, now))
    return out


def place_records(world: World, records: list[dict], account: str, region: str,
                  delivery: dt.datetime, block: bool) -> None:
    """Rewrite account/region and move eventTime into the minutes before delivery."""
    rng = world.rng
    if block and records:
        times = [parse_time(r["eventTime"]) for r in records if r.get("eventTime")]
        newest = max(times) if times else delivery
        target = delivery - dt.timedelta(seconds=rng.randint(60, 300))
        shift = target - newest
        for r in records:
            r["eventTime"] = iso(parse_time(r["eventTime"]) + shift) if r.get("eventTime") else iso(target)
    else:
        for r in records:
            r["eventTime"] = iso(delivery - dt.timedelta(seconds=rng.randint(30, 300)))
    for r in records:
        r["recipientAccountId"] = account
        r["awsRegion"] = region


def add_object(world: World, trail: dict, account: str, region: str, delivery: dt.datetime,
               records: list[dict], sources: dict) -> dict:
    if sources.pop("shuffle", False):
        world.rng.shuffle(records)
    for r in records:
        r["eventID"] = world.unique_id(r.get("eventID"), f"{trail['name']}/{account}/{region}/{len(world.seen_ids)}")
    body = dumps({"Records": records})
    key = log_key(trail, account, region, delivery, world.suffix())
    times = sorted(r["eventTime"] for r in records)
    obj = {
        "key": key,
        "account": account,
        "region": region,
        "delivery_time": iso(delivery),
        "records": len(records),
        "event_ids": [r["eventID"] for r in records],
        "sources": sources,
        "oldest_event_time": times[0] if times else None,
        "newest_event_time": times[-1] if times else None,
        "decompressed_bytes": len(body),
        "sha256": hashlib.sha256(body).hexdigest(),
        "_body": gz(body),
    }
    obj["bytes"] = len(obj["_body"])
    world.objects[trail["bucket"]].append(obj)
    return obj


def build(world: World, stratus: dict[str, list[dict]], traildiscover: list[tuple[str, dict]]) -> None:
    rng = world.rng
    crawled = [t for t in TRAILS if t["logging"]]
    slots = [(t, a, r) for t in crawled for (a, r) in t["slots"]]

    # Work items per slot: ("stratus", technique) | ("td", [records]) | ("filler", None)
    work: dict[int, list[tuple]] = defaultdict(list)
    for i, technique in enumerate(sorted(stratus)):
        work[i % len(slots)].append(("stratus", technique))
    chunks = [traildiscover[i:i + TRAILDISCOVER_PER_OBJECT]
              for i in range(0, len(traildiscover), TRAILDISCOVER_PER_OBJECT)]
    for i, chunk in enumerate(chunks):
        work[(i + 3) % len(slots)].append(("td", chunk))
    for s in range(len(slots)):
        for _ in range(FILLER_ONLY_OBJECTS_PER_SLOT):
            work[s].append(("filler", None))

    for s, (trail, account, region) in enumerate(slots):
        items = work[s]
        rng.shuffle(items)
        times = delivery_times(rng, world.now, len(items))
        for (kind, payload), delivery in zip(items, times):
            filler = [filler_record(rng, account, region, delivery) for _ in range(rng.randint(2, 8))]
            place_records(world, filler, account, region, delivery, block=False)
            if kind == "stratus":
                recs = json.loads(json.dumps(stratus[payload]))
                place_records(world, recs, account, region, delivery, block=True)
                obj = add_object(world, trail, account, region, delivery, recs + filler,
                                 {"stratus": [payload], "traildiscover": [], "filler": len(filler)})
                world.stratus_index[payload] = {
                    "bucket": trail["bucket"],
                    "key": obj["key"],
                    "account": account,
                    "region": region,
                    "event_ids": obj["event_ids"][: len(recs)],
                }
            elif kind == "td":
                recs = [json.loads(json.dumps(r)) for _, r in payload]
                place_records(world, recs, account, region, delivery, block=False)
                add_object(world, trail, account, region, delivery, recs + filler,
                           {"stratus": [], "traildiscover": [f for f, _ in payload],
                            "filler": len(filler), "shuffle": True})
            else:
                more = [filler_record(rng, account, region, delivery) for _ in range(rng.randint(10, 30))]
                place_records(world, more, account, region, delivery, block=False)
                add_object(world, trail, account, region, delivery, filler + more,
                           {"stratus": [], "traildiscover": [], "filler": len(filler) + len(more)})

    # The inactive trail: copies of trail-tampering detonations (fresh eventIDs).
    old = next(t for t in TRAILS if not t["logging"])
    for account, region in old["slots"]:
        techniques = [t for t in OLD_TRAIL_TECHNIQUES if t in stratus]
        times = delivery_times(rng, world.now, len(techniques) + 1)
        for technique, delivery in zip(techniques + [None], times):
            filler = [filler_record(rng, account, region, delivery) for _ in range(rng.randint(2, 6))]
            place_records(world, filler, account, region, delivery, block=False)
            recs = []
            if technique:
                recs = json.loads(json.dumps(stratus[technique]))
                for r in recs:
                    r["eventID"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"tw-seed:old-trail:{r.get('eventID')}"))
                place_records(world, recs, account, region, delivery, block=True)
            add_object(world, old, account, region, delivery, recs + filler,
                       {"stratus": [technique] if technique else [], "traildiscover": [],
                        "filler": len(filler), "copy_of_detonation": bool(technique)})

    # Hourly digests for every (account, region) of every trail, over the log files
    # delivered in the hour before each digest.
    for trail in TRAILS:
        bucket = trail["bucket"]
        for account, region in trail["slots"]:
            mine = [o for o in world.objects[bucket] if o["account"] == account and o["region"] == region]
            hours = sorted({parse_time(o["delivery_time"]).replace(minute=0, second=0) for o in mine})
            previous = None
            for h in hours:
                t = h + dt.timedelta(minutes=59, seconds=rng.randint(0, 59))
                if t > world.now:
                    t = world.now
                files = [o for o in mine if parse_time(o["delivery_time"]).replace(minute=0, second=0) == h]
                key = digest_key(trail, account, region, t)
                digest = {
                    "awsAccountId": account,
                    "digestStartTime": iso(h),
                    "digestEndTime": iso(h + dt.timedelta(hours=1)),
                    "digestS3Bucket": bucket,
                    "digestS3Object": key,
                    "digestPublicKeyFingerprint": hashlib.md5(b"tw-seed-key").hexdigest(),
                    "digestSignatureAlgorithm": "SHA256withRSA",
                    "newestEventTime": max((o["newest_event_time"] for o in files), default=None),
                    "oldestEventTime": min((o["oldest_event_time"] for o in files), default=None),
                    "previousDigestS3Bucket": bucket if previous else None,
                    "previousDigestS3Object": previous["key"] if previous else None,
                    "previousDigestHashValue": previous["sha256"] if previous else None,
                    "previousDigestHashAlgorithm": "SHA-256" if previous else None,
                    "previousDigestSignature": previous["sha256"][:64] if previous else None,
                    "logFiles": [
                        {
                            "s3Bucket": bucket,
                            "s3Object": o["key"],
                            "hashValue": o["sha256"],
                            "hashAlgorithm": "SHA-256",
                            "newestEventTime": o["newest_event_time"],
                            "oldestEventTime": o["oldest_event_time"],
                        }
                        for o in files
                    ],
                }
                body = dumps(digest)
                entry = {"key": key, "account": account, "region": region,
                         "sha256": hashlib.sha256(body).hexdigest(), "_body": gz(body)}
                world.digests[bucket].append(entry)
                previous = entry

    # One CloudTrail Insights file in the main bucket: a Records envelope that is not
    # CloudTrail's event log and must be skipped like the digests.
    main = TRAILS[0]
    account, region = main["slots"][0]
    t = delivery_times(rng, world.now, 1)[0]
    insight = {
        "eventVersion": "1.08",
        "eventTime": iso(t - dt.timedelta(minutes=10)),
        "awsRegion": region,
        "eventID": world.unique_id(None, "insight"),
        "eventType": "AwsCloudTrailInsight",
        "recipientAccountId": account,
        "sharedEventID": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "insightDetails": {
            "state": "Start",
            "eventSource": "ec2.amazonaws.com",
            "eventName": "RunInstances",
            "insightType": "ApiCallRateInsight",
            "insightContext": {"statistics": {"baseline": {"average": 0.01}, "insight": {"average": 5.0}}},
        },
        "eventCategory": "Insight",
    }
    body = dumps({"Records": [insight]})
    world.insights[main["bucket"]].append(
        {"key": log_key(main, account, region, t, world.suffix(), kind="CloudTrail-Insight"),
         "account": account, "region": region, "event_ids": [insight["eventID"]], "_body": gz(body)})


# ---- emulators ------------------------------------------------------------------------

def clients(s3_endpoint: str, ct_endpoint: str):
    import boto3
    from botocore.config import Config

    cfg = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3, "mode": "standard"})
    session = boto3.session.Session(
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
    )

    def s3(endpoint: str, region: str):
        return session.client("s3", region_name=region, endpoint_url=endpoint, config=cfg)

    def cloudtrail(region: str):
        return session.client("cloudtrail", region_name=region, endpoint_url=ct_endpoint, config=cfg)

    return s3, cloudtrail


def reset_bucket(s3, bucket: str, region: str) -> None:
    """Empty and delete BUCKET if it exists, then create it in REGION."""
    from botocore.exceptions import ClientError

    try:
        s3.head_bucket(Bucket=bucket)
        exists = True
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
            raise
        exists = False
    if exists:
        paginator = s3.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=bucket):
            items = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                     for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
            for i in range(0, len(items), 1000):
                s3.delete_objects(Bucket=bucket, Delete={"Objects": items[i:i + 1000], "Quiet": True})
        s3.delete_bucket(Bucket=bucket)
    kwargs = {"Bucket": bucket}
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**kwargs)


def seed(args) -> dict:
    now = dt.datetime.now(dt.timezone.utc) if not args.now else parse_time(args.now)
    rng = random.Random(f"{args.seed}:{now.date().isoformat()}")
    world = World(rng, now)
    build(world, load_stratus(args.datasets), load_traildiscover(args.datasets))

    s3_for, cloudtrail_for = clients(args.s3_endpoint, args.cloudtrail_endpoint)
    ct = cloudtrail_for(HOME_REGION)

    # Trails first go away, so that nothing refers to a bucket being re-created.
    existing = {t["Name"] for t in ct.describe_trails(includeShadowTrails=False)["trailList"]}
    for trail in TRAILS:
        if trail["name"] in existing:
            ct.delete_trail(Name=trail["name"])

    for trail in TRAILS:
        bucket, region = trail["bucket"], trail["bucket_region"]
        ls = s3_for(args.s3_endpoint, region)
        reset_bucket(ls, bucket, region)
        for obj in world.objects[bucket]:
            ls.put_object(Bucket=bucket, Key=obj["key"], Body=obj["_body"],
                          ContentType="application/json", ContentEncoding="gzip")
        for obj in world.digests[bucket] + world.insights[bucket]:
            ls.put_object(Bucket=bucket, Key=obj["key"], Body=obj["_body"],
                          ContentType="application/json", ContentEncoding="gzip")
        # moto's CreateTrail looks the bucket up in moto's own S3: create it there, empty.
        reset_bucket(s3_for(args.cloudtrail_endpoint, region), bucket, region)

    arns = {}
    for trail in TRAILS:
        kwargs = {
            "Name": trail["name"],
            "S3BucketName": trail["bucket"],
            "IsMultiRegionTrail": trail["multi_region"],
            "IncludeGlobalServiceEvents": True,
            "EnableLogFileValidation": True,
            "IsOrganizationTrail": trail["organization"],
        }
        if trail["prefix"]:
            kwargs["S3KeyPrefix"] = trail["prefix"]
        arns[trail["name"]] = ct.create_trail(**kwargs)["TrailARN"]
        # CloudTrail's CreateTrail does not start logging; the console does it for you.
        ct.start_logging(Name=trail["name"])
        if not trail["logging"]:
            ct.stop_logging(Name=trail["name"])

    status = {t["name"]: ct.get_trail_status(Name=t["name"])["IsLogging"] for t in TRAILS}
    for trail in TRAILS:
        if status[trail["name"]] != trail["logging"]:
            raise SystemExit(f"seed: {trail['name']}: GetTrailStatus says IsLogging={status[trail['name']]}")

    def public(o: dict) -> dict:
        return {k: v for k, v in o.items() if not k.startswith("_")}

    buckets = {}
    for trail in TRAILS:
        b = trail["bucket"]
        objs = [public(o) for o in world.objects[b]]
        buckets[b] = {
            "region": trail["bucket_region"],
            "trails": [trail["name"]],
            "crawl": trail["logging"],
            "prefix": trail["prefix"],
            "objects": sorted(objs, key=lambda o: o["key"]),
            "object_count": len(objs),
            "record_count": sum(o["records"] for o in objs),
            "digests": sorted(d["key"] for d in world.digests[b]),
            "insights": sorted(i["key"] for i in world.insights[b]),
        }
    expected = [o for b in buckets.values() if b["crawl"] for o in b["objects"]]
    manifest = {
        "generated_at": iso(now),
        "date": now.strftime("%Y-%m-%d"),
        "endpoints": {"s3": args.manifest_s3_endpoint or args.s3_endpoint,
                      "cloudtrail": args.manifest_cloudtrail_endpoint or args.cloudtrail_endpoint},
        "datasets": str(args.datasets),
        "home_account": HOME_ACCOUNT,
        "accounts": [HOME_ACCOUNT, MEMBER_ACCOUNT],
        "home_region": HOME_REGION,
        "org_id": ORG_ID,
        "object_content_type": "application/json",
        "object_content_encoding": "gzip",
        "trails": [
            {
                "name": t["name"],
                "arn": arns[t["name"]],
                "home_region": HOME_REGION,
                "bucket": t["bucket"],
                "bucket_region": t["bucket_region"],
                "prefix": t["prefix"],
                "logging": t["logging"],
                "multi_region": t["multi_region"],
                "organization": t["organization"],
                "org_id": ORG_ID if t["organization"] else None,
                "accounts": sorted({a for a, _ in t["slots"]}),
                "regions": sorted({r for _, r in t["slots"]}),
            }
            for t in TRAILS
        ],
        "buckets": buckets,
        "stratus": dict(sorted(world.stratus_index.items())),
        "totals": {
            "crawled_objects": len(expected),
            "crawled_records": sum(o["records"] for o in expected),
            "not_crawled_objects": sum(b["object_count"] for b in buckets.values() if not b["crawl"]),
            "digests": sum(len(b["digests"]) for b in buckets.values()),
            "insights": sum(len(b["insights"]) for b in buckets.values()),
        },
    }
    return manifest


def verify(args) -> int:
    """Read the world back (LocalStack and moto) and compare it with the manifest."""
    import re

    manifest = json.loads(args.manifest.read_text())
    s3_for, cloudtrail_for = clients(args.s3_endpoint, args.cloudtrail_endpoint)
    problems = []
    pattern = re.compile(
        r"^(?:(?P<prefix>.+)/)?AWSLogs/(?:(?P<org>o-[a-z0-9]+)/)?(?P<acct>\d{12})/CloudTrail/(?P<region>[a-z0-9-]+)/"
        r"(?P<y>\d{4})/(?P<mo>\d\d)/(?P<d>\d\d)/(?P=acct)_CloudTrail_(?P=region)_(?P<ts>\d{8}T\d{4}Z)_[A-Za-z0-9]{16}\.json\.gz$")
    now = dt.datetime.now(dt.timezone.utc)
    ids = set()
    for bucket, info in manifest["buckets"].items():
        s3 = s3_for(args.s3_endpoint, info["region"])
        keys = set()
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            keys.update(o["Key"] for o in page.get("Contents", []))
        want = {o["key"] for o in info["objects"]} | set(info["digests"]) | set(info["insights"])
        if keys != want:
            problems.append(f"{bucket}: {len(keys ^ want)} keys differ from the manifest")
        region = s3.head_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPHeaders"].get("x-amz-bucket-region")
        if region != info["region"]:
            problems.append(f"{bucket}: HeadBucket says region {region}, manifest {info['region']}")
        for o in info["objects"]:
            m = pattern.match(o["key"])
            if not m:
                problems.append(f"{bucket}/{o['key']}: not a CloudTrail key")
                continue
            stamp = dt.datetime.strptime(m["ts"], "%Y%m%dT%H%MZ").replace(tzinfo=dt.timezone.utc)
            if stamp > now:
                problems.append(f"{bucket}/{o['key']}: delivery time in the future")
            if o["key"] not in keys:
                problems.append(f"{bucket}/{o['key']}: missing")
                continue
            body = s3.get_object(Bucket=bucket, Key=o["key"])["Body"].read()
            recs = json.loads(gzip.decompress(body))["Records"]
            if [r["eventID"] for r in recs] != o["event_ids"]:
                problems.append(f"{bucket}/{o['key']}: eventIDs differ from the manifest")
            for r in recs:
                if r["recipientAccountId"] != m["acct"] or r["awsRegion"] != m["region"]:
                    problems.append(f"{bucket}/{o['key']}: record {r['eventID']} not rewritten to its key")
                if r["eventID"] in ids:
                    problems.append(f"eventID {r['eventID']} appears twice")
                ids.add(r["eventID"])
    ct = cloudtrail_for(manifest["home_region"])
    trails = {t["Name"]: t for t in ct.describe_trails(includeShadowTrails=False)["trailList"]}
    for t in manifest["trails"]:
        got = trails.get(t["name"])
        if not got:
            problems.append(f"trail {t['name']} missing in moto")
            continue
        if got["S3BucketName"] != t["bucket"] or got.get("S3KeyPrefix") != t["prefix"]:
            problems.append(f"trail {t['name']}: bucket/prefix differ")
        logging = ct.get_trail_status(Name=t["name"])["IsLogging"]
        if logging != t["logging"]:
            problems.append(f"trail {t['name']}: IsLogging {logging}, manifest {t['logging']}")
    for p in problems:
        print(f"seed --verify: {p}", file=sys.stderr)
    n = sum(b["object_count"] for b in manifest["buckets"].values())
    print(f"seed --verify: {n} objects, {len(ids)} records, {len(manifest['trails'])} trails checked; "
          f"{len(problems)} problem(s)", file=sys.stderr)
    return 1 if problems else 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", type=Path, default=DEFAULT_DATASETS,
                   help="the shared datasets folder (default: $TRAILWATCH_DATASETS, else ../shared/datasets)")
    p.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST,
                   help="where to write the manifest JSON (default: localstack/run/manifest.json)")
    p.add_argument("--s3-endpoint", default=os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:4566"))
    p.add_argument("--cloudtrail-endpoint",
                   default=os.environ.get("AWS_ENDPOINT_URL_CLOUDTRAIL", "http://127.0.0.1:5000"))
    p.add_argument("--manifest-s3-endpoint", help="S3 endpoint to write in the manifest (default: --s3-endpoint)")
    p.add_argument("--manifest-cloudtrail-endpoint",
                   help="CloudTrail endpoint to write in the manifest (default: --cloudtrail-endpoint)")
    p.add_argument("--seed", default="trailwatch", help="random seed (with the date: same day, same world)")
    p.add_argument("--now", help="RFC 3339 time to build the world for (default: now); tests only")
    p.add_argument("--verify", action="store_true",
                   help="do not seed: read the world back and compare it with --manifest (exit 1 on a difference)")
    args = p.parse_args(argv)
    if args.verify:
        return verify(args)
    if not args.datasets.is_dir():
        raise SystemExit(f"seed: datasets folder not found: {args.datasets} (use --datasets)")

    manifest = seed(args)
    args.manifest.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.manifest.with_suffix(args.manifest.suffix + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1) + "\n")
    tmp.replace(args.manifest)
    t = manifest["totals"]
    per_bucket = ", ".join(
        f"{b} ({v['region']}): {v['object_count']} objects/{v['record_count']} records/{len(v['digests'])} digests"
        for b, v in manifest["buckets"].items()
    )
    print(
        f"seed: {manifest['date']}: {per_bucket}; to crawl: {t['crawled_objects']} objects, "
        f"{t['crawled_records']} records; manifest {args.manifest}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
