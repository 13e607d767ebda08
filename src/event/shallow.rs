//! One pass over a record that checks all of it is valid JSON and notes where
//! each member of each object lies (the members of objects inside arrays
//! excepted), without building anything. Rules read a few fields of each
//! record; a dotted path is followed through these notes, and the values
//! rules read are parsed when first asked for (see `Record`), the others
//! never are.

use std::borrow::Cow;

use super::bytes::{find_string_end, same_bytes};
use super::record::TopNames;

/// Containers nested deeper than this are refused (serde_json's limit).
pub const MAX_DEPTH: usize = 128;

/// A top-level member: its name and its value's JSON text.
#[cfg(test)]
#[derive(Debug, Clone)]
pub struct RawMember<'a> {
    pub key: Cow<'a, str>,
    pub raw: &'a str,
}

/// Why the text is not one JSON object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShallowError {
    #[error("{reason} at byte {offset}")]
    Syntax { offset: usize, reason: &'static str },
    #[error("a record must be a JSON object, found {0}")]
    NotAnObject(&'static str),
}

impl ShallowError {
    /// Byte offset of the fault in the text (0 for a value that is not an object).
    pub fn offset(&self) -> usize {
        match self {
            ShallowError::Syntax { offset, .. } => *offset,
            ShallowError::NotAnObject(_) => 0,
        }
    }
}

/// Where one member lies: its name (inside the quotes), whether the name has
/// escapes, and its value's text; the next member of the same object, and,
/// when the value is an object, its first member (indices into the spans;
/// `NO_SPAN` for none). The record's own members come first, from index 0.
#[derive(Debug, Clone)]
pub struct MemberSpan {
    pub key: std::ops::Range<usize>,
    pub escaped: bool,
    pub value: std::ops::Range<usize>,
    /// The value is a string without escapes: its text between the quotes
    /// is the string.
    pub plain: bool,
    pub next: u32,
    pub first: u32,
}

/// No member.
pub const NO_SPAN: u32 = u32::MAX;

/// The members of the object whose first member is at `first`, in order.
pub fn siblings(spans: &[MemberSpan], first: u32) -> impl Iterator<Item = (u32, &MemberSpan)> {
    let mut at = first;
    std::iter::from_fn(move || {
        let span = spans.get(at as usize)?;
        let this = at;
        at = span.next;
        Some((this, span))
    })
}

/// Checks that `text` is exactly one JSON object (whitespace around it
/// allowed) and appends its members, in document order, to `members`.
#[cfg(test)]
pub fn index_object<'a>(
    text: &'a str,
    members: &mut Vec<RawMember<'a>>,
) -> Result<(), ShallowError> {
    let mut spans = Vec::new();
    let end = index_object_prefix(text.as_bytes(), &mut spans)?.end;
    check_trailing(text.as_bytes(), end)?;
    members.extend(siblings(&spans, 0).map(|(_, span)| RawMember {
        key: member_name(text, span),
        raw: &text[span.value.clone()],
    }));
    Ok(())
}

/// Fails unless only whitespace follows `end`.
pub fn check_trailing(bytes: &[u8], end: usize) -> Result<(), ShallowError> {
    let mut p = Parser::new(bytes);
    p.pos = end;
    p.ws();
    if p.pos != bytes.len() {
        return Err(p.error("trailing characters"));
    }
    Ok(())
}

/// A member's name, unescaped when it has escapes.
pub fn member_name<'a>(text: &'a str, span: &MemberSpan) -> Cow<'a, str> {
    let name = &text[span.key.clone()];
    if !span.escaped {
        return Cow::Borrowed(name);
    }
    // Checked already: the quoted name is a valid JSON string.
    let quoted = &text[span.key.start - 1..span.key.end + 1];
    serde_json::from_str::<String>(quoted).map_or(Cow::Borrowed(name), Cow::Owned)
}

/// What `index_object_prefix` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Indexed {
    /// The index just past the object's `}`.
    pub end: usize,
    /// The object's text up to `end` is what serializing its parsed value
    /// writes: no white space, no escapes, only integers of at most 18
    /// digits and no `-0` (as `is_compact` in `record/compact.rs` tells).
    pub compact: bool,
    /// The object's own names, as `Record` keeps them; `None` when one has
    /// escapes (then `Record` reads them itself).
    pub top: Option<TopNames>,
}

/// Checks the JSON object at the start of `bytes` (after whitespace), notes
/// its members and theirs in `spans` (which must be empty), and returns
/// where it ends and whether it is compact. What follows is not looked at.
/// UTF-8 is not checked here.
pub fn index_object_prefix(
    bytes: &[u8],
    spans: &mut Vec<MemberSpan>,
) -> Result<Indexed, ShallowError> {
    debug_assert!(spans.is_empty());
    let mut p = Parser::new(bytes);
    p.ws();
    match p.peek() {
        Some(b'{') => {}
        Some(b'[') => return Err(ShallowError::NotAnObject("an array")),
        Some(b'"') => return Err(ShallowError::NotAnObject("a string")),
        Some(b't' | b'f') => return Err(ShallowError::NotAnObject("a boolean")),
        Some(b'n') => return Err(ShallowError::NotAnObject("null")),
        Some(b'-' | b'0'..=b'9') => return Err(ShallowError::NotAnObject("a number")),
        Some(_) => return Err(p.error("expected a JSON value")),
        None => return Err(p.error("EOF while parsing a value")),
    }
    match p.members(0, spans) {
        Ok(_) => Ok(Indexed {
            end: p.pos,
            compact: !p.loose,
            top: (!p.escaped_top).then_some(p.top),
        }),
        Err(Fault) => Err(p.fault.take().unwrap_or_else(|| p.error("malformed JSON"))),
    }
}

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// Why the text is not JSON, once found.
    fault: Option<ShallowError>,
    /// Something was read that serializing would write otherwise (white
    /// space, an escape, a fraction, an exponent, `-0`, a long integer).
    loose: bool,
    /// The object's own names, as far as read.
    top: TopNames,
    /// One of the object's own names has escapes.
    escaped_top: bool,
}

/// The text is not JSON: the parser's `fault` says why. (A unit error keeps
/// the parse functions' results in registers.)
struct Fault;

impl<'b> Parser<'b> {
    fn new(bytes: &'b [u8]) -> Self {
        Parser {
            bytes,
            pos: 0,
            fault: None,
            loose: false,
            top: TopNames::NONE,
            escaped_top: false,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn error(&self, reason: &'static str) -> ShallowError {
        ShallowError::Syntax {
            offset: self.pos.min(self.bytes.len()),
            reason,
        }
    }

    /// Notes why and where the text is not JSON; the caller returns `Err`.
    #[cold]
    fn fail(&mut self, reason: &'static str) -> Fault {
        self.fault = Some(self.error(reason));
        Fault
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
            self.loose = true;
        }
    }

    /// At an object's `{`: checks it, moving past its `}`, and notes its
    /// members (and those of the objects among their values) in `spans`;
    /// the index of its first member, or `NO_SPAN`. `depth` is the
    /// object's nesting (0 for the record).
    fn members(&mut self, depth: usize, spans: &mut Vec<MemberSpan>) -> Result<u32, Fault> {
        if depth >= MAX_DEPTH {
            return Err(self.fail("nesting too deep"));
        }
        self.pos += 1;
        self.ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(NO_SPAN);
        }
        let mut first = NO_SPAN;
        let mut prev = NO_SPAN;
        loop {
            if self.peek() != Some(b'"') {
                return Err(self.fail("expected a member name"));
            }
            let key_start = self.pos + 1;
            let escaped = self.string()?;
            let key = key_start..self.pos - 1;
            self.ws();
            if self.peek() != Some(b':') {
                return Err(self.fail("expected ':'"));
            }
            self.pos += 1;
            self.ws();
            let Ok(at) = u32::try_from(spans.len()) else {
                return Err(self.fail("too many members"));
            };
            if at == NO_SPAN {
                return Err(self.fail("too many members"));
            }
            if depth == 0 {
                match escaped {
                    true => self.escaped_top = true,
                    false => self.top.note(at, &self.bytes[key.clone()]),
                }
            }
            spans.push(MemberSpan {
                key,
                escaped,
                value: self.pos..self.pos,
                plain: false,
                next: NO_SPAN,
                first: NO_SPAN,
            });
            match spans.get_mut(prev as usize) {
                Some(before) => before.next = at,
                None => first = at,
            }
            prev = at;
            let value_start = self.pos;
            let (inner, plain) = match self.peek() {
                Some(b'{') => (self.members(depth + 1, spans)?, false),
                Some(b'"') => (NO_SPAN, !self.string()?),
                _ => {
                    self.value(depth + 1)?;
                    (NO_SPAN, false)
                }
            };
            if let Some(span) = spans.get_mut(at as usize) {
                span.value = value_start..self.pos;
                span.plain = plain;
                span.first = inner;
            }
            self.ws();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.ws();
                }
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(first);
                }
                Some(_) => return Err(self.fail("expected ',' or '}'")),
                None => return Err(self.fail("EOF while parsing an object")),
            }
        }
    }

    /// Skips one value, checking it; `depth` is the nesting of the value.
    fn value(&mut self, depth: usize) -> Result<(), Fault> {
        match self.peek() {
            Some(b'"') => self.string().map(|_| ()),
            Some(b'{') => self.container(depth, b'}', true),
            Some(b'[') => self.container(depth, b']', false),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.fail("expected a JSON value")),
            None => Err(self.fail("EOF while parsing a value")),
        }
    }

    fn container(&mut self, depth: usize, close: u8, object: bool) -> Result<(), Fault> {
        if depth >= MAX_DEPTH {
            return Err(self.fail("nesting too deep"));
        }
        self.pos += 1;
        self.ws();
        if self.peek() == Some(close) {
            self.pos += 1;
            return Ok(());
        }
        loop {
            if object {
                if self.peek() != Some(b'"') {
                    return Err(self.fail("expected a member name"));
                }
                self.string()?;
                self.ws();
                if self.peek() != Some(b':') {
                    return Err(self.fail("expected ':'"));
                }
                self.pos += 1;
                self.ws();
            }
            self.value(depth + 1)?;
            self.ws();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.ws();
                }
                Some(b) if b == close => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(_) if object => return Err(self.fail("expected ',' or '}'")),
                Some(_) => return Err(self.fail("expected ',' or ']'")),
                None => return Err(self.fail("EOF while parsing a container")),
            }
        }
    }

    /// Skips a string at its opening quote; true when it has escapes.
    #[inline(always)]
    fn string(&mut self) -> Result<bool, Fault> {
        self.pos += 1;
        let mut escaped = false;
        loop {
            self.pos = find_string_end(self.bytes, self.pos, true);
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(escaped);
                }
                Some(b'\\') => {
                    escaped = true;
                    // Serializing writes some escapes as they are.
                    let at = self.pos;
                    self.escape()?;
                    self.loose |= self.pos - at
                        != crate::event::record::canonical_escape(&self.bytes[at..]).unwrap_or(0);
                }
                // Control characters must be escaped.
                Some(_) => return Err(self.fail("control character in a string")),
                None => return Err(self.fail("EOF while parsing a string")),
            }
        }
    }

    /// At a backslash: checks one escape sequence and moves past it.
    #[inline(never)]
    fn escape(&mut self) -> Result<(), Fault> {
        self.pos += 1;
        match self.peek() {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                self.pos += 1;
                Ok(())
            }
            Some(b'u') => {
                self.pos += 1;
                let unit = self.hex4()?;
                match unit {
                    0xD800..=0xDBFF => {
                        // A leading surrogate needs a trailing one.
                        if self.bytes.get(self.pos..self.pos + 2) != Some(b"\\u") {
                            return Err(self.fail("lone leading surrogate in hex escape"));
                        }
                        self.pos += 2;
                        match self.hex4()? {
                            0xDC00..=0xDFFF => Ok(()),
                            _ => Err(self.fail("lone leading surrogate in hex escape")),
                        }
                    }
                    0xDC00..=0xDFFF => Err(self.fail("lone trailing surrogate in hex escape")),
                    _ => Ok(()),
                }
            }
            Some(_) => Err(self.fail("invalid escape")),
            None => Err(self.fail("EOF while parsing a string")),
        }
    }

    fn hex4(&mut self) -> Result<u32, Fault> {
        let Some(digits) = self.bytes.get(self.pos..self.pos + 4) else {
            self.pos = self.bytes.len();
            return Err(self.fail("EOF while parsing a string"));
        };
        let mut unit = 0;
        for &d in digits {
            let v = match d {
                b'0'..=b'9' => d - b'0',
                b'a'..=b'f' => d - b'a' + 10,
                b'A'..=b'F' => d - b'A' + 10,
                _ => return Err(self.fail("invalid escape")),
            };
            unit = unit * 16 + u32::from(v);
        }
        self.pos += 4;
        Ok(unit)
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), Fault> {
        if self.bytes.get(self.pos..self.pos + word.len()) == Some(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(self.fail("expected a JSON value"))
        }
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    fn number(&mut self) -> Result<(), Fault> {
        let negative = self.peek() == Some(b'-');
        if negative {
            self.pos += 1;
        }
        let start = self.pos;
        match self.peek() {
            Some(b'0') => {
                self.pos += 1;
                self.loose |= negative;
            }
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.fail("invalid number")),
        }
        self.loose |= self.pos - start > 18;
        if self.peek() == Some(b'.') {
            self.loose = true;
            self.pos += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.fail("invalid number"));
            }
            self.digits();
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.loose = true;
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.fail("invalid number"));
            }
            self.digits();
        }
        Ok(())
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
    }
}

/// What following a dotted path through already checked JSON text found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Walk<'a> {
    /// The value's JSON text.
    Value(&'a str),
    /// Some object on the way lacks the key, or a value on the way is a scalar.
    Missing,
    /// The path crosses an array, or a name with escapes: parse instead.
    NeedTree,
}

/// Follows `path` (dot-separated names) from the member at `at` through the
/// members `index_object_prefix` noted in `text`.
#[cfg(test)]
pub fn walk_spans<'a>(text: &'a str, spans: &[MemberSpan], at: u32, path: &str) -> Walk<'a> {
    match find_span(text, spans, at, path) {
        Ok(span) => Walk::Value(&text[span.value.clone()]),
        Err(walk) => walk,
    }
}

/// As `walk_spans`: the span of the member at the end of `path`, or why
/// there is none (`Walk::Missing` or `Walk::NeedTree`).
pub fn find_span<'s>(
    text: &str,
    spans: &'s [MemberSpan],
    at: u32,
    path: &str,
) -> Result<&'s MemberSpan, Walk<'static>> {
    find_span_by(text, spans, at, path.split('.'))
}

/// As `find_span`, with the path's names given one by one.
#[inline]
pub fn find_span_by<'s, 'p>(
    text: &str,
    spans: &'s [MemberSpan],
    at: u32,
    names: impl Iterator<Item = &'p str>,
) -> Result<&'s MemberSpan, Walk<'static>> {
    let Some(mut span) = spans.get(at as usize) else {
        return Err(Walk::Missing);
    };
    for name in names {
        if span.first == NO_SPAN {
            // A scalar or an empty object has no members; an array's are
            // not noted.
            return Err(match text.as_bytes().get(span.value.start) {
                Some(b'[') => Walk::NeedTree,
                _ => Walk::Missing,
            });
        }
        let Some((_, member)) = siblings(spans, span.first).find(|(_, m)| named(text, m, name))
        else {
            return Err(Walk::Missing);
        };
        span = member;
    }
    Ok(span)
}

/// Whether the member's name is `name`.
#[inline]
pub(crate) fn named(text: &str, span: &MemberSpan, name: &str) -> bool {
    if span.escaped {
        member_name(text, span) == name
    } else {
        text.as_bytes()
            .get(span.key.clone())
            .is_some_and(|key| same_bytes(key, name.as_bytes()))
    }
}

/// Follows `path` (dot-separated names) from the JSON text `raw`, which must
/// already have been checked, through objects only.
pub fn walk<'a>(mut raw: &'a str, path: &str) -> Walk<'a> {
    let mut rest = Some(path);
    while let Some(path) = rest {
        let segment = match path.bytes().position(|b| b == b'.') {
            Some(at) => {
                rest = Some(&path[at + 1..]);
                &path[..at]
            }
            None => {
                rest = None;
                path
            }
        };
        match raw.as_bytes().first() {
            Some(b'{') => {}
            Some(b'[') => return Walk::NeedTree,
            _ => return Walk::Missing,
        }
        match find_member(raw, segment) {
            Walk::Value(v) => raw = v,
            other => return other,
        }
    }
    Walk::Value(raw)
}

/// The value of member `key` in the checked object text `raw`.
fn find_member<'a>(raw: &'a str, key: &str) -> Walk<'a> {
    let b = raw.as_bytes();
    let mut pos = skip_ws(b, 1);
    if b.get(pos) != Some(&b'"') {
        return Walk::Missing;
    }
    loop {
        // At a member name's opening quote.
        let name_start = pos + 1;
        let n = find_string_end(b, name_start, false) - name_start;
        match b.get(name_start + n) {
            Some(b'"') => {}
            Some(_) => return Walk::NeedTree,
            None => return Walk::Missing,
        }
        let name = &b[name_start..name_start + n];
        pos = skip_ws(b, name_start + n + 1) + 1; // past ':'
        pos = skip_ws(b, pos);
        let end = skip_value(b, pos);
        if name == key.as_bytes() {
            return Walk::Value(&raw[pos..end]);
        }
        pos = skip_ws(b, end);
        if b.get(pos) != Some(&b',') {
            return Walk::Missing;
        }
        pos = skip_ws(b, pos + 1);
    }
}

fn skip_ws(b: &[u8], mut pos: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = b.get(pos) {
        pos += 1;
    }
    pos
}

/// The end of the checked value starting at `pos`.
fn skip_value(b: &[u8], pos: usize) -> usize {
    match b.get(pos) {
        Some(b'"') => skip_string(b, pos),
        Some(b'{' | b'[') => {
            let mut depth = 0usize;
            let mut i = pos;
            while i < b.len() {
                match b[i] {
                    b'"' => {
                        i = skip_string(b, i);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return i + 1;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            b.len()
        }
        _ => {
            let mut i = pos;
            while i < b.len() && !matches!(b[i], b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
            {
                i += 1;
            }
            i
        }
    }
}

/// The end (past the closing quote) of the checked string at `pos`.
fn skip_string(b: &[u8], pos: usize) -> usize {
    let mut i = pos + 1;
    loop {
        i = find_string_end(b, i, false);
        match b.get(i) {
            Some(b'"') => return i + 1,
            Some(_) => i += 2,
            None => return b.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<Vec<(String, String)>, ShallowError> {
        let mut members = Vec::new();
        index_object(text, &mut members)?;
        Ok(members
            .into_iter()
            .map(|m| (m.key.into_owned(), m.raw.to_owned()))
            .collect())
    }

    #[test]
    fn members_and_their_raw_values() {
        let got = check(r#" { "a" : "x" , "b\u0041":{"c":[1,-2.5e3,true,null]}, "d":"q\"" } "#)
            .expect("valid");
        assert_eq!(
            got,
            vec![
                ("a".into(), r#""x""#.into()),
                ("bA".into(), r#"{"c":[1,-2.5e3,true,null]}"#.into()),
                ("d".into(), r#""q\"""#.into()),
            ]
        );
        assert_eq!(check("{}").expect("empty object"), vec![]);
    }

    #[test]
    fn agrees_with_serde_json_on_what_is_valid() {
        let cases = [
            r#"{"a":1}"#,
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":-}"#,
            r#"{"a":1e}"#,
            r#"{"a":tru}"#,
            r#"{"a":"\x"}"#,
            r#"{"a":"\ud800"}"#,
            r#"{"a":"\udc00"}"#,
            r#"{"a":"\ud83d\ude00"}"#,
            "{\"a\":\"tab\there\"}",
            r#"{"a":[1,]}"#,
            r#"{"a":[1 2]}"#,
            r#"{"a":{"b":1,}}"#,
            r#"{"a":1,}"#,
            r#"{"a":1} x"#,
            r#"{"a" 1}"#,
            r#"{a:1}"#,
            r#"{"a":[[[]]]}"#,
            r#"{"a":"unterminated}"#,
            r#"{"a":{"b":[1,{"c":null}]}}"#,
        ];
        for case in cases {
            let ours = check(case).is_ok();
            let theirs = serde_json::from_str::<serde_json::Value>(case).is_ok();
            assert_eq!(ours, theirs, "{case}");
        }
    }

    #[test]
    fn walks_checked_text_through_objects() {
        let text = r#"{"a": {"b" : {"c":"x,}]"}, "n":[1,{"c":2}], "s":"q\"\\"}, "e\u0041":1}"#;
        check(text).expect("valid");
        assert_eq!(walk(text, "a.b.c"), Walk::Value(r#""x,}]""#));
        assert_eq!(walk(text, "a.s"), Walk::Value(r#""q\"\\""#));
        assert_eq!(walk(text, "a.b"), Walk::Value(r#"{"c":"x,}]"}"#));
        assert_eq!(walk(text, "a.x"), Walk::Missing);
        assert_eq!(walk(text, "a.b.c.d"), Walk::Missing);
        assert_eq!(walk(text, "a.n.c"), Walk::NeedTree);
        assert_eq!(walk(text, "eA"), Walk::NeedTree);
        assert_eq!(walk("{}", "a"), Walk::Missing);
    }

    #[test]
    fn walks_the_noted_members_as_the_text() {
        let text = r#"{"a": {"b" : {"c":"x,}]"}, "n":[1,{"c":2}], "s":"q\"\\", "e":{}}, "f\u0041":{"g\u0042":3}, "a":{"b":9}}"#;
        let mut spans = Vec::new();
        let end = index_object_prefix(text.as_bytes(), &mut spans)
            .expect("valid")
            .end;
        assert_eq!(end, text.len());
        let top: Vec<&str> = siblings(&spans, 0)
            .map(|(_, m)| &text[m.key.clone()])
            .collect();
        assert_eq!(top, ["a", "f\\u0041", "a"]);
        for path in ["b.c", "s", "b", "x", "b.c.d", "n.c", "n", "e", "e.x"] {
            assert_eq!(
                walk_spans(text, &spans, 0, path),
                walk(&text[spans[0].value.clone()], path),
                "{path}"
            );
        }
        // Escaped names are compared unescaped.
        assert_eq!(
            walk_spans(text, &spans, spans[0].next, "gB"),
            Walk::Value("3")
        );
        assert_eq!(walk_spans(text, &spans, 99, "b"), Walk::Missing);
        // Only strings without escapes are plain.
        let plain: Vec<(&str, bool)> = spans
            .iter()
            .map(|m| (&text[m.value.clone()], m.plain))
            .collect();
        for (value, is_plain) in plain {
            let expected = value.starts_with('"') && !value.contains('\\');
            assert_eq!(is_plain, expected, "{value}");
        }
        assert!(
            spans.iter().any(|m| m.plain)
                && spans.iter().any(|m| &text[m.value.clone()] == r#""q\"\\""#)
        );
    }

    #[test]
    fn errors_say_what_and_where() {
        let err = check(r#"{"a":[1,]}"#).expect_err("trailing comma");
        assert_eq!(err.offset(), 8);
        assert_eq!(
            check("[1]").expect_err("array"),
            ShallowError::NotAnObject("an array")
        );
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(200), "]".repeat(200));
        assert!(check(&deep).is_err());
    }
}
