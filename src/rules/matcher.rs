//! The evaluator's value matchers: rsigma's compiled matchers, with the string
//! comparisons done without allocating.
//!
//! rsigma compares case-insensitively by lowercasing the record's value into
//! a new `String` (`to_lowercase`) for every comparison; CloudTrail values are
//! ASCII nearly always, and an ASCII value can be compared byte by byte, or
//! lowercased on the stack. Values that are not ASCII take rsigma's own path,
//! so the answer is the same for every value; the other matcher kinds are
//! rsigma's own. `tests/rule_eval.rs` holds the whole evaluator to rsigma's.

use std::borrow::Cow;

use aho_corasick::AhoCorasick;
use rsigma_eval::CompiledMatcher;
use rsigma_eval::event::{Event, EventValue};
use rsigma_eval::matcher::{GroupMode, ascii_lowercase_cow};

use super::memo;

thread_local! {
    /// Where values are lowercased: kept from call to call, so that neither
    /// an allocation nor a zeroed buffer is paid for each one.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Exact,
    Contains,
    StartsWith,
    EndsWith,
}

/// A substring searcher built once for its needle (building one for each
/// value costs more than most searches).
type Finder = Box<memchr::memmem::Finder<'static>>;

impl Op {
    /// `finder`, when given, searches for `needle`.
    fn test(self, hay: &[u8], needle: &[u8], finder: Option<&Finder>) -> bool {
        match self {
            Op::Exact => hay == needle,
            Op::Contains => match finder {
                Some(finder) => finder.find(hay).is_some(),
                None => memchr::memmem::find(hay, needle).is_some(),
            },
            Op::StartsWith => hay.starts_with(needle),
            Op::EndsWith => hay.ends_with(needle),
        }
    }
}

/// A compiled matcher, ready to test one value.
#[derive(Debug, Clone)]
pub(crate) enum Match {
    /// A string comparison; with `ci`, `value` is lowercased already.
    Str {
        op: Op,
        value: String,
        ci: bool,
        /// For `Contains`: the searcher for `value`.
        finder: Option<Finder>,
    },
    /// Any of several substrings (rsigma's Aho-Corasick set).
    Substrings {
        automaton: AhoCorasick,
        ci: bool,
        /// The same needles as a DFA that ignores ASCII case (with `ci`):
        /// an ASCII value is searched as it is, without a lowercase copy.
        ascii: Option<Box<AhoCorasick>>,
        /// Its key in the tables of answers for values seen before.
        owner: u64,
    },
    /// A regular expression, and a substring every match must contain
    /// (looked for first: a substring search is much cheaper).
    Regex {
        re: regex::Regex,
        required: Option<Box<memchr::memmem::Finder<'static>>>,
    },
    AnyOf(Vec<Match>),
    AllOf(Vec<Match>),
    Not(Box<Match>),
    /// Case-insensitive children tested on the value lowercased once.
    Lowered {
        children: Vec<Match>,
        all: bool,
    },
    /// Any other kind, tested by rsigma.
    Other(CompiledMatcher),
}

impl Match {
    pub(crate) fn compile(matcher: &CompiledMatcher) -> Match {
        match matcher {
            CompiledMatcher::Exact {
                value,
                case_insensitive,
            } => Match::string(Op::Exact, value, *case_insensitive),
            CompiledMatcher::Contains {
                value,
                case_insensitive,
            } => Match::string(Op::Contains, value, *case_insensitive),
            CompiledMatcher::StartsWith {
                value,
                case_insensitive,
            } => Match::string(Op::StartsWith, value, *case_insensitive),
            CompiledMatcher::EndsWith {
                value,
                case_insensitive,
            } => Match::string(Op::EndsWith, value, *case_insensitive),
            CompiledMatcher::AhoCorasickSet {
                automaton,
                case_insensitive,
                needles,
            } => Match::Substrings {
                automaton: automaton.clone(),
                ci: *case_insensitive,
                ascii: AhoCorasick::builder()
                    .ascii_case_insensitive(*case_insensitive)
                    .kind(Some(aho_corasick::AhoCorasickKind::DFA))
                    .build(needles)
                    .ok()
                    .map(Box::new),
                owner: memo::new_owner(),
            },
            CompiledMatcher::Regex(re) => Match::Regex {
                re: re.clone(),
                required: required_literal(re.as_str())
                    .map(|lit| Box::new(memchr::memmem::Finder::new(lit.as_bytes()).into_owned())),
            },
            CompiledMatcher::AnyOf(list) => Match::AnyOf(list.iter().map(Match::compile).collect()),
            CompiledMatcher::AllOf(list) => Match::AllOf(list.iter().map(Match::compile).collect()),
            CompiledMatcher::Not(inner) => Match::Not(Box::new(Match::compile(inner))),
            CompiledMatcher::CaseInsensitiveGroup { children, mode } => {
                let children: Vec<Match> = children.iter().map(Match::compile).collect();
                if children.iter().all(Match::pre_lowerable) {
                    Match::Lowered {
                        children,
                        all: matches!(mode, GroupMode::All),
                    }
                } else {
                    Match::Other(matcher.clone())
                }
            }
            other => Match::Other(other.clone()),
        }
    }

    fn string(op: Op, value: &str, ci: bool) -> Match {
        Match::Str {
            op,
            value: value.to_owned(),
            ci,
            finder: (op == Op::Contains)
                .then(|| Box::new(memchr::memmem::Finder::new(value.as_bytes()).into_owned())),
        }
    }

    /// Whether the value matches, as rsigma's `CompiledMatcher::matches`.
    pub(crate) fn matches(&self, value: &EventValue, event: &impl Event) -> bool {
        match self {
            Match::Str {
                op,
                value: v,
                ci,
                finder,
            } => str_value(value, &|s| {
                if *ci {
                    ci_test(*op, s, v, finder.as_ref())
                } else {
                    op.test(s.as_bytes(), v.as_bytes(), finder.as_ref())
                }
            }),
            Match::Substrings {
                automaton,
                ci,
                ascii,
                owner,
            } => str_value(value, &|s| {
                memo::remembered(*owner, s, |s| match ascii {
                    // Needles are lowercased already: ignoring ASCII case on
                    // an ASCII value is lowercasing it.
                    Some(dfa) if !*ci || s.is_ascii() => dfa.is_match(s),
                    _ if *ci => with_ascii_lowered(s, |lowered| automaton.is_match(lowered)),
                    _ => automaton.is_match(s),
                })
            }),
            Match::Regex { re, required } => str_value(value, &|s| regex_matches(re, required, s)),
            Match::AnyOf(list) => list.iter().any(|m| m.matches(value, event)),
            Match::AllOf(list) => list.iter().all(|m| m.matches(value, event)),
            Match::Not(inner) => !inner.matches(value, event),
            Match::Lowered { .. } => str_value(value, &|s| {
                with_ascii_lowered(s, |l| self.matches_lowered(l))
            }),
            Match::Other(m) => m.matches(value, event),
        }
    }

    /// Whether the answer depends on the value alone (rsigma's other kinds,
    /// such as field references, may read the rest of the event).
    pub(crate) fn reads_only_its_value(&self) -> bool {
        match self {
            Match::Str { .. } | Match::Substrings { .. } | Match::Regex { .. } => true,
            Match::AnyOf(list) | Match::AllOf(list) => list.iter().all(Match::reads_only_its_value),
            Match::Lowered { children, .. } => children.iter().all(Match::reads_only_its_value),
            Match::Not(inner) => inner.reads_only_its_value(),
            Match::Other(_) => false,
        }
    }

    /// The kinds rsigma can test on a value lowercased beforehand.
    fn pre_lowerable(&self) -> bool {
        match self {
            Match::Str { ci, .. } | Match::Substrings { ci, .. } => *ci,
            Match::AnyOf(list) | Match::AllOf(list) => list.iter().all(Match::pre_lowerable),
            Match::Lowered { children, .. } => children.iter().all(Match::pre_lowerable),
            Match::Not(inner) => inner.pre_lowerable(),
            Match::Regex { .. } => true,
            Match::Other(_) => false,
        }
    }

    /// As rsigma's `matches_pre_lowered`: `lowered` is lowercased already.
    fn matches_lowered(&self, lowered: &str) -> bool {
        match self {
            Match::Str {
                op, value, finder, ..
            } => op.test(lowered.as_bytes(), value.as_bytes(), finder.as_ref()),
            // On a lowercased value, ignoring ASCII case changes nothing.
            Match::Substrings {
                automaton, ascii, ..
            } => match ascii {
                Some(dfa) => dfa.is_match(lowered),
                None => automaton.is_match(lowered),
            },
            Match::AnyOf(list) => list.iter().any(|m| m.matches_lowered(lowered)),
            Match::AllOf(list) => list.iter().all(|m| m.matches_lowered(lowered)),
            Match::Not(inner) => !inner.matches_lowered(lowered),
            Match::Lowered { children, all } => {
                if *all {
                    children.iter().all(|c| c.matches_lowered(lowered))
                } else {
                    children.iter().any(|c| c.matches_lowered(lowered))
                }
            }
            Match::Regex { re, required } => regex_matches(re, required, lowered),
            // Refused by `pre_lowerable`.
            Match::Other(_) => false,
        }
    }
}

fn regex_matches(
    re: &regex::Regex,
    required: &Option<Box<memchr::memmem::Finder<'static>>>,
    s: &str,
) -> bool {
    if let Some(finder) = required
        && finder.find(s.as_bytes()).is_none()
    {
        return false;
    }
    re.is_match(s)
}

/// The literal text every match of `pattern` contains, for the simple shape
/// `^? (.* | .+)? literal (.* | .+)? $?` with no flags, groups, classes or
/// alternation (SigmaHQ's `'.+:assumed-role/aws:.+'`); `None` otherwise.
fn required_literal(pattern: &str) -> Option<String> {
    let mut rest = pattern.strip_prefix('^').unwrap_or(pattern);
    rest = rest
        .strip_prefix(".*")
        .or_else(|| rest.strip_prefix(".+"))
        .unwrap_or(rest);
    let mut literal = String::new();
    let mut chars = rest.chars();
    loop {
        let tail = chars.as_str();
        if tail.is_empty() || matches!(tail, "$" | ".*" | ".+" | ".*$" | ".+$") {
            break;
        }
        match chars.next()? {
            '\\' => {
                // An escaped punctuation mark is itself; other escapes are
                // classes, anchors (`\\<`, `\\>` too) or codes.
                let c = chars.next()?;
                if !c.is_ascii_punctuation() || matches!(c, '<' | '>') {
                    return None;
                }
                literal.push(c);
            }
            '.' | '+' | '*' | '?' | '(' | ')' | '[' | ']' | '{' | '}' | '|' | '^' | '$' => {
                return None;
            }
            c => literal.push(c),
        }
    }
    (!literal.is_empty()).then_some(literal)
}

/// rsigma's string coercion: numbers and booleans as their text, any
/// element of an array, nothing else.
fn str_value(value: &EventValue, pred: &dyn Fn(&str) -> bool) -> bool {
    match value {
        EventValue::Str(s) => pred(s),
        EventValue::Int(n) => pred(&n.to_string()),
        EventValue::Float(f) => pred(&f.to_string()),
        EventValue::Bool(b) => pred(if *b { "true" } else { "false" }),
        EventValue::Array(items) => items.iter().any(|v| str_value(v, pred)),
        _ => false,
    }
}

/// `op` on `s.to_lowercase()` and the lowercased `value`, without making the
/// lowercase copy when `s` is ASCII.
fn ci_test(op: Op, s: &str, value: &str, finder: Option<&Finder>) -> bool {
    if !s.is_ascii() {
        return op.test(s.to_lowercase().as_bytes(), value.as_bytes(), finder);
    }
    let (hay, needle) = (s.as_bytes(), value.as_bytes());
    match op {
        Op::Exact => hay.len() == needle.len() && eq_lowered(hay, needle),
        Op::StartsWith => hay.len() >= needle.len() && eq_lowered(&hay[..needle.len()], needle),
        Op::EndsWith => {
            hay.len() >= needle.len() && eq_lowered(&hay[hay.len() - needle.len()..], needle)
        }
        Op::Contains => {
            with_ascii_lowered(s, |lowered| op.test(lowered.as_bytes(), needle, finder))
        }
    }
}

/// `hay` lowercased equals `lowered` (same length).
fn eq_lowered(hay: &[u8], lowered: &[u8]) -> bool {
    hay.iter()
        .zip(lowered)
        .all(|(a, b)| a.to_ascii_lowercase() == *b)
}

/// Calls `f` with rsigma's `ascii_lowercase_cow(s)`, made in the thread's
/// scratch buffer when `s` is ASCII.
fn with_ascii_lowered<T>(s: &str, f: impl FnOnce(&str) -> T) -> T {
    let bytes = s.as_bytes();
    if !s.is_ascii() {
        let lowered: Cow<'_, str> = ascii_lowercase_cow(s);
        return f(&lowered);
    }
    if !bytes.iter().any(u8::is_ascii_uppercase) {
        return f(s);
    }
    // The buffer is busy only if `f` itself lowercases something: then
    // a new string.
    let outcome = SCRATCH.with(move |scratch| match scratch.try_borrow_mut() {
        Ok(mut buf) => {
            buf.clear();
            buf.extend_from_slice(bytes);
            buf.make_ascii_lowercase();
            // ASCII in, ASCII out: always UTF-8.
            match std::str::from_utf8(&buf) {
                Ok(lowered) => Ok(f(lowered)),
                Err(_) => Err(f),
            }
        }
        Err(_) => Err(f),
    });
    outcome.unwrap_or_else(|f| f(&s.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_required_literal_is_found_only_in_simple_shapes() {
        let cases = [
            (".+:assumed-role/aws:.+", Some(":assumed-role/aws:")),
            ("^abc$", Some("abc")),
            (".*a\\.b", Some("a.b")),
            ("abc.*$", Some("abc")),
            ("ab?c", None),
            ("a|b", None),
            ("(?i)abc", None),
            ("^[0-9]{12}$", None),
            ("a\\db", None),
            ("\\<word", None),
            ("x+", None),
            (".*", None),
            ("", None),
        ];
        for (pattern, want) in cases {
            assert_eq!(required_literal(pattern).as_deref(), want, "{pattern}");
        }
    }
}
