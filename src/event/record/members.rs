//! A record's top-level members: found by name from the parser's notes,
//! listed (with their parsed values) only when something needs the list.

use std::borrow::Cow;
use std::cell::{Cell, OnceCell};

use super::{Json, Record, known_slot, same_key};
use crate::event::shallow::{NO_SPAN, member_name, named, siblings};

/// Where a record's members are made, when they are.
#[derive(Default)]
pub(super) struct Room<'a>(pub(super) Cell<Vec<Member<'a>>>);

impl std::fmt::Debug for Room<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Room")
    }
}

/// Room for a record's members, kept from one record to the next so that
/// reading a record does not allocate (see `RecordReader::next_record_in`).
#[derive(Debug, Default)]
pub struct MemberStore(pub(super) Vec<Member<'static>>);

impl MemberStore {
    /// Keeps the room `record` used, for the next one.
    // `filter_map` here changes the element type (the lifetime), which
    // `filter` cannot.
    #[allow(clippy::unnecessary_filter_map)]
    pub fn recycle(&mut self, record: Record<'_>) {
        let mut members = match record.members.into_inner() {
            Some(members) => members,
            None => record.room.0.take(),
        };
        members.clear();
        // An empty vector's room, retyped: collecting a vector's own
        // iterator into one of the same layout reuses its allocation.
        self.0 = members.into_iter().filter_map(|_| None).collect();
    }

    #[allow(clippy::unnecessary_filter_map)]
    pub(super) fn take<'a>(&mut self) -> Vec<Member<'a>> {
        std::mem::take(&mut self.0)
            .into_iter()
            .filter_map(|_| None)
            .collect()
    }
}

/// A top-level member: its value's text (empty for a record built from a
/// parsed value), and where it is: its span, or for a record built from a
/// parsed value its place among the members.
#[derive(Debug, Clone, Copy)]
pub(super) struct Top<'a> {
    pub(super) raw: &'a str,
    pub(super) at: u32,
}

#[derive(Debug, Clone)]
pub(crate) struct Member<'a> {
    pub(super) key: Cow<'a, str>,
    pub(super) raw: &'a str,
    pub(super) value: OnceCell<Json<'a>>,
    /// Its place in the record's spans (`NO_SPAN`: none).
    pub(super) span: u32,
}

impl<'a> Record<'a> {
    /// The top-level members, in order (made from the spans when first
    /// asked for).
    pub(super) fn member_list(&self) -> &[Member<'a>] {
        self.members.get_or_init(|| {
            let text: &'a str = self.text;
            let mut members = self.room.0.take();
            let mut at = 0;
            while let Some(span) = self.spans.get(at as usize) {
                members.push(Member {
                    key: member_name(text, span),
                    raw: &text[span.value.clone()],
                    value: OnceCell::new(),
                    span: at,
                });
                at = span.next;
            }
            members
        })
    }

    /// The first top-level member named `key`.
    #[inline]
    pub(super) fn top(&self, key: &str) -> Option<Top<'a>> {
        self.top_in(key, known_slot(key))
    }

    /// As `top`, `slot` being `known_slot(key)`.
    #[inline]
    pub(super) fn top_in(&self, key: &str, slot: Option<usize>) -> Option<Top<'a>> {
        let at = match slot {
            Some(slot) => self.known[slot],
            None if self.text.is_empty() => {
                let i = self
                    .member_list()
                    .iter()
                    .position(|m| same_key(&m.key, key))?;
                u32::try_from(i).ok()?
            }
            None => {
                siblings(&self.spans, 0)
                    .find(|(_, s)| named(self.text, s, key))?
                    .0
            }
        };
        if at == NO_SPAN {
            return None;
        }
        let text: &'a str = self.text;
        let raw = match self.spans.get(at as usize) {
            Some(span) => &text[span.value.clone()],
            None => "",
        };
        Some(Top { raw, at })
    }

    /// The parsed value of a top-level member.
    pub(super) fn value_of(&self, top: Top<'a>) -> &Json<'a> {
        let members = self.member_list();
        let at = match self.text.is_empty() {
            true => Some(top.at as usize),
            false => members.binary_search_by_key(&top.at, |m| m.span).ok(),
        };
        at.and_then(|i| members.get(i))
            .map_or(&Json::Null, Member::value)
    }
}

impl<'a> Member<'a> {
    pub(super) fn value(&self) -> &Json<'a> {
        self.value.get_or_init(|| parse_member(self.raw))
    }
}

/// A member's value, already checked to be valid JSON. Plain strings and
/// literals, the most common values, skip the general parser.
fn parse_member(raw: &str) -> Json<'_> {
    let bytes = raw.as_bytes();
    if bytes.len() >= 2 && bytes[0] == b'"' && memchr::memchr(b'\\', bytes).is_none() {
        return Json::Str(Cow::Borrowed(&raw[1..raw.len() - 1]));
    }
    match raw {
        "null" => Json::Null,
        "true" => Json::Bool(true),
        "false" => Json::Bool(false),
        // Only a number out of f64's range can fail here; it reads as null.
        _ => Json::parse(raw).unwrap_or(Json::Null),
    }
}
