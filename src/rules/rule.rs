//! A loaded, compiled detection rule and its metadata.

use std::fmt;

use rsigma_eval::CompiledRule;

pub use crate::alert::Severity;

impl Severity {
    pub(crate) fn from_sigma(level: Option<rsigma_parser::Level>) -> Self {
        use rsigma_parser::Level;
        match level {
            Some(Level::Informational) => Severity::Informational,
            Some(Level::Low) => Severity::Low,
            // Sigma's default when a rule states no level.
            Some(Level::Medium) | None => Severity::Medium,
            Some(Level::High) => Severity::High,
            Some(Level::Critical) => Severity::Critical,
        }
    }
}

/// Where a rule came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleOrigin {
    /// Compiled into the binary; the path is inside the `rules/` folder.
    Builtin { path: String },
    /// A user's rule file.
    File { path: String },
}

impl RuleOrigin {
    /// `builtin` or the file path, as the alert's `rule.source` says.
    pub fn label(&self) -> &str {
        match self {
            RuleOrigin::Builtin { .. } => "builtin",
            RuleOrigin::File { path } => path,
        }
    }

    /// The file the rule was read from.
    pub fn path(&self) -> &str {
        match self {
            RuleOrigin::Builtin { path } | RuleOrigin::File { path } => path,
        }
    }
}

/// What an alert says about a rule (a detection or a correlation), beside
/// its id.
#[derive(Debug, Clone)]
pub struct RuleMeta {
    pub title: String,
    pub severity: Severity,
    pub tags: Vec<String>,
    pub description: Option<String>,
    pub falsepositives: Vec<String>,
    pub origin: RuleOrigin,
}

/// A rule's `RuleMeta` from its Sigma document (a detection or a
/// correlation rule: they share these fields) and where it came from.
macro_rules! meta_of {
    ($rule:expr, $origin:expr) => {
        $crate::rules::RuleMeta::from_sigma(
            &$rule.title,
            $rule.level,
            &$rule.tags,
            &$rule.description,
            &$rule.falsepositives,
            $origin,
        )
    };
}
pub(crate) use meta_of;

impl RuleMeta {
    /// The alert's `rule` object for the rule `id`.
    pub fn alert_rule(&self, id: &str) -> crate::alert::AlertRule {
        crate::alert::AlertRule {
            id: id.to_owned(),
            title: self.title.clone(),
            severity: self.severity.as_str().to_owned(),
            tags: self.tags.clone(),
            source: self.origin.label().to_owned(),
        }
    }

    /// From a Sigma document's fields (detection and correlation rules
    /// share them).
    pub(crate) fn from_sigma(
        title: &str,
        level: Option<rsigma_parser::Level>,
        tags: &[String],
        description: &Option<String>,
        falsepositives: &[String],
        origin: &RuleOrigin,
    ) -> RuleMeta {
        RuleMeta {
            title: title.to_owned(),
            severity: Severity::from_sigma(level),
            tags: tags.to_vec(),
            description: description.clone(),
            falsepositives: falsepositives.to_vec(),
            origin: origin.clone(),
        }
    }
}

/// A detection rule ready to run.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The rule's `id`, or `<file stem>` when it has none.
    pub id: String,
    pub meta: RuleMeta,
    /// 1-based line of the rule's document in its file.
    pub line: usize,
    /// The rule's own examples (`rsigma.exemplars`), run by `rules test`.
    pub examples: Vec<Example>,
    /// Whether a match is an alert of its own: a rule that a correlation
    /// uses with `generate: false` (Sigma's default) only feeds it.
    pub emit: bool,
    /// Whether its repeats for one principal are grouped into one burst
    /// (default; `trailwatch.grouping: false` in the rule opts out).
    pub grouped: bool,
    /// Whether a correlation counts this rule's matches.
    pub(crate) feeds: bool,
    /// The rule as parsed, for the correlation engine.
    pub(crate) sigma: std::sync::Arc<rsigma_parser::SigmaRule>,
    pub(crate) compiled: CompiledRule,
    /// `compiled` as a yes-or-no program (see `eval.rs`), when it can be one.
    pub(crate) program: Option<super::eval::Program>,
    /// The alert's `rule` object as JSON, made on first use (`scan` writes
    /// it once per match).
    pub(crate) alert_json: std::sync::OnceLock<String>,
}

/// A record a rule must fire on (or must not), kept in the rule itself under
/// the `rsigma.exemplars` attribute:
///
/// ```yaml
/// rsigma.exemplars:
///   - name: trail stopped by a user
///     expect: match          # or no-match
///     event: { eventSource: cloudtrail.amazonaws.com, eventName: StopLogging }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub name: String,
    pub expect_match: bool,
    pub event: serde_json::Value,
}

impl Rule {
    /// Whether the record matches this rule.
    pub fn matches(&self, event: &crate::event::Record) -> bool {
        match &self.program {
            Some(program) => program.matches(event),
            None => self.matches_reference(event),
        }
    }

    /// Whether the record matches, by rsigma's own `evaluate_rule`: the
    /// reference `matches` is tested against.
    pub fn matches_reference(&self, event: &impl rsigma_eval::Event) -> bool {
        rsigma_eval::evaluate_rule(&self.compiled, event).is_some()
    }

    /// Whether `matches` runs this evaluator's own program (false: rsigma's).
    pub fn has_program(&self) -> bool {
        self.program.is_some()
    }
}

/// A rule that did not load: where, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub file: String,
    pub line: usize,
    pub reason: String,
}

impl RuleError {
    /// An error about the rule at `line` of `origin`'s file.
    pub fn at(origin: &RuleOrigin, line: usize, reason: impl Into<String>) -> RuleError {
        RuleError {
            file: origin.path().to_owned(),
            line,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.reason)
    }
}

impl std::error::Error for RuleError {}
