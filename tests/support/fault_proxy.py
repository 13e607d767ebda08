#!/usr/bin/env python3
"""Fault-injecting HTTP reverse proxy for S3 on loopback (standard library only).

LocalStack does not enforce IAM, bucket policies or regions, so failures that real
S3 produces (403 AccessDenied, KMS denials, 503 SlowDown, 301 PermanentRedirect for
a request signed for the wrong region) come from this proxy, put in front of it.
It also records every request: method, path, bucket, key, the S3 operation, the
region the request was signed for (SigV4 ``Authorization`` Credential scope
``AKID/DATE/REGION/SERVICE/aws4_request``, or a presigned URL's ``X-Amz-Credential``)
and the status returned.

    fault_proxy.py --listen 127.0.0.1:0 --upstream http://127.0.0.1:4566 --port-file F
    fault_proxy.py --self-test          # checks that need no LocalStack

Proxying: threaded, HTTP/1.1 with keep-alive on both sides (one upstream connection
per client connection), bodies streamed in 64 KiB pieces in both directions and
never held whole: a response with Content-Length keeps it, a chunked one stays
chunked, a request's chunked framing (chunk extensions and trailers included) is
forwarded as it came. ``Expect: 100-continue`` is answered by the proxy. Path-style
addressing (``/bucket/key``) is what the tests use; virtual-host style
(``bucket.localhost:PORT``, ``bucket.s3.localhost.localstack.cloud:PORT``) is also
understood and forwarded to the upstream in path style.

Control API, on the same port (never recorded, never faulted):

    GET  /__proxy/health     {"ok": true}
    GET  /__proxy/config     the fault configuration in force
    POST /__proxy/config     replace it with the JSON body (see below)
    GET  /__proxy/requests   {"requests": [...]} recorded so far, oldest first;
                             ?bucket=B narrows, ?since=N skips the first N
    POST /__proxy/reset      forget requests, counters and configuration
                             (body {"config": false} keeps the configuration)

Configuration (every field optional)::

    {
      "latency_ms": 0,                     # added to every request
      "buckets": {
        "tw-main-logs": {
          "region": "eu-west-1",           # the bucket's region (see below)
          "wrong_region": "redirect",      # or "authorization_header_malformed" or "ignore"
          "access_denied": false,          # true: 403 AccessDenied for every request
          "access_denied_message": "Access Denied",
          "slow_down": 0,                  # first N requests: 503 SlowDown, then pass
          "internal_error": 0,             # next N requests: 500 InternalError, then pass
          "kms_denied": ["AWSLogs/*"],     # GetObject on keys matching a glob (or true =
                                           # every key): 403 as for SSE-KMS without
                                           # kms:Decrypt; or an object:
                                           # {"keys": [...], "key_arn": ..., "caller_arn": ...}
          "latency_ms": 0                  # added to this bucket's requests
        }
      },
      "caller_arn": "arn:aws:sts::111111111111:assumed-role/trailwatch/trailwatch",
      "kms_key_arn": "arn:aws:kms:us-east-1:111111111111:key/...",
      "chaos": {                           # random faults on every request (any bucket,
        "seed": 1,                         # and the JSON APIs such as CloudTrail's)
        "rate": 0.05,                      # the share of requests that get one
        "kinds": ["slow_down", "internal_error", "reset", "truncate"]
      }
    }

Chaos kinds: ``slow_down`` (S3: 503 SlowDown; a JSON API, one with ``X-Amz-Target``:
400 ThrottlingException), ``internal_error`` (500 InternalError / InternalFailure),
``reset`` (the connection closed without an answer) and ``truncate`` (GetObject only:
the answer's headers and half its body, then the connection closed). A chaos fault is
decided first, before any bucket's own faults.

Order of checks for a request to a configured bucket: latency; slow_down /
internal_error counters; region (a request signed for another region than
``region`` gets 301 PermanentRedirect with ``x-amz-bucket-region`` and S3's XML with
Endpoint and Bucket; HEAD requests get the status and header with no body, as S3
answers HeadBucket; GetBucketLocation, which S3 answers from any region, is exempt);
access_denied (HEAD: 403 with ``x-amz-bucket-region`` when the region is known, no
body); kms_denied (GetObject only; HeadObject needs no kms:Decrypt). A HeadBucket
that passes gets ``x-amz-bucket-region: <region>`` added when the upstream did not
send one.
"""

from __future__ import annotations

import argparse
import base64
import fnmatch
import hashlib
import http.client
import io
import json
import os
import random
import re
import select
import signal
import socket
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, unquote, urlsplit
from xml.sax.saxutils import escape

PIECE = 64 * 1024
CHAOS_KINDS = ("slow_down", "internal_error", "reset", "truncate")
MAX_RECORDS = 200_000
DEFAULT_CALLER = "arn:aws:sts::111111111111:assumed-role/trailwatch/trailwatch"
DEFAULT_KMS_KEY = "arn:aws:kms:{region}:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"
HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
    "trailer", "trailers", "transfer-encoding", "upgrade", "expect", "proxy-connection",
}
CREDENTIAL_RE = re.compile(r"Credential=([^/,\s]+)/(\d{8})/([^/,\s]+)/([^/,\s]+)/aws4_request")
V4A_CREDENTIAL_RE = re.compile(r"Credential=([^/,\s]+)/(\d{8})/([^/,\s]+)/aws4_request")
VHOST_SUFFIXES = (".s3.localhost.localstack.cloud", ".localhost.localstack.cloud", ".s3.localhost", ".localhost")


# ---- parsing ----------------------------------------------------------------------------

def signing_info(headers, query: dict) -> dict:
    """Access key, date, region and service a request was signed with (SigV4, SigV4a)."""
    auth = headers.get("Authorization", "") or ""
    out = {"access_key": None, "region": None, "service": None, "signature": None}
    m = CREDENTIAL_RE.search(auth)
    if auth.startswith("AWS4-HMAC-SHA256") and m:
        out.update(access_key=m.group(1), region=m.group(3), service=m.group(4), signature="v4")
        return out
    if auth.startswith("AWS4-ECDSA-P256-SHA256"):
        m = V4A_CREDENTIAL_RE.search(auth)
        out.update(signature="v4a", region=headers.get("X-Amz-Region-Set"))
        if m:
            out.update(access_key=m.group(1), service=m.group(3))
        return out
    if auth.startswith("AWS "):
        out.update(signature="v2", access_key=auth[4:].split(":")[0])
        return out
    cred = (query.get("X-Amz-Credential") or [None])[0]
    if cred:
        parts = cred.split("/")
        if len(parts) == 5:
            out.update(access_key=parts[0], region=parts[2], service=parts[3], signature="v4-presigned")
        elif len(parts) == 4:
            out.update(access_key=parts[0], service=parts[2], signature="v4a-presigned",
                       region=(query.get("X-Amz-Region-Set") or [None])[0])
    elif "AWSAccessKeyId" in query:
        out.update(signature="v2-presigned", access_key=query["AWSAccessKeyId"][0])
    return out


def split_target(host_header: str | None, target: str) -> tuple[str | None, str | None, str, str, str]:
    """(bucket, key, raw path for upstream, raw query, addressing) of a request target."""
    parts = urlsplit(target)
    raw_path, raw_query = parts.path or "/", parts.query
    host = (host_header or "").rsplit(":", 1)[0].lower() if host_header and not host_header.startswith("[") else ""
    for suffix in VHOST_SUFFIXES:
        if host.endswith(suffix) and len(host) > len(suffix):
            bucket = host[: -len(suffix)]
            if bucket in ("s3",):
                break
            key = unquote(raw_path[1:]) or None
            return bucket, key, "/" + quote(bucket) + raw_path, raw_query, "virtual"
    segs = raw_path.split("/", 2)
    bucket = unquote(segs[1]) if len(segs) > 1 and segs[1] else None
    if bucket and (bucket.startswith("_") or bucket.startswith(".")):
        bucket = None  # /_localstack/..., /_aws/...: not a bucket
    key = unquote(segs[2]) if bucket and len(segs) > 2 and segs[2] else None
    return bucket, key, raw_path, raw_query, "path"


def operation(method: str, bucket: str | None, key: str | None, query: dict) -> str:
    q = set(query)
    if bucket is None:
        return "ListBuckets" if method == "GET" else method
    if key is None:
        if method == "HEAD":
            return "HeadBucket"
        if method == "GET":
            for sub, name in (("location", "GetBucketLocation"), ("versions", "ListObjectVersions"),
                              ("uploads", "ListMultipartUploads"), ("policy", "GetBucketPolicy"),
                              ("encryption", "GetBucketEncryption"), ("notification", "GetBucketNotificationConfiguration"),
                              ("versioning", "GetBucketVersioning"), ("acl", "GetBucketAcl"), ("tagging", "GetBucketTagging")):
                if sub in q:
                    return name
            return "ListObjectsV2" if query.get("list-type") == ["2"] else "ListObjects"
        if method == "PUT":
            return "CreateBucket" if not q else "PutBucket" + "".join(s.capitalize() for s in sorted(q))
        if method == "DELETE":
            return "DeleteBucket" if not q else "DeleteBucket" + "".join(s.capitalize() for s in sorted(q))
        if method == "POST" and "delete" in q:
            return "DeleteObjects"
        return f"{method} bucket"
    if method == "GET":
        if "tagging" in q:
            return "GetObjectTagging"
        if "acl" in q:
            return "GetObjectAcl"
        if "attributes" in q:
            return "GetObjectAttributes"
        if "uploadId" in q:
            return "ListParts"
        return "GetObject"
    if method == "HEAD":
        return "HeadObject"
    if method == "PUT":
        return "UploadPart" if "uploadId" in q else "PutObject"
    if method == "DELETE":
        return "AbortMultipartUpload" if "uploadId" in q else "DeleteObject"
    if method == "POST":
        if "uploads" in q:
            return "CreateMultipartUpload"
        if "uploadId" in q:
            return "CompleteMultipartUpload"
    return f"{method} object"


def s3_error_body(code: str, message: str, extra: list[tuple[str, str]] = (), request_id: str = "") -> bytes:
    host_id = base64.b64encode(hashlib.sha256(request_id.encode()).digest()).decode()
    fields = [("Code", code), ("Message", message), *extra, ("RequestId", request_id), ("HostId", host_id)]
    inner = "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in fields)
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<Error>{inner}</Error>'.encode()


class ClientGone(Exception):
    """The client closed its connection in the middle of a request body."""


# ---- state ------------------------------------------------------------------------------

class State:
    def __init__(self, config: dict | None = None):
        self.lock = threading.Lock()
        self.config: dict = {}
        self.counters: dict[str, int] = {}
        self.records: list[dict] = []
        self.dropped = 0
        self.set_config(config or {})

    @staticmethod
    def validate(config: dict) -> dict:
        if not isinstance(config, dict):
            raise ValueError("config must be a JSON object")
        known = {"latency_ms", "buckets", "caller_arn", "kms_key_arn", "chaos"}
        unknown = set(config) - known
        if unknown:
            raise ValueError(f"unknown config field(s): {sorted(unknown)}")
        chaos = config.get("chaos")
        if chaos is not None:
            if not isinstance(chaos, dict) or set(chaos) - {"seed", "rate", "kinds"}:
                raise ValueError("chaos must be an object of seed, rate and kinds")
            rate = chaos.get("rate", 0)
            if not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
                raise ValueError("chaos.rate must be a number from 0 to 1")
            kinds = chaos.get("kinds", list(CHAOS_KINDS))
            if not kinds or set(kinds) - set(CHAOS_KINDS):
                raise ValueError(f"chaos.kinds: some of {list(CHAOS_KINDS)}")
        buckets = config.get("buckets", {})
        if not isinstance(buckets, dict):
            raise ValueError("buckets must be an object of bucket name -> faults")
        bknown = {"region", "wrong_region", "access_denied", "access_denied_message", "slow_down",
                  "internal_error", "kms_denied", "latency_ms"}
        for name, b in buckets.items():
            if not isinstance(b, dict):
                raise ValueError(f"buckets.{name} must be an object")
            unknown = set(b) - bknown
            if unknown:
                raise ValueError(f"buckets.{name}: unknown field(s): {sorted(unknown)}")
            if b.get("wrong_region", "redirect") not in ("redirect", "authorization_header_malformed", "ignore"):
                raise ValueError(f"buckets.{name}.wrong_region: redirect | authorization_header_malformed | ignore")
            for f in ("slow_down", "internal_error", "latency_ms"):
                if not isinstance(b.get(f, 0), (int, float)) or b.get(f, 0) < 0:
                    raise ValueError(f"buckets.{name}.{f} must be a number >= 0")
        return config

    def set_config(self, config: dict) -> None:
        config = self.validate(config)
        with self.lock:
            self.config = json.loads(json.dumps(config))
            self.counters = {}
            self.rng = random.Random((config.get("chaos") or {}).get("seed", 0))

    def reset(self, keep_config: bool = False) -> None:
        with self.lock:
            self.records = []
            self.dropped = 0
            self.counters = {}
            if not keep_config:
                self.config = {}

    def record(self, rec: dict) -> None:
        with self.lock:
            rec["seq"] = len(self.records) + self.dropped
            self.records.append(rec)
            if len(self.records) > MAX_RECORDS:
                drop = len(self.records) - MAX_RECORDS
                del self.records[:drop]
                self.dropped += drop

    def chaos(self, op: str, json_api: bool):
        """A random fault for this request (``chaos`` in the configuration), or None."""
        with self.lock:
            ch = self.config.get("chaos")
            if not ch or self.rng.random() >= float(ch.get("rate", 0)):
                return None
            kinds = [k for k in ch.get("kinds", CHAOS_KINDS) if k != "truncate" or op == "GetObject"]
            if not kinds:
                return None
            kind = self.rng.choice(kinds)
        if kind in ("reset", "truncate"):
            return kind
        if kind == "slow_down":
            if json_api:
                return ("throttling", 400, "ThrottlingException", "Rate exceeded", [], [])
            return ("slow_down", 503, "SlowDown", "Please reduce your request rate.", [], [])
        if json_api:
            return ("internal_error", 500, "InternalFailure", "An internal error occurred.", [], [])
        return ("internal_error", 500, "InternalError",
                "We encountered an internal error. Please try again.", [], [])

    def decide(self, method: str, bucket: str | None, key: str | None, op: str, region: str | None):
        """The fault for this request, or None: (name, status, code, message, extra, headers)."""
        with self.lock:
            cfg = self.config
            latency = float(cfg.get("latency_ms", 0) or 0)
            b = (cfg.get("buckets") or {}).get(bucket) if bucket else None
            if b is None:
                return latency, None, None
            latency += float(b.get("latency_ms", 0) or 0)
            n = self.counters.get(bucket, 0) + 1
            self.counters[bucket] = n
            caller = cfg.get("caller_arn") or DEFAULT_CALLER
            kms_default = cfg.get("kms_key_arn")
        bucket_region = b.get("region")
        region_hdr = [("x-amz-bucket-region", bucket_region)] if bucket_region else []
        slow = int(b.get("slow_down", 0) or 0)
        internal = int(b.get("internal_error", 0) or 0)
        if n <= slow:
            return latency, ("slow_down", 503, "SlowDown", "Please reduce your request rate.", [], []), b
        if n <= slow + internal:
            return latency, ("internal_error", 500, "InternalError",
                             "We encountered an internal error. Please try again.", [], []), b
        mode = b.get("wrong_region", "redirect")
        if (bucket_region and region and region != bucket_region and mode != "ignore"
                and op != "GetBucketLocation"):
            if mode == "redirect":
                return latency, ("permanent_redirect", 301, "PermanentRedirect",
                                 "The bucket you are attempting to access must be addressed using the "
                                 "specified endpoint. Please send all future requests to this endpoint.",
                                 [("Endpoint", f"{bucket}.s3.{bucket_region}.amazonaws.com"), ("Bucket", bucket)],
                                 region_hdr), b
            return latency, ("authorization_header_malformed", 400, "AuthorizationHeaderMalformed",
                             f"The authorization header is malformed; the region '{region}' is wrong; "
                             f"expecting '{bucket_region}'",
                             [("Region", bucket_region)], region_hdr), b
        if b.get("access_denied"):
            return latency, ("access_denied", 403, "AccessDenied",
                             b.get("access_denied_message") or "Access Denied", [], region_hdr), b
        kms = b.get("kms_denied")
        if kms and op == "GetObject" and key is not None:
            if kms is True:
                patterns, key_arn, kcaller = ["*"], None, None
            elif isinstance(kms, dict):
                patterns = kms.get("keys", ["*"])
                patterns = [patterns] if isinstance(patterns, str) else patterns
                key_arn, kcaller = kms.get("key_arn"), kms.get("caller_arn")
            else:
                patterns = [kms] if isinstance(kms, str) else list(kms)
                key_arn, kcaller = None, None
            if any(fnmatch.fnmatchcase(key, p) or key.startswith(p) for p in patterns):
                key_arn = key_arn or kms_default or DEFAULT_KMS_KEY.format(region=bucket_region or "us-east-1")
                who = kcaller or caller
                return latency, ("kms_denied", 403, "AccessDenied",
                                 f"User: {who} is not authorized to perform: kms:Decrypt on resource: "
                                 f"{key_arn} because no identity-based policy allows the kms:Decrypt action",
                                 [], []), b
        return latency, None, b


# ---- proxy ------------------------------------------------------------------------------

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "AmazonS3"
    sys_version = ""

    # set on the server: state, upstream (scheme, host, port), verbose
    upstream_conn: http.client.HTTPConnection | None = None

    def log_message(self, fmt, *args):  # noqa: D401 - quiet unless -v
        if getattr(self.server, "verbose", False):
            sys.stderr.write("fault_proxy: " + (fmt % args) + "\n")

    def do_GET(self):
        self.dispatch()

    do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = do_OPTIONS = do_GET

    # -- body helpers --------------------------------------------------------------------

    def request_body(self):
        """Iterator over the request body as raw bytes to forward, and whether chunked."""
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            return self._chunked_raw(), True
        length = int(self.headers.get("Content-Length") or 0)
        return self._fixed(length), False

    def _fixed(self, length: int):
        left = length
        while left > 0:
            piece = self.rfile.read(min(PIECE, left))
            if not piece:
                raise ClientGone("client closed the connection inside the request body")
            left -= len(piece)
            yield piece

    def _chunked_raw(self):
        """Yield the chunked request body with its framing as received."""
        while True:
            line = self.rfile.readline(65537)
            if not line:
                raise ClientGone("client closed the connection inside a chunked body")
            yield line
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while True:  # trailers, up to the empty line
                    t = self.rfile.readline(65537)
                    if not t:
                        raise ClientGone("client closed the connection inside chunked trailers")
                    yield t
                    if t in (b"\r\n", b"\n"):
                        return
            left = size + 2  # data and its CRLF
            while left > 0:
                piece = self.rfile.read(min(PIECE, left))
                if not piece:
                    raise ClientGone("client closed the connection inside a chunk")
                left -= len(piece)
                yield piece

    def drain_body(self) -> bool:
        """Read and drop the request body (kept small); False when the connection must close."""
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        length = int(self.headers.get("Content-Length") or 0)
        if "chunked" not in te and length > 8 * 1024 * 1024:
            return False
        body, _ = self.request_body()
        for _ in body:
            pass
        return True

    # -- upstream ------------------------------------------------------------------------

    def upstream(self) -> http.client.HTTPConnection:
        conn = self.upstream_conn
        if conn is not None and conn.sock is not None:
            try:  # a pooled connection the upstream has closed reads as EOF
                r, _, _ = select.select([conn.sock], [], [], 0)
                if r:
                    conn.close()
            except (OSError, ValueError):
                conn.close()
        if conn is None:
            scheme, host, port = self.server.upstream
            cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
            conn = cls(host, port, timeout=self.server.upstream_timeout)
            self.upstream_conn = conn
        return conn

    def finish(self):
        try:
            super().finish()
        finally:
            if self.upstream_conn is not None:
                self.upstream_conn.close()

    # -- responses -----------------------------------------------------------------------

    def send_fault(self, fault, bucket, rec) -> None:
        name, status, code, message, extra, headers = fault
        request_id = uuid.uuid4().hex[:16].upper()
        keep = self.drain_body()
        json_api = bool(self.headers.get("X-Amz-Target"))
        if self.command == "HEAD":
            body = b""
        elif json_api:
            body = json.dumps({"__type": code, "message": message}).encode()
        else:
            body = s3_error_body(code, message, extra, request_id)
        self.send_response_only(status, http.client.responses.get(status, ""))
        self.send_header("x-amz-request-id", request_id)
        self.send_header("x-amz-id-2", base64.b64encode(hashlib.sha256(request_id.encode()).digest()).decode())
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Type", "application/x-amz-json-1.1" if json_api else "application/xml")
        self.send_header("Date", self.date_time_string())
        self.send_header("Server", "AmazonS3")
        if self.command != "HEAD":
            self.send_header("Content-Length", str(len(body)))
        else:
            self.send_header("Content-Length", "0")
        if not keep or self.close_connection:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if body:
            self.wfile.write(body)
        rec.update(status=status, fault=name, error_code=code, bytes=len(body))

    def control(self, parsed) -> None:
        st: State = self.server.state
        path = parsed.path
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        status, out = 200, None
        try:
            if path == "/__proxy/health" and self.command == "GET":
                out = {"ok": True, "upstream": "%s://%s:%d" % self.server.upstream}
            elif path == "/__proxy/config" and self.command == "GET":
                with st.lock:
                    out = st.config
            elif path == "/__proxy/config" and self.command in ("POST", "PUT"):
                st.set_config(json.loads(raw or b"{}"))
                with st.lock:
                    out = st.config
            elif path == "/__proxy/requests" and self.command == "GET":
                q = parse_qs(parsed.query)
                since = int((q.get("since") or ["0"])[0])
                bucket = (q.get("bucket") or [None])[0]
                with st.lock:
                    recs = [r for r in st.records if r["seq"] >= since and (bucket is None or r["bucket"] == bucket)]
                    out = {"requests": recs, "dropped": st.dropped}
            elif path == "/__proxy/reset" and self.command == "POST":
                opts = json.loads(raw or b"{}")
                st.reset(keep_config=opts.get("config") is False)
                out = {"ok": True}
            else:
                status, out = 404, {"error": f"no control endpoint {self.command} {path}"}
        except (ValueError, json.JSONDecodeError) as e:
            status, out = 400, {"error": str(e)}
        body = json.dumps(out).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def dispatch(self) -> None:
        parsed = urlsplit(self.path)
        if parsed.path.startswith("/__proxy/"):
            return self.control(parsed)
        st: State = self.server.state
        started = time.monotonic()
        bucket, key, up_path, raw_query, addressing = split_target(self.headers.get("Host"), self.path)
        query = parse_qs(raw_query, keep_blank_values=True)
        sig = signing_info(self.headers, query)
        op = operation(self.command, bucket, key, query)
        rec = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "method": self.command,
            "path": parsed.path,
            "query": raw_query,
            "bucket": bucket,
            "key": key,
            "operation": op,
            "addressing": addressing,
            "region": sig["region"],
            "service": sig["service"],
            "target": self.headers.get("X-Amz-Target"),
            "access_key": sig["access_key"],
            "signature": sig["signature"],
            "status": None,
            "fault": None,
            "error_code": None,
            "bytes": 0,
            "bucket_region_header": None,
        }
        try:
            latency, fault, bcfg = st.decide(self.command, bucket, key, op, sig["region"])
            chaos = st.chaos(op, bool(self.headers.get("X-Amz-Target")))
            if chaos is not None:
                fault = None if chaos == "truncate" else chaos
            if latency:
                time.sleep(latency / 1000.0)
            if chaos == "reset":
                rec.update(fault="reset")
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            elif fault:
                self.send_fault(fault, bucket, rec)
            else:
                self.forward(up_path, raw_query, addressing, bcfg, op, rec,
                             truncate=chaos == "truncate")
        except (ClientGone, ConnectionError, TimeoutError) as e:
            rec["error"] = f"{type(e).__name__}: {e}"
            self.close_connection = True
            if self.upstream_conn is not None:
                self.upstream_conn.close()
        finally:
            rec["duration_ms"] = round((time.monotonic() - started) * 1000, 1)
            st.record(rec)

    def forward(self, up_path, raw_query, addressing, bcfg, op, rec, truncate=False) -> None:
        scheme, host, port = self.server.upstream
        target = up_path + ("?" + raw_query if raw_query else "")
        body, chunked = self.request_body()
        conn = self.upstream()
        try:
            conn.putrequest(self.command, target, skip_host=True, skip_accept_encoding=True)
            for k, v in self.headers.items():
                lk = k.lower()
                if lk in HOP_BY_HOP or lk == "content-length" and chunked:
                    continue
                if lk == "host" and addressing == "virtual":
                    v = f"{host}:{port}"
                conn.putheader(k, v)
            if chunked:
                conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            for piece in body:
                conn.send(piece)
            resp = conn.getresponse()
        except (ConnectionRefusedError, http.client.HTTPException, OSError) as e:
            conn.close()
            msg = f"upstream {scheme}://{host}:{port} failed: {type(e).__name__}: {e}".encode()
            self.send_response(502)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(msg)))
            self.send_header("Connection", "close")
            self.close_connection = True
            self.end_headers()
            self.wfile.write(msg)
            rec.update(status=502, error=msg.decode())
            return

        no_body = self.command == "HEAD" or resp.status in (204, 304) or 100 <= resp.status < 200
        headers = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP]
        has_length = any(k.lower() == "content-length" for k, _ in headers)
        rechunk = not no_body and (resp.chunked or not has_length)
        if rechunk:
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        region_hdr = next((v for k, v in headers if k.lower() == "x-amz-bucket-region"), None)
        if op == "HeadBucket" and bcfg and bcfg.get("region") and not region_hdr:
            headers.append(("x-amz-bucket-region", bcfg["region"]))
            region_hdr = bcfg["region"]
        rec["bucket_region_header"] = region_hdr

        self.send_response_only(resp.status, resp.reason)
        rec["status"] = resp.status  # kept even when the client goes away mid-body
        for k, v in headers:
            self.send_header(k, v)
        if rechunk:
            self.send_header("Transfer-Encoding", "chunked")
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()

        sent = 0
        length = next((int(v) for k, v in headers if k.lower() == "content-length"), None)
        cut = (length // 2) if truncate and length and not rechunk else None
        if truncate and cut is None:
            rechunk_cut = True  # a chunked answer: cut after its first piece
        else:
            rechunk_cut = False
        if not no_body:
            while True:
                piece = resp.read1(PIECE) if hasattr(resp, "read1") else resp.read(PIECE)
                if not piece:
                    break
                if cut is not None and sent + len(piece) >= cut:
                    self.wfile.write(piece[: cut - sent])
                    sent = cut
                    rec.update(fault="truncate")
                    self.close_connection = True
                    conn.close()
                    rec.update(status=resp.status, bytes=sent)
                    return
                if rechunk_cut:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    rec.update(fault="truncate")
                    self.close_connection = True
                    conn.close()
                    rec.update(status=resp.status, bytes=len(piece))
                    return
                sent += len(piece)
                if rechunk:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                else:
                    self.wfile.write(piece)
            if rechunk:
                self.wfile.write(b"0\r\n\r\n")
        resp.close()
        if resp.will_close:
            conn.close()
        rec.update(status=resp.status, bytes=sent)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, listen, upstream_url: str, state: State, verbose=False, upstream_timeout=60.0):
        u = urlsplit(upstream_url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise SystemExit(f"fault_proxy: bad --upstream {upstream_url!r}")
        self.upstream = (u.scheme, u.hostname, u.port or (443 if u.scheme == "https" else 80))
        self.state = state
        self.verbose = verbose
        self.upstream_timeout = upstream_timeout
        super().__init__(listen, Handler)

    def handle_error(self, request, client_address):
        # A connection the proxy reset on purpose (chaos) or a client gone: no traceback.
        if isinstance(sys.exc_info()[1], (ConnectionError, OSError)):
            return
        super().handle_error(request, client_address)


def parse_listen(s: str) -> tuple[str, int]:
    host, _, port = s.rpartition(":")
    return (host.strip("[]") or "127.0.0.1", int(port))


def serve(args) -> int:
    cfg = json.loads(open(args.config).read()) if args.config else {}
    state = State(cfg)
    server = Server(parse_listen(args.listen), args.upstream, state, verbose=args.verbose)
    port = server.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.replace(tmp, args.port_file)
    print(f"fault_proxy: listening on {server.server_address[0]}:{port} -> {args.upstream}", file=sys.stderr, flush=True)

    def stop(*_):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


# ---- self-test (no LocalStack needed) ---------------------------------------------------

class FakeS3(BaseHTTPRequestHandler):
    """A tiny upstream: fixed-length and chunked objects, HeadBucket, PUT echo."""

    protocol_version = "HTTP/1.1"
    big = bytes(range(256)) * (4 * 4096)  # 4 MiB

    def log_message(self, *a):
        pass

    def _send(self, status, body=b"", headers=(), chunked=False):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            if self.command != "HEAD":
                for i in range(0, len(body), 1000):
                    part = body[i:i + 1000]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self.wfile.write(b"0\r\n\r\n")
            return
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        p = urlsplit(self.path)
        if p.path == "/b1/big":
            return self._send(200, self.big, [("Content-Type", "application/octet-stream")])
        if p.path == "/b1/chunked":
            return self._send(200, b"x" * 5500, chunked=True)
        if p.path.count("/") >= 2 and not p.path.endswith("/"):
            return self._send(200, b"object:" + p.path.encode())
        if p.path.strip("/") in ("b1", "b2"):
            return self._send(200, b"<ListBucketResult/>", [("Content-Type", "application/xml")])
        return self._send(404, b"<Error><Code>NoSuchBucket</Code></Error>")

    def do_HEAD(self):
        p = urlsplit(self.path)
        if p.path == "/b2":  # this upstream sends no x-amz-bucket-region for b2
            return self._send(200)
        if p.path == "/b1/big":
            return self._send(200, self.big)
        return self._send(200, headers=[("x-amz-bucket-region", "us-east-1")])

    def do_PUT(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            raw, data = b"", b""
            while True:
                line = self.rfile.readline()
                raw += line
                n = int(line.split(b";")[0], 16)
                if n == 0:
                    while True:
                        t = self.rfile.readline()
                        raw += t
                        if t in (b"\r\n", b"\n"):
                            break
                    break
                d = self.rfile.read(n + 2)
                raw += d
                data += d[:-2]
            return self._send(200, json.dumps({"len": len(data), "sha": hashlib.sha256(data).hexdigest(),
                                               "raw_has_ext": b";chunk-signature=" in raw,
                                               "trailer": b"x-amz-checksum" in raw}).encode())
        n = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(n)
        return self._send(200, json.dumps({"len": len(data), "sha": hashlib.sha256(data).hexdigest()}).encode())


def self_test() -> int:
    results = []

    def check(name, cond, detail=""):
        results.append((name, bool(cond)))
        print(f"{'ok  ' if cond else 'FAIL'} {name}{'' if cond else ': ' + str(detail)}", file=sys.stderr)

    up = ThreadingHTTPServer(("127.0.0.1", 0), FakeS3)
    up.daemon_threads = True
    up.handle_error = lambda *a: None  # the proxy cuts connections on purpose (chaos)
    threading.Thread(target=up.serve_forever, daemon=True).start()
    state = State()
    proxy = Server(("127.0.0.1", 0), f"http://127.0.0.1:{up.server_address[1]}", state)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    port = proxy.server_address[1]

    def auth(region, service="s3"):
        return (f"AWS4-HMAC-SHA256 Credential=AKIDTEST/20260101/{region}/{service}/aws4_request, "
                f"SignedHeaders=host;x-amz-date, Signature=00")

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def req(method, path, region="us-east-1", body=None, headers=None, c=None):
        c = c or conn
        h = {"Authorization": auth(region)} if region else {}
        h.update(headers or {})
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        return r, r.read()

    def control(method, path, obj=None):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request(method, path, body=json.dumps(obj).encode() if obj is not None else None,
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        out = json.loads(r.read())
        c.close()
        return r.status, out

    # pass-through, keep-alive, streaming
    r, b = req("GET", "/b1?list-type=2")
    check("list passes through", r.status == 200 and b == b"<ListBucketResult/>", (r.status, b))
    sock_before = conn.sock
    r, b = req("GET", "/b1/big")
    check("4 MiB fixed-length body intact", r.status == 200 and b == FakeS3.big and
          r.getheader("Content-Length") == str(len(FakeS3.big)), (r.status, len(b)))
    check("client connection kept alive", conn.sock is sock_before and conn.sock is not None)
    r, b = req("GET", "/b1/chunked")
    check("chunked body passes as chunked", r.status == 200 and b == b"x" * 5500 and
          (r.getheader("Transfer-Encoding") or "").lower() == "chunked", (r.status, r.getheaders()))
    r, b = req("HEAD", "/b1/big")
    check("HEAD keeps upstream Content-Length, no body",
          r.status == 200 and b == b"" and r.getheader("Content-Length") == str(len(FakeS3.big)))
    payload = os.urandom(300_000)
    r, b = req("PUT", "/b1/upload", body=payload, headers={"Expect": "100-continue"})
    got = json.loads(b)
    check("PUT body forwarded (Expect: 100-continue)", got == {"len": len(payload), "sha": hashlib.sha256(payload).hexdigest()}, got)
    raw = (b"10;chunk-signature=abc\r\n" + b"a" * 16 + b"\r\n" + b"0;chunk-signature=def\r\n"
           b"x-amz-checksum-crc32:AAAAAA==\r\n\r\n")
    c2 = socket.create_connection(("127.0.0.1", port))
    c2.sendall(b"PUT /b1/chunky HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
               b"Authorization: " + auth("us-east-1").encode() + b"\r\n\r\n" + raw)
    f = c2.makefile("rb")
    status_line = f.readline()
    hdrs = {}
    while True:
        line = f.readline()
        if line in (b"\r\n", b""):
            break
        k, v = line.decode().split(":", 1)
        hdrs[k.strip().lower()] = v.strip()
    got = json.loads(f.read(int(hdrs["content-length"])))
    c2.close()
    check("chunked request framing forwarded (extensions, trailers)",
          b" 200 " in status_line and got["len"] == 16 and got["raw_has_ext"] and got["trailer"], got)

    # faults
    control("POST", "/__proxy/config", {"buckets": {
        "b1": {"region": "eu-west-1"},
        "b2": {"region": "us-east-1", "slow_down": 2},
        "denied": {"access_denied": True, "region": "ap-southeast-2"},
        "kms": {"kms_denied": ["secret/*"], "region": "us-east-1"},
    }})
    r, b = req("GET", "/b1/some/key", region="us-east-1")
    check("301 PermanentRedirect when signed for the wrong region",
          r.status == 301 and r.getheader("x-amz-bucket-region") == "eu-west-1" and b"<Code>PermanentRedirect</Code>" in b
          and b"<Bucket>b1</Bucket>" in b and b"<Endpoint>b1.s3.eu-west-1.amazonaws.com</Endpoint>" in b, (r.status, b))
    r, b = req("HEAD", "/b1", region="us-east-1")
    check("HeadBucket in the wrong region: 301, header, no body",
          r.status == 301 and r.getheader("x-amz-bucket-region") == "eu-west-1" and b == b"", (r.status, b))
    r, b = req("GET", "/b1/some/key", region="eu-west-1")
    check("right region passes", r.status == 200 and b == b"object:/b1/some/key", (r.status, b))
    r, b = req("GET", "/b1?location", region="us-east-1")
    check("GetBucketLocation exempt from the region check", r.status == 200, r.status)
    # a presigned URL signed for the wrong region
    r, b = req("GET", "/b1/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDTEST%2F20260101%2Fus-west-2%2Fs3%2Faws4_request&X-Amz-Signature=00", region=None)
    check("presigned URL region parsed (301)", r.status == 301, r.status)
    r, b = req("HEAD", "/b2", region="us-east-1")
    check("503 SlowDown for the 1st request (HEAD: no body)", r.status == 503 and b == b"", (r.status, b))
    r, b = req("GET", "/b2/x", region="us-east-1")
    check("503 SlowDown for the 2nd request too", r.status == 503 and b"<Code>SlowDown</Code>" in b, (r.status, b))
    r, b = req("HEAD", "/b2", region="us-east-1")
    check("then passes; HeadBucket gains x-amz-bucket-region",
          r.status == 200 and r.getheader("x-amz-bucket-region") == "us-east-1", (r.status, r.getheaders()))
    r, b = req("GET", "/denied/x", region="ap-southeast-2")
    check("403 AccessDenied", r.status == 403 and b"<Code>AccessDenied</Code>" in b and b"<Message>Access Denied</Message>" in b, (r.status, b))
    r, b = req("HEAD", "/denied", region="ap-southeast-2")
    check("HeadBucket 403 with x-amz-bucket-region, no body",
          r.status == 403 and b == b"" and r.getheader("x-amz-bucket-region") == "ap-southeast-2", (r.status, b))
    r, b = req("GET", "/kms/secret/a.json.gz")
    check("KMS denial on GetObject", r.status == 403 and b"<Code>AccessDenied</Code>" in b and b"kms:Decrypt" in b
          and b"arn:aws:kms:us-east-1:111111111111:key/" in b, (r.status, b))
    r, b = req("HEAD", "/kms/secret/a.json.gz")
    check("HeadObject on the KMS object passes", r.status == 200, r.status)
    r, b = req("GET", "/kms/public/a.json.gz")
    check("non-matching key passes", r.status == 200, r.status)
    c3 = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    r, b = req("GET", "/some/key", region="us-east-1", headers={"Host": f"b1.localhost:{port}"}, c=c3)
    check("virtual-host style bucket understood", r.status == 301 and r.getheader("x-amz-bucket-region") == "eu-west-1", r.status)
    r, b = req("GET", "/some/key", region="eu-west-1", headers={"Host": f"b1.localhost:{port}"}, c=c3)
    check("virtual-host style forwarded path-style", r.status == 200 and b == b"object:/b1/some/key", (r.status, b))
    c3.close()
    # latency
    control("POST", "/__proxy/config", {"latency_ms": 150})
    t0 = time.monotonic()
    req("GET", "/b1/x")
    check("latency added", time.monotonic() - t0 >= 0.15)

    # recording
    status, out = control("GET", "/__proxy/requests")
    recs = out["requests"]
    regions = {(x["bucket"], x["region"], x["status"]) for x in recs}
    check("requests recorded with bucket, signing region, status",
          ("b1", "us-east-1", 301) in regions and ("b1", "eu-west-1", 200) in regions and ("b1", "us-west-2", 301) in regions,
          regions)
    check("operations named", {"HeadBucket", "GetObject", "ListObjectsV2", "PutObject", "GetBucketLocation"}
          <= {x["operation"] for x in recs}, {x["operation"] for x in recs})
    kms_rec = [x for x in recs if x["fault"] == "kms_denied"]
    check("fault names recorded", kms_rec and kms_rec[0]["key"] == "secret/a.json.gz", kms_rec)
    # chaos: random faults on every request
    control("POST", "/__proxy/config", {"chaos": {"seed": 3, "rate": 1, "kinds": ["truncate"]}})
    c2 = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c2.request("GET", "/b1/big", headers={"Authorization": auth("us-east-1")})
    r = c2.getresponse()
    try:
        got = r.read()
    except http.client.IncompleteRead as e:
        got = e.partial
    check("chaos truncate: half the body, then closed",
          0 < len(got) < int(r.getheader("Content-Length")), (len(got), r.getheader("Content-Length")))
    c2.close()
    control("POST", "/__proxy/config", {"chaos": {"seed": 3, "rate": 1, "kinds": ["reset"]}})
    c3 = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c3.request("GET", "/b1/x", headers={"Authorization": auth("us-east-1")})
        c3.getresponse().read()
        reset_seen = False
    except (http.client.HTTPException, ConnectionError):
        reset_seen = True
    check("chaos reset: no answer", reset_seen)
    c3.close()
    control("POST", "/__proxy/config", {"chaos": {"seed": 3, "rate": 1, "kinds": ["slow_down"]}})
    c4 = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c4.request("POST", "/", body=b"{}", headers={"Authorization": auth("us-east-1", "cloudtrail"),
                                                 "X-Amz-Target": "CloudTrail_20131101.DescribeTrails"})
    r = c4.getresponse()
    body = json.loads(r.read())
    check("chaos on a JSON API: 400 ThrottlingException",
          r.status == 400 and body["__type"] == "ThrottlingException", (r.status, body))
    c4.close()
    status, out = control("POST", "/__proxy/config", {"chaos": {"rate": 2}})
    check("bad chaos rate rejected", status == 400, out)
    status, out = control("POST", "/__proxy/config", {"buckets": {"x": {"bogus": 1}}})
    check("bad config rejected with 400", status == 400 and "bogus" in out["error"], out)
    control("POST", "/__proxy/reset")
    status, out = control("GET", "/__proxy/requests")
    s2, cfg = control("GET", "/__proxy/config")
    check("reset clears requests and config", out["requests"] == [] and cfg == {}, (out, cfg))

    conn.close()
    proxy.shutdown()
    up.shutdown()
    passed = sum(1 for _, ok in results if ok)
    failed = len(results) - passed
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Fault-injecting reverse proxy for S3 (see the module docstring).")
    p.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT (port 0: any free port)")
    p.add_argument("--upstream", default="http://127.0.0.1:4566", help="the S3 endpoint to proxy")
    p.add_argument("--port-file", help="write the port listened on to this file (atomically)")
    p.add_argument("--config", help="initial fault configuration (JSON file)")
    p.add_argument("-v", "--verbose", action="store_true", help="log every request to stderr")
    p.add_argument("--self-test", action="store_true", help="run the built-in checks and exit")
    args = p.parse_args(argv)
    if args.self_test:
        return self_test()
    return serve(args)


if __name__ == "__main__":
    sys.exit(main())
