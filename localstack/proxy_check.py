#!/usr/bin/env python3
"""Check tests/support/fault_proxy.py against the running LocalStack with boto3.

Needs the emulators up and seeded (localstack/up.sh, localstack/seed.sh); run with the
moto venv's interpreter, which has the pinned boto3:

    localstack/.venv-moto/bin/python localstack/proxy_check.py [--manifest F]

Starts the proxy in front of LocalStack on a free port, then, with SigV4-signed,
path-style boto3 clients: lists and reads objects through it (bytes checked against
the manifest), and makes every fault appear as configured (301 for the wrong signing
region on GetObject and HeadBucket, 403 AccessDenied, the KMS denial, 503 SlowDown
first then success, latency), and checks the recorded signing regions. Ends with
'N passed, N failed'; exit 1 on any failure.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

HERE = Path(__file__).resolve().parent
PROXY = HERE.parent / "tests" / "support" / "fault_proxy.py"

results: list[tuple[str, bool]] = []


def check(name: str, cond, detail="") -> None:
    results.append((name, bool(cond)))
    print(f"{'ok  ' if cond else 'FAIL'} {name}{'' if cond else ': ' + str(detail)}", file=sys.stderr)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--manifest", type=Path, default=HERE / "run" / "manifest.json")
    p.add_argument("--upstream", default=os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:4566"))
    args = p.parse_args()
    manifest = json.loads(args.manifest.read_text())
    main_b, org_b, old_b = "tw-main-logs", "tw-org-logs", "tw-old-logs"
    main_obj = manifest["buckets"][main_b]["objects"][0]
    org_obj = manifest["buckets"][org_b]["objects"][0]

    tmp = tempfile.mkdtemp(prefix="fault-proxy-")
    port_file = os.path.join(tmp, "port")
    proc = subprocess.Popen([sys.executable, str(PROXY), "--listen", "127.0.0.1:0",
                             "--upstream", args.upstream, "--port-file", port_file])
    try:
        deadline = time.time() + 10
        while not os.path.exists(port_file):
            if time.time() > deadline or proc.poll() is not None:
                raise SystemExit("proxy did not start")
            time.sleep(0.05)
        port = int(open(port_file).read())
        base = f"http://127.0.0.1:{port}"

        def control(path, obj=None):
            data = json.dumps(obj).encode() if obj is not None else None
            req = urllib.request.Request(base + path, data=data, method="POST" if data is not None else "GET",
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=10) as r:
                return json.load(r)

        def s3(region, attempts=1):
            return boto3.client(
                "s3", region_name=region, endpoint_url=base,
                aws_access_key_id="test", aws_secret_access_key="test",
                config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                              retries={"max_attempts": attempts, "mode": "standard"}))

        eu, us = s3("eu-west-1"), s3("us-east-1")

        # pass-through
        names = [b["Name"] for b in us.list_buckets()["Buckets"]]
        check("ListBuckets through the proxy", {main_b, org_b, old_b} <= set(names), names)
        listed = us.list_objects_v2(Bucket=org_b, Prefix="org/AWSLogs/o-exampleorg1/", Delimiter="/")
        accounts = sorted(cp["Prefix"] for cp in listed.get("CommonPrefixes", []))
        check("ListObjectsV2 with delimiter finds both accounts",
              accounts == [f"org/AWSLogs/o-exampleorg1/{a}/" for a in manifest["accounts"]], accounts)
        body = eu.get_object(Bucket=main_b, Key=main_obj["key"])["Body"].read()
        recs = json.loads(gzip.decompress(body))["Records"]
        check("GetObject streams the seeded object intact",
              hashlib.sha256(gzip.decompress(body)).hexdigest() == main_obj["sha256"] and len(recs) == main_obj["records"])

        # 301 for the wrong signing region
        control("/__proxy/reset", {})
        control("/__proxy/config", {"buckets": {main_b: {"region": "eu-west-1"}, org_b: {"region": "us-east-1"},
                                                old_b: {"region": "us-east-1"}}})
        # boto3 follows S3's 301 itself (re-signs for the region in x-amz-bucket-region
        # and caches it per bucket), so look at what the proxy saw.
        hb = us.head_bucket(Bucket=main_b)["ResponseMetadata"]
        seen = [(r["region"], r["status"], r["bucket_region_header"])
                for r in control(f"/__proxy/requests?bucket={main_b}")["requests"] if r["operation"] == "HeadBucket"]
        check("HeadBucket signed for us-east-1 on an eu-west-1 bucket: 301, then boto3 retries in eu-west-1",
              seen[:2] == [("us-east-1", 301, None), ("eu-west-1", 200, "eu-west-1")]
              and hb["HTTPHeaders"].get("x-amz-bucket-region") == "eu-west-1", seen)
        fresh = s3("us-east-1")
        fresh.get_object(Bucket=main_b, Key=main_obj["key"])["Body"].read()
        seen = [(r["region"], r["status"], r["fault"]) for r in control(f"/__proxy/requests?bucket={main_b}")["requests"]
                if r["operation"] == "GetObject"]
        check("GetObject signed for the wrong region: 301 PermanentRedirect, then followed",
              seen == [("us-east-1", 301, "permanent_redirect"), ("eu-west-1", 200, None)], seen)
        # The raw answers, signed by hand so that nothing follows the redirect.
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        def raw(method, path, region):
            req = AWSRequest(method=method, url=base + path, headers={"x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
            SigV4Auth(Credentials("test", "test"), "s3", region).add_auth(req)
            r = urllib.request.Request(req.url, method=method, headers=dict(req.headers))
            try:
                with urllib.request.urlopen(r, timeout=10) as resp:
                    return resp.status, dict(resp.headers), resp.read()
            except urllib.error.HTTPError as e:
                return e.code, dict(e.headers), e.read()

        from urllib.parse import quote
        st, hdrs, body = raw("GET", f"/{main_b}/{quote(main_obj['key'])}", "us-east-1")
        check("raw 301: x-amz-bucket-region and S3's PermanentRedirect XML",
              st == 301 and hdrs.get("x-amz-bucket-region") == "eu-west-1" and b"<Code>PermanentRedirect</Code>" in body
              and f"<Endpoint>{main_b}.s3.eu-west-1.amazonaws.com</Endpoint>".encode() in body
              and f"<Bucket>{main_b}</Bucket>".encode() in body, (st, hdrs, body))
        print(f"     ({body.decode()})", file=sys.stderr)
        st, hdrs, body = raw("HEAD", f"/{main_b}", "us-east-1")
        check("raw HeadBucket in the wrong region: 301, x-amz-bucket-region, no body",
              st == 301 and hdrs.get("x-amz-bucket-region") == "eu-west-1" and body == b"", (st, hdrs, body))
        loc = us.get_bucket_location(Bucket=main_b)["LocationConstraint"]
        check("GetBucketLocation answers from any region", loc == "eu-west-1", loc)

        # 403 AccessDenied for a whole bucket
        control("/__proxy/config", {"buckets": {old_b: {"access_denied": True, "region": "us-east-1"}}})
        try:
            us.list_objects_v2(Bucket=old_b)
            check("ListObjectsV2 on a denied bucket: AccessDenied", False, "no error")
        except ClientError as e:
            check("ListObjectsV2 on a denied bucket: AccessDenied",
                  e.response["Error"]["Code"] == "AccessDenied" and e.response["ResponseMetadata"]["HTTPStatusCode"] == 403, e.response)
        try:
            us.head_bucket(Bucket=old_b)
            check("HeadBucket on a denied bucket: 403 with region", False, "no error")
        except ClientError as e:
            md = e.response["ResponseMetadata"]
            check("HeadBucket on a denied bucket: 403 with region",
                  md["HTTPStatusCode"] == 403 and md["HTTPHeaders"].get("x-amz-bucket-region") == "us-east-1", md)

        # KMS denial on GetObject
        key_arn = "arn:aws:kms:us-east-1:111111111111:key/0f1e2d3c-aaaa-bbbb-cccc-1234567890ab"
        control("/__proxy/config", {"buckets": {org_b: {"kms_denied": {"keys": ["org/AWSLogs/o-exampleorg1/222222222222/*"],
                                                                       "key_arn": key_arn}}}})
        member_obj = next(o for o in manifest["buckets"][org_b]["objects"] if o["account"] == "222222222222")
        home_obj = next(o for o in manifest["buckets"][org_b]["objects"] if o["account"] == "111111111111")
        try:
            us.get_object(Bucket=org_b, Key=member_obj["key"])
            check("GetObject without kms:Decrypt: AccessDenied naming the key", False, "no error")
        except ClientError as e:
            err = e.response["Error"]
            check("GetObject without kms:Decrypt: AccessDenied naming the key",
                  err["Code"] == "AccessDenied" and "kms:Decrypt" in err["Message"] and key_arn in err["Message"], err)
            print(f"     ({err['Message']})", file=sys.stderr)
        h = us.head_object(Bucket=org_b, Key=member_obj["key"])
        check("HeadObject on it still works", h["ResponseMetadata"]["HTTPStatusCode"] == 200)
        check("other keys still readable", len(us.get_object(Bucket=org_b, Key=home_obj["key"])["Body"].read()) == home_obj["bytes"])

        # 503 SlowDown for the first N requests
        control("/__proxy/config", {"buckets": {org_b: {"slow_down": 2}}})
        try:
            us.get_object(Bucket=org_b, Key=org_obj["key"])
            check("SlowDown without retries surfaces", False, "no error")
        except ClientError as e:
            check("SlowDown without retries surfaces", e.response["Error"]["Code"] == "SlowDown"
                  and e.response["ResponseMetadata"]["HTTPStatusCode"] == 503, e.response)
        retrying = s3("us-east-1", attempts=3)
        data = retrying.get_object(Bucket=org_b, Key=org_obj["key"])["Body"].read()
        statuses = [r["status"] for r in control(f"/__proxy/requests?bucket={org_b}")["requests"]
                    if r["operation"] == "GetObject" and r["key"] == org_obj["key"]]
        check("then passes: boto3's retries see 503, 503, 200", statuses[-3:] == [503, 503, 200] and len(data) == org_obj["bytes"], statuses)

        # latency
        control("/__proxy/config", {"latency_ms": 300})
        t0 = time.monotonic()
        us.head_object(Bucket=org_b, Key=org_obj["key"])
        check("latency added", time.monotonic() - t0 >= 0.3)
        control("/__proxy/config", {})

        # presigned URL: region from X-Amz-Credential
        url = eu.generate_presigned_url("get_object", Params={"Bucket": main_b, "Key": main_obj["key"]}, ExpiresIn=60)
        with urllib.request.urlopen(url, timeout=10) as r:
            ok = r.status == 200 and len(r.read()) == main_obj["bytes"]
        last = control("/__proxy/requests")["requests"][-1]
        check("presigned GetObject works; region read from X-Amz-Credential",
              ok and last["region"] == "eu-west-1" and last["signature"] == "v4-presigned", last)

        recs = control("/__proxy/requests")["requests"]
        check("every request recorded with its signing region",
              all(r["region"] in ("us-east-1", "eu-west-1") for r in recs), {r["region"] for r in recs})
    finally:
        proc.terminate()
        proc.wait(10)
    passed = sum(1 for _, ok in results if ok)
    print(f"{passed} passed, {len(results) - passed} failed")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
