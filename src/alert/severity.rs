//! The severity scale alerts carry: Sigma's levels, lowest first.

use std::fmt;

use serde::Serialize;

/// A Sigma level, lowest first (so `>=` compares severity).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const NAMES: [&'static str; 5] = ["informational", "low", "medium", "high", "critical"];

    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// Parses a Sigma level name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "informational" => Some(Severity::Informational),
            "low" => Some(Severity::Low),
            "medium" => Some(Severity::Medium),
            "high" => Some(Severity::High),
            "critical" => Some(Severity::Critical),
            _ => None,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
