//! The built-in rule pack: the YAML files under `rules/`, compiled into the binary.

use include_dir::{Dir, include_dir};

use super::load::{Loaded, Source, load_all};

static BUILTIN: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/rules");

/// Loads every built-in rule. Errors here are bugs: a test keeps them at zero.
pub fn builtin_rules() -> Loaded {
    let mut sources = Vec::new();
    builtin_sources(&mut sources);
    load_all(&sources)
}

/// The built-in rule files, in order, onto `sources`.
pub(crate) fn builtin_sources(sources: &mut Vec<Source>) {
    let mut files = Vec::new();
    collect(&BUILTIN, &mut files);
    files.sort_by_key(|f| f.path());
    for file in files {
        let path = format!("rules/{}", file.path().display());
        match file.contents_utf8() {
            Some(text) => sources.push(Source::Builtin(text, path)),
            None => sources.push(Source::Unlisted(super::RuleError {
                file: path,
                line: 0,
                reason: "not UTF-8".into(),
            })),
        }
    }
}

fn collect<'a>(dir: &'a Dir<'a>, out: &mut Vec<&'a include_dir::File<'a>>) {
    for file in dir.files() {
        if matches!(
            file.path().extension().and_then(|e| e.to_str()),
            Some("yml" | "yaml")
        ) {
            out.push(file);
        }
    }
    for sub in dir.dirs() {
        collect(sub, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_rule_loads() {
        let loaded = builtin_rules();
        assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
        assert!(loaded.rules.len() >= 6);
        for rule in &loaded.rules {
            assert!(!rule.meta.tags.is_empty(), "{} has no tags", rule.id);
            assert!(
                rule.meta.description.is_some(),
                "{} has no description",
                rule.id
            );
            assert!(
                !rule.meta.falsepositives.is_empty(),
                "{} has no falsepositives",
                rule.id
            );
            assert!(
                rule.examples.iter().any(|e| e.expect_match)
                    && rule.examples.iter().any(|e| !e.expect_match),
                "{} needs an example it fires on and one it does not",
                rule.id
            );
        }
    }

    #[test]
    fn every_builtin_correlation_has_examples_both_ways_and_they_pass() {
        let loaded = builtin_rules();
        assert!(!loaded.correlations.is_empty());
        for c in &loaded.correlations {
            let list = rsigma_parser::correlation_exemplars(&c.rule).expect("well-formed examples");
            let id = c.rule.id.clone().unwrap_or_default();
            assert!(
                list.iter()
                    .any(|e| e.expect == rsigma_parser::Expect::Match)
                    && list
                        .iter()
                        .any(|e| e.expect == rsigma_parser::Expect::NoMatch),
                "{id} needs an example it fires on and one it does not"
            );
        }
        let (set, errors) = super::super::RuleSet::build(loaded.rules, loaded.correlations);
        assert!(errors.is_empty(), "{errors:?}");
        let failed: Vec<_> = set
            .test_correlation_examples()
            .into_iter()
            .filter(|(_, _, passed, _)| !passed)
            .collect();
        assert!(failed.is_empty(), "{failed:?}");
    }

    #[test]
    fn every_builtin_example_passes() {
        let (set, errors) = super::super::RuleSet::new(builtin_rules().rules);
        assert!(errors.is_empty(), "{errors:?}");
        let failed: Vec<String> = set
            .test_examples()
            .iter()
            .filter(|o| !o.passed)
            .map(|o| format!("{}: {}", o.rule.id, o.example.name))
            .collect();
        assert!(failed.is_empty(), "failing examples: {failed:?}");
    }
}
