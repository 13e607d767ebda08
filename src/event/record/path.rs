//! A field path as rules name it (`userIdentity.sessionContext.sessionIssuer.arn`),
//! split into its names once when the rule loads, and read from each record
//! without splitting it again.

use std::borrow::Cow;

use rsigma_eval::event::{Event, EventValue};

use super::sigma::raw_scalar;
use super::{Record, known_slot};
use crate::event::shallow::{Walk, find_span_by};

/// A dotted field path, split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath {
    text: String,
    /// The names between the dots (at least one).
    names: Vec<String>,
    /// The first name's place among the names every record notes.
    known: Option<usize>,
}

impl FieldPath {
    pub fn new(text: &str) -> FieldPath {
        let names: Vec<String> = text.split('.').map(str::to_owned).collect();
        FieldPath {
            known: names.first().and_then(|n| known_slot(n)),
            text: text.to_owned(),
            names,
        }
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl<'a> Record<'a> {
    /// `get_field(path.as_str())`, the same value, found without splitting
    /// the path or searching for a flat name with dots when the record has
    /// none.
    pub fn field_at(&self, path: &FieldPath) -> Option<EventValue<'_>> {
        let (head, rest) = path.names.split_first()?;
        if rest.is_empty() {
            return self
                .top_in(head, path.known)
                .map(|top| self.top_event_value(top));
        }
        // A flat name with dots wins over the nested path (see `get_field`).
        if self.dotted {
            return self.get_field(&path.text);
        }
        let top = self.top_in(head, path.known)?;
        if !top.raw.is_empty() {
            let names = rest.iter().map(String::as_str);
            match find_span_by(self.text, &self.spans, top.at, names) {
                Ok(span) => {
                    let raw = &self.text[span.value.clone()];
                    if span.plain {
                        return Some(EventValue::Str(Cow::Borrowed(unquoted(raw))));
                    }
                    if let Some(value) = raw_scalar(raw) {
                        return Some(value);
                    }
                }
                Err(Walk::Missing) => return None,
                Err(_) => {}
            }
        }
        // Through an array, or a record built from a parsed value.
        self.get_field(&path.text)
    }
}

impl<'a> Record<'a> {
    /// `str_at_checked(path.as_str())` where the text answers it: the
    /// string when it is one without escapes (`Some(Some)`), or that there
    /// is nothing there (`Some(None)`); `None` when the answer needs more.
    pub(crate) fn plain_str_at(&self, path: &FieldPath) -> Option<Option<&'a str>> {
        let (head, rest) = path.names.split_first()?;
        let Some(top) = self.top_in(head, path.known) else {
            return Some(None);
        };
        if top.raw.is_empty() || self.text.is_empty() {
            return None;
        }
        let text: &'a str = self.text;
        let span = match rest.is_empty() {
            true => self.spans.get(top.at as usize)?,
            false => match find_span_by(text, &self.spans, top.at, rest.iter().map(String::as_str))
            {
                Ok(span) => span,
                Err(Walk::Missing) => return Some(None),
                Err(_) => return None,
            },
        };
        span.plain
            .then(|| Some(unquoted(&text[span.value.clone()])))
    }
}

/// A plain string's text between its quotes.
fn unquoted(raw: &str) -> &str {
    &raw[1..raw.len() - 1]
}
