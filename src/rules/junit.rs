//! The rule examples' results as JUnit XML (`rules test --junit FILE`), the
//! format CI dashboards read: one test case per example, named by rule and
//! example, with a failure element saying what was expected.

use super::{ExampleOutcome, RuleSet};

/// One example's result, as both kinds of rules give it.
pub struct Case {
    /// The rule's id (JUnit's class name).
    pub rule: String,
    pub example: String,
    /// Why it failed; `None` when it passed.
    pub failure: Option<String>,
}

impl Case {
    /// A detection rule's example.
    pub fn of(outcome: &ExampleOutcome) -> Case {
        let failure = (!outcome.passed).then(|| {
            let expected = if outcome.example.expect_match {
                "match"
            } else {
                "no match"
            };
            let got = match &outcome.error {
                Some(e) => format!("the event is not a valid record: {e}"),
                None if outcome.example.expect_match => "it did not fire".to_owned(),
                None => "it fired".to_owned(),
            };
            format!(
                "{}:{}: expects {expected}, but {got}",
                outcome.rule.meta.origin.path(),
                outcome.rule.line
            )
        });
        Case {
            rule: outcome.rule.id.clone(),
            example: outcome.example.name.clone(),
            failure,
        }
    }
}

/// Every example of `set`'s rules and correlations, run.
pub fn cases(set: &RuleSet) -> Vec<Case> {
    let mut cases: Vec<Case> = set.test_examples().iter().map(Case::of).collect();
    cases.extend(set.test_correlation_examples().into_iter().map(
        |(rule, example, passed, error)| Case {
            rule,
            example: format!("correlation: {example}"),
            failure:
                (!passed).then(|| error.unwrap_or_else(|| "it did not behave as expected".into())),
        },
    ));
    cases
}

/// The cases as one JUnit test suite.
pub fn junit_xml(cases: &[Case]) -> String {
    let failures = cases.iter().filter(|c| c.failure.is_some()).count();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!(
        "<testsuites name=\"trailwatch rules\" tests=\"{}\" failures=\"{failures}\">\n",
        cases.len()
    ));
    out.push_str(&format!(
        "  <testsuite name=\"rule examples\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\">\n",
        cases.len()
    ));
    for case in cases {
        out.push_str(&format!(
            "    <testcase classname=\"{}\" name=\"{}\"",
            escape(&case.rule),
            escape(&case.example)
        ));
        match &case.failure {
            None => out.push_str("/>\n"),
            Some(why) => out.push_str(&format!(
                ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>\n",
                escape(why),
                escape(why)
            )),
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// Text safe in XML attributes and content; characters XML 1.0 cannot hold
/// become U+FFFD.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_counted_and_text_is_escaped() {
        let cases = [
            Case {
                rule: "r<1>".into(),
                example: "a \"quoted\" & odd\u{1} name".into(),
                failure: None,
            },
            Case {
                rule: "r2".into(),
                example: "e".into(),
                failure: Some("expects match, but it did not fire".into()),
            },
        ];
        let xml = junit_xml(&cases);
        assert!(xml.contains("tests=\"2\" failures=\"1\""), "{xml}");
        assert!(xml.contains("classname=\"r&lt;1&gt;\""), "{xml}");
        assert!(xml.contains("name=\"a &quot;quoted&quot; &amp; odd\u{FFFD} name\""));
        assert!(xml.contains("<failure message=\"expects match, but it did not fire\">"));
        assert_eq!(xml.matches("<testcase").count(), 2);
    }
}
