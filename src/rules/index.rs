//! The rule index: from a rule's compiled detection, the `eventName` values
//! (exact, or prefixes such as `eventName|startswith: List`), or failing that
//! the `eventSource`, `userIdentity.type` or `errorCode` values, a record must
//! have for the rule to match, so that a record is tested only against rules
//! that can match it.
//!
//! The analysis is conservative: when it cannot prove a requirement, the rule
//! is tested against every record. A property test checks that the indexed
//! path finds exactly the matches of testing every rule.

use std::collections::{BTreeSet, HashMap};

use rsigma_eval::{CompiledDetection, CompiledMatcher, CompiledRule};
use rsigma_parser::{ConditionExpr, Quantifier, SelectorPattern};

use super::rule::Rule;
use rsigma_eval::event::{Event, EventValue};

use crate::event::{FieldPath, Json, Record};
use std::sync::LazyLock;

type Values = BTreeSet<String>;

/// The (lowercased) values a field may take: one of `exact`, or any value
/// that starts with one of `prefixes` (`eventName|startswith: List`).
#[derive(Debug, Clone, Default, PartialEq)]
struct Accepts {
    exact: Values,
    prefixes: Values,
}

impl Accepts {
    fn exact(values: Values) -> Accepts {
        Accepts {
            exact: values,
            prefixes: Values::new(),
        }
    }

    fn accepts(&self, value: &str) -> bool {
        self.exact.contains(value) || self.prefixes.iter().any(|p| value.starts_with(p.as_str()))
    }

    /// The exact values only, when there are no prefixes.
    fn only_exact(self) -> Option<Values> {
        self.prefixes.is_empty().then_some(self.exact)
    }
}

/// Values a field must take; `None` is "no constraint known".
#[derive(Debug, Clone, Default)]
struct Requirement {
    names: Option<Accepts>,
    sources: Option<Accepts>,
    /// `userIdentity.type`: what root-account and role rules key on.
    types: Option<Accepts>,
    /// `errorCode`: what rules about refused calls key on.
    errors: Option<Accepts>,
}

impl Requirement {
    fn and(self, other: Requirement) -> Requirement {
        Requirement {
            names: intersect(self.names, other.names),
            sources: intersect(self.sources, other.sources),
            types: intersect(self.types, other.types),
            errors: intersect(self.errors, other.errors),
        }
    }

    fn or(self, other: Requirement) -> Requirement {
        Requirement {
            names: union(self.names, other.names),
            sources: union(self.sources, other.sources),
            types: union(self.types, other.types),
            errors: union(self.errors, other.errors),
        }
    }
}

/// What both accept, or more (never less): exact values are kept where the
/// other side accepts them; where both have prefixes, one side stands for
/// both (a superset of what both accept).
fn intersect(a: Option<Accepts>, b: Option<Accepts>) -> Option<Accepts> {
    match (a, b) {
        (Some(a), Some(b)) => Some(match (a.prefixes.is_empty(), b.prefixes.is_empty()) {
            (true, _) => Accepts::exact(a.exact.into_iter().filter(|v| b.accepts(v)).collect()),
            (false, true) => Accepts::exact(b.exact.into_iter().filter(|v| a.accepts(v)).collect()),
            (false, false) => a,
        }),
        (a, None) => a,
        (None, b) => b,
    }
}

fn union(a: Option<Accepts>, b: Option<Accepts>) -> Option<Accepts> {
    match (a, b) {
        (Some(mut a), Some(b)) => {
            a.exact.extend(b.exact);
            a.prefixes.extend(b.prefixes);
            Some(a)
        }
        _ => None,
    }
}

/// Which rules each `eventName` / `eventSource` value can reach.
#[derive(Debug, Default)]
pub struct RuleIndex {
    by_name: WordMap<Vec<u32>>,
    /// Rules that need an `eventName` starting with one of these (lowercased).
    by_name_prefix: Vec<(String, Vec<u32>)>,
    by_source: WordMap<Vec<u32>>,
    by_type: WordMap<Vec<u32>>,
    by_error: WordMap<Vec<u32>>,
    always: Vec<u32>,
    all: Vec<u32>,
    /// The index's key in the threads' tables of remembered candidates.
    owner: u64,
}

impl RuleIndex {
    pub fn build(rules: &[Rule]) -> Self {
        let mut index = RuleIndex {
            owner: super::memo::new_owner(),
            ..RuleIndex::default()
        };
        for (i, rule) in rules.iter().enumerate() {
            let i = i as u32;
            index.all.push(i);
            let req = requirement(&rule.compiled);
            // Exact names first, then exact sources (the narrowest keys),
            // then names by prefix, then the identity's type, then errors.
            let names = req.names.clone().and_then(Accepts::only_exact);
            let sources = req.sources.and_then(Accepts::only_exact);
            if let Some(names) = names {
                for name in names {
                    index.by_name.entry(name).or_default().push(i);
                }
            } else if let Some(sources) = sources {
                for source in sources {
                    index.by_source.entry(source).or_default().push(i);
                }
            } else if let Some(names) = req.names {
                for name in names.exact {
                    index.by_name.entry(name).or_default().push(i);
                }
                for prefix in names.prefixes {
                    match index.by_name_prefix.iter_mut().find(|(p, _)| *p == prefix) {
                        Some((_, rules)) => rules.push(i),
                        None => index.by_name_prefix.push((prefix, vec![i])),
                    }
                }
            } else if let Some(types) = req.types.and_then(Accepts::only_exact) {
                for t in types {
                    index.by_type.entry(t).or_default().push(i);
                }
            } else if let Some(errors) = req.errors.and_then(Accepts::only_exact) {
                for e in errors {
                    index.by_error.entry(e).or_default().push(i);
                }
            } else {
                index.always.push(i);
            }
        }
        index
    }

    /// The rules tested against every record (by position).
    pub fn unindexed_rules(&self) -> impl Iterator<Item = u32> + '_ {
        self.always.iter().copied()
    }

    /// The rules `record` can match, in rule order, into `out`. The few
    /// fields they depend on repeat from record to record, so the answer
    /// for them is remembered per thread.
    pub fn candidates(&self, record: &Record, out: &mut Vec<u32>) {
        out.clear();
        match self.key(record) {
            Some(key) => super::memo::remembered_candidates(self.owner, &key, out, |out| {
                self.find_candidates(record, out)
            }),
            None => self.find_candidates(record, out),
        }
    }

    /// What `find_candidates` reads of `record`: the name, source, identity
    /// type and error code (each `None` when absent or null, or not read);
    /// `None` when one is another kind of value, or a string with escapes.
    fn key<'r>(&self, record: &'r Record) -> Option<[Option<&'r str>; 4]> {
        static PATHS: LazyLock<[FieldPath; 4]> = LazyLock::new(|| {
            ["eventName", "eventSource", "userIdentity.type", "errorCode"].map(FieldPath::new)
        });
        fn text(value: Option<EventValue<'_>>) -> Option<Option<&str>> {
            match value {
                None | Some(EventValue::Null) => Some(None),
                Some(EventValue::Str(std::borrow::Cow::Borrowed(s))) => Some(Some(s)),
                Some(_) => None,
            }
        }
        let [name, source, kind, error] = &*PATHS;
        let name = text(record.field_at(name))?;
        let source = text(record.field_at(source))?;
        let kind = match self.by_type.is_empty() {
            true => None,
            false => text(record.field_at(kind))?,
        };
        let error = match self.by_error.is_empty() {
            true => None,
            false => text(record.field_at(error))?,
        };
        Some([name, source, kind, error])
    }

    /// `candidates`, found in the index's tables.
    fn find_candidates(&self, record: &Record, out: &mut Vec<u32>) {
        out.clear();
        let (Some(name), Some(source)) = (
            key_of(record.get("eventName")),
            key_of(record.get("eventSource")),
        ) else {
            // A name or source that is an array or object could match in ways
            // the index does not model: test every rule.
            out.extend_from_slice(&self.all);
            return;
        };
        let mut buf = [0u8; 64];
        if let Some(name) = name {
            let name = lowercase(&name, &mut buf);
            if let Some(rules) = self.by_name.get(name.as_ref()) {
                out.extend_from_slice(rules);
            }
            for (prefix, rules) in &self.by_name_prefix {
                if name.starts_with(prefix.as_str()) {
                    out.extend_from_slice(rules);
                }
            }
        }
        let mut buf = [0u8; 64];
        if let Some(source) = source
            && let Some(rules) = self.by_source.get(lowercase(&source, &mut buf).as_ref())
        {
            out.extend_from_slice(rules);
        }
        if !self.by_type.is_empty() {
            // Only a plain string can equal one of the indexed values; an
            // array or object there could match in ways not modelled.
            match record.get_field("userIdentity.type") {
                None | Some(EventValue::Null) => {}
                Some(EventValue::Str(t)) => {
                    if let Some(rules) = self.by_type.get(lowercase(&t, &mut buf).as_ref()) {
                        out.extend_from_slice(rules);
                    }
                }
                Some(_) => out.extend(self.by_type.values().flatten()),
            }
        }
        if !self.by_error.is_empty() {
            match key_of(record.get("errorCode")) {
                Some(None) => {}
                Some(Some(code)) => {
                    if let Some(rules) = self.by_error.get(lowercase(&code, &mut buf).as_ref()) {
                        out.extend_from_slice(rules);
                    }
                }
                None => out.extend(self.by_error.values().flatten()),
            }
        }
        out.extend_from_slice(&self.always);
        out.sort_unstable();
        out.dedup();
    }
}

/// `text` lowercased: in `buf` when it is short ASCII (the usual case),
/// else in a new string.
fn lowercase<'b>(text: &str, buf: &'b mut [u8; 64]) -> std::borrow::Cow<'b, str> {
    let bytes = text.as_bytes();
    if bytes.len() <= buf.len() && bytes.is_ascii() {
        let out = &mut buf[..bytes.len()];
        out.copy_from_slice(bytes);
        out.make_ascii_lowercase();
        if let Ok(lower) = std::str::from_utf8(out) {
            return std::borrow::Cow::Borrowed(lower);
        }
    }
    std::borrow::Cow::Owned(text.to_lowercase())
}

/// The index's hash: its keys are short names, each hashed once per record,
/// so eight bytes go in per multiply (FNV-1a's one byte at a time cost 3% of
/// a scan). The table holds the rules' own names; a record's values only
/// look things up in it.
#[derive(Default)]
pub struct WordHash(u64);

/// An odd constant with well-mixed bits (from splitmix64).
const WORD_K: u64 = 0x9e37_79b9_7f4a_7c15;

impl WordHash {
    #[inline(always)]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(23) ^ word).wrapping_mul(WORD_K);
    }
}

impl std::hash::Hasher for WordHash {
    fn finish(&self) -> u64 {
        // The table takes its bucket from the low bits and a tag from the
        // top ones: fold the high bits (the multiply's best) down.
        let h = self.0;
        (h ^ (h >> 31)).wrapping_mul(0xbf58_476d_1ce4_e5b9) ^ (h >> 29)
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            self.add(u64::from_le_bytes(b));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            // The length keeps "ab" and "ab\0" apart.
            self.add(u64::from_le_bytes(b) ^ ((rest.len() as u64) << 59));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i) | 0x100);
    }
}

/// FNV-1a's starting state.
pub(crate) const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a over `bytes`, continuing from `state` (stable across versions:
/// the correlator stores such hashes).
pub(crate) fn fnv1a(state: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(state, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

type WordMap<V> = HashMap<String, V, std::hash::BuildHasherDefault<WordHash>>;

/// The value of an indexed field, not yet lowercased: `Some(None)` when
/// absent or null, `None` when it is a container (not indexable).
fn key_of<'r>(value: Option<&'r Json>) -> Option<Option<std::borrow::Cow<'r, str>>> {
    match value {
        None | Some(Json::Null) => Some(None),
        Some(Json::Str(s)) => Some(Some(std::borrow::Cow::Borrowed(s.as_ref()))),
        Some(Json::Int(n)) => Some(Some(n.to_string().into())),
        Some(Json::Float(f)) => Some(Some(f.to_string().into())),
        Some(Json::Bool(b)) => Some(Some(b.to_string().into())),
        Some(Json::Array(_) | Json::Object(_)) => None,
    }
}

fn requirement(rule: &CompiledRule) -> Requirement {
    // A rule matches when any of its conditions does.
    let mut conditions = rule.conditions.iter();
    let Some(first) = conditions.next() else {
        return Requirement::default();
    };
    let first = condition_requirement(first, &rule.detections);
    conditions.fold(first, |acc, c| {
        acc.or(condition_requirement(c, &rule.detections))
    })
}

fn condition_requirement(
    cond: &ConditionExpr,
    detections: &HashMap<String, CompiledDetection>,
) -> Requirement {
    match cond {
        ConditionExpr::And(parts) => parts
            .iter()
            .map(|p| condition_requirement(p, detections))
            .fold(Requirement::default(), Requirement::and),
        ConditionExpr::Or(parts) => {
            let mut parts = parts.iter().map(|p| condition_requirement(p, detections));
            match parts.next() {
                Some(first) => parts.fold(first, Requirement::or),
                None => Requirement::default(),
            }
        }
        ConditionExpr::Not(_) => Requirement::default(),
        ConditionExpr::Identifier(name) => detections
            .get(name)
            .map(detection_requirement)
            .unwrap_or_default(),
        ConditionExpr::Selector {
            quantifier,
            pattern,
        } => {
            let all = matches!(quantifier, Quantifier::All);
            let mut names: Vec<&String> = detections
                .keys()
                .filter(|name| match pattern {
                    // Whether `them` includes `_`-prefixed names differs
                    // between implementations; only count them where it is safe.
                    SelectorPattern::Them => !all || !name.starts_with('_'),
                    SelectorPattern::Pattern(p) => wildcard_match(p, name),
                })
                .collect();
            names.sort();
            let mut reqs = names.iter().map(|n| detection_requirement(&detections[*n]));
            if all {
                reqs.fold(Requirement::default(), Requirement::and)
            } else {
                // `1 of` and `N of` both need at least one to match.
                match reqs.next() {
                    Some(first) => reqs.fold(first, Requirement::or),
                    None => Requirement::default(),
                }
            }
        }
    }
}

fn detection_requirement(detection: &CompiledDetection) -> Requirement {
    match detection {
        CompiledDetection::AllOf(items) => {
            let mut req = Requirement::default();
            for item in items {
                let field = item.field.as_deref();
                if item.exists.is_some() {
                    continue;
                }
                let values = accepted(&item.matcher);
                match field {
                    Some("eventName") => req.names = intersect(req.names, values),
                    Some("eventSource") => req.sources = intersect(req.sources, values),
                    Some("userIdentity.type") => req.types = intersect(req.types, values),
                    Some("errorCode") => req.errors = intersect(req.errors, values),
                    _ => {}
                }
            }
            req
        }
        CompiledDetection::AnyOf(parts) => {
            let mut parts = parts.iter().map(detection_requirement);
            match parts.next() {
                Some(first) => parts.fold(first, Requirement::or),
                None => Requirement::default(),
            }
        }
        CompiledDetection::And(parts) => parts
            .iter()
            .map(detection_requirement)
            .fold(Requirement::default(), Requirement::and),
        _ => Requirement::default(),
    }
}

/// The lowercased values a matcher can accept, when it accepts only exact
/// values or values with given prefixes.
fn accepted(matcher: &CompiledMatcher) -> Option<Accepts> {
    match matcher {
        CompiledMatcher::Exact { value, .. } => Some(Accepts::exact([value.to_lowercase()].into())),
        CompiledMatcher::StartsWith { value, .. } => Some(Accepts {
            exact: Values::new(),
            prefixes: [value.to_lowercase()].into(),
        }),
        CompiledMatcher::AnyOf(parts) => any_of(parts),
        CompiledMatcher::AllOf(parts) => all_of(parts),
        CompiledMatcher::CaseInsensitiveGroup { children, mode } => match mode {
            rsigma_eval::matcher::GroupMode::Any => any_of(children),
            rsigma_eval::matcher::GroupMode::All => all_of(children),
        },
        _ => None,
    }
}

fn any_of(parts: &[CompiledMatcher]) -> Option<Accepts> {
    let mut out = Accepts::default();
    for part in parts {
        let part = accepted(part)?;
        out.exact.extend(part.exact);
        out.prefixes.extend(part.prefixes);
    }
    Some(out)
}

fn all_of(parts: &[CompiledMatcher]) -> Option<Accepts> {
    parts.iter().map(accepted).fold(None, intersect)
}

/// `*` matches any run of characters; everything else must be equal (Sigma's
/// `selection*` patterns, and allowlist values).
pub(crate) fn wildcard_match(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, rest)) => {
            let Some(tail) = name.strip_prefix(head) else {
                return false;
            };
            (0..=tail.len())
                .filter(|&i| tail.is_char_boundary(i))
                .any(|i| wildcard_match(rest, &tail[i..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard_match("selection*", "selection_a"));
        assert!(wildcard_match("sel*_b", "sel_x_b"));
        assert!(!wildcard_match("sel*_b", "sel_x_c"));
        assert!(wildcard_match("them", "them"));
    }

    #[test]
    fn the_word_hash_tells_names_apart() {
        use std::hash::BuildHasher;
        let hasher = std::hash::BuildHasherDefault::<WordHash>::default();
        let mut names: Vec<String> = ["", "a", "ab", "ab\0", "ab\0\0", "abcdefgh", "abcdefgh\0"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        // Names one byte apart, at every position of a long one.
        let base = "ec2.amazonaws.com-describeinstances";
        for i in 0..base.len() {
            let mut b = base.as_bytes().to_vec();
            b[i] ^= 1;
            names.push(String::from_utf8(b).expect("ASCII"));
        }
        names.extend((0..20_000).map(|i| format!("Describe{i}")));
        let hashes: std::collections::HashSet<u64> =
            names.iter().map(|n| hasher.hash_one(n.as_str())).collect();
        assert_eq!(hashes.len(), names.len(), "two names share a hash");
        // The low bits pick the bucket: they must differ too.
        let low: std::collections::HashSet<u64> = names
            .iter()
            .map(|n| hasher.hash_one(n.as_str()) & 0xffff)
            .collect();
        assert!(low.len() > 15_000, "{} distinct low halves", low.len());
    }
}
