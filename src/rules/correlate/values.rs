//! What a correlation reads of a record: its group's values and key, and
//! the value a `value_count` counts.

use std::borrow::Cow;

use rsigma_eval::{Event, EventValue};

use crate::event::{FieldPath, Record};

/// A field as rsigma's engine reads it for grouping and distinct values:
/// strings as they are, numbers and booleans as text; null, arrays and
/// objects are no value.
pub(super) fn field_text<'r>(record: &'r Record, field: &FieldPath) -> Option<Cow<'r, str>> {
    value_text(record.field_at(field)?)
}

fn value_text(value: EventValue) -> Option<Cow<str>> {
    match value {
        EventValue::Str(s) => Some(s),
        EventValue::Int(n) => Some(n.to_string().into()),
        EventValue::Float(f) => Some(f.to_string().into()),
        EventValue::Bool(b) => Some(b.to_string().into()),
        _ => None,
    }
}

/// A `value_count` field: as `field_text`, and null counts as `null` (as in
/// rsigma); several fields are joined by U+001F, and one missing is no value.
pub(super) fn count_value<'r>(record: &'r Record, fields: &[String]) -> Option<Cow<'r, str>> {
    let part = |f: &String| match record.get_field(f)? {
        EventValue::Null => Some(Cow::Borrowed("null")),
        value => value_text(value),
    };
    if let [only] = fields {
        return part(only);
    }
    let mut parts = Vec::with_capacity(fields.len());
    for f in fields {
        parts.push(part(f)?);
    }
    Some(parts.join("\u{1f}").into())
}

/// The group key as alerts state it: `field=value` pairs in `group-by`
/// order, a field without a value left out.
pub(super) fn group_key(group_by: &[String], values: &[Option<Cow<str>>]) -> String {
    let mut key = String::new();
    for (k, v) in group_by.iter().zip(values) {
        if let Some(v) = v {
            if !key.is_empty() {
                key.push(',');
            }
            key.push_str(k);
            key.push('=');
            key.push_str(v);
        }
    }
    key
}
