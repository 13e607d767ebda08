//! Allowlists: per rule, field conditions under which a match is expected
//! and is not an alert (the CI role that rotates service users' keys).

use super::index::wildcard_match;
use crate::event::{Json, Record};

pub use crate::config::Allow;

impl Allow {
    /// Whether this entry allows `rule_id` matching `record`.
    pub fn allows(&self, rule_id: &str, record: &Record) -> bool {
        if !self.rules.iter().any(|r| r == "*" || r == rule_id) {
            return false;
        }
        self.conditions.iter().all(|(path, values)| {
            let mut found = Vec::new();
            record.values_at(path, &mut found);
            found.iter().any(|v| {
                let text = match v {
                    Json::Str(s) => s.to_string(),
                    Json::Int(n) => n.to_string(),
                    Json::Float(f) => f.to_string(),
                    Json::Bool(b) => b.to_string(),
                    _ => return false,
                };
                values.iter().any(|pattern| wildcard_match(pattern, &text))
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECORD: &str = r#"{"eventName":"CreateAccessKey","userIdentity":{"type":"AssumedRole",
        "sessionContext":{"sessionIssuer":{"userName":"ci-key-rotation"}}},
        "requestParameters":{"userName":"svc-deploy"}}"#;

    fn allow(rule: &str, conditions: &[(&str, &[&str])]) -> Allow {
        Allow {
            rules: vec![rule.into()],
            conditions: conditions
                .iter()
                .map(|(p, v)| (p.to_string(), v.iter().map(|s| s.to_string()).collect()))
                .collect(),
            reason: None,
        }
    }

    #[test]
    fn every_condition_must_hold() {
        let record = Record::parse(RECORD).expect("record");
        let ci = allow(
            "r",
            &[
                (
                    "userIdentity.sessionContext.sessionIssuer.userName",
                    &["ci-key-rotation"],
                ),
                ("requestParameters.userName", &["svc-*"]),
            ],
        );
        assert!(ci.allows("r", &record));
        assert!(!ci.allows("other-rule", &record));
        let wrong_user = allow("r", &[("requestParameters.userName", &["alice", "bob"])]);
        assert!(!wrong_user.allows("r", &record));
        let missing = allow("*", &[("sourceIPAddress", &["*"])]);
        assert!(
            !missing.allows("r", &record),
            "an absent field matches nothing"
        );
    }
}
