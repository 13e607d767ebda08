//! Secrets (API keys, webhook tokens): read from a file or the environment,
//! never printed.

use std::fmt;
use std::path::Path;

/// A secret value. Its `Debug` is redacted and it has no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The value, for the one place that sends it (a request header).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Reads a secret file; trailing newlines are dropped. The error never
    /// includes the file's content.
    pub fn from_file(path: &Path) -> Result<Secret, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read secret file {}: {e}", path.display()))?;
        let value = text.trim_end_matches(['\r', '\n']);
        if value.trim().is_empty() {
            return Err(format!("secret file {} is empty", path.display()));
        }
        Ok(Secret(value.to_owned()))
    }

    /// Reads a secret from an environment variable.
    pub fn from_env(var: &str) -> Result<Secret, String> {
        match std::env::var(var) {
            Ok(v) if !v.trim().is_empty() => Ok(Secret(v)),
            Ok(_) => Err(format!("environment variable {var} is empty")),
            Err(_) => Err(format!("environment variable {var} is not set")),
        }
    }

    /// A value written in the config itself (a header that is not secret).
    pub fn from_literal(value: String) -> Secret {
        Secret(value)
    }

    #[cfg(test)]
    pub fn new_for_test(value: &str) -> Secret {
        Secret(value.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new_for_test("dd-key-123");
        assert!(!format!("{s:?}").contains("dd-key-123"));
    }

    #[test]
    fn file_errors_name_the_file_not_the_content() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("key");
        std::fs::write(&path, "hunter2\n").expect("write");
        assert_eq!(Secret::from_file(&path).expect("read").expose(), "hunter2");
        std::fs::write(&path, "\n").expect("write");
        let err = Secret::from_file(&path).expect_err("empty");
        assert!(err.contains("empty") && err.contains("key"), "{err}");
        let err = Secret::from_file(&dir.path().join("missing")).expect_err("missing");
        assert!(err.contains("missing"), "{err}");
    }
}
