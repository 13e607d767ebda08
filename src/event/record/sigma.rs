//! A record as rsigma's rule engine reads it: any field by dotted path
//! (arrays fanned out, objects as their JSON text), and its strings for the
//! keyword search.

use std::borrow::Cow;

use rsigma_eval::event::{Event, EventValue};

use super::{Json, MAX_DEPTH, Record, Walk, split_dot};

/// A scalar's value straight from its checked JSON text; `None` for objects,
/// arrays and strings with escapes.
pub(super) fn raw_scalar(raw: &str) -> Option<EventValue<'_>> {
    let bytes = raw.as_bytes();
    match bytes.first()? {
        b'"' if memchr::memchr(b'\\', bytes).is_none() => {
            Some(EventValue::Str(Cow::Borrowed(&raw[1..raw.len() - 1])))
        }
        b'n' => Some(EventValue::Null),
        b't' => Some(EventValue::Bool(true)),
        b'f' => Some(EventValue::Bool(false)),
        b'-' | b'0'..=b'9' => match Json::parse(raw).ok()? {
            Json::Int(n) => Some(EventValue::Int(n)),
            Json::Float(f) => Some(EventValue::Float(f)),
            _ => None,
        },
        _ => None,
    }
}

/// A field's value as the rule engine sees it. An object is seen as its
/// compact JSON text, as SIEMs that store CloudTrail as flat JSON do: SigmaHQ
/// rules such as `requestParameters|contains: 'Suspended'` search the whole
/// object that way. Arrays stay arrays, so that any element can match.
pub(super) fn to_event_value<'s>(json: &'s Json<'_>) -> EventValue<'s> {
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

impl<'a> Record<'a> {
    /// A top-level member as the rule engine sees it: a plain string read
    /// from the text, anything else from its parsed value.
    pub(super) fn top_event_value(&self, top: super::Top<'a>) -> EventValue<'_> {
        if self.is_plain(top) {
            return EventValue::Str(Cow::Borrowed(&top.raw[1..top.raw.len() - 1]));
        }
        if let Some(text) = self.object_text(top.raw) {
            return EventValue::Str(Cow::Borrowed(text));
        }
        to_event_value(self.value_of(top))
    }

    /// An object's text, when it is what serializing its parsed value
    /// writes (an object is matched as that text).
    fn object_text<'t>(&self, raw: &'t str) -> Option<&'t str> {
        (raw.starts_with('{') && (self.is_compact() || super::compact::is_compact(raw)))
            .then_some(raw)
    }
}

impl Event for Record<'_> {
    fn get_field(&self, path: &str) -> Option<EventValue<'_>> {
        let Some((head, rest)) = split_dot(path) else {
            return self.top(path).map(|top| self.top_event_value(top));
        };
        // A flat key that contains dots wins over nested traversal, as in Sigma.
        if self.dotted
            && let Some(value) = self.get(path)
        {
            return Some(to_event_value(value));
        }
        // Through objects to a scalar: read straight from the text.
        let top = self.top(head)?;
        if !top.raw.is_empty() {
            match self.walk_top(top, rest) {
                (Walk::Missing, _) => return None,
                (Walk::Value(raw), true) => {
                    return Some(EventValue::Str(Cow::Borrowed(&raw[1..raw.len() - 1])));
                }
                (Walk::Value(raw), false) => {
                    if let Some(value) = raw_scalar(raw) {
                        return Some(value);
                    }
                    if let Some(text) = self.object_text(raw) {
                        return Some(EventValue::Str(Cow::Borrowed(text)));
                    }
                }
                (Walk::NeedTree, _) => {}
            }
        }
        let mut found = Vec::new();
        self.values_at(path, &mut found);
        match found.len() {
            0 => None,
            1 => Some(to_event_value(found[0])),
            _ => Some(EventValue::Array(
                found.into_iter().map(to_event_value).collect(),
            )),
        }
    }

    fn any_string_value(&self, pred: &dyn Fn(&str) -> bool) -> bool {
        self.members()
            .any(|(_, v)| visit_strings(v, MAX_DEPTH, &mut |s| pred(s)))
    }

    fn all_string_values(&self) -> Vec<Cow<'_, str>> {
        let mut out = Vec::new();
        self.visit_string_values(&mut |s| out.push(Cow::Owned(s.to_owned())));
        out
    }

    fn visit_string_values(&self, visit: &mut dyn FnMut(&str)) {
        for (_, value) in self.members() {
            visit_strings(value, MAX_DEPTH, &mut |s| {
                visit(s);
                false
            });
        }
    }

    fn to_json(&self) -> serde_json::Value {
        self.to_value()
    }

    fn top_level_keys(&self) -> Option<Vec<Cow<'_, str>>> {
        Some(
            self.member_list()
                .iter()
                .map(|m| Cow::Borrowed(m.key.as_ref()))
                .collect(),
        )
    }
}
