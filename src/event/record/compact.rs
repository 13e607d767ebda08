//! A value of a record as compact JSON, read straight from the record's
//! text when that text already is what serializing the value would write
//! (alert targets are read this way for every match).

use std::borrow::Cow;

use super::{MemberSpan, Record, Walk, siblings, split_dot};

impl<'a> Record<'a> {
    /// The value at a dotted path (objects only, no arrays) written as
    /// compact JSON, exactly as `serde_json::to_string` writes its parsed
    /// value; `None` when absent. Read straight from the record's text when
    /// that text already is the compact form, so most calls parse nothing.
    pub fn json_at(&self, path: &str) -> Option<Cow<'_, str>> {
        let (head, rest) = match split_dot(path) {
            Some((head, rest)) => (head, Some(rest)),
            None => (path, None),
        };
        let top = self.top(head)?;
        if !top.raw.is_empty() {
            let found = match rest {
                None => Walk::Value(top.raw),
                Some(rest) => self.walk_top(top, rest).0,
            };
            match found {
                Walk::Missing => return None,
                Walk::Value(raw) if self.compact || is_compact(raw) => {
                    return Some(Cow::Borrowed(raw));
                }
                _ => {}
            }
        }
        let mut node = self.value_of(top);
        for segment in rest.into_iter().flat_map(|r| r.split('.')) {
            node = node.get(segment)?;
        }
        serde_json::to_string(node).ok().map(Cow::Owned)
    }

    /// The first of `names` (in the order given, not the record's) that the
    /// object at top-level member `parent` has, with its value as compact
    /// JSON (as `json_at`); `None` when it has none of them.
    pub fn first_json_among(&self, parent: &str, names: &[&str]) -> Option<Cow<'_, str>> {
        self.first_json_ranked(parent, names, |key| {
            names.iter().position(|n| n.len() == key.len() && *n == key)
        })
    }

    /// As `first_json_among`, with `rank(key)` telling where `key` is among
    /// `names` (a caller that knows its names can tell it faster than a
    /// search).
    pub fn first_json_ranked(
        &self,
        parent: &str,
        names: &[&str],
        rank: impl Fn(&str) -> Option<usize>,
    ) -> Option<Cow<'_, str>> {
        let top = self.top(parent)?;
        if let Some(span) = self
            .spans
            .get(top.at as usize)
            .filter(|_| !self.text.is_empty())
        {
            let mut best: Option<(usize, &MemberSpan)> = None;
            let mut exact = true;
            for (_, child) in siblings(&self.spans, span.first) {
                if child.escaped {
                    exact = false;
                    break;
                }
                let key = &self.text[child.key.clone()];
                if let Some(rank) = rank(key)
                    && best.is_none_or(|(b, _)| rank < b)
                {
                    best = Some((rank, child));
                }
            }
            let is_object = self.text.as_bytes().get(span.value.start) == Some(&b'{');
            if exact && is_object {
                let (_, child) = best?;
                let raw = &self.text[child.value.clone()];
                if self.compact || is_compact(raw) {
                    return Some(Cow::Borrowed(raw));
                }
            }
        }
        let node = self.value_of(top);
        names
            .iter()
            .find_map(|name| node.get(name))
            .and_then(|v| serde_json::to_string(v).ok())
            .map(Cow::Owned)
    }
}

impl<'a> Record<'a> {
    /// The record's own text when it already is what serializing the record
    /// writes (`serde_json::to_string`): CloudTrail writes its records
    /// compact, so an alert's copy of one is most often a copy of its text.
    pub fn compact_text(&self) -> Option<&'a str> {
        self.text().filter(|text| self.compact || is_compact(text))
    }

    /// Whether the parser found the record's text compact (false when it
    /// was not read from text, or not told).
    pub(crate) fn is_compact(&self) -> bool {
        self.compact
    }
}

/// Whether checked JSON text is already what serializing its parsed value
/// writes: no escapes but those serializing writes (`canonical_escape`),
/// no white space, and only integers that parse as such (no fraction,
/// exponent, `-0` or more than 18 digits). A string's content is skipped
/// sixteen bytes at a time to its end or its next escape (the text is
/// checked JSON, so no control byte).
pub(crate) fn is_compact(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    let mut digits = 0usize;
    let mut prev = 0u8;
    let mut at = 0;
    while let Some(&b) = bytes.get(at) {
        at += 1;
        match b {
            b'"' => loop {
                at = crate::event::bytes::find_string_end(bytes, at, false);
                match bytes.get(at) {
                    Some(b'"') => {
                        at += 1;
                        break;
                    }
                    Some(b'\\') => match canonical_escape(&bytes[at..]) {
                        Some(len) => at += len,
                        None => return false,
                    },
                    _ => return false,
                }
            },
            b'0'..=b'9' => {
                if b == b'0' && prev == b'-' {
                    return false;
                }
                digits += 1;
                if digits > 18 {
                    return false;
                }
            }
            b'{' | b'}' | b'[' | b']' | b':' | b',' | b'-' => {}
            b't' | b'r' | b'u' | b'f' | b'a' | b'l' | b's' | b'n' => {}
            b'e' if !prev.is_ascii_digit() => {}
            _ => return false,
        }
        if !b.is_ascii_digit() {
            digits = 0;
        }
        prev = b;
    }
    true
}

/// The length of the escape at the start of `escape` (at its backslash)
/// when it is the one serializing (`serde_json`) writes for the character
/// it stands for: `\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`, or `\u00xx` in
/// lowercase for another control character.
pub(crate) fn canonical_escape(escape: &[u8]) -> Option<usize> {
    match escape.get(1)? {
        b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't' => Some(2),
        b'u' => {
            let hex = escape.get(2..6)?;
            let low = |b: u8| matches!(b, b'0'..=b'9' | b'a'..=b'f');
            let unit = match hex {
                [b'0', b'0', hi @ (b'0' | b'1'), lo] if low(*lo) => {
                    u32::from(hi - b'0') * 16 + char::from(*lo).to_digit(16)?
                }
                _ => return None,
            };
            (!matches!(unit, 0x08 | 0x09 | 0x0a | 0x0c | 0x0d)).then_some(6)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::is_compact;
    use crate::event::Record;

    /// The parser's word on a record's text is `is_compact`'s.
    #[test]
    fn the_parser_tells_compact_text_as_is_compact_does() {
        let values = [
            r#""b c""#,
            r#"[1,-2,true,false,null]"#,
            "{}",
            "123456789012345678",
            "1234567890123456789",
            "-1",
            "0",
            "-0",
            "1.5",
            "1e3",
            "2E-1",
            r#""b"c""#,
            r#""é""#,
            r#""café \/""#,
            r#""a\"b\\c\n\t\u001f\u0000""#,
            r#""\u000a""#,
            r#""\u001F""#,
            r#""\u0041""#,
            r#""\ud83d\ude00""#,
            r#"{"k": 1}"#,
            "[1,\n2]",
            r#"{"a":{"b":[{"c":-10}]}}"#,
        ];
        for value in values {
            for text in [
                format!(r#"{{"v":{value}}}"#),
                format!(r#"{{"a":"x","v":{value},"z":[0]}}"#),
                format!(r#" {{"v":{value}}}"#),
                format!(r#"{{"v":{value}}} "#),
            ] {
                let Ok(record) = Record::parse(&text) else {
                    continue;
                };
                assert_eq!(
                    record.is_compact(),
                    is_compact(text.trim_end()) && !text.ends_with(' '),
                    "{text}"
                );
                assert_eq!(
                    record.compact_text().is_some(),
                    record.compact_text()
                        == Some(serde_json::to_string(&record).unwrap_or_default().as_str()),
                    "{text}"
                );
            }
        }
    }

    #[test]
    fn compact_text_is_told_from_what_serializing_would_change() {
        for text in [
            r#"{"a":"b c","n":[1,-2,true,false,null],"o":{}}"#,
            r#""a string with { } : , and spaces""#,
            r#"{"k":"","e":"x"}"#,
            r#"{"a":"b\"c","d":"{\"e\":\"\\n\"}\n\u001f"}"#,
            "123456789012345678",
            "-1",
            "0",
        ] {
            let parsed: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
            assert_eq!(serde_json::to_string(&parsed).ok().as_deref(), Some(text));
            assert!(is_compact(text), "{text}");
        }
        for text in [
            r#"{"a": "b"}"#,
            r#"{"a":"b\/c"}"#,
            r#"{"a":"\u000a"}"#,
            r#"{"a":"\u00e9"}"#,
            r#"{"a":1.5}"#,
            r#"{"a":1e3}"#,
            "-0",
            "1234567890123456789",
            r#"["unterminated"#,
            "[1,\n2]",
        ] {
            assert!(!is_compact(text), "{text}");
        }
    }
}
