#!/usr/bin/env python3
"""Reference Sigma evaluation of CloudTrail records with pySigma's DuckDB backend.

Usage:
    sigma_duckdb.py [--sigma-semantics] RULES_DIR RECORDS_JSONL OUT_JSON

RULES_DIR      directory of Sigma rules (every ``*.yml`` file in it, not recursive)
RECORDS_JSONL  one CloudTrail record (a JSON object) per line; line N (0-based) is row N
OUT_JSON       written as
               {"meta": {...},
                "rules": {"<rule id, else title>": {"title": ..., "file": ...,
                                                     "query": <SQL or null>,
                                                     "rows": [sorted row numbers],
                                                     "error": null | "<why>"}}}

Every rule found in RULES_DIR appears under "rules". A rule that cannot be parsed,
converted or run has ``"rows": []`` and its error text, never silently dropped.

This is the independent half of trailwatch's conformance test: the Rust engine's
matches are compared with what pySigma + DuckDB make of the same rules and records.

How records become a table
--------------------------
The backend renders a Sigma field ``userIdentity.arn`` as the quoted column
``"userIdentity.arn"`` (a single column whose name contains a dot; names that are
plain ``[A-Za-z0-9_]+`` are left unquoted) and every query as
``SELECT * FROM logs WHERE ...``. So the records are loaded into a table ``logs``
with one VARCHAR column per field that any rule references, plus the row number.
Only referenced fields become columns: DuckDB identifiers are case-insensitive,
and real records carry keys that differ only by case (``eventName`` / ``eventname``),
so a table of every flattened key could not be built. A referenced field missing
from a record is NULL in that row, so a missing column never breaks a query.

Each record is flattened (keys matched case-sensitively, joined with '.'):

* a string is stored as it is; ``true``/``false`` as those words; a number as its
  JSON text (Python's ``json`` formatting); JSON ``null`` as SQL NULL;
* an object is descended into, AND the object itself is stored, as compact JSON
  text (``{"k":"v",...}``), under its own path: SigmaHQ rules such as
  ``requestParameters|contains: 'Suspended'`` search a whole object as text;
* an array is stored, under its own path, as compact JSON text of its elements
  (``requestParameters.layers`` -> ``["arn:...:1"]``);
* a path that goes THROUGH an array (``requestParameters.containerDefinitions.command``
  where ``containerDefinitions`` is an array of objects) collects the value found in
  every element, splices nested arrays in, and stores the result as JSON array text
  (``["sh","-c","curl ..."]``). Nothing is stored when no element has the key.

So whenever an array is involved the column is JSON text: ``contains``/wildcard
patterns then behave close to "any element matches" (the Rust engine's rule for
paths that cross an array), while plain equality against a single element does
not match, an empty array is the non-NULL text ``[]``, and JSON escaping (``\\"``)
is visible to patterns. Rules touching such paths can therefore legitimately
differ from the Rust engine.

Modes
-----
By default the backend's SQL is used exactly as generated (see README.md for its
quirks). ``--sigma-semantics`` subclasses the backend to remove the SQL-isms that
disagree with the Sigma specification:

* ``NOT x`` becomes ``NOT coalesce(x, false)``: with SQL's three-valued logic a
  condition on a missing (NULL) field is NULL, and ``NOT NULL`` is NULL, so
  ``selection and not filter`` never matches a record that lacks the filter's field;
* every string match (plain equality included) becomes a case-insensitive
  ``ILIKE ... ESCAPE '\\'`` with literal ``%``, ``_`` and ``\\`` escaped; by default
  plain equality is a case-sensitive ``=`` and a literal ``%``/``_`` in a value acts
  as a LIKE wildcard;
* a ``'`` inside a regular expression is doubled (by default it ends the SQL string).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from importlib.metadata import version
from pathlib import Path
from typing import Any, Iterable

import duckdb
import yaml
from sigma.collection import SigmaCollection
from sigma.conditions import ConditionNOT
from sigma.conversion.state import ConversionState
from sigma.processing.pipeline import ProcessingPipeline
from sigma.rule import SigmaDetection, SigmaRule
from sigma.types import SigmaFieldReference
from sigma_backend_duckdb import DuckDBBackend

# Name of the row-number column; chosen so that it cannot clash with a CloudTrail field.
ROW_COLUMN = "__trailwatch_row"


# --------------------------------------------------------------------------- backend


class SigmaSemanticsDuckDBBackend(DuckDBBackend):
    """The DuckDB backend with its SQL-specific deviations from Sigma removed.

    Only used with --sigma-semantics; see the module docstring.
    """

    def convert_condition_not(self, cond: ConditionNOT, state: ConversionState) -> Any:
        # Two-valued logic: a predicate on a NULL field is false, so its negation is true.
        converted = super().convert_condition_not(cond, state)
        prefix = self.not_token + self.token_separator
        if isinstance(converted, str) and converted.startswith(prefix):
            return f"{prefix}coalesce({converted[len(prefix):]}, false)"
        return converted

    def convert_condition_field_eq_val_str(self, cond, state: ConversionState) -> Any:
        # Sigma string matching is case-insensitive and only * and ? are wildcards
        # (the modifiers contains/startswith/endswith have already added the *).
        pattern = cond.value.convert(
            escape_char="\\", wildcard_multi="%", wildcard_single="_", add_escaped="\\"
        ).replace("'", "''")
        return f"{self.escape_and_quote_field(cond.field)} ILIKE '{pattern}' ESCAPE '\\'"

    def convert_value_re(self, r, state: ConversionState) -> Any:
        # The stock backend puts a regex between single quotes without doubling the
        # quotes inside it, so a regex containing ' is a SQL syntax error.
        return super().convert_value_re(r, state).replace("'", "''")


def make_backend(sigma_semantics: bool) -> DuckDBBackend:
    # An empty pipeline: Sigma field names are used verbatim as column names (the
    # backend's default pipeline is meant for Sysmon and is empty too, but say so).
    cls = SigmaSemanticsDuckDBBackend if sigma_semantics else DuckDBBackend
    return cls(processing_pipeline=ProcessingPipeline())


# --------------------------------------------------------------------------- records


def scalar_text(value: Any) -> str:
    """Text stored for a JSON scalar (never called with None)."""
    if isinstance(value, str):
        return value
    # bool must come before numbers (bool is an int in Python); json gives true/false.
    return json.dumps(value)


def json_text(value: Any) -> str:
    """Compact JSON text, as CloudTrail writes it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def splice(values: Iterable[Any]) -> list[Any]:
    """Flatten nested lists (the elements of arrays met on the way become one list)."""
    out: list[Any] = []
    for v in values:
        if isinstance(v, list):
            out.extend(splice(v))
        else:
            out.append(v)
    return out


def flatten(record: dict) -> dict[str, str | None]:
    """Map every dotted path of a record to the text stored in its column.

    See the module docstring for the rules; paths that cross an array, or that
    are reached twice (a key containing a dot colliding with a nested path),
    hold JSON array text of all the values found.
    """
    found: dict[str, list[Any]] = {}
    crossed: set[str] = set()

    def visit(node: Any, path: str, through_array: bool) -> None:
        if path:
            found.setdefault(path, []).append(node)
            if through_array:
                crossed.add(path)
        if isinstance(node, dict):
            for key, child in node.items():
                visit(child, f"{path}.{key}" if path else key, through_array)
        elif isinstance(node, list):
            # The array itself is recorded above; descend into the keys of its
            # object elements (and of arrays nested in it) under the same path.
            stack = list(node)
            while stack:
                element = stack.pop(0)
                if isinstance(element, dict):
                    for key, child in element.items():
                        visit(child, f"{path}.{key}", True)
                elif isinstance(element, list):
                    stack[0:0] = element

    visit(record, "", False)

    flat: dict[str, str | None] = {}
    for path, values in found.items():
        if path in crossed or len(values) > 1:
            values = [v for v in splice(values) if v is not None]
            flat[path] = json_text(values) if values else None
        else:
            (value,) = values
            if value is None:
                flat[path] = None
            elif isinstance(value, (dict, list)):
                flat[path] = json_text(value)
            else:
                flat[path] = scalar_text(value)
    return flat


def load_records(con: duckdb.DuckDBPyConnection, table: str, records_path: Path,
                 columns: list[str], scratch: Path) -> int:
    """Create `table` with ROW_COLUMN plus one VARCHAR column per name in `columns`."""
    wanted = set(columns)
    staged = scratch / "rows.jsonl"
    count = 0
    with records_path.open(encoding="utf-8") as src, staged.open("w", encoding="utf-8") as dst:
        for line_no, line in enumerate(src):
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SystemExit(f"{records_path}:{line_no + 1}: not JSON: {exc}")
            if not isinstance(record, dict):
                raise SystemExit(f"{records_path}:{line_no + 1}: not a JSON object")
            row = {k: v for k, v in flatten(record).items() if k in wanted}
            row[ROW_COLUMN] = line_no
            dst.write(json_text(row) + "\n")
            count += 1

    # Explicit column types: nothing is inferred, absent keys become NULL.
    def sql_str(s: str) -> str:
        return "'" + s.replace("'", "''") + "'"

    spec = ", ".join([f"{sql_str(ROW_COLUMN)}: 'BIGINT'"]
                     + [f"{sql_str(c)}: 'VARCHAR'" for c in columns])
    con.execute(
        f'CREATE TABLE "{table}" AS SELECT * FROM read_json({sql_str(str(staged))}, '
        f"format = 'newline_delimited', columns = {{{spec}}})"
    )
    return count


# --------------------------------------------------------------------------- rules


def referenced_fields(rule: SigmaRule) -> set[str]:
    """Every field a rule's detection names, including |fieldref targets."""
    fields: set[str] = set()

    def walk(detection: SigmaDetection) -> None:
        for item in detection.detection_items:
            if isinstance(item, SigmaDetection):
                walk(item)
                continue
            if item.field:
                fields.add(item.field)
            for value in item.value:
                if isinstance(value, SigmaFieldReference):
                    fields.add(value.field)

    for detection in rule.detection.detections.values():
        walk(detection)
    return fields


def fallback_identity(path: Path) -> tuple[str | None, str | None]:
    """id and title read straight from the YAML, for a file pySigma cannot parse."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        if isinstance(doc, dict):
            return doc.get("id"), doc.get("title")
    except Exception:  # the parse error itself is reported by the caller
        pass
    return None, None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rules_dir", type=Path)
    parser.add_argument("records", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--sigma-semantics", action="store_true",
                        help="null-safe NOT and case-insensitive, wildcard-escaped string "
                             "matching instead of the backend's stock SQL")
    args = parser.parse_args()
    started = time.monotonic()

    backend = make_backend(args.sigma_semantics)
    table = backend.table  # the table name the generated queries select from ("logs")

    # 1. Parse and convert every rule. `entries` keeps the output order (by file).
    entries: list[dict[str, Any]] = []
    for path in sorted(args.rules_dir.glob("*.yml")):
        try:
            collection = SigmaCollection.from_yaml(path.read_text(encoding="utf-8"),
                                                   collect_errors=True)
        except Exception as exc:  # not even YAML
            rule_id, title = fallback_identity(path)
            entries.append({"id": rule_id, "title": title, "file": path.name,
                            "queries": [], "fields": set(),
                            "error": f"parse: {type(exc).__name__}: {exc}"})
            continue
        if not collection.rules:
            rule_id, title = fallback_identity(path)
            why = "; ".join(str(e) for e in collection.errors) or "no rule in file"
            entries.append({"id": rule_id, "title": title, "file": path.name,
                            "queries": [], "fields": set(), "error": f"parse: {why}"})
            continue
        for rule in collection.rules:
            entry = {"id": str(rule.id) if rule.id else None, "title": rule.title,
                     "file": path.name, "queries": [], "fields": set(), "error": None}
            entries.append(entry)
            errors = list(getattr(rule, "errors", [])) + list(collection.errors)
            if errors:
                entry["error"] = "parse: " + "; ".join(str(e) for e in errors)
                continue
            if not isinstance(rule, SigmaRule):
                entry["error"] = f"unsupported rule type {type(rule).__name__}"
                continue
            try:
                entry["queries"] = [str(q) for q in backend.convert_rule(rule)]
                entry["fields"] = referenced_fields(rule)
            except Exception as exc:
                entry["error"] = f"convert: {type(exc).__name__}: {exc}"

    # 2. One column per referenced field. DuckDB matches identifiers case-insensitively,
    #    so two fields differing only by case cannot both exist: the later rule fails.
    columns: dict[str, str] = {}  # lower-cased name -> name
    for entry in entries:
        for name in sorted(entry["fields"]):
            taken = columns.setdefault(name.lower(), name)
            if taken != name and entry["error"] is None:
                entry["error"] = (f"field {name!r} and field {taken!r} of another rule "
                                  "differ only by case (DuckDB column names are "
                                  "case-insensitive)")

    # 3. Load the records and run the queries.
    con = duckdb.connect(":memory:")
    with tempfile.TemporaryDirectory(prefix="sigma_duckdb.") as scratch:
        n_records = load_records(con, table, args.records, sorted(columns.values()),
                                 Path(scratch))
    loaded = time.monotonic()

    rules_out: dict[str, dict[str, Any]] = {}
    for entry in entries:
        rows: set[int] = set()
        if entry["error"] is None:
            try:
                for query in entry["queries"]:
                    result = con.execute(
                        f'SELECT "{ROW_COLUMN}" FROM ({query}) AS matched').fetchall()
                    rows.update(r[0] for r in result)
            except Exception as exc:
                entry["error"] = f"run: {type(exc).__name__}: {exc}"
                rows = set()
        key = entry["id"] or entry["title"] or entry["file"]
        if key in rules_out:  # duplicate id/title: keep both, disambiguated by file
            key = f"{key} ({entry['file']})"
        rules_out[key] = {
            "title": entry["title"],
            "file": entry["file"],
            "query": "\n".join(entry["queries"]) or None,
            "rows": sorted(rows),
            "error": entry["error"],
        }

    finished = time.monotonic()
    out = {
        "meta": {
            "mode": "sigma-semantics" if args.sigma_semantics else "stock",
            "versions": {p: version(p) for p in ("pySigma", "pySigma-backend-duckdb", "duckdb")},
            "records": n_records,
            "columns": sorted(columns.values()),
            "seconds": {"convert_and_load": round(loaded - started, 3),
                        "queries": round(finished - loaded, 3)},
        },
        "rules": rules_out,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    failed = sum(1 for r in rules_out.values() if r["error"])
    print(f"{len(rules_out)} rules ({failed} with errors), {n_records} records, "
          f"{finished - started:.2f}s -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    # pySigma warns about deprecated rule features; the output records what matters.
    warnings.simplefilter("ignore")
    sys.exit(main())
