//! What the activity index keeps of every record read: who did what, to
//! what, from where and when, small enough to keep a week of a busy trail.
//! Detection builds one per record when the store asks for it; the state
//! store writes them with their object's commit.

use crate::event::Record;
use crate::event::time::parse_rfc3339;

/// A target longer than this is cut (a call without an identifying
/// parameter names all of its request parameters).
pub const TARGET_MAX_CHARS: usize = 512;

/// One record, as the activity index keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Activity {
    /// `eventTime` as Unix seconds (0 when the record has none).
    pub at: i64,
    pub event_id: Option<String>,
    /// The principal's ARN (as the alert contract's `event.principal`).
    pub principal: Option<String>,
    /// Its name: the IAM user's, else the role behind a session.
    pub principal_name: Option<String>,
    pub access_key: Option<String>,
    pub account: Option<String>,
    pub region: Option<String>,
    pub event_name: Option<String>,
    pub event_source: Option<String>,
    /// What the call acted on (its identifying request parameter: a bucket,
    /// trail, user, secret...), as plain text.
    pub target: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub error_code: Option<String>,
}

impl Activity {
    /// The activity row of one record.
    pub fn of(record: &Record) -> Activity {
        let own = |s: Option<&str>| s.map(str::to_owned);
        Activity {
            at: record
                .event_time()
                .and_then(parse_rfc3339)
                .unwrap_or_default(),
            event_id: own(record.event_id()),
            principal: own(record.principal()),
            principal_name: principal_name(record).map(str::to_owned),
            access_key: own(record.str_at("userIdentity.accessKeyId")),
            account: own(record.account_id()),
            region: own(record.region()),
            event_name: own(record.event_name()),
            event_source: own(record.event_source()),
            target: super::identifying_parameter(record).map(|t| target_text(&t)),
            source_ip: own(record.source_ip()),
            user_agent: own(record.user_agent()),
            error_code: own(record.error_code()),
        }
    }
}

/// The principal's name: `userIdentity.userName` (IAM users, root's alias),
/// else the role behind an assumed-role session, else the session's name.
pub fn principal_name<'r>(record: &'r Record) -> Option<&'r str> {
    record
        .str_at("userIdentity.userName")
        .or_else(|| record.str_at("userIdentity.sessionContext.sessionIssuer.userName"))
        .or_else(|| {
            record
                .principal()
                .and_then(|arn| arn.rsplit('/').next())
                .filter(|name| !name.starts_with("arn:"))
        })
}

/// A target as people search for it: a JSON string without its quotes,
/// anything else as its compact JSON, cut at `TARGET_MAX_CHARS`.
pub fn target_text(json: &str) -> String {
    let text = if json.starts_with('"') {
        serde_json::from_str::<String>(json).unwrap_or_else(|_| json.to_owned())
    } else {
        json.to_owned()
    };
    match text.char_indices().nth(TARGET_MAX_CHARS) {
        Some((cut, _)) => text[..cut].to_owned(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_becomes_one_row_with_names_and_a_plain_target() {
        let text = r#"{"eventID":"e1","eventTime":"2026-11-21T10:00:00Z","eventName":"GetSecretValue",
            "eventSource":"secretsmanager.amazonaws.com","awsRegion":"eu-west-1",
            "sourceIPAddress":"203.0.113.7","userAgent":"aws-cli/2","errorCode":"AccessDenied",
            "recipientAccountId":"111122223333",
            "userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::111122223333:assumed-role/Deploy/ci",
              "accessKeyId":"ASIAEXAMPLE","sessionContext":{"sessionIssuer":{"userName":"Deploy"}}},
            "requestParameters":{"secretId":"prod/db"}}"#;
        let record = Record::parse(text).expect("record");
        let row = Activity::of(&record);
        assert_eq!(row.at, 1_795_255_200);
        assert_eq!(row.principal_name.as_deref(), Some("Deploy"));
        assert_eq!(row.access_key.as_deref(), Some("ASIAEXAMPLE"));
        assert_eq!(row.target.as_deref(), Some("prod/db"));
        assert_eq!(row.account.as_deref(), Some("111122223333"));
        assert_eq!(row.error_code.as_deref(), Some("AccessDenied"));
    }

    #[test]
    fn a_user_is_named_by_its_user_name_and_long_targets_are_cut() {
        let text = r#"{"eventTime":"2026-11-21T10:00:00Z",
            "userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/alice","userName":"alice"}}"#;
        let record = Record::parse(text).expect("record");
        assert_eq!(principal_name(&record), Some("alice"));
        let long = format!("{{\"a\":\"{}\"}}", "é".repeat(2 * TARGET_MAX_CHARS));
        assert_eq!(target_text(&long).chars().count(), TARGET_MAX_CHARS);
        assert_eq!(target_text("\"b\\\"q\""), "b\"q");
    }
}
