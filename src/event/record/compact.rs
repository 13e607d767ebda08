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
        let member = self.member(head)?;
        if member.value.get().is_none() && !member.raw.is_empty() {
            let found = match rest {
                None => Walk::Value(member.raw),
                Some(rest) => self.walk_member(member, rest).0,
            };
            match found {
                Walk::Missing => return None,
                Walk::Value(raw) if is_compact(raw) => return Some(Cow::Borrowed(raw)),
                _ => {}
            }
        }
        let mut node = member.value();
        for segment in rest.into_iter().flat_map(|r| r.split('.')) {
            node = node.get(segment)?;
        }
        serde_json::to_string(node).ok().map(Cow::Owned)
    }

    /// The first of `names` (in the order given, not the record's) that the
    /// object at top-level member `parent` has, with its value as compact
    /// JSON (as `json_at`); `None` when it has none of them.
    pub fn first_json_among(&self, parent: &str, names: &[&str]) -> Option<Cow<'_, str>> {
        let member = self.member(parent)?;
        if member.value.get().is_none()
            && let Some(span) = self.spans.get(member.span as usize)
        {
            let mut best: Option<(usize, &MemberSpan)> = None;
            let mut exact = true;
            for (_, child) in siblings(&self.spans, span.first) {
                if child.escaped {
                    exact = false;
                    break;
                }
                let key = &self.text[child.key.clone()];
                if let Some(rank) = names.iter().position(|n| n.len() == key.len() && *n == key)
                    && best.is_none_or(|(b, _)| rank < b)
                {
                    best = Some((rank, child));
                }
            }
            let is_object = self.text.as_bytes().get(span.value.start) == Some(&b'{');
            if exact && is_object {
                let (_, child) = best?;
                let raw = &self.text[child.value.clone()];
                if is_compact(raw) {
                    return Some(Cow::Borrowed(raw));
                }
            }
        }
        let node = member.value();
        names
            .iter()
            .find_map(|name| node.get(name))
            .and_then(|v| serde_json::to_string(v).ok())
            .map(Cow::Owned)
    }
}

/// Whether checked JSON text is already what serializing its parsed value
/// writes: no escapes, no white space, and only integers that parse as
/// such (no fraction, exponent, `-0` or more than 18 digits).
fn is_compact(raw: &str) -> bool {
    let mut in_string = false;
    let mut digits = 0usize;
    let mut prev = 0u8;
    for &b in raw.as_bytes() {
        if in_string {
            match b {
                b'"' => in_string = false,
                b'\\' => return false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
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
    !in_string
}
