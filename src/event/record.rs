//! One CloudTrail record: typed access to the fields alerts need, and access to
//! any field by dotted path for the rule engine.

use std::borrow::Cow;

use rsigma_eval::event::{Event, EventValue};

use super::json::Json;

/// Nesting deeper than this is not walked (defends the keyword search).
const MAX_DEPTH: usize = 64;

/// A parsed CloudTrail record borrowing from the buffer it was parsed from.
#[derive(Debug, Clone)]
pub struct Record<'a> {
    root: Json<'a>,
}

impl<'a> Record<'a> {
    /// Parses one record (a JSON object) from `text`.
    pub fn parse(text: &'a str) -> Result<Self, RecordError> {
        let root = Json::parse(text).map_err(RecordError::Json)?;
        Self::from_json(root)
    }

    /// Parses one record from UTF-8 bytes (checked as they are parsed).
    pub fn parse_bytes(bytes: &'a [u8]) -> Result<Self, RecordError> {
        let root = serde_json::from_slice(bytes).map_err(RecordError::Json)?;
        Self::from_json(root)
    }

    /// Wraps an already parsed value; it must be a JSON object.
    pub fn from_json(root: Json<'a>) -> Result<Self, RecordError> {
        match root {
            Json::Object(_) => Ok(Record { root }),
            other => Err(RecordError::NotAnObject(kind_name(&other))),
        }
    }

    /// The whole record.
    pub fn json(&self) -> &Json<'a> {
        &self.root
    }

    /// A string field by dotted path (objects only, no arrays).
    pub fn str_at(&self, path: &str) -> Option<&str> {
        let mut node = &self.root;
        for segment in path.split('.') {
            node = node.get(segment)?;
        }
        node.as_str()
    }

    pub fn event_id(&self) -> Option<&str> {
        self.str_at("eventID")
    }
    pub fn event_name(&self) -> Option<&str> {
        self.str_at("eventName")
    }
    pub fn event_source(&self) -> Option<&str> {
        self.str_at("eventSource")
    }
    pub fn event_time(&self) -> Option<&str> {
        self.str_at("eventTime")
    }
    pub fn region(&self) -> Option<&str> {
        self.str_at("awsRegion")
    }
    pub fn source_ip(&self) -> Option<&str> {
        self.str_at("sourceIPAddress")
    }
    pub fn user_agent(&self) -> Option<&str> {
        self.str_at("userAgent")
    }
    pub fn error_code(&self) -> Option<&str> {
        self.str_at("errorCode")
    }
    pub fn principal_type(&self) -> Option<&str> {
        self.str_at("userIdentity.type")
    }

    /// The account the call was made in: `recipientAccountId`, else the caller's.
    pub fn account_id(&self) -> Option<&str> {
        self.str_at("recipientAccountId")
            .or_else(|| self.str_at("userIdentity.accountId"))
    }

    /// Who made the call: the ARN, else the role behind a session, else a name.
    pub fn principal(&self) -> Option<&str> {
        self.str_at("userIdentity.arn")
            .or_else(|| self.str_at("userIdentity.sessionContext.sessionIssuer.arn"))
            .or_else(|| self.str_at("userIdentity.userName"))
            .or_else(|| self.str_at("userIdentity.invokedBy"))
            .or_else(|| self.str_at("userIdentity.principalId"))
    }

    /// Every value at a dotted path; a path that crosses an array follows every
    /// element, so `a.items.b` reaches `b` in each member of `items`.
    pub fn values_at<'s>(&'s self, path: &str, out: &mut Vec<&'s Json<'a>>) {
        collect_path(&self.root, path, out);
    }
}

/// Why a record could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("malformed JSON: {0}")]
    Json(serde_json::Error),
    #[error("a record must be a JSON object, found {0}")]
    NotAnObject(&'static str),
}

fn kind_name(json: &Json) -> &'static str {
    match json {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Int(_) | Json::Float(_) => "a number",
        Json::Str(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

fn collect_path<'s, 'a>(node: &'s Json<'a>, path: &str, out: &mut Vec<&'s Json<'a>>) {
    let (head, rest) = match path.split_once('.') {
        Some((head, rest)) => (head, Some(rest)),
        None => (path, None),
    };
    match node {
        Json::Object(_) => {
            let Some(child) = node.get(head) else { return };
            match rest {
                Some(rest) => collect_path(child, rest, out),
                None => out.push(child),
            }
        }
        Json::Array(items) => {
            for item in items {
                collect_path(item, path, out);
            }
        }
        _ => {}
    }
}

/// A field's value as the rule engine sees it. An object is seen as its
/// compact JSON text, as SIEMs that store CloudTrail as flat JSON do: SigmaHQ
/// rules such as `requestParameters|contains: 'Suspended'` search the whole
/// object that way. Arrays stay arrays, so that any element can match.
fn to_event_value<'s>(json: &'s Json<'_>) -> EventValue<'s> {
    match json {
        Json::Null => EventValue::Null,
        Json::Bool(b) => EventValue::Bool(*b),
        Json::Int(n) => EventValue::Int(*n),
        Json::Float(f) => EventValue::Float(*f),
        Json::Str(s) => EventValue::Str(Cow::Borrowed(s)),
        Json::Array(items) => EventValue::Array(items.iter().map(to_event_value).collect()),
        Json::Object(_) => {
            EventValue::Str(Cow::Owned(serde_json::to_string(json).unwrap_or_default()))
        }
    }
}

fn visit_strings(json: &Json, depth: usize, visit: &mut dyn FnMut(&str) -> bool) -> bool {
    if depth == 0 {
        return false;
    }
    match json {
        Json::Str(s) => visit(s),
        Json::Array(items) => items.iter().any(|v| visit_strings(v, depth - 1, visit)),
        Json::Object(members) => members
            .iter()
            .any(|(_, v)| visit_strings(v, depth - 1, visit)),
        _ => false,
    }
}

impl Event for Record<'_> {
    fn get_field(&self, path: &str) -> Option<EventValue<'_>> {
        // A flat key that contains dots wins over nested traversal, as in Sigma.
        if let Some(value) = self.root.get(path) {
            return Some(to_event_value(value));
        }
        if !path.contains('.') {
            return None;
        }
        let mut found = Vec::new();
        collect_path(&self.root, path, &mut found);
        match found.len() {
            0 => None,
            1 => Some(to_event_value(found[0])),
            _ => Some(EventValue::Array(
                found.into_iter().map(to_event_value).collect(),
            )),
        }
    }

    fn any_string_value(&self, pred: &dyn Fn(&str) -> bool) -> bool {
        visit_strings(&self.root, MAX_DEPTH, &mut |s| pred(s))
    }

    fn all_string_values(&self) -> Vec<Cow<'_, str>> {
        let mut out = Vec::new();
        self.visit_string_values(&mut |s| out.push(Cow::Owned(s.to_owned())));
        out
    }

    fn visit_string_values(&self, visit: &mut dyn FnMut(&str)) {
        visit_strings(&self.root, MAX_DEPTH, &mut |s| {
            visit(s);
            false
        });
    }

    fn to_json(&self) -> serde_json::Value {
        self.root.to_value()
    }

    fn top_level_keys(&self) -> Option<Vec<Cow<'_, str>>> {
        match &self.root {
            Json::Object(members) => Some(
                members
                    .iter()
                    .map(|(k, _)| Cow::Borrowed(k.as_ref()))
                    .collect(),
            ),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECORD: &str = r#"{
        "eventID": "e1", "eventName": "AuthorizeSecurityGroupIngress",
        "eventSource": "ec2.amazonaws.com", "recipientAccountId": "111122223333",
        "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/r/s",
            "sessionContext": {"sessionIssuer": {"userName": "admin-role"}}},
        "requestParameters": {"ipPermissions": {"items": [
            {"ipRanges": {"items": [{"cidrIp": "10.0.0.0/8"}]}},
            {"ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}, {"cidrIp": "1.2.3.4/32"}]}}
        ]}},
        "responseElements": {"ConsoleLogin": "Success"},
        "additionalEventData": {"MFAUsed": "No"},
        "errorCode": null
    }"#;

    #[test]
    fn dotted_paths_reach_nested_objects() {
        let record = Record::parse(RECORD).expect("valid record");
        assert_eq!(
            record.get_field("userIdentity.sessionContext.sessionIssuer.userName"),
            Some(EventValue::Str(Cow::Borrowed("admin-role")))
        );
        assert_eq!(
            record.get_field("responseElements.ConsoleLogin"),
            Some(EventValue::Str(Cow::Borrowed("Success")))
        );
        assert_eq!(
            record.get_field("additionalEventData.MFAUsed"),
            Some(EventValue::Str(Cow::Borrowed("No")))
        );
        assert_eq!(record.get_field("errorCode"), Some(EventValue::Null));
        assert_eq!(record.get_field("errorMessage"), None);
    }

    #[test]
    fn dotted_paths_fan_out_over_arrays() {
        let record = Record::parse(RECORD).expect("valid record");
        let value = record.get_field("requestParameters.ipPermissions.items.ipRanges.items.cidrIp");
        let Some(EventValue::Array(items)) = value else {
            panic!("expected every cidrIp, got {value:?}");
        };
        let cidrs: Vec<_> = items.iter().filter_map(|v| v.as_str()).collect();
        assert_eq!(cidrs, ["10.0.0.0/8", "0.0.0.0/0", "1.2.3.4/32"]);
    }

    #[test]
    fn an_object_field_is_matched_as_its_json_text() {
        let record = Record::parse(RECORD).expect("valid record");
        assert_eq!(
            record.get_field("responseElements"),
            Some(EventValue::Str(Cow::Owned(
                r#"{"ConsoleLogin":"Success"}"#.into()
            )))
        );
    }

    #[test]
    fn typed_accessors() {
        let record = Record::parse(RECORD).expect("valid record");
        assert_eq!(record.event_id(), Some("e1"));
        assert_eq!(record.account_id(), Some("111122223333"));
        assert_eq!(record.principal_type(), Some("AssumedRole"));
        assert_eq!(
            record.principal(),
            Some("arn:aws:sts::111122223333:assumed-role/r/s")
        );
        assert_eq!(record.error_code(), None);
    }

    #[test]
    fn a_record_must_be_an_object() {
        let err = Record::parse("[1]").expect_err("array is not a record");
        assert!(err.to_string().contains("an array"), "{err}");
    }
}
