#!/usr/bin/env python3
"""Test receiver on loopback: a stand-in for Datadog's Events API v1 and for webhooks.

The Rust integration tests start it as a subprocess, point trailwatch's Datadog and
webhook sinks at it, script failures through its control API and read back what it
received. It needs Datadog's official Python client (``datadog-api-client``, pinned in
tests/support/requirements-receiver.txt); ``scripts/receiver-venv.sh`` builds the venv:

    .venv-receiver/bin/python tests/support/receiver.py --listen 127.0.0.1:0 \\
        --port-file F [--control-port-file F2] [--api-key-sha256 HEX] \\
        [--webhook-secret-file PATH] [-v]
    .venv-receiver/bin/python tests/support/receiver.py --self-test

The chosen port is written to F (and the control port to F2) atomically, once the
socket listens. Threaded, HTTP/1.1 with keep-alive; every response has a
Content-Length. Request bodies may be chunked and gzip/deflate encoded.

Datadog: ``POST /api/v1/events``
    1. ``DD-API-KEY`` is checked when ``--api-key-sha256`` is given: the SHA-256 (hex)
       of the header value must equal it, so the key itself is never on a command
       line. Missing or wrong: 403 with Datadog's JSON error body.
    2. The body is validated (see ``DatadogValidator``): Datadog's own
       ``EventCreateRequest`` model must be built from it with type checking on, and
       the limits of DESIGN.md must hold. Every problem is recorded. Any problem:
       400 ``{"status": "error", "code": 400, "errors": [...]}``.
    3. Otherwise 202 ``{"status": "ok", "event": {...}}``, as Datadog answers.

Webhooks: ``POST /hook/<name>``
    The body and headers are recorded. With ``--webhook-secret-file`` (trailing CR/LF
    dropped, as trailwatch reads secret files), ``X-Trailwatch-Signature:
    t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`` is verified over the body
    bytes as they came on the wire; missing, malformed, wrong, or a ``t`` more than 300
    s away from now: 401 ``{"error": reason}`` and the reason is recorded. Otherwise
    200 ``{"ok": true}``.

Any other path: 404, recorded.

Control API (paths under ``/__receiver/``; never recorded, never faulted). It is
served on the main port and, with ``--control-port-file``, on a control port of its
own that stays up while the main port is down: use that one to switch ``down``.

    GET  /__receiver/health    {"ok": true, "port": P, "control_port": C|null, "down": false}
    GET  /__receiver/config    the configuration in force (faults left, down)
    POST /__receiver/config    change it; every field is optional:
        {
          "faults": [                    # replaces the queue of scripted responses
            {"path": "/api/v1/events",   # path prefix the entry applies to (required)
             "count": 2,                 # how many requests it answers (default 1)
             "status": 429,              # 429, 500, 503, 400 or any 4xx/5xx
             "retry_after": 1,           # -> Retry-After: 1 (seconds, or an HTTP date)
             "rate_limit_reset": 2,      # -> Datadog's X-RateLimit-* headers, Reset: 2
             "headers": {"X-A": "b"},    # extra response headers
             "body": {"errors": ["..."]}},  # JSON body (default: Datadog-like errors)
            {"path": "/hook/", "action": "timeout", "seconds": 5},
            {"path": "/hook/torq", "action": "close"}
          ],
          "down": true,                  # close the listening socket (see below)
          "down_for": 2.5                # with down: true, come back up by itself
        }
    GET  /__receiver/requests  {"requests": [...], "dropped": N}, oldest first;
                               ?path=PREFIX narrows, ?since=SEQ skips seq < SEQ;
                               a timed-out request is listed as soon as it is read
    GET  /__receiver/accepted  {"accepted": {alert id: times}, "timed_out": {...},
                                "duplicates": [ids accepted more than once],
                                "accepted_without_id": N}; ?path=PREFIX narrows
    POST /__receiver/reset     forget requests, counts and faults; come back up

Fault queue: a request takes the first entry whose ``path`` is a prefix of its path
and that has requests left; entries for one prefix apply in order, and entries for
other prefixes are independent. The request is always read whole and validated first
(its problems are recorded), then the entry decides the answer:
    ``status``  that status with its headers and a JSON body (outcome ``injected_fault``);
    ``timeout`` no answer for ``seconds`` (default 30; make it longer than the client's
                timeout): the request is recorded at once with outcome ``timed_out``
                and counted under ``timed_out``, never under ``accepted``. After the
                sleep the answer it would have had is written (``processed_as`` says
                which) if the client is still there; a reset or ``down`` cuts the sleep
                short and closes the connection instead;
    ``close``   the connection is closed without an answer (outcome ``closed``).

Down: ``{"down": true}`` closes the listening socket, so new connections are refused
(ECONNREFUSED), and shuts down every open connection to the main port (idle
keep-alive ones included, and the one that asked, right after its answer).
``{"down": false}`` (or ``down_for`` running out, or a reset) binds a new listening
socket to the same port (SO_REUSEADDR), so the port in the port file stays valid.
Another process could take the port while it is closed: on this loopback-only test
machine with ephemeral ports that is unlikely, and it is reported as a 500 by the
control API if it happens.

A recorded request::

    {"seq": 0, "time_monotonic": 12.5, "time_wall": 1795298534.1, "connection": 3,
     "method": "POST", "path": "/api/v1/events", "query": "", "kind": "datadog",
     "hook": null, "headers": {"dd-api-key": "sha256:<hex>", ...},
     "body": {...parsed JSON, or the text, or null},
     "body_bytes": 312, "content_encoding": null, "status": 202,
     "outcome": "accepted",    # rejected | injected_fault | timed_out | closed
     "fault": null, "processed_as": null, "alert_id": "tw-9f2c4e1a7b3d5e60",
     "problems": [{"field": "text", "problem": "...", "source": "datadog-api-client"}],
                               # source: datadog-api-client | design | receiver
     "warnings": [], "api_key": "ok", "signature": null,
     "duration": 0.004, "answer_error": null}

Header names are lower-cased; the values of ``dd-api-key``, ``dd-application-key``,
``authorization``, ``proxy-authorization`` and ``x-api-key`` (and ``api_key`` /
``application_key`` query parameters) are replaced by ``sha256:<hex of the value>``.
The alert id comes from the ``alert_id:`` tag (Datadog), or from a top-level ``id`` or
``alert.id`` string in the JSON body (webhooks). ``accepted`` counts 2xx answers given
after the checks passed; everything else is ``rejected`` unless a fault decided it.
``status`` is the status answered (null while a timeout sleeps, and for ``closed``);
``answer_error`` says why writing the answer failed (the client had gone), else null.
``api_key`` is ok / wrong / missing (null without ``--api-key-sha256``), ``signature``
``{"ok": bool, "reason": str|null}`` (null without a webhook secret).
"""

from __future__ import annotations

import argparse
import copy
import gzip
import hashlib
import hmac
import http.client
import inspect
import itertools
import json
import os
import re
import signal
import socket
import sys
import tempfile
import threading
import time
import zlib
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode, urlsplit

DD_EVENTS_PATH = "/api/v1/events"
HOOK_PREFIX = "/hook/"
CONTROL_PREFIX = "/__receiver/"
MAX_BODY = 16 * 1024 * 1024
MAX_RECORDS = 200_000
SIGNATURE_HEADER = "X-Trailwatch-Signature"
SIGNATURE_TOLERANCE = 300  # seconds either side of now
EVENT_MAX_AGE = 18 * 3600  # Datadog drops events older than 18 hours
DD_ALERT_TYPES = ("error", "warning", "info", "success", "user_update", "recommendation", "snapshot")
DD_PRIORITIES = ("normal", "low")
DD_TEXT_MAX = 4000
DD_AGGREGATION_KEY_MAX = 100
DD_TAG_MAX = 200  # Datadog truncates longer tags: a warning, not a rejection
REDACTED_HEADERS = {"dd-api-key", "dd-application-key", "authorization", "proxy-authorization", "x-api-key"}
REDACTED_QUERY = {"api_key", "application_key"}
DEFAULT_TIMEOUT_SECONDS = 30.0
# Datadog's answer to a missing or wrong API key, as its v1 endpoints send it.
DD_FORBIDDEN = {
    "status": "error",
    "code": 403,
    "errors": ["Forbidden"],
    "statuspage": "http://status.datadoghq.com",
    "twitter": "http://twitter.com/datadogops",
    "email": "support@datadoghq.com",
}
# Where a recorded problem comes from: Datadog's client models, DESIGN.md's contract,
# or the receiver itself (framing, encoding, size: nothing Datadog-specific).
LIBRARY = "datadog-api-client"
DESIGN = "design"
RECEIVER = "receiver"


def sha256_hex(data: str | bytes) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def redact(value: str) -> str:
    return "sha256:" + sha256_hex(value)


# ---- Datadog validation ------------------------------------------------------------------

class DatadogValidator:
    """Validates an Events API v1 body with Datadog's own client models, strictly.

    Two passes, both through ``datadog_api_client``:

    * the verdict: ``model_utils.validate_and_convert_types(body, (EventCreateRequest,),
      ["received_data"], True, True, configuration)``, the very call
      ``ApiClient.deserialize`` makes for JSON from the wire (spec property names,
      ``check_type=True``), with ``discard_unknown_keys=False`` and every client-side
      validation enabled. It must return an ``EventCreateRequest``. The library is lax
      in one place: an enum value outside ``allowed_values`` (``alert_type: "bad"``)
      does not raise but marks the model ``_unparsed``; that is a failure here, with
      the message of ``model_utils.check_allowed_values``.
    * the inventory: the first pass stops at the first error, so each field is also
      run alone through ``validate_and_convert_types`` with the model's
      ``openapi_types`` entry, ``check_allowed_values`` for enums and
      ``check_validations`` with the model's ``validations`` (max lengths); required
      fields come from ``EventCreateRequest.__init__``'s signature.

    Then DESIGN.md's limits are checked on their own (source ``design``), so the
    contract does not depend on what one library version happens to enforce; some
    problems are therefore reported by both sources. ``null`` is a problem for every
    field: the library skips type checks on ``None``, DESIGN.md leaves no field
    nullable. Fields the model does not know are warnings (Datadog ignores them).
    """

    def __init__(self):
        try:
            from datadog_api_client import Configuration
            from datadog_api_client import exceptions as dd_exceptions
            from datadog_api_client import model_utils
            from datadog_api_client.v1.model.event_create_request import EventCreateRequest
        except ImportError as e:  # pragma: no cover - environment problem
            raise SystemExit(
                f"receiver.py: cannot import datadog_api_client ({e}); run scripts/receiver-venv.sh "
                "and start this script with .venv-receiver/bin/python"
            ) from e
        self.mu = model_utils
        self.model = EventCreateRequest
        self.configuration = Configuration(discard_unknown_keys=False)
        self.errors = (dd_exceptions.OpenApiException, TypeError, ValueError, KeyError, AttributeError)
        self.types = EventCreateRequest.openapi_types  # python name -> accepted types
        self.validations = EventCreateRequest.validations
        self.wire_to_python = {wire: py for py, wire in EventCreateRequest.attribute_map.items()}
        params = list(inspect.signature(EventCreateRequest.__init__).parameters.values())[1:]
        self.required = [
            EventCreateRequest.attribute_map[p.name]
            for p in params
            if p.default is inspect.Parameter.empty and p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
        ]

    # -- pass 1: the whole model --------------------------------------------------------

    def build(self, body: dict):
        """The EventCreateRequest built from ``body`` (raises the library's error)."""
        model = self.mu.validate_and_convert_types(
            copy.deepcopy(body), (self.model,), ["received_data"], True, True, configuration=self.configuration
        )
        if not isinstance(model, self.model):
            raise TypeError(f"deserialized to {type(model).__name__}, not EventCreateRequest")
        if model._unparsed:
            for name, value in model._data_store.items():
                if isinstance(value, self.mu.ModelSimple) and value._unparsed:
                    wire = self.model.attribute_map.get(name, name)
                    self.mu.check_allowed_values(type(value).allowed_values, wire, value.value)
            raise ValueError("the model holds a value it could not parse")
        return model

    @staticmethod
    def fields_of(error: Exception) -> list[str]:
        """The body fields a library error is about."""
        path = getattr(error, "path_to_item", None)
        if path and len(path) > 1 and isinstance(path[1], str):
            return [path[1]]
        text = str(error)
        if "required positional argument" in text:
            return re.findall(r"'(\w+)'", text.split(":", 1)[-1])
        m = re.search(r"`(\w+)`", text) or re.search(r"variable '(\w+)'", text)
        return [m.group(1)] if m and m.group(1) != "received_data" else [""]

    # -- pass 2: field by field ---------------------------------------------------------

    def check_field(self, wire: str, value) -> None:
        """Raises the library's error for one field's value."""
        py = self.wire_to_python[wire]
        converted = self.mu.validate_and_convert_types(
            copy.deepcopy(value), self.types[py], ["received_data", wire], True, True,
            configuration=self.configuration,
        )
        if isinstance(converted, self.mu.ModelSimple) and converted._unparsed:
            self.mu.check_allowed_values(type(converted).allowed_values, wire, value)
        if py in self.validations:
            self.mu.check_validations(self.validations[py], wire, converted, self.configuration)

    # -- everything ---------------------------------------------------------------------

    def validate(self, body, now: float | None = None) -> tuple[list[dict], list[dict], bool]:
        """(problems, warnings, model_ok) for a parsed JSON body."""
        now = time.time() if now is None else now
        problems: list[dict] = []
        warnings: list[dict] = []

        def problem(field: str, text: str, source: str) -> None:
            item = {"field": field, "problem": text, "source": source}
            if item not in problems:
                problems.append(item)

        if not isinstance(body, dict):
            problem("", f"the body must be a JSON object, not {json_type(body)}", DESIGN)
            try:
                self.build(body)
            except self.errors as e:
                problem("", str(e), LIBRARY)
            return problems, warnings, False

        model_ok = True
        try:
            self.build(body)
        except self.errors as e:
            model_ok = False
            for field in self.fields_of(e):
                problem(field, str(e), LIBRARY)
        flagged = {p["field"] for p in problems}
        for wire in self.required:
            if wire not in body and wire not in flagged:
                problem(wire, "missing; a required argument of EventCreateRequest.__init__", LIBRARY)
        for wire, value in body.items():
            if wire not in self.wire_to_python:
                warnings.append({"field": wire, "warning": "not a field of EventCreateRequest; Datadog ignores it"})
                continue
            if value is None or wire in flagged:
                continue
            try:
                self.check_field(wire, value)
            except self.errors as e:
                problem(wire, str(e), LIBRARY)

        for field, text in design_problems(body, now):
            problem(field, text, DESIGN)
        tags = body.get("tags")
        for tag in tags if isinstance(tags, list) else []:
            if isinstance(tag, str) and len(tag) > DD_TAG_MAX:
                warnings.append({"field": "tags", "warning": f"tag longer than {DD_TAG_MAX} characters: "
                                                             f"Datadog truncates it ({tag[:40]!r}...)"})
        return problems, warnings, model_ok


def design_problems(body: dict, now: float) -> list[tuple[str, str]]:
    """DESIGN.md's "Datadog Events API v1" limits, checked without the library."""
    out: list[tuple[str, str]] = []
    for field in ("title", "text"):
        value = body.get(field)
        if field not in body:
            out.append((field, "required and missing"))
        elif not isinstance(value, str):
            out.append((field, f"must be a string, not {json_type(value)}"))
        elif not value.strip():
            out.append((field, "must not be empty"))
    text = body.get("text")
    if isinstance(text, str) and len(text) > DD_TEXT_MAX:
        out.append(("text", f"{len(text)} characters; at most {DD_TEXT_MAX}"))
    if "aggregation_key" in body:
        key = body["aggregation_key"]
        if not isinstance(key, str):
            out.append(("aggregation_key", f"must be a string, not {json_type(key)}"))
        elif len(key) > DD_AGGREGATION_KEY_MAX:
            out.append(("aggregation_key", f"{len(key)} characters; at most {DD_AGGREGATION_KEY_MAX}"))
    if "alert_type" in body and body["alert_type"] not in DD_ALERT_TYPES:
        out.append(("alert_type", f"{body['alert_type']!r} is not one of {', '.join(DD_ALERT_TYPES)}"))
    if "priority" in body and body["priority"] not in DD_PRIORITIES:
        out.append(("priority", f"{body['priority']!r} is not one of {', '.join(DD_PRIORITIES)}"))
    if "date_happened" in body:
        when = body["date_happened"]
        if not isinstance(when, int) or isinstance(when, bool):
            out.append(("date_happened", f"must be an integer (POSIX seconds), not {json_type(when)}"))
        elif now - when > EVENT_MAX_AGE:
            out.append(("date_happened", f"{when} is {(now - when) / 3600:.1f} hours old; "
                                         f"Datadog accepts events no older than 18 hours"))
    if "tags" in body:
        tags = body["tags"]
        if not isinstance(tags, list):
            out.append(("tags", f"must be a list of \"key:value\" strings, not {json_type(tags)}"))
        else:
            for i, tag in enumerate(tags):
                if not isinstance(tag, str):
                    out.append(("tags", f"tags[{i}] must be a string, not {json_type(tag)}"))
                    continue
                key, colon, value = tag.partition(":")
                if not colon or not key or not value:
                    out.append(("tags", f"tags[{i}] {tag!r} is not \"key:value\""))
    for field, value in body.items():
        if value is None and field not in ("title", "text"):
            out.append((field, "null; omit the field instead"))
    return out


def json_type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return {int: "integer", float: "number", str: "string", list: "array", dict: "object"}.get(
        type(value), type(value).__name__)


def datadog_alert_id(body) -> str | None:
    """The value of the first ``alert_id:`` tag."""
    tags = body.get("tags") if isinstance(body, dict) else None
    for tag in tags if isinstance(tags, list) else []:
        if isinstance(tag, str) and tag.startswith("alert_id:") and len(tag) > len("alert_id:"):
            return tag[len("alert_id:"):]
    return None


def webhook_alert_id(body) -> str | None:
    """A top-level ``id`` string, else ``alert.id``."""
    if not isinstance(body, dict):
        return None
    if isinstance(body.get("id"), str):
        return body["id"]
    alert = body.get("alert")
    if isinstance(alert, dict) and isinstance(alert.get("id"), str):
        return alert["id"]
    return None


def verify_signature(header: str | None, body: bytes, secret: bytes, now: float) -> str | None:
    """None when ``header`` signs ``body``; otherwise why not."""
    if header is None:
        return f"missing {SIGNATURE_HEADER}"
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, eq, value = item.strip().partition("=")
        if not eq:
            return f"malformed {SIGNATURE_HEADER}: {item.strip()!r} is not key=value"
        parts.setdefault(key, []).append(value)
    if len(parts.get("t", [])) != 1 or not re.fullmatch(r"[0-9]+", parts["t"][0]):
        return f"malformed {SIGNATURE_HEADER}: needs one t=<unix seconds>"
    if not parts.get("v1"):
        return f"malformed {SIGNATURE_HEADER}: no v1=<hex>"
    t = int(parts["t"][0])
    if now - t > SIGNATURE_TOLERANCE:
        return f"stale signature: t={t} is {int(now - t)} s old (limit {SIGNATURE_TOLERANCE} s)"
    if t - now > SIGNATURE_TOLERANCE:
        return f"signature from the future: t={t} is {int(t - now)} s ahead (limit {SIGNATURE_TOLERANCE} s)"
    want = hmac.new(secret, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(want, v.lower()) for v in parts["v1"]):
        return "signature mismatch: v1 is not HMAC-SHA256(secret, \"<t>.<body>\")"
    return None


# ---- configuration and state -------------------------------------------------------------

def check_fault(i: int, f) -> dict:
    """A validated copy of one fault entry (raises ValueError)."""
    where = f"faults[{i}]"
    if not isinstance(f, dict):
        raise ValueError(f"{where} must be an object")
    known = {"path", "count", "status", "retry_after", "rate_limit_reset", "headers", "body", "action", "seconds"}
    unknown = set(f) - known
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {sorted(unknown)}")
    if not isinstance(f.get("path"), str) or not f["path"].startswith("/"):
        raise ValueError(f"{where}.path must be a path prefix starting with /")
    count = f.get("count", 1)
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ValueError(f"{where}.count must be an integer >= 1")
    action = f.get("action", "status")
    if action not in ("status", "timeout", "close"):
        raise ValueError(f"{where}.action must be status, timeout or close")
    if action == "status":
        status = f.get("status")
        if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
            raise ValueError(f"{where}.status must be an HTTP status code")
    elif "status" in f:
        raise ValueError(f"{where}: status goes with action status only")
    if action == "timeout":
        seconds = f.get("seconds", DEFAULT_TIMEOUT_SECONDS)
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds <= 0:
            raise ValueError(f"{where}.seconds must be a number > 0")
    elif "seconds" in f:
        raise ValueError(f"{where}: seconds goes with action timeout only")
    for name in ("retry_after", "rate_limit_reset"):
        if name in f and not isinstance(f[name], (int, float, str)):
            raise ValueError(f"{where}.{name} must be a number of seconds (or a string)")
    if not isinstance(f.get("headers", {}), dict):
        raise ValueError(f"{where}.headers must be an object")
    out = json.loads(json.dumps(f))
    out.update(action=action, count=count, left=count)
    return out


class State:
    """What the receiver has seen and been told; shared by every handler thread."""

    def __init__(self):
        self.lock = threading.Lock()
        self.records: list[dict] = []
        self.dropped = 0
        self.faults: list[dict] = []
        self.accepted: dict[str, Counter] = {}  # path -> alert id -> times
        self.timed_out: dict[str, Counter] = {}
        self.accepted_without_id: Counter = Counter()  # path -> times
        self.wake = threading.Event()  # set to cut timeout sleeps short

    def reset(self) -> None:
        with self.lock:
            self.records, self.dropped, self.faults = [], 0, []
            self.accepted, self.timed_out, self.accepted_without_id = {}, {}, Counter()
        self.interrupt()

    def interrupt(self) -> None:
        """Wake every sleeping timeout fault; later ones sleep on a fresh event."""
        with self.lock:
            old, self.wake = self.wake, threading.Event()
        old.set()

    def set_faults(self, faults) -> None:
        if not isinstance(faults, list):
            raise ValueError("faults must be a list")
        checked = [check_fault(i, f) for i, f in enumerate(faults)]
        with self.lock:
            self.faults = checked

    def take_fault(self, path: str) -> dict | None:
        """The scripted response for a request to ``path``, or None (consumes one use)."""
        with self.lock:
            for f in self.faults:
                if path.startswith(f["path"]) and f["left"] > 0:
                    f["left"] -= 1
                    if f["left"] == 0:
                        self.faults.remove(f)
                    return {k: v for k, v in f.items() if k != "left"}
        return None

    def record(self, rec: dict) -> dict:
        with self.lock:
            rec["seq"] = len(self.records) + self.dropped
            self.records.append(rec)
            if len(self.records) > MAX_RECORDS:
                drop = len(self.records) - MAX_RECORDS
                del self.records[:drop]
                self.dropped += drop
        return rec

    def update(self, rec: dict, **fields) -> None:
        with self.lock:
            rec.update(fields)

    def count(self, rec: dict) -> None:
        """Counts an accepted or timed-out request under its path and alert id."""
        with self.lock:
            path, alert = rec["path"], rec.get("alert_id")
            if rec["outcome"] == "accepted":
                if alert is None:
                    self.accepted_without_id[path] += 1
                else:
                    self.accepted.setdefault(path, Counter())[alert] += 1
            elif rec["outcome"] == "timed_out" and alert is not None:
                self.timed_out.setdefault(path, Counter())[alert] += 1

    def requests_json(self, prefix: str, since: int) -> bytes:
        with self.lock:
            recs = [r for r in self.records if r["seq"] >= since and r["path"].startswith(prefix)]
            return json.dumps({"requests": recs, "dropped": self.dropped}).encode()

    def accepted_json(self, prefix: str) -> bytes:
        with self.lock:
            accepted, timed_out = Counter(), Counter()
            for path, c in self.accepted.items():
                if path.startswith(prefix):
                    accepted.update(c)
            for path, c in self.timed_out.items():
                if path.startswith(prefix):
                    timed_out.update(c)
            without = sum(n for p, n in self.accepted_without_id.items() if p.startswith(prefix))
        return json.dumps({
            "accepted": dict(sorted(accepted.items())),
            "timed_out": dict(sorted(timed_out.items())),
            "duplicates": sorted(a for a, n in accepted.items() if n > 1),
            "accepted_without_id": without,
        }).encode()

    def faults_json(self) -> list[dict]:
        with self.lock:
            return [dict(f) for f in self.faults]


# ---- HTTP --------------------------------------------------------------------------------

class ClientGone(Exception):
    """The client closed its connection in the middle of a request (or framed it so
    badly that the connection cannot go on)."""


class BodyTooLarge(Exception):
    pass


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "trailwatch-test-receiver"
    sys_version = ""

    def log_message(self, fmt, *args):
        if self.server.receiver.verbose:
            sys.stderr.write(f"receiver[{self.server.name}]: " + (fmt % args) + "\n")

    def setup(self):
        super().setup()
        self.conn_id = next(self.server.receiver.conn_ids)

    def do_POST(self):
        self.dispatch()

    do_GET = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_POST

    # -- reading ------------------------------------------------------------------------

    def read_body(self) -> bytes:
        """The whole request body as sent (chunked framing removed)."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            out = bytearray()
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ClientGone("connection closed inside a chunked body")
                try:
                    size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                except ValueError:
                    raise ClientGone(f"malformed chunk size {line[:40]!r}") from None
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return bytes(out)
                if len(out) + size > MAX_BODY:
                    raise BodyTooLarge()
                piece = self.rfile.read(size + 2)
                if len(piece) < size + 2:
                    raise ClientGone("connection closed inside a chunk")
                out += piece[:size]
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise ClientGone("malformed Content-Length") from None
        if length > MAX_BODY:
            raise BodyTooLarge()
        data = self.rfile.read(length) if length else b""
        if len(data) < length:
            raise ClientGone("connection closed inside the body")
        return data

    def recorded_headers(self) -> dict:
        out: dict[str, str] = {}
        for name, value in self.headers.items():
            name = name.lower()
            value = redact(value) if name in REDACTED_HEADERS else value
            out[name] = f"{out[name]}, {value}" if name in out else value
        return out

    @staticmethod
    def decode_body(raw: bytes, encoding: str | None) -> bytes:
        encoding = (encoding or "identity").strip().lower()
        if encoding in ("identity", ""):
            return raw
        if encoding in ("gzip", "x-gzip"):
            return gzip.decompress(raw)
        if encoding == "deflate":
            try:
                return zlib.decompress(raw)
            except zlib.error:
                return zlib.decompress(raw, -zlib.MAX_WBITS)
        raise ValueError(f"unsupported Content-Encoding {encoding!r}")

    # -- writing ------------------------------------------------------------------------

    def send_json(self, status: int, obj, headers: dict | None = None) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            self.send_header(name, str(value))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self.wfile.flush()

    # -- routing ------------------------------------------------------------------------

    def dispatch(self) -> None:
        parts = urlsplit(self.path)
        if parts.path.startswith(CONTROL_PREFIX):
            try:
                raw = self.read_body()
            except (ClientGone, BodyTooLarge):
                self.close_connection = True
                return
            self.control(parts.path, dict(parse_qsl(parts.query)), raw)
            return
        if self.server.control_only:
            self.send_json(404, {"error": "control port: only /__receiver/ paths"})
            return
        self.receive(parts.path, parts.query)

    def receive(self, path: str, query: str) -> None:
        """A request to the stand-in Datadog or webhook: record, check, answer."""
        receiver = self.server.receiver
        state = receiver.state
        started = time.monotonic()
        kind, hook = "other", None
        if path == DD_EVENTS_PATH:
            kind = "datadog"
        elif path.startswith(HOOK_PREFIX) and len(path) > len(HOOK_PREFIX):
            kind, hook = "webhook", path[len(HOOK_PREFIX):]
        rec = {
            "time_monotonic": started, "time_wall": time.time(), "connection": self.conn_id,
            "method": self.command, "path": path,
            "query": urlencode([(k, redact(v) if k in REDACTED_QUERY else v)
                                for k, v in parse_qsl(query, keep_blank_values=True)]),
            "kind": kind, "hook": hook, "headers": self.recorded_headers(), "body": None,
            "body_bytes": 0, "content_encoding": self.headers.get("Content-Encoding"),
            "status": None, "outcome": None, "fault": None, "processed_as": None, "alert_id": None,
            "problems": [], "warnings": [], "api_key": None, "signature": None, "duration": None,
            "answer_error": None,
        }
        try:
            raw = self.read_body()
        except BodyTooLarge:
            rec.update(outcome="rejected", problems=[{"field": "", "problem": f"body over {MAX_BODY} bytes",
                                                      "source": RECEIVER}])
            state.record(rec)
            self.close_connection = True
            self.finish_answer(rec, 413, {"errors": ["Payload too large"]})
            return
        except ClientGone as e:
            rec.update(outcome="closed", problems=[{"field": "", "problem": f"client: {e}", "source": RECEIVER}])
            state.record(rec)
            self.close_connection = True
            return
        rec["body_bytes"] = len(raw)

        # Check the request as the real service would, then let a fault override the answer.
        status, answer, headers = self.process(kind, rec, raw)
        fault = state.take_fault(path)
        if fault is None:
            rec["outcome"] = "accepted" if 200 <= status < 300 else "rejected"
            state.record(rec)
            state.count(rec)
            self.finish_answer(rec, status, answer, headers)
            return
        rec["fault"] = fault
        action = fault["action"]
        if action == "close":
            rec["outcome"] = "closed"
            state.record(rec)
            state.update(rec, duration=time.monotonic() - started)
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if action == "timeout":
            rec.update(outcome="timed_out", processed_as="accepted" if 200 <= status < 300 else "rejected")
            wake = state.wake
            state.record(rec)
            state.count(rec)
            if wake.wait(float(fault.get("seconds", DEFAULT_TIMEOUT_SECONDS))):
                # Cut short by a reset or by going down: leave without an answer.
                state.update(rec, duration=time.monotonic() - started)
                self.close_connection = True
                return
            self.finish_answer(rec, status, answer, headers)
            return
        rec["outcome"] = "injected_fault"
        state.record(rec)
        self.finish_answer(rec, fault["status"], *fault_response(kind, fault))

    def finish_answer(self, rec: dict, status: int, body, headers: dict | None = None) -> None:
        """Write the answer and put its status in the record, with ``answer_error`` set
        when the client had gone (the write failed)."""
        error = None
        try:
            self.send_json(status, body, headers)
        except OSError as e:
            self.close_connection = True
            error = f"{type(e).__name__}: {e}"
        self.server.receiver.state.update(rec, status=status, answer_error=error,
                                          duration=time.monotonic() - rec["time_monotonic"])

    def process(self, kind: str, rec: dict, raw: bytes) -> tuple[int, object, dict]:
        """Fills the record's body, checks and alert id; returns the answer the service would give."""
        receiver = self.server.receiver
        try:
            data = self.decode_body(raw, self.headers.get("Content-Encoding"))
        except (OSError, EOFError, ValueError, zlib.error) as e:
            rec["problems"].append({"field": "", "problem": f"cannot decode the body: {e}", "source": RECEIVER})
            rec["body"] = None
            data = None
        parsed, is_json = None, False
        if data is not None:
            try:
                parsed, is_json = json.loads(data), True
            except ValueError:
                parsed = data.decode("utf-8", "replace")
            rec["body"] = parsed

        if self.command != "POST" and kind != "other":
            return 405, {"errors": [f"method {self.command} not allowed"]}, {"Allow": "POST"}

        if kind == "datadog":
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if ctype != "application/json":
                rec["warnings"].append({"field": "Content-Type",
                                        "warning": f"{ctype or 'none'}, not application/json"})
            if data is not None and not is_json:
                rec["problems"].append({"field": "", "problem": "the body is not valid JSON", "source": DESIGN})
            elif is_json:
                rec["alert_id"] = datadog_alert_id(parsed)
                try:
                    problems, warnings, _ = receiver.validator.validate(parsed)
                except Exception as e:  # a receiver bug must not look like a network fault
                    problems, warnings = [{"field": "", "problem": f"validator crashed: {e!r}",
                                           "source": RECEIVER}], []
                rec["problems"] += problems
                rec["warnings"] += warnings
            # Datadog checks the key before it looks at the body.
            if receiver.api_key_sha256 is not None:
                key = self.headers.get("DD-API-KEY")
                if key is None:
                    rec["api_key"] = "missing"
                elif hmac.compare_digest(sha256_hex(key), receiver.api_key_sha256):
                    rec["api_key"] = "ok"
                else:
                    rec["api_key"] = "wrong"
                if rec["api_key"] != "ok":
                    return 403, DD_FORBIDDEN, {}
            if rec["problems"]:
                errors = [f"{p['field']}: {p['problem']}" if p["field"] else p["problem"] for p in rec["problems"]]
                return 400, {"status": "error", "code": 400, "errors": errors}, {}
            return 202, receiver.datadog_event(parsed), {}

        if kind == "webhook":
            if is_json:
                rec["alert_id"] = webhook_alert_id(parsed)
            if receiver.webhook_secret is not None:
                why = verify_signature(self.headers.get(SIGNATURE_HEADER), raw, receiver.webhook_secret, time.time())
                rec["signature"] = {"ok": why is None, "reason": why}
                if why is not None:
                    rec["problems"].append({"field": SIGNATURE_HEADER, "problem": why, "source": DESIGN})
                    return 401, {"error": why}, {}
            if rec["problems"]:
                return 400, {"error": rec["problems"][0]["problem"]}, {}
            return 200, {"ok": True}, {}

        return 404, {"errors": ["Not found"]}, {}

    # -- control ------------------------------------------------------------------------

    def control(self, path: str, query: dict, raw: bytes) -> None:
        receiver = self.server.receiver
        state = receiver.state
        name = path[len(CONTROL_PREFIX):].rstrip("/")
        try:
            if self.command == "GET" and name == "health":
                self.send_json(200, {"ok": True, **receiver.status()})
            elif self.command == "GET" and name == "config":
                self.send_json(200, receiver.config_json())
            elif self.command == "GET" and name == "requests":
                since = int(query.get("since", 0))
                data = state.requests_json(query.get("path", ""), since)
                self.send_raw_json(200, data)
            elif self.command == "GET" and name == "accepted":
                self.send_raw_json(200, state.accepted_json(query.get("path", "")))
            elif self.command == "POST" and name == "reset":
                state.reset()
                receiver.set_down(False)
                self.send_json(200, {"ok": True})
            elif self.command == "POST" and name == "config":
                self.post_config(raw)
            else:
                self.send_json(404, {"error": f"no control endpoint {self.command} {path}"})
        except ValueError as e:
            self.send_json(400, {"error": str(e)})
        except OSError as e:
            self.send_json(500, {"error": f"{type(e).__name__}: {e}"})

    def send_raw_json(self, status: int, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def post_config(self, raw: bytes) -> None:
        receiver = self.server.receiver
        try:
            cfg = json.loads(raw or b"{}")
        except ValueError as e:
            raise ValueError(f"config is not JSON: {e}") from e
        if not isinstance(cfg, dict):
            raise ValueError("config must be a JSON object")
        unknown = set(cfg) - {"faults", "down", "down_for"}
        if unknown:
            raise ValueError(f"unknown config field(s) {sorted(unknown)}")
        if "down" in cfg and not isinstance(cfg["down"], bool):
            raise ValueError("down must be true or false")
        down_for = cfg.get("down_for")
        if down_for is not None and (cfg.get("down") is not True or not isinstance(down_for, (int, float))
                                     or isinstance(down_for, bool) or down_for <= 0):
            raise ValueError("down_for must be a number > 0, with down: true")
        if "faults" in cfg:
            receiver.state.set_faults(cfg["faults"])
        if "down" in cfg:
            # Going down shuts every main-port connection but this one, which gets
            # its answer first and is closed right after it.
            receiver.set_down(cfg["down"], keep=self.connection, down_for=down_for)
            if cfg["down"] and not self.server.control_only:
                self.close_connection = True
        self.send_json(200, receiver.config_json())


class Server(ThreadingHTTPServer):
    """A listener whose open connections are known, so that ``down`` can cut them."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, receiver: "Receiver", name: str, control_only: bool):
        self.receiver, self.name, self.control_only = receiver, name, control_only
        self.conns: set[socket.socket] = set()
        self.conns_lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, Handler)

    def process_request(self, request, client_address):
        with self.conns_lock:
            self.conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self.conns_lock:
            self.conns.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address):
        """A client that resets or vanishes is part of the game; anything else is printed."""
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)) and not self.receiver.verbose:
            return
        super().handle_error(request, client_address)

    def cut_connections(self, keep=None) -> None:
        with self.conns_lock:
            conns = [c for c in self.conns if c is not keep]
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Receiver:
    """The main listener (Datadog + webhooks + control), an optional control-only
    listener, and the switch that takes the main one down and up on the same port."""

    POLL = 0.05  # serve_forever's poll interval: how fast a listener stops

    def __init__(self, host: str = "127.0.0.1", port: int = 0, api_key_sha256: str | None = None,
                 webhook_secret: bytes | None = None, control_port: bool = False, verbose: bool = False):
        self.validator = DatadogValidator()
        self.state = State()
        self.api_key_sha256 = api_key_sha256.lower() if api_key_sha256 else None
        self.webhook_secret = webhook_secret
        self.verbose = verbose
        self.conn_ids = itertools.count(1)
        self.event_ids = itertools.count(7_000_000_000_000_000_001)
        self.switch = threading.Lock()  # serialises down/up
        self.down = False
        self.down_timer: threading.Timer | None = None
        self.main = Server((host, port), self, "main", control_only=False)
        self.host, self.port = host, self.main.server_address[1]
        self.control = Server((host, 0), self, "control", control_only=True) if control_port else None
        self.control_port = self.control.server_address[1] if self.control else None
        self.threads: dict[str, threading.Thread] = {}

    def start(self) -> "Receiver":
        self._serve(self.main)
        if self.control:
            self._serve(self.control)
        return self

    def _serve(self, server: Server) -> None:
        t = threading.Thread(target=server.serve_forever, args=(self.POLL,), name=f"receiver-{server.name}",
                             daemon=True)
        t.start()
        self.threads[server.name] = t

    def stop(self) -> None:
        with self.switch:
            if self.down_timer:
                self.down_timer.cancel()
            if not self.down:
                self.main.shutdown()
            self.main.socket.close()
            self.main.cut_connections()
            if self.control:
                self.control.shutdown()
                self.control.socket.close()
                self.control.cut_connections()
        self.state.interrupt()

    def set_down(self, down: bool, keep=None, down_for: float | None = None) -> None:
        """Close the main listening socket (down) or bind a new one on the same port (up)."""
        with self.switch:
            if self.down_timer:
                self.down_timer.cancel()
                self.down_timer = None
            if down and not self.down:
                self.main.shutdown()  # the serve loop stops accepting
                self.main.socket.close()  # new connections are refused
                self.down = True
                self.main.cut_connections(keep=keep)
                self.state.interrupt()
            elif not down and self.down:
                self.main.socket = self._listen_again()
                self.down = False
                self._serve(self.main)
            if down and down_for:
                self.down_timer = threading.Timer(down_for, self.set_down, args=(False,))
                self.down_timer.daemon = True
                self.down_timer.start()

    def _listen_again(self) -> socket.socket:
        deadline = time.monotonic() + 5
        while True:
            sock = socket.socket(self.main.address_family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((self.host, self.port))
                sock.listen(self.main.request_queue_size)
                return sock
            except OSError:
                sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def status(self) -> dict:
        return {"port": self.port, "control_port": self.control_port, "down": self.down}

    def config_json(self) -> dict:
        return {"faults": self.state.faults_json(), "down": self.down,
                "api_key_check": self.api_key_sha256 is not None,
                "webhook_signature_check": self.webhook_secret is not None}

    def datadog_event(self, body: dict) -> dict:
        """Datadog's 202 answer to a created event."""
        event_id = next(self.event_ids)
        event = {
            "id": event_id, "id_str": str(event_id),
            "title": body.get("title"), "text": body.get("text"),
            "date_happened": body.get("date_happened", int(time.time())),
            "handle": None, "priority": body.get("priority"), "related_event_id": body.get("related_event_id"),
            "tags": body.get("tags"), "url": f"https://app.datadoghq.com/event/event?id={event_id}",
        }
        return {"status": "ok", "event": event}


def fault_response(kind: str, fault: dict) -> tuple[object, dict]:
    """Body and headers of a scripted status answer."""
    status = fault["status"]
    headers: dict[str, str] = {}
    if "retry_after" in fault:
        headers["Retry-After"] = str(fault["retry_after"])
    if "rate_limit_reset" in fault:
        # What Datadog sends with its 429s; Reset is seconds until the window resets.
        headers.update({"X-RateLimit-Limit": "1000", "X-RateLimit-Period": "60",
                        "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(fault["rate_limit_reset"]),
                        "X-RateLimit-Name": "events_submission"})
    headers.update({k: str(v) for k, v in fault.get("headers", {}).items()})
    if "body" in fault:
        return fault["body"], headers
    reason = http.client.responses.get(status, "Error")
    if status == 429:
        reason = "Too many requests"
    if kind == "webhook":
        return {"error": reason}, headers
    return {"status": "error", "code": status, "errors": [reason]}, headers


# ---- command line ------------------------------------------------------------------------

def write_atomically(path: str, text: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".port-")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def parse_listen(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"--listen wants HOST:PORT, not {value!r}")
    return host.strip("[]"), int(port)


def read_secret(path: str) -> bytes:
    """A secret file's content with trailing CR/LF dropped, as trailwatch reads it."""
    with open(path, "rb") as f:
        value = f.read().rstrip(b"\r\n")
    if not value.strip():
        raise SystemExit(f"receiver.py: secret file {path} is empty")
    return value


def serve(args) -> int:
    if args.api_key_sha256 and not re.fullmatch(r"[0-9a-fA-F]{64}", args.api_key_sha256):
        raise SystemExit("receiver.py: --api-key-sha256 wants 64 hex digits")
    host, port = args.listen
    receiver = Receiver(host, port, api_key_sha256=args.api_key_sha256,
                        webhook_secret=read_secret(args.webhook_secret_file) if args.webhook_secret_file else None,
                        control_port=bool(args.control_port_file), verbose=args.verbose).start()
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    if args.control_port_file:
        write_atomically(args.control_port_file, f"{receiver.control_port}\n")
    if args.port_file:
        write_atomically(args.port_file, f"{receiver.port}\n")
    print(f"receiver: listening on {host}:{receiver.port}"
          + (f", control on {host}:{receiver.control_port}" if receiver.control_port else ""),
          file=sys.stderr, flush=True)
    done.wait()
    receiver.stop()
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--listen", type=parse_listen, default=("127.0.0.1", 0), help="HOST:PORT (port 0: any)")
    p.add_argument("--port-file", help="write the chosen port here, atomically")
    p.add_argument("--control-port-file", help="also listen on a control-only port and write it here")
    p.add_argument("--api-key-sha256", help="hex SHA-256 of the DD-API-KEY to accept (default: any key)")
    p.add_argument("--webhook-secret-file", help="verify X-Trailwatch-Signature with this secret")
    p.add_argument("-v", "--verbose", action="store_true", help="log every request to stderr")
    p.add_argument("--self-test", action="store_true", help="run the built-in checks and exit")
    args = p.parse_args(argv)
    if args.self_test:
        return self_test()
    return serve(args)


# ---- self-test ---------------------------------------------------------------------------

def self_test() -> int:
    """Starts a receiver in-process and checks it end to end over loopback."""
    results = {"passed": 0, "failed": 0}

    def check(name: str, cond: bool, detail="") -> None:
        key = "passed" if cond else "failed"
        results[key] += 1
        print(f"{'ok  ' if cond else 'FAIL'} {name}" + ("" if cond else f": {detail}"), flush=True)

    tmp = tempfile.mkdtemp(prefix="receiver-selftest-")
    api_key = "dd-test-key-0123456789"
    secret = b"webhook-s3cret"
    with open(os.path.join(tmp, "secret"), "wb") as f:
        f.write(secret + b"\n")
    receiver = Receiver("127.0.0.1", 0, api_key_sha256=sha256_hex(api_key),
                        webhook_secret=read_secret(os.path.join(tmp, "secret")), control_port=True).start()
    port, cport = receiver.port, receiver.control_port
    write_atomically(os.path.join(tmp, "port"), f"{port}\n")

    def request(method, path, body=None, headers=None, conn=None, timeout=5.0, target_port=None):
        """(status, headers, parsed body); reuses ``conn`` when given (keep-alive)."""
        c = conn or http.client.HTTPConnection("127.0.0.1", target_port or port, timeout=timeout)
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        h = {"Content-Type": "application/json", **(headers or {})}
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        raw = r.read()
        if conn is None:
            c.close()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, parsed

    def control(method, name, obj=None):
        return request(method, CONTROL_PREFIX + name, obj, target_port=cport)[2]

    def post_event(body, key=api_key, conn=None, timeout=5.0):
        return request("POST", DD_EVENTS_PATH, body, {"DD-API-KEY": key} if key is not None else {}, conn, timeout)

    def last():
        return control("GET", "requests")["requests"][-1]

    def eventually(cond, limit=5.0) -> None:
        """Waits (bounded) for ``cond()``; the check that follows says whether it came."""
        deadline = time.monotonic() + limit
        while not cond() and time.monotonic() < deadline:
            time.sleep(0.05)

    def signed(body: bytes, t: int | None = None, key: bytes = secret) -> dict:
        t = int(time.time()) if t is None else t
        mac = hmac.new(key, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
        return {SIGNATURE_HEADER: f"t={t},v1={mac}"}

    now = int(time.time())
    good = {
        "title": "CloudTrail logging stopped", "text": "%%% \nStopLogging by alice\n %%%",
        "date_happened": now - 60, "alert_type": "error", "priority": "normal",
        "aggregation_key": "aws-cloudtrail-stop-logging", "source_type_name": "trailwatch",
        "tags": ["alert_id:tw-9f2c4e1a7b3d5e60", "rule:aws-cloudtrail-stop-logging", "severity:high"],
    }

    try:
        with open(os.path.join(tmp, "port")) as f:
            check("port file holds the port", f.read().strip() == str(port))

        # Datadog: a valid event, over one keep-alive connection.
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        st, _, body = post_event(good, conn=conn)
        check("valid event: 202", st == 202, st)
        check("valid event: Datadog-like body", body.get("status") == "ok"
              and body["event"]["tags"] == good["tags"] and isinstance(body["event"]["id"], int), body)
        rec = last()
        check("valid event: recorded accepted with its alert id",
              rec["outcome"] == "accepted" and rec["alert_id"] == "tw-9f2c4e1a7b3d5e60" and rec["problems"] == [], rec)
        check("DD-API-KEY is redacted to its SHA-256",
              rec["headers"]["dd-api-key"] == "sha256:" + sha256_hex(api_key)
              and api_key not in json.dumps(control("GET", "requests")), rec["headers"])
        check("request record: times, body", isinstance(rec["time_monotonic"], float)
              and abs(rec["time_wall"] - time.time()) < 5 and rec["body"] == good, rec)
        post_event({**good, "tags": ["alert_id:tw-0000000000000002"]}, conn=conn)
        check("keep-alive: one connection for both requests", last()["connection"] == rec["connection"])
        conn.close()
        acc = control("GET", "accepted")
        check("accepted counts per alert id",
              acc["accepted"] == {"tw-9f2c4e1a7b3d5e60": 1, "tw-0000000000000002": 1}, acc)

        # Datadog: one body breaking five rules, every violation recorded.
        bad = {"text": "x" * 4001, "alert_type": "bad", "tags": ["alert_id:tw-1", "nocolon"],
               "date_happened": str(now)}
        st, _, body = post_event(bad)
        check("invalid event: 400 with Datadog-like errors",
              st == 400 and body["status"] == "error" and len(body["errors"]) >= 5, (st, body))
        rec = last()
        by = {(p["field"], p["source"]) for p in rec["problems"]}
        for field, sources in (("text", (LIBRARY, DESIGN)), ("alert_type", (LIBRARY, DESIGN)),
                               ("title", (LIBRARY, DESIGN)), ("date_happened", (LIBRARY, DESIGN)),
                               ("tags", (DESIGN,))):
            check(f"invalid event: {field} flagged by {'+'.join(sources)}",
                  all((field, s) in by for s in sources), rec["problems"])
        check("invalid event: outcome rejected, not counted",
              rec["outcome"] == "rejected" and "tw-1" not in control("GET", "accepted")["accepted"], rec["outcome"])

        for name, change, field in (
            ("19 hours old", {"date_happened": now - 19 * 3600}, "date_happened"),
            ("aggregation_key of 101", {"aggregation_key": "k" * 101}, "aggregation_key"),
            ("priority high", {"priority": "high"}, "priority"),
            ("tags as a string", {"tags": "a:b"}, "tags"),
            ("date_happened a float", {"date_happened": now + 0.5}, "date_happened"),
            ("null host", {"host": None}, "host"),
            ("empty tag value", {"tags": ["alert_id:"]}, "tags"),
        ):
            st, _, _ = post_event({**good, **change})
            check(f"rejects {name}", st == 400 and any(p["field"] == field for p in last()["problems"]),
                  (st, last()["problems"]))
        st, _, _ = post_event(b"{not json")
        check("rejects a body that is not JSON", st == 400 and last()["body"] == "{not json", st)
        st, _, _ = post_event([good])
        check("rejects a JSON array", st == 400, st)
        st, _, _ = post_event({**good, "evt_name": "x", "tags": ["alert_id:tw-warn"]})
        check("unknown field: accepted with a warning",
              st == 202 and last()["warnings"][0]["field"] == "evt_name", (st, last()["warnings"]))
        st, _, _ = request("POST", DD_EVENTS_PATH, gzip.compress(json.dumps(good).encode()),
                           {"DD-API-KEY": api_key, "Content-Encoding": "gzip"})
        check("gzip body: accepted", st == 202 and last()["body"] == good, st)

        # API key.
        st, _, body = post_event(good, key="wrong-key")
        check("wrong API key: 403 with Datadog's body", st == 403 and body == DD_FORBIDDEN
              and last()["api_key"] == "wrong" and last()["outcome"] == "rejected", (st, body))
        st, _, body = post_event(good, key=None)
        check("missing API key: 403", st == 403 and last()["api_key"] == "missing", st)

        # Webhooks and their signature.
        payload = json.dumps({"alert": {"id": "tw-hook-1"}, "text": "x"}).encode()
        st, _, _ = request("POST", "/hook/torq", payload, signed(payload))
        rec = last()
        check("webhook: valid signature accepted", st == 200 and rec["outcome"] == "accepted"
              and rec["alert_id"] == "tw-hook-1" and rec["hook"] == "torq" and rec["signature"]["ok"], rec)
        st, _, body = request("POST", "/hook/torq", payload, signed(payload, key=b"other"))
        check("webhook: wrong signature 401 with reason", st == 401 and "mismatch" in body["error"]
              and "mismatch" in last()["signature"]["reason"], (st, body))
        st, _, body = request("POST", "/hook/torq", payload, signed(payload, t=int(time.time()) - 301))
        check("webhook: stale signature 401", st == 401 and "stale" in body["error"], (st, body))
        st, _, body = request("POST", "/hook/torq", payload)
        check("webhook: missing signature 401", st == 401 and "missing" in body["error"], (st, body))
        st, _, body = request("POST", "/hook/torq", payload, {SIGNATURE_HEADER: "v1=abc"})
        check("webhook: malformed signature 401", st == 401 and "malformed" in body["error"], (st, body))
        other = json.dumps({"id": "tw-top", "alert": {"id": "tw-nested"}}).encode()
        request("POST", "/hook/tines", other, signed(other))
        check("webhook: top-level id wins", last()["alert_id"] == "tw-top", last()["alert_id"])
        st, _, _ = request("POST", "/elsewhere", b"{}")
        check("unknown path: 404 recorded", st == 404 and last()["kind"] == "other", st)

        # Scripted status codes, in order, per prefix.
        before = control("GET", "accepted")["accepted"]["tw-9f2c4e1a7b3d5e60"]
        cfg = control("POST", "config", {"faults": [
            {"path": DD_EVENTS_PATH, "status": 429, "retry_after": 2},
            {"path": DD_EVENTS_PATH, "status": 429, "rate_limit_reset": 3},
            {"path": DD_EVENTS_PATH, "status": 500},
            {"path": DD_EVENTS_PATH, "status": 503},
            {"path": DD_EVENTS_PATH, "status": 400},
            {"path": "/hook/", "status": 500, "count": 2},
        ]})
        check("config: six faults queued", len(cfg["faults"]) == 6, cfg)
        st, h, _ = post_event(good)
        check("fault 1: 429 Retry-After", st == 429 and h.get("retry-after") == "2", (st, h))
        st, _, _ = request("POST", "/hook/a", payload, signed(payload))
        check("hook prefix has its own queue", st == 500, st)
        st, h, _ = post_event(good)
        check("fault 2: 429 X-RateLimit-Reset", st == 429 and h.get("x-ratelimit-reset") == "3", (st, h))
        st, _, _ = post_event(good)
        check("fault 3: 500", st == 500, st)
        st, _, _ = post_event(good)
        check("fault 4: 503", st == 503, st)
        st, _, body = post_event(good)
        check("fault 5: 400 with a JSON error body", st == 400 and body["errors"], (st, body))
        rec = last()
        check("fault recorded as injected_fault, still validated",
              rec["outcome"] == "injected_fault" and rec["fault"]["status"] == 400 and rec["problems"] == [], rec)
        st, _, _ = request("POST", "/hook/b", payload, signed(payload))
        check("hook fault count 2", st == 500, st)
        st, _, _ = post_event(good)
        check("queue used up: normal answer again", st == 202, st)
        check("faults are not counted as accepted",
              control("GET", "accepted")["accepted"]["tw-9f2c4e1a7b3d5e60"] == before + 1, control("GET", "accepted"))

        # Timeout: the client gives up first.
        control("POST", "config", {"faults": [{"path": DD_EVENTS_PATH, "action": "timeout", "seconds": 1.0}]})
        t0 = time.monotonic()
        slow = http.client.HTTPConnection("127.0.0.1", port, timeout=0.3)  # kept open: sees the late answer
        try:
            post_event({**good, "tags": ["alert_id:tw-slow"]}, conn=slow)
            check("timeout: client times out", False, "answered")
        except (TimeoutError, socket.timeout):
            check("timeout: client times out", time.monotonic() - t0 < 1.0)
        rec = last()
        check("timeout: recorded timed_out at once", rec["outcome"] == "timed_out" and rec["status"] is None
              and rec["processed_as"] == "accepted", rec)
        acc = control("GET", "accepted")
        check("timeout: counted as timed_out, not accepted",
              acc["timed_out"] == {"tw-slow": 1} and "tw-slow" not in acc["accepted"], acc)
        eventually(lambda: last()["status"] is not None)
        check("timeout: late answer written after the sleep",
              last()["status"] == 202 and last()["answer_error"] is None, last())
        slow.close()
        control("POST", "config", {"faults": [{"path": DD_EVENTS_PATH, "action": "timeout", "seconds": 30}]})
        raw_body = json.dumps(good).encode()
        seen = len(control("GET", "requests")["requests"])
        sock = socket.create_connection(("127.0.0.1", port), timeout=3)
        sock.sendall(f"POST {DD_EVENTS_PATH} HTTP/1.1\r\nHost: x\r\nDD-API-KEY: {api_key}\r\n"
                     f"Content-Type: application/json\r\nContent-Length: {len(raw_body)}\r\n\r\n".encode() + raw_body)
        deadline = time.monotonic() + 3
        while len(control("GET", "requests")["requests"]) == seen and time.monotonic() < deadline:
            time.sleep(0.02)
        t0 = time.monotonic()
        control("POST", "reset")
        got = sock.recv(100)
        sock.close()
        check("timeout: a reset cuts the sleep short and closes without an answer",
              got == b"" and time.monotonic() - t0 < 2, (got, time.monotonic() - t0))
        check("timeout: a reset forgets the timed-out request too", control("GET", "requests")["requests"] == [])

        # Close: no answer at all.
        control("POST", "config", {"faults": [{"path": DD_EVENTS_PATH, "action": "close"}]})
        try:
            post_event(good)
            check("close: no answer", False, "answered")
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            check("close: no answer", True)
        check("close: recorded closed", last()["outcome"] == "closed" and last()["status"] is None, last())

        # Down and up on the same port.
        idle = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        post_event(good, conn=idle)
        cfg = control("POST", "config", {"down": True})
        check("down: config says so", cfg["down"] is True, cfg)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            check("down: connections refused", False, "connected")
        except ConnectionRefusedError:
            check("down: connections refused", True)
        try:
            post_event(good, conn=idle)
            check("down: idle keep-alive connection cut", False, "answered")
        except (http.client.RemoteDisconnected, ConnectionError, http.client.CannotSendRequest, OSError):
            check("down: idle keep-alive connection cut", True)
        idle.close()
        cfg = control("POST", "config", {"down": False})
        st, _, _ = post_event(good)
        check("up: same port answers again", st == 202 and not cfg["down"]
              and control("GET", "health")["port"] == port, st)
        control("POST", "config", {"down": True, "down_for": 0.3})
        refused = False
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        except ConnectionRefusedError:
            refused = True
        eventually(lambda: not control("GET", "health")["down"])
        st, _, _ = post_event(good)
        check("down_for: refused, then up by itself", refused and st == 202, (refused, st))
        st, _, body = request("POST", CONTROL_PREFIX + "config", {"down": True})
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            refused = False
        except ConnectionRefusedError:
            refused = True
        check("down via the main port: answered, then refused", st == 200 and body["down"] and refused, (st, body))
        control("POST", "reset")
        st, _, _ = post_event(good)
        check("reset brings it up", st == 202, st)

        # Control API errors and reset.
        check("config: unknown field rejected",
              request("POST", CONTROL_PREFIX + "config", {"nope": 1}, target_port=cport)[0] == 400)
        check("config: bad fault rejected",
              request("POST", CONTROL_PREFIX + "config", {"faults": [{"path": "/x", "action": "explode"}]},
                      target_port=cport)[0] == 400)
        check("control port serves control paths only",
              request("POST", DD_EVENTS_PATH, good, target_port=cport)[0] == 404)
        control("POST", "config", {"faults": [{"path": "/", "status": 500}]})
        control("POST", "reset")
        got = control("GET", "requests")
        check("reset: requests, counts and faults gone",
              got["requests"] == [] and control("GET", "accepted")["accepted"] == {}
              and control("GET", "config")["faults"] == [], got)
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("POST", DD_EVENTS_PATH, body=iter([json.dumps(good).encode()]),
                  headers={"DD-API-KEY": api_key, "Content-Type": "application/json"}, encode_chunked=True)
        st = c.getresponse().status
        c.close()
        check("chunked body: accepted", st == 202 and last()["body"] == good, st)
    finally:
        receiver.stop()

    print(f"self-test: {results['passed']} passed, {results['failed']} failed")
    return 0 if results["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
