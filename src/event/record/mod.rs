//! One CloudTrail record: typed access to the fields alerts need, and access to
//! any field by dotted path for the rule engine.

use std::borrow::Cow;

use std::cell::{Cell, OnceCell};

use super::bytes::same_bytes;
use super::json::Json;
use super::shallow::{
    MemberSpan, NO_SPAN, ShallowError, Walk, check_trailing, find_span, index_object_prefix,
    member_name, siblings, walk,
};

/// Nesting deeper than this is not walked (defends the keyword search).
const MAX_DEPTH: usize = 64;

mod compact;
mod members;
mod path;
mod sigma;

pub use members::MemberStore;
use members::{Member, Room, Top};

pub(crate) use compact::canonical_escape;
pub use path::FieldPath;

/// A CloudTrail record borrowing from the buffer it was read from. Parsing
/// checks the whole record and notes where each member is; a member's value
/// is parsed the first time something asks for it, so the fields no rule
/// reads cost only the check. Most fields are read straight from the text:
/// the list of the record's members, and their parsed values, are made
/// only when first needed.
#[derive(Debug)]
pub struct Record<'a> {
    /// The top-level members (made when first needed, for a record read
    /// from text).
    members: OnceCell<Vec<Member<'a>>>,
    /// Room for them, from the store.
    room: Room<'a>,
    /// The record's text and where each member of each object lies in it
    /// (empty for a record built from a parsed value).
    text: &'a str,
    spans: Cow<'a, [MemberSpan]>,
    /// Where the first member of each of the `KNOWN` names is (`NO_SPAN`:
    /// nowhere): its span, or for a record built from a parsed value its
    /// place among the members. The fields every record is asked for are
    /// found without a search.
    known: [u32; KNOWN.len()],
    /// `text` is what serializing the record writes (the parser found no
    /// white space, escape or number that serializing would change).
    compact: bool,
    /// Some top-level name has a dot in it (then a dotted path may name it).
    dotted: bool,
}

/// The top-level names the index, the rules and the alerts read from every
/// record.
const KNOWN: [&str; 12] = [
    "eventID",
    "eventName",
    "eventSource",
    "eventTime",
    "awsRegion",
    "sourceIPAddress",
    "userAgent",
    "errorCode",
    "recipientAccountId",
    "userIdentity",
    "requestParameters",
    "eventType",
];

/// Where a record's account is, in order of preference.
const ACCOUNT_PATHS: [&str; 2] = ["recipientAccountId", "userIdentity.accountId"];

/// Where a record's principal is, in order of preference.
const PRINCIPAL_PATHS: [&str; 5] = [
    "userIdentity.arn",
    "userIdentity.sessionContext.sessionIssuer.arn",
    "userIdentity.userName",
    "userIdentity.invokedBy",
    "userIdentity.principalId",
];

/// What a record keeps of its top-level names: where the first member of
/// each of the `KNOWN` names is (`NO_SPAN`: nowhere), and whether some name
/// has a dot (then a dotted path may name it). The parser notes these as it
/// reads the names (`Indexed::top`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TopNames {
    known: [u32; KNOWN.len()],
    dotted: bool,
}

impl TopNames {
    pub(crate) const NONE: TopNames = TopNames {
        known: [NO_SPAN; KNOWN.len()],
        dotted: false,
    };

    /// Notes that member `at` is named `name` (unescaped).
    #[inline(always)]
    pub(crate) fn note(&mut self, at: u32, name: &[u8]) {
        match known_slot_of(name) {
            Some(slot) => {
                if self.known[slot] == NO_SPAN {
                    self.known[slot] = at;
                }
            }
            // No known name has a dot.
            None => self.dotted |= name.contains(&b'.'),
        }
    }
}

/// The position of `name` in `KNOWN`.
#[inline]
fn known_slot(name: &str) -> Option<usize> {
    known_slot_of(name.as_bytes())
}

/// `known_slot`, of a name's bytes.
#[inline]
fn known_slot_of(name: &[u8]) -> Option<usize> {
    // By length first: one comparison at most, for most names.
    let slot = match name.len() {
        7 => 0,
        9 => match (name[0], name[6]) {
            (b'a', _) => 4,
            (b'u', _) => 6,
            (_, b'a') => 1,
            (_, b'i') => 3,
            (_, b'o') => 7,
            _ => 11,
        },
        11 => 2,
        15 => 5,
        18 => 8,
        12 => 9,
        17 => 10,
        _ => return None,
    };
    same_bytes(KNOWN[slot].as_bytes(), name).then_some(slot)
}

impl<'a> Record<'a> {
    /// Parses one record (a JSON object) from `text`.
    pub fn parse(text: &'a str) -> Result<Self, RecordError> {
        let mut spans = Vec::new();
        let indexed =
            index_object_prefix(text.as_bytes(), &mut spans).map_err(RecordError::Json)?;
        check_trailing(text.as_bytes(), indexed.end).map_err(RecordError::Json)?;
        Ok(Self::build(
            text,
            Cow::Owned(spans),
            &mut MemberStore::default(),
            indexed.compact && indexed.end == text.len(),
            indexed.top,
        ))
    }

    /// The record whose members `spans` found in `text` (checked already),
    /// in the room a record handed back to `store` left; `compact` and
    /// `top` as `Indexed` says of the whole text (false and `None` when not
    /// known).
    pub(crate) fn from_spans_in(
        text: &'a str,
        spans: &'a [MemberSpan],
        store: &mut MemberStore,
        compact: bool,
        top: Option<TopNames>,
    ) -> Self {
        Self::build(text, Cow::Borrowed(spans), store, compact, top)
    }

    fn build(
        text: &'a str,
        spans: Cow<'a, [MemberSpan]>,
        store: &mut MemberStore,
        compact: bool,
        top: Option<TopNames>,
    ) -> Self {
        let top = top.unwrap_or_else(|| {
            // One loop over the record's own members: where the known names are.
            let mut top = TopNames::NONE;
            let mut at = 0;
            while let Some(span) = spans.get(at as usize) {
                top.note(at, member_name(text, span).as_bytes());
                at = span.next;
            }
            top
        });
        Record {
            members: OnceCell::new(),
            room: Room(Cell::new(store.take())),
            known: top.known,
            text,
            spans,
            compact,
            dotted: top.dotted,
        }
    }

    fn with_members(members: Vec<Member<'a>>, text: &'a str, spans: Cow<'a, [MemberSpan]>) -> Self {
        let mut top = TopNames::NONE;
        for (i, member) in members.iter().enumerate() {
            top.note(u32::try_from(i).unwrap_or(NO_SPAN), member.key.as_bytes());
        }
        Record {
            members: OnceCell::from(members),
            room: Room::default(),
            known: top.known,
            text,
            spans,
            compact: false,
            dotted: top.dotted,
        }
    }

    /// Parses one record from UTF-8 bytes.
    pub fn parse_bytes(bytes: &'a [u8]) -> Result<Self, RecordError> {
        let text = std::str::from_utf8(bytes).map_err(|e| {
            RecordError::Json(ShallowError::Syntax {
                offset: e.valid_up_to(),
                reason: "invalid UTF-8",
            })
        })?;
        Self::parse(text)
    }

    /// Wraps an already parsed value; it must be a JSON object.
    pub fn from_json(root: Json<'a>) -> Result<Self, RecordError> {
        match root {
            Json::Object(members) => Ok(Record::with_members(
                members
                    .into_iter()
                    .map(|(key, value)| Member {
                        key,
                        raw: "",
                        value: OnceCell::from(value),
                        span: NO_SPAN,
                    })
                    .collect(),
                "",
                Cow::Borrowed(&[]),
            )),
            other => Err(RecordError::NotAnObject(kind_name(&other))),
        }
    }

    /// The top-level member `key` (the first, if the name repeats).
    pub fn get(&self, key: &str) -> Option<&Json<'a>> {
        let top = self.top(key)?;
        Some(self.value_of(top))
    }

    /// The top-level members in document order.
    pub fn members(&self) -> impl Iterator<Item = (&str, &Json<'a>)> {
        self.member_list()
            .iter()
            .map(|m| (m.key.as_ref(), m.value()))
    }

    /// The whole record as an owned value (for output, not the hot path).
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.members()
                .map(|(k, v)| (k.to_owned(), v.to_value()))
                .collect(),
        )
    }

    /// A string field by dotted path (objects only, no arrays).
    pub fn str_at(&self, path: &str) -> Option<&str> {
        self.str_at_checked(path).map(|(s, _)| s)
    }

    /// As `str_at`, and whether the string is its own JSON text (between
    /// the quotes): true when it was read from the record without escapes,
    /// so that writing it as JSON again escapes nothing.
    pub(crate) fn str_at_checked(&self, path: &str) -> Option<(&str, bool)> {
        let (head, rest) = match split_dot(path) {
            Some((head, rest)) => (head, Some(rest)),
            None => (path, None),
        };
        let top = self.top(head)?;
        if !top.raw.is_empty() {
            let (found, plain) = match rest {
                None => (Walk::Value(top.raw), self.is_plain(top)),
                Some(rest) => self.walk_top(top, rest),
            };
            match found {
                Walk::Missing => return None,
                // Checked already: a string without escapes, quotes around.
                Walk::Value(raw) if plain => return Some((&raw[1..raw.len() - 1], true)),
                Walk::Value(raw) => {
                    let bytes = raw.as_bytes();
                    if bytes.first() != Some(&b'"') {
                        return None;
                    }
                    if memchr::memchr(b'\\', bytes).is_none() {
                        return Some((&raw[1..raw.len() - 1], true));
                    }
                }
                Walk::NeedTree => {}
            }
        }
        let mut node = self.value_of(top);
        for segment in rest.into_iter().flat_map(|r| r.split('.')) {
            node = node.get(segment)?;
        }
        node.as_str().map(|s| (s, false))
    }

    /// The record's own JSON text, when it was read from text (not built
    /// from a parsed value).
    pub fn text(&self) -> Option<&'a str> {
        (!self.text.is_empty()).then_some(self.text)
    }

    /// Where the parser found each member in `text()` (empty for a record
    /// built from a parsed value): with the text, the record again without
    /// parsing it (`from_spans_in`).
    pub(crate) fn spans(&self) -> &[MemberSpan] {
        &self.spans
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
        self.account_id_checked().map(|(s, _)| s)
    }

    /// Who made the call: the ARN, else the role behind a session, else a name.
    pub fn principal(&self) -> Option<&str> {
        self.principal_checked().map(|(s, _)| s)
    }

    /// `account_id`, as `str_at_checked` says it.
    pub(crate) fn account_id_checked(&self) -> Option<(&str, bool)> {
        self.first_str_checked(&ACCOUNT_PATHS)
    }

    /// `principal`, as `str_at_checked` says it.
    pub(crate) fn principal_checked(&self) -> Option<(&str, bool)> {
        // Read for every grouped match: by paths split once, when the
        // record's text has them plainly.
        static FIELDS: std::sync::LazyLock<[FieldPath; 5]> =
            std::sync::LazyLock::new(|| PRINCIPAL_PATHS.map(FieldPath::new));
        FIELDS
            .iter()
            .zip(PRINCIPAL_PATHS)
            .find_map(|(field, path)| match self.plain_str_at(field) {
                Some(found) => found.map(|s| (s, true)),
                None => self.str_at_checked(path),
            })
    }

    fn first_str_checked(&self, paths: &[&str]) -> Option<(&str, bool)> {
        paths.iter().find_map(|p| self.str_at_checked(p))
    }

    /// Follows `path` below the top-level member `top` through the
    /// record's spans; and whether the value found is a string without
    /// escapes.
    fn walk_top(&self, top: Top<'a>, path: &str) -> (Walk<'a>, bool) {
        if self.text.is_empty() {
            return (walk(top.raw, path), false);
        }
        let text: &'a str = self.text;
        match find_span(text, &self.spans, top.at, path) {
            Ok(span) => (Walk::Value(&text[span.value.clone()]), span.plain),
            Err(why) => (why, false),
        }
    }

    /// Whether a top-level member's value is a string without escapes.
    fn is_plain(&self, top: Top<'a>) -> bool {
        self.spans
            .get(top.at as usize)
            .is_some_and(|span| span.plain)
    }

    /// Every value at a dotted path; a path that crosses an array follows every
    /// element, so `a.items.b` reaches `b` in each member of `items`.
    pub fn values_at<'s>(&'s self, path: &str, out: &mut Vec<&'s Json<'a>>) {
        let (head, rest) = match split_dot(path) {
            Some((head, rest)) => (head, Some(rest)),
            None => (path, None),
        };
        let Some(value) = self.get(head) else { return };
        match rest {
            Some(rest) => collect_path(value, rest, out),
            None => out.push(value),
        }
    }
}

/// Key equality that rules out most keys by length and last byte before
/// comparing them whole (records have a score of keys, many of one length).
#[inline]
fn same_key(a: &str, b: &str) -> bool {
    same_bytes(a.as_bytes(), b.as_bytes())
}

/// `path` split at its first dot (a byte search: paths are short).
fn split_dot(path: &str) -> Option<(&str, &str)> {
    let at = path.bytes().position(|b| b == b'.')?;
    Some((&path[..at], &path[at + 1..]))
}

/// Serialises in document order (compact with `serde_json::to_string`).
impl serde::Serialize for Record<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.member_list().len()))?;
        for (k, v) in self.members() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// Why a record could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("malformed JSON: {0}")]
    Json(ShallowError),
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
    let (head, rest) = match split_dot(path) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use rsigma_eval::event::{Event, EventValue};

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
    fn a_flat_name_with_dots_wins_over_the_nested_path() {
        let flat = Record::parse(r#"{"a": {"b": "nested"}, "a.b": "flat"}"#).expect("valid");
        assert_eq!(
            flat.get_field("a.b"),
            Some(EventValue::Str(Cow::Borrowed("flat")))
        );
        let nested = Record::parse(r#"{"a": {"b": "nested"}, "ab": "x"}"#).expect("valid");
        assert_eq!(
            nested.get_field("a.b"),
            Some(EventValue::Str(Cow::Borrowed("nested")))
        );
        assert_eq!(nested.get_field("a.c"), None);
        // Asked again, in either order, and beside another dotted name; and
        // on a record built from a parsed value.
        let other =
            Record::parse(r#"{"a": {"b": "nested"}, "x.y": "z", "a.b": "flat"}"#).expect("valid");
        for _ in 0..2 {
            assert_eq!(
                other.get_field("x.y"),
                Some(EventValue::Str(Cow::Borrowed("z")))
            );
            assert_eq!(
                other.get_field("a.b"),
                Some(EventValue::Str(Cow::Borrowed("flat")))
            );
            assert_eq!(
                nested.get_field("a.b"),
                Some(EventValue::Str(Cow::Borrowed("nested")))
            );
        }
        let parsed = Record::from_json(
            Json::parse(r#"{"a": {"b": "nested"}, "a.b": "flat"}"#).expect("valid"),
        )
        .expect("an object");
        assert_eq!(
            parsed.get_field("a.b"),
            Some(EventValue::Str(Cow::Borrowed("flat")))
        );
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

    /// Values read straight from the text (objects as their compact text,
    /// escaped strings decoded alone) are what the parsed tree gives.
    #[test]
    fn values_read_from_the_text_are_the_parsed_tree_s() {
        let records = [
            RECORD,
            r#"{"requestParameters": {"policyName": "p", "policyDocument": "{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"*\"}]}"}}"#,
            r#"{"requestParameters": { "spaced" : {"a" : 1} , "n": {"x": 1.50, "y": -0, "z": 1e3}}}"#,
            r#"{"requestParameters": {"esc": {"k": "caf\u00e9"}, "plain": {"k": [1, "two", {"three": null}]}}}"#,
            r#"{"resources": [{"ARN": "arn:aws:s3:::b"}], "empty": {}, "a.b": {"c": 1}, "a": {"b": "x"}}"#,
            r#"{"eventName":"a\u0041","userIdentity.arn":"flat","userIdentity":{"arn":"nested"}}"#,
            r#"{"userIdentity":"scalar","requestParameters":[1,2],"errorCode":7}"#,
            r#"{"eventName":"First","eventName":"Second","userIdentity":{"arn":"1","arn":"2","sessionContext":{"sessionIssuer":{"arn":"r"}}}}"#,
            r#"{"userIdentity":{"arn":7,"sessionContext":{"sessionIssuer":{"arn":"arn:aws:iam::1:role/r"}}}}"#,
            r#"{"userIdentity":{"arn":"arn:aws:iam::1:user/caf\u00e9","invokedBy":"x"}}"#,
            r#"{"userIdentity":{"type":"AWSService","invokedBy":"ec2.amazonaws.com"}}"#,
            r#"{"userIdentity":[{"arn":"in an array"}],"eventName":"x"}"#,
        ];
        let paths = [
            "requestParameters",
            "requestParameters.policyDocument",
            "requestParameters.policyName",
            "requestParameters.spaced",
            "requestParameters.spaced.a",
            "requestParameters.n",
            "requestParameters.n.x",
            "requestParameters.esc",
            "requestParameters.esc.k",
            "requestParameters.plain",
            "requestParameters.plain.k",
            "requestParameters.ipPermissions",
            "responseElements",
            "userIdentity",
            "userIdentity.sessionContext",
            "resources",
            "resources.ARN",
            "empty",
            "a.b",
            "a",
            "errorCode",
            "eventName",
            "userIdentity.arn",
            "userIdentity.sessionContext.sessionIssuer.arn",
            "userIdentity.sessionContext.missing",
            "missing.deeper",
            "",
            "userIdentity..arn",
        ];
        for text in records {
            let from_text = Record::parse(text).expect("valid record");
            // The principal by paths split once is the one by their text.
            assert_eq!(
                from_text.principal_checked(),
                from_text.first_str_checked(&PRINCIPAL_PATHS),
                "{text}"
            );
            let tree =
                Record::from_json(Json::parse(text).expect("valid JSON")).expect("an object");
            // Read from the text even once a rule had its members parsed.
            let parsed_first = Record::parse(text).expect("valid record");
            let _ = parsed_first.to_value();
            for path in paths {
                assert_eq!(
                    from_text.get_field(path),
                    tree.get_field(path),
                    "{path} in {text}"
                );
                // A path split once reads the same.
                let split = FieldPath::new(path);
                assert_eq!(split.as_str(), path);
                for record in [&from_text, &parsed_first, &tree] {
                    assert_eq!(
                        record.field_at(&split),
                        tree.get_field(path),
                        "{path} in {text}"
                    );
                }
                assert_eq!(
                    parsed_first.get_field(path),
                    tree.get_field(path),
                    "{path} in {text}, parsed first"
                );
                for record in [&from_text, &parsed_first] {
                    assert_eq!(record.str_at(path), tree.str_at(path), "{path} in {text}");
                    assert_eq!(record.json_at(path), tree.json_at(path), "{path} in {text}");
                }
            }
            // The record's own text is its copy exactly when it is what
            // serializing it writes.
            let written = serde_json::to_string(&tree).expect("serializable");
            match from_text.compact_text() {
                Some(own) => assert_eq!(own, written, "{text}"),
                None => assert_ne!(text, written, "{text}"),
            }
        }
        let compact = serde_json::to_string(&Record::parse(RECORD).expect("valid record"))
            .expect("serializable");
        let record = Record::parse(&compact).expect("valid record");
        assert_eq!(record.compact_text(), Some(compact.as_str()));
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
    fn known_names_find_their_slot_and_no_other_name_does() {
        for (slot, name) in KNOWN.iter().enumerate() {
            assert_eq!(known_slot(name), Some(slot), "{name}");
        }
        for name in [
            "eventid",
            "eventNamE",
            "eventXame",
            "userAgenT",
            "",
            "errorCodes",
            "a",
        ] {
            assert_eq!(known_slot(name), None, "{name}");
        }
        assert!(same_key("eventName", "eventName"));
        assert!(!same_key("eventName", "eventTime"));
        assert!(!same_key("sessionContextX", "sessionContextY"));
        assert!(same_key("ab", "ab") && !same_key("ab", "ac"));
    }

    #[test]
    fn a_repeated_name_reads_as_its_first_member_escaped_or_not() {
        let record = Record::parse(
            r#"{"event\u004eame": "First", "eventName": "Second", "userAgent": "ua"}"#,
        )
        .expect("valid record");
        assert_eq!(record.event_name(), Some("First"));
        assert_eq!(record.user_agent(), Some("ua"));
        assert_eq!(record.event_source(), None);
    }

    #[test]
    fn json_at_writes_what_serializing_the_parsed_value_writes() {
        let texts = [
            RECORD,
            r#"{"requestParameters": {"a": 1.0, "b": 1e3, "c": -0, "d": 12345678901234567890}}"#,
            r#"{"requestParameters": {"a": "x\u0041\"y", "b": [1, 2, {"c": null}], "e": true}}"#,
            r#"{"requestParameters":{"a":"sp ace","b":[1,-2,{"c":false}],"t":"1e5"}}"#,
            r#"{"requestParameters": null, "x": {"y": {"z": "w"}}}"#,
            r#"{"requestParameters": "just text", "n": -12, "f": 0.5}"#,
        ];
        let paths = [
            "requestParameters",
            "requestParameters.a",
            "requestParameters.b",
            "requestParameters.c",
            "requestParameters.d",
            "requestParameters.e",
            "requestParameters.t",
            "requestParameters.ipPermissions",
            "responseElements",
            "x.y",
            "x.y.z",
            "n",
            "f",
            "missing",
            "errorCode",
        ];
        for text in texts {
            let value = Json::parse(text).expect("valid");
            for path in paths {
                let mut node = Some(&value);
                for segment in path.split('.') {
                    node = node.and_then(|n| n.get(segment));
                }
                let want = node.map(|n| serde_json::to_string(n).expect("writes"));
                let record = Record::parse(text).expect("valid record");
                assert_eq!(
                    record.json_at(path).map(Cow::into_owned),
                    want,
                    "{path} in {text}"
                );
            }
        }
    }

    #[test]
    fn first_json_among_takes_the_names_in_the_order_given() {
        let names = ["b", "a", "z"];
        for (text, want) in [
            (
                r#"{"p": {"a": 1, "b": {"c": [1, 2]}}}"#,
                Some(r#"{"c":[1,2]}"#),
            ),
            (r#"{"p": {"a": "x", "q": 2}}"#, Some(r#""x""#)),
            (r#"{"p": {"a": "x\"y", "a": 3}}"#, Some(r#""x\"y""#)),
            (r#"{"p": {"\u0061": 1.50}}"#, Some("1.5")),
            (r#"{"p": {"q": 1}}"#, None),
            (r#"{"p": "b"}"#, None),
            (r#"{"p": [{"b": 1}]}"#, None),
            (r#"{"q": {"b": 1}}"#, None),
        ] {
            let record = Record::parse(text).expect("valid record");
            assert_eq!(
                record.first_json_among("p", &names).as_deref(),
                want,
                "{text}"
            );
        }
    }

    #[test]
    fn the_parser_notes_the_names_as_the_record_would() {
        let texts = [
            r#"{"eventName":"A","eventID":"1","eventName":"B","userIdentity":{"eventName":"x"}}"#,
            r#"{"a.b":1,"eventSource":"s","errorCode":null,"eventType":"t","awsRegion":"r"}"#,
            r#"{"eventNamx":1,"userAgent":"u","sourceIPAddress":"i","recipientAccountId":"a"}"#,
            r#"{"event\u004eame":"escaped","eventName":"plain"}"#,
            r#"{"eventTime":"t","requestParameters":{"a.b":1},"userIdentity":null}"#,
            r#"{}"#,
        ];
        for text in texts {
            let mut spans = Vec::new();
            let indexed = index_object_prefix(text.as_bytes(), &mut spans).expect("valid");
            let mut store = MemberStore::default();
            let noted = Record::from_spans_in(text, &spans, &mut store, false, indexed.top);
            let read = Record::from_spans_in(text, &spans, &mut store, false, None);
            assert_eq!(indexed.top.is_none(), text.contains('\\'), "{text}");
            assert_eq!(
                (noted.known, noted.dotted),
                (read.known, read.dotted),
                "{text}"
            );
            for name in KNOWN {
                assert_eq!(noted.get(name), read.get(name), "{name} in {text}");
            }
        }
        let escaped = Record::parse(texts[3]).expect("valid");
        assert_eq!(escaped.event_name(), Some("escaped"));
        let dotted = Record::parse(texts[1]).expect("valid");
        assert!(dotted.dotted);
        assert!(!Record::parse(texts[4]).expect("valid").dotted);
    }

    #[test]
    fn a_recycled_record_leaves_its_room_to_the_next() {
        let mut store = MemberStore::default();
        let mut spans = Vec::new();
        let first = r#"{"eventName": "A", "eventSource": "s", "userAgent": "u"}"#;
        let end = index_object_prefix(first.as_bytes(), &mut spans)
            .expect("valid")
            .end;
        assert_eq!(end, first.len());
        let record = Record::from_spans_in(first, &spans, &mut store, false, None);
        // Fields are read from the text: the list of members is not made.
        assert_eq!(record.event_name(), Some("A"));
        assert_eq!(record.str_at("eventSource"), Some("s"));
        assert!(record.members.get().is_none());
        let room = record.member_list().as_ptr() as usize;
        assert_eq!(record.members().count(), 3);
        store.recycle(record);
        assert!(store.0.capacity() >= 3);
        let second = String::from(r#"{"eventName": "B"}"#);
        spans.clear();
        index_object_prefix(second.as_bytes(), &mut spans).expect("valid");
        let record = Record::from_spans_in(&second, &spans, &mut store, false, None);
        assert_eq!(record.event_name(), Some("B"));
        assert_eq!(record.user_agent(), None);
        assert!(record.members.get().is_none());
        assert_eq!(record.member_list().as_ptr() as usize, room);
    }

    #[test]
    fn a_record_must_be_an_object() {
        let err = Record::parse("[1]").expect_err("array is not a record");
        assert!(err.to_string().contains("an array"), "{err}");
    }
}
