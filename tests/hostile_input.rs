//! Bad input to every surface that reads files or records (issue 17, item 4):
//! config files, rule files and webhook templates mutated at random (seeded,
//! thousands of cases), and CloudTrail objects with hostile records. No
//! panic; a clear error that says where; the rest goes on.

use std::io::Write;
use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rsigma_eval::Event;
use trailwatch::config::Config;
use trailwatch::rules::{RuleOrigin, load_rule_set, load_text};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Pieces a mutation splices in: syntax of TOML, YAML and templates, and
/// text that is hard on parsers.
const PIECES: &[&str] = &[
    "[",
    "]",
    "[[",
    "]]",
    "{",
    "}",
    "\"",
    "'",
    "'''",
    "\"\"\"",
    "=",
    ":",
    "- ",
    "|",
    ">",
    "#",
    "\n",
    "\r\n",
    "\t",
    "\\",
    "\\u",
    "\\ud800",
    "\u{0}",
    "\u{7f}",
    "\u{feff}",
    "\u{202e}",
    "9999999999999999999999",
    "-1",
    "0",
    "1e309",
    "NaN",
    "true",
    "null",
    "~",
    "&a",
    "*a",
    "!!binary",
    "$ALERT_JSON",
    "$",
    "$$",
    "$ID",
    "$ALERT_",
    "${",
    "%",
    "é",
    "😀",
    "\u{10ffff}",
];

/// One random edit of `text`: a byte range cut, a piece spliced in, a line
/// doubled or dropped, or the text cut short.
fn mutate(rng: &mut StdRng, text: &str) -> String {
    let mut s = text.to_owned();
    for _ in 0..rng.random_range(1..4) {
        let at = |rng: &mut StdRng, s: &str| {
            let mut i = rng.random_range(0..=s.len());
            while !s.is_char_boundary(i) {
                i -= 1;
            }
            i
        };
        match rng.random_range(0..5) {
            0 => {
                let a = at(rng, &s);
                let mut b = (at(rng, &s[a..]) + a).min(a + 40);
                while !s.is_char_boundary(b) {
                    b -= 1;
                }
                s.replace_range(a..b, "");
            }
            1 => {
                let a = at(rng, &s);
                let piece = PIECES[rng.random_range(0..PIECES.len())];
                s.insert_str(a, piece);
            }
            2 => {
                let lines: Vec<&str> = s.lines().collect();
                if !lines.is_empty() {
                    let i = rng.random_range(0..lines.len());
                    let mut out: Vec<&str> = lines.clone();
                    if rng.random_bool(0.5) {
                        out.insert(i, lines[i]);
                    } else {
                        out.remove(i);
                    }
                    s = out.join("\n");
                }
            }
            3 => {
                let a = at(rng, &s);
                s.truncate(a);
            }
            _ => {
                let a = at(rng, &s);
                let piece =
                    PIECES[rng.random_range(0..PIECES.len())].repeat(rng.random_range(1..200));
                s.insert_str(a, &piece);
            }
        }
    }
    s
}

#[test]
fn mutated_configs_give_an_error_naming_a_field_or_a_line_never_a_panic() {
    let base = std::fs::read_to_string(repo().join("examples/trailwatch.toml")).expect("example");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = StdRng::seed_from_u64(17);
    let (mut accepted, mut refused) = (0, 0);
    for case in 0..3000 {
        let text = mutate(&mut rng, &base);
        match Config::from_toml(&text, dir.path()) {
            Ok(_) => accepted += 1,
            Err(e) => {
                refused += 1;
                let shown = e.to_string();
                assert!(
                    !e.path.is_empty() || shown.contains("line"),
                    "case {case}: the error says where: {shown}\n--- config ---\n{text}"
                );
            }
        }
    }
    assert!(
        refused > 1000,
        "mutations mostly break the file: {refused} refused, {accepted} accepted"
    );
}

#[test]
fn mutated_rules_give_an_error_naming_the_file_and_line_never_a_panic() {
    let mut texts = Vec::new();
    for dir in ["rules", "examples/rules"] {
        if let Ok(files) = trailwatch::rules::rule_files(&repo().join(dir)) {
            for f in files {
                texts.push(std::fs::read_to_string(&f).expect("rule text"));
            }
        }
    }
    assert!(texts.len() >= 10, "rule files to mutate: {}", texts.len());
    let mut rng = StdRng::seed_from_u64(17);
    let mut errors = 0;
    for case in 0..3000 {
        let base = &texts[rng.random_range(0..texts.len())];
        let text = mutate(&mut rng, base);
        let origin = RuleOrigin::File {
            path: "mutated.yml".into(),
        };
        let loaded = load_text(&text, origin);
        for e in &loaded.errors {
            errors += 1;
            assert_eq!(e.file, "mutated.yml", "case {case}");
            // Lines as YAML counts them: CR, LF and CR LF each end one.
            let lines = text.replace("\r\n", "\n").matches(['\r', '\n']).count() + 1;
            assert!(
                e.line >= 1 && e.line <= lines + 1,
                "case {case}: line {} of {lines}: {}",
                e.line,
                e.reason
            );
            assert!(!e.reason.is_empty(), "case {case}");
        }
    }
    assert!(
        errors > 500,
        "mutations mostly break rules: {errors} errors"
    );
}

#[test]
fn mutated_webhook_templates_are_accepted_or_refused_never_a_panic() {
    let bases = [
        r#"{"text": "$EVENT_TITLE", "alert": $ALERT_JSON}"#,
        r#"{"id": "$ID", "date": "$DATE", "account": "$ACCOUNT_NAME", "ocsf": $OCSF_JSON}"#,
        r#"{"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "*$RULE_NAME* $SEVERITY"}}]}"#,
    ];
    let mut rng = StdRng::seed_from_u64(17);
    let (mut ok, mut refused) = (0, 0);
    for case in 0..5000 {
        let text = mutate(&mut rng, bases[case % bases.len()]);
        match trailwatch::sinks::webhook::check_template(&text) {
            Ok(()) => ok += 1,
            Err(e) => {
                refused += 1;
                assert!(!e.is_empty(), "case {case}");
            }
        }
    }
    assert!(ok > 0 && refused > 0, "{ok} accepted, {refused} refused");
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).expect("gzip");
    enc.finish().expect("gzip")
}

/// A StopLogging record (an alert under the built-in pack) with `extra`
/// fields merged in at the top level, as JSON text.
fn stop_logging(id: &str, extra: &str) -> String {
    format!(
        r#"{{"eventVersion":"1.08","eventID":"{id}","eventTime":"2026-12-01T10:00:00Z","eventSource":"cloudtrail.amazonaws.com","eventName":"StopLogging","awsRegion":"us-east-1","sourceIPAddress":"203.0.113.9","recipientAccountId":"111122223333","userIdentity":{{"type":"IAMUser","userName":"mallory","arn":"arn:aws:iam::111122223333:user/mallory","accountId":"111122223333"}}{extra}}}"#
    )
}

#[test]
fn hostile_records_are_read_or_reported_and_the_rest_of_the_object_still_alerts() {
    let (rules, errors) = load_rule_set(true, &[]);
    assert!(errors.is_empty(), "{errors:?}");
    let deep = format!(
        r#","requestParameters":{}1{}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let big = format!(r#","userAgent":"{}""#, "A".repeat(1 << 20));
    let cases: Vec<(&str, String)> = vec![
        (
            "control characters",
            r#","userAgent":"a\u0000b\u001b[31mred\u0007\r\n""#.into(),
        ),
        (
            "a lone surrogate",
            r#","userAgent":"\ud800 and \udfff""#.into(),
        ),
        ("a raw control byte", ",\"userAgent\":\"a\u{1}b\"".into()),
        ("a 1 MB value", big),
        ("deep nesting", deep),
        ("a 1 MB key", format!(r#","{}":1"#, "k".repeat(1 << 20))),
        (
            "bidi and emoji",
            r#","userAgent":"\u202egnp.exe 😀""#.into(),
        ),
        (
            "numbers out of range",
            r#","requestParameters":{"n":1e999,"m":-99999999999999999999999}"#.into(),
        ),
    ];
    for (what, extra) in &cases {
        // The hostile record sits between two sound ones.
        let body = format!(
            r#"{{"Records":[{},{},{}]}}"#,
            stop_logging("before", ""),
            stop_logging("hostile", extra),
            stop_logging("after", "")
        );
        let mut alerted = Vec::new();
        let report = trailwatch::detect::detect_object(
            gzip(body.as_bytes()).as_slice(),
            &rules,
            1 << 30,
            |matched, record| {
                if !matched.is_empty()
                    && let Some(rsigma_eval::EventValue::Str(id)) = record.get_field("eventID")
                {
                    alerted.push(id.into_owned());
                }
            },
            |_, _| {},
        );
        match &report.error {
            None => assert_eq!(
                alerted,
                ["before", "hostile", "after"],
                "{what}: every record read and alerting"
            ),
            Some(e) => {
                // Refused: the reason and where, and what came before it was read.
                let shown = e.to_string();
                assert!(
                    shown.contains("offset") || shown.contains("byte"),
                    "{what}: {shown}"
                );
                assert!(
                    alerted.contains(&"before".to_owned()),
                    "{what}: {alerted:?}"
                );
            }
        }
    }
}
