#!/usr/bin/env python3
"""The peers of issue 7's benchmark, and the check that every tool found the same matches.

    .venv-conformance/bin/python scripts/bench_peers.py duckdb [--sigma-semantics] \\
        RULES_DIR RECORDS_JSONL OUT_MATCHES
    .venv-conformance/bin/python scripts/bench_peers.py rsigma RSIGMA_BIN \\
        RULES_DIR RECORDS_JSONL OUT_MATCHES
    .venv-conformance/bin/python scripts/bench_peers.py trailwatch [--rules RULES_DIR] \\
        ALERTS_JSONL OUT_MATCHES
    .venv-conformance/bin/python scripts/bench_peers.py compare RULES_DIR \\
        [NAME=]A.matches [NAME=]B.matches [...]

Run it with the venv of the conformance test (scripts/pyenv.sh builds it): the
`duckdb` runner needs pySigma, pySigma-backend-duckdb and duckdb at the versions pinned
in tests/conformance/requirements.txt, and every subcommand reads rule ids with PyYAML.
Nothing else beyond the standard library is used.

RECORDS_JSONL holds CloudTrail records already decompressed, one compact JSON object a
line. The benchmark times the `duckdb` and `rsigma` subcommands as whole processes
(/usr/bin/time), so each loads and evaluates, then only writes its matches; nothing
else. Both exit 1 when the tool failed or (duckdb) a rule could not be run.

Matches files
-------------
OUT_MATCHES is text, one line per match: `<Sigma rule id>\\t<eventID>`, sorted and
unique, restricted to the rules of RULES_DIR (every `*.yml` in it, not recursive; the
rule id is the Sigma `id:`, else the title). A record without an eventID gives an empty
second column.

duckdb: pySigma's DuckDB backend
--------------------------------
Each rule is converted to SQL by pySigma-backend-duckdb (`SELECT * FROM logs WHERE ...`,
a field `userIdentity.arn` being the column "userIdentity.arn"); `--sigma-semantics`
uses the corrected backend of tests/conformance/sigma_duckdb.py (null-safe NOT,
case-insensitive escaped string matching; see tests/conformance/README.md). The records
are loaded by DuckDB itself, never by a Python loop: one pass of `read_ndjson_objects`
over the file builds the table `logs` with one VARCHAR column per field that some rule
names, all of them taken from a single `json_extract_string(json, [path, ...])` call so
that each record is parsed once (one call per column parses it once per column: ten
times slower). The columns hold what the conformance harness stores:

* a string as it is; true/false; a number as its JSON text; JSON null or an absent key
  as NULL; an object or an array as compact JSON text (which is what DuckDB's
  json_extract_string returns for them);
* a path that crosses an array (`requestParameters.containerDefinitions.command`,
  `containerDefinitions` being an array of objects) holds the JSON array text of the
  values found in every element, nested arrays spliced in (two levels deep), nulls
  dropped, NULL when none is found. It is computed, with `[*]` JSONPath wildcards, only
  for the rows where some prefix of the path is an array.

Over the 1,086 records of ../shared/datasets every column equals the harness's text.
Two differences from the harness remain, neither met there: a key that itself contains
a dot is not found by the dotted path, and an array nested directly in an array is not
descended into when a path crosses it. Then every
rule's queries run over `logs`, each adding its rows to a table of matches, and the
matches are written. Rules DuckDB cannot parse, convert or run are reported on stderr
and have no matches (so `compare` shows them). The summary on stderr gives the records
read and the matches found.

rsigma: the rsigma command-line tool
------------------------------------
    RSIGMA_BIN engine eval --rules RULES_DIR --event @RECORDS_JSONL --input-format json
        --include-event --output-format ndjson --config /dev/null

prints one JSON object per match: rule_title, rule_id, level, tags, matched_selections,
matched_fields and, asked for with --include-event since nothing else in a match says
which record it was, the whole record as `event` (re-serialised, keys sorted). rsigma's
own lines ("Loaded 57 rules from ...", "Processed N events, M matches.") go to stderr
and are passed through. The script reads rsigma's output as it comes (on the other
core) and keeps rule_id and event.eventID. `--config /dev/null` (an empty config) keeps
rsigma from reading a config file found on the machine (/etc/rsigma/config.yaml,
~/.config/rsigma/config.yaml, .rsigmarc, ./rsigma.yaml). rsigma evaluates every rule on
one thread.

rsigma differs from trailwatch in one way: a field whose value is an object
(`requestParameters|contains: 'Suspended'`) never matches a string pattern in rsigma,
while trailwatch and the DuckDB harness match the object's compact JSON text.
KNOWN_DIFFERENCES lists the three SigmaHQ rules concerned.

trailwatch: scan alerts
-----------------------
Reads `trailwatch scan --format jsonl` output and keeps (rule.id, event.id) of every
alert from a rule file (`rule.source` other than "builtin"), or with --rules only those
of the rules in that directory.

compare
-------
Loads every matches file, prints the number of matches of each rule of RULES_DIR side
by side, then every (rule, eventID) that not all the tools found, with the tools that
found it and those that did not. Lines of rules outside RULES_DIR are counted and
ignored. NAME defaults to the file name without `.matches`; KNOWN_DIFFERENCES refers to
tools by name, so call them trailwatch, duckdb (--sigma-semantics), duckdb-stock
(the backend's own SQL) and rsigma. A difference is explained when the tools on the
smaller side of it (those alone in finding, or alone in missing, the record) include
one that KNOWN_DIFFERENCES lists for that rule; it is still printed, with its reason.
Exit 0 when every difference is explained, 1 otherwise.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HARNESS_DIR = REPO / "tests" / "conformance"

# Column holding the record's eventID; cannot clash with a CloudTrail field.
EVENT_ID_COLUMN = "__trailwatch_event_id"

# (tool name as given to `compare`, Sigma rule id, why that tool differs on that rule).
# Each entry explains the differences of that rule in which the named tool is on the
# smaller side (it alone finds, or alone misses, a record).
KNOWN_DIFFERENCES: list[tuple[str, str, str]] = [
    # The DuckDB backend without --sigma-semantics (tests/conformance/README.md).
    ("duckdb-stock", "77caf516-34e5-4df9-b4db-20744fea0a60",
     "aws_cloudtrail_console_login_success_without_mfa: the rule says MFAUsed: 'NO', "
     "CloudTrail writes 'No'; the backend renders Sigma's case-insensitive equality as "
     "SQL '=', which is case-sensitive"),
    ("duckdb-stock", "055fb148-60f8-462d-ad16-26926ce050f1",
     "aws_update_login_profile: `not filter` with the fieldref's field absent; SQL's "
     "three-valued NOT NULL drops the record, Sigma's negation of a false filter is true"),
    # rsigma 0.23.0: an object-valued field reaches the matchers as EventValue::Map, for
    # which rsigma-eval's string matching (match_str_value_ref in src/matcher/helpers.rs)
    # is always false; trailwatch and the harness match an object as its compact JSON text.
    ("rsigma", "a136ac98-b2bc-4189-a14d-f0d0388e57a7",
     "aws_disable_bucket_versioning: `requestParameters|contains: 'Suspended'` tests an "
     "object; rsigma matches no string pattern against an object, so it misses records "
     "whose requestParameters.VersioningConfiguration.Status is Suspended"),
    ("rsigma", "54b9a76a-3c71-4673-b4b3-2edb4566ea7b",
     "aws_ec2_vm_export_failure: filter `responseElements|contains: 'Failure'` tests an "
     "object; rsigma never matches it, so `not 1 of filter*` lets failed exports through"),
    ("rsigma", "db014773-7375-4f4e-b83b-133337c0ffee",
     "aws_iam_s3browser_templated_s3_bucket_policy_creation: `requestParameters|contains|all` "
     "tests an object; rsigma matches no string pattern against an object"),
]


# --------------------------------------------------------------------------- rules


def rule_key(rule_id: object, title: object, fallback: str) -> str:
    """The name a rule is known by in matches files: its id, else its title."""
    return str(rule_id) if rule_id else str(title) if title else fallback


def rule_index(rules_dir: Path) -> dict[str, str]:
    """Rule key -> file name, for every rule document of every `*.yml` in rules_dir."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when PyYAML has it
    index: dict[str, str] = {}
    for path in sorted(rules_dir.glob("*.yml")):
        for doc in yaml.load_all(path.read_text(encoding="utf-8"), Loader=loader):
            if isinstance(doc, dict) and ("detection" in doc or "id" in doc):
                index.setdefault(rule_key(doc.get("id"), doc.get("title"), path.name),
                                 path.name)
    return index


def write_matches(out: Path, matches: set[tuple[str, str]]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as f:
        f.writelines(f"{rule}\t{event_id}\n" for rule, event_id in sorted(matches))


def read_matches(path: Path) -> set[tuple[str, str]]:
    matches = set()
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line:
                continue
            rule, sep, event_id = line.partition("\t")
            if not sep:
                raise SystemExit(f"{path}:{n}: not `<rule id>\\t<eventID>`: {line!r}")
            matches.add((rule, event_id))
    return matches


# --------------------------------------------------------------------------- duckdb


def sql_string(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def sql_ident(s: str) -> str:
    return '"' + s.replace('"', '""') + '"'


def json_path(segments: list[str], wildcards: frozenset[int] = frozenset()) -> str:
    """DuckDB JSONPath of dotted segments; `[*]` after the segments numbered in wildcards."""
    parts = ["$"]
    for i, segment in enumerate(segments):
        parts.append("." + '"' + segment.replace('"', '\\"') + '"')
        if i in wildcards:
            parts.append("[*]")
    return "".join(parts)


def load_sql(records: Path, fields: list[str]) -> str:
    """The CREATE TABLE logs statement: one pass over the file, each record parsed once.

    Every field and every proper prefix of a dotted field is extracted by one
    multi-path json_extract_string. A dotted field whose prefix is an array in a row
    is computed for that row from wildcard paths instead (see the module docstring).
    """
    paths: list[list[str]] = [["eventID"]]
    position: dict[tuple[str, ...], int] = {("eventID",): 1}

    def slot(segments: list[str]) -> int:
        key = tuple(segments)
        if key not in position:
            paths.append(segments)
            position[key] = len(paths)  # DuckDB lists are 1-based
        return position[key]

    for field in fields:
        segments = field.split(".")
        slot(segments)
        for k in range(1, len(segments)):
            slot(segments[:k])

    def splice(values: str) -> str:  # one level of nested arrays spread into the list
        return ("flatten(list_transform(" + values + ", lambda x: CASE WHEN "
                "json_type(x) = 'ARRAY' THEN json_extract(x, '$[*]') ELSE [x] END))")

    columns = [f"v[1] AS {sql_ident(EVENT_ID_COLUMN)}"]
    for field in fields:
        segments = field.split(".")
        direct = f"v[{position[tuple(segments)]}]"
        if len(segments) == 1:
            columns.append(f"{direct} AS {sql_ident(field)}")
            continue
        # Some prefix is an array: the direct path is NULL there, collect through it.
        prefix_is_array = " OR ".join(
            f"starts_with(v[{position[tuple(segments[:k])]}], '[')"
            for k in range(1, len(segments)))
        lists = [f"json_extract(json, {sql_string(json_path(segments, frozenset(w)))})"
                 for r in range(1, len(segments))
                 for w in itertools.combinations(range(len(segments) - 1), r)]
        found = "flatten([" + ", ".join(lists) + "])"
        values = (f"list_filter({splice(splice(found))}, "
                  "lambda x: json_type(x) <> 'NULL')")
        crossed = f"nullif(to_json({values})::VARCHAR, '[]')"
        columns.append(f"CASE WHEN {prefix_is_array} THEN {crossed} ELSE {direct} END "
                       f"AS {sql_ident(field)}")

    extract = ("json_extract_string(json, ["
               + ", ".join(sql_string(json_path(p)) for p in paths) + "])")
    return (f"CREATE TABLE logs AS SELECT {', '.join(columns)} FROM "
            f"(SELECT json, {extract} AS v FROM read_ndjson_objects("
            f"{sql_string(str(records))}, format = 'newline_delimited'))")


def cmd_duckdb(args: argparse.Namespace) -> int:
    started = time.monotonic()
    import duckdb
    from sigma.collection import SigmaCollection
    from sigma.rule import SigmaRule

    sys.path.insert(0, str(HARNESS_DIR))
    from sigma_duckdb import make_backend, referenced_fields  # the conformance harness

    backend = make_backend(args.sigma_semantics)
    if backend.table != "logs":
        raise SystemExit(f"the backend selects from {backend.table!r}, expected 'logs'")

    # Convert every rule; (key, file, [queries]) for those that converted.
    rules: list[tuple[str, str, list[str]]] = []
    fields: dict[str, str] = {}  # lower-cased -> as written (DuckDB names ignore case)
    failed = 0
    for path in sorted(args.rules_dir.glob("*.yml")):
        collection = SigmaCollection.from_yaml(path.read_text(encoding="utf-8"),
                                               collect_errors=True)
        problems = [str(e) for e in collection.errors]
        if not collection.rules:
            print(f"duckdb: {path.name}: not loaded: {'; '.join(problems)}", file=sys.stderr)
            failed += 1
            continue
        for rule in collection.rules:
            key = rule_key(rule.id, rule.title, path.name)
            try:
                if problems or not isinstance(rule, SigmaRule):
                    raise ValueError("; ".join(problems) or f"{type(rule).__name__} rule")
                queries = [str(q) for q in backend.convert_rule(rule)]
                names = referenced_fields(rule)
                for name in names:
                    taken = fields.get(name.lower(), name)
                    if taken != name:
                        raise ValueError(f"field {name!r} differs from {taken!r} of another "
                                         "rule only by case (DuckDB names ignore case)")
            except Exception as exc:
                print(f"duckdb: {path.name}: {key}: {type(exc).__name__}: {exc}",
                      file=sys.stderr)
                failed += 1
                continue
            for name in names:
                fields.setdefault(name.lower(), name)
            rules.append((key, path.name, queries))

    con = duckdb.connect(":memory:")
    con.execute(load_sql(args.records, sorted(fields.values())))
    (records,) = con.execute("SELECT count(*) FROM logs").fetchone()
    loaded = time.monotonic()

    con.execute("CREATE TABLE matches (rule VARCHAR, event_id VARCHAR)")
    for key, file, queries in rules:
        try:
            for query in queries:
                con.execute(f"INSERT INTO matches SELECT ?, {sql_ident(EVENT_ID_COLUMN)} "
                            f"FROM ({query}) AS matched", [key])
        except Exception as exc:
            print(f"duckdb: {file}: {key}: run: {type(exc).__name__}: {exc}", file=sys.stderr)
            failed += 1
    rows = con.execute("SELECT DISTINCT rule, coalesce(event_id, '') FROM matches").fetchall()
    write_matches(args.out, set(rows))
    finished = time.monotonic()

    print(f"duckdb ({'sigma-semantics' if args.sigma_semantics else 'stock'}): "
          f"read {records} records, {len(rows)} matches; {len(rules)} rules ran, "
          f"{failed} failed; load {loaded - started:.2f}s, queries {finished - loaded:.2f}s",
          file=sys.stderr)
    return 1 if failed else 0


# --------------------------------------------------------------------------- rsigma


def cmd_rsigma(args: argparse.Namespace) -> int:
    keep = rule_index(args.rules_dir)
    command = [str(args.rsigma_bin), "engine", "eval",
               "--rules", str(args.rules_dir),
               "--event", f"@{args.records}",
               "--input-format", "json",
               "--include-event",
               "--output-format", "ndjson",
               "--config", os.devnull]
    matches: set[tuple[str, str]] = set()
    outside = 0
    with subprocess.Popen(command, stdout=subprocess.PIPE, bufsize=1 << 20) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            result = json.loads(line)
            if "matched_fields" not in result:  # a correlation firing
                continue
            key = rule_key(result.get("rule_id"), result.get("rule_title"), "?")
            if key not in keep:
                outside += 1
                continue
            event = result.get("event") or {}
            matches.add((key, str(event.get("eventID") or "")))
    if proc.returncode != 0:
        print(f"rsigma: exit {proc.returncode}: {' '.join(command)}", file=sys.stderr)
        return 1
    write_matches(args.out, matches)
    if outside:
        print(f"rsigma: {outside} matches of rules outside {args.rules_dir} ignored",
              file=sys.stderr)
    return 0


# --------------------------------------------------------------------------- trailwatch


def cmd_trailwatch(args: argparse.Namespace) -> int:
    keep = rule_index(args.rules) if args.rules else None
    matches: set[tuple[str, str]] = set()
    skipped = 0
    with args.alerts.open(encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            alert = json.loads(line)
            rule, event = alert["rule"], alert.get("event") or {}
            wanted = rule["id"] in keep if keep is not None else rule.get("source") != "builtin"
            if not wanted:
                skipped += 1
                continue
            matches.add((rule["id"], str(event.get("id") or "")))
    write_matches(args.out, matches)
    print(f"trailwatch: {len(matches)} matches ({skipped} alerts of other rules left out)",
          file=sys.stderr)
    return 0


# --------------------------------------------------------------------------- compare


def cmd_compare(args: argparse.Namespace) -> int:
    index = rule_index(args.rules_dir)
    tools: dict[str, set[tuple[str, str]]] = {}
    for spec in args.matches:
        name, sep, path = spec.partition("=")
        if not sep:
            path, name = spec, Path(spec).name.removesuffix(".matches")
        if name in tools:
            raise SystemExit(f"two matches files named {name!r}; use NAME=PATH")
        found = read_matches(Path(path))
        outside = {m for m in found if m[0] not in index}
        if outside:
            print(f"{name}: {len(outside)} matches of rules outside {args.rules_dir} ignored")
        tools[name] = found - outside
    names = list(tools)

    # Per-rule counts side by side.
    width = max([len("rule file")] + [len(f) for f in index.values()])
    print(f"{'rule file':<{width}}  " + "  ".join(f"{n:>10}" for n in names))
    for key, file in sorted(index.items(), key=lambda kv: kv[1]):
        counts = [sum(1 for m in tools[n] if m[0] == key) for n in names]
        differs = any(c != counts[0] for c in counts)
        print(f"{file:<{width}}  " + "  ".join(f"{c:>10}" for c in counts)
              + ("  <- differs" if differs else ""))
    print(f"{'total':<{width}}  " + "  ".join(f"{len(tools[n]):>10}" for n in names))

    # Every (rule, eventID) that not every tool found.
    known = {(tool, rule): why for tool, rule, why in KNOWN_DIFFERENCES}
    everything = set().union(*tools.values())
    unexplained = explained = 0
    reasons_used: dict[str, str] = {}
    for rule, event_id in sorted(everything, key=lambda m: (index[m[0]], m[1])):
        have = [n for n in names if (rule, event_id) in tools[n]]
        lack = [n for n in names if n not in have]
        if not lack:
            continue
        smaller = have if len(have) < len(lack) else lack if len(lack) < len(have) else names
        why = next((known[(t, rule)] for t in smaller if (t, rule) in known), None)
        tag = "known" if why else "DIFFERS"
        print(f"{tag}: {index[rule]} ({rule}) eventID {event_id}: "
              f"found by {', '.join(have)}; not by {', '.join(lack)}")
        if why:
            explained += 1
            reasons_used[index[rule]] = why
        else:
            unexplained += 1
    for file, why in sorted(reasons_used.items()):
        print(f"known difference, {file}: {why}")
    print(f"{len(everything)} distinct matches; {unexplained} unexplained differences, "
          f"{explained} explained")
    return 1 if unexplained else 0


# --------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("duckdb", help="pySigma's DuckDB backend over JSON lines")
    p.add_argument("--sigma-semantics", action="store_true",
                   help="null-safe NOT and case-insensitive escaped string matching "
                        "(tests/conformance/sigma_duckdb.py) instead of the stock SQL")
    p.add_argument("rules_dir", type=Path)
    p.add_argument("records", type=Path)
    p.add_argument("out", type=Path)
    p.set_defaults(run=cmd_duckdb)

    p = sub.add_parser("rsigma", help="`rsigma engine eval` over JSON lines")
    p.add_argument("rsigma_bin", type=Path)
    p.add_argument("rules_dir", type=Path)
    p.add_argument("records", type=Path)
    p.add_argument("out", type=Path)
    p.set_defaults(run=cmd_rsigma)

    p = sub.add_parser("trailwatch", help="matches of `trailwatch scan --format jsonl` alerts")
    p.add_argument("--rules", type=Path, help="keep only the rules of this directory")
    p.add_argument("alerts", type=Path)
    p.add_argument("out", type=Path)
    p.set_defaults(run=cmd_trailwatch)

    p = sub.add_parser("compare", help="per-rule counts and every difference")
    p.add_argument("rules_dir", type=Path)
    p.add_argument("matches", nargs="+", metavar="[NAME=]FILE")
    p.set_defaults(run=cmd_compare)

    args = parser.parse_args()
    return args.run(args)


if __name__ == "__main__":
    warnings.simplefilter("ignore")  # pySigma's deprecation warnings about rule features
    sys.exit(main())
