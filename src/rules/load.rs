//! Reading Sigma rule files: one YAML document at a time, so that an error
//! names the file and the line of the construct that failed, and a rule that
//! does not load never stops the others.

use std::path::{Path, PathBuf};

use rsigma_parser::{SigmaRule, parse_sigma_yaml};

use super::rule::{Example, Rule, RuleError, RuleOrigin, meta_of};

/// The rules of one file, and the errors of the documents that did not load.
#[derive(Debug, Default)]
pub struct Loaded {
    pub rules: Vec<Rule>,
    pub correlations: Vec<Correlation>,
    pub errors: Vec<RuleError>,
}

impl Loaded {
    pub fn extend(&mut self, other: Loaded) {
        self.rules.extend(other.rules);
        self.correlations.extend(other.correlations);
        self.errors.extend(other.errors);
    }
}

/// A correlation (stateful) rule as written, with where it came from.
#[derive(Debug, Clone)]
pub struct Correlation {
    pub rule: rsigma_parser::CorrelationRule,
    pub origin: RuleOrigin,
    pub line: usize,
    /// `type: new_value` (trailwatch's extension): the rule was read as a
    /// `value_count` whose field is the value learned per group.
    pub new_value: bool,
}

/// trailwatch's first-seen extension of Sigma's correlations: a document
/// whose correlation says `type: new_value` is read as a `value_count`
/// (`gte: 1` added to its condition, which names the learned `field`), so
/// that Sigma's parser checks everything else. Returns the text to parse,
/// whether it was such a rule, and the line added to it (1-based), if one was:
/// errors about lines after it are moved back one. An error says what is
/// missing.
fn read_new_value(doc: &str) -> Result<NewValue<'_>, String> {
    let Some(at) = doc
        .lines()
        .position(|l| l.trim() == "type: new_value" && l.starts_with(' '))
    else {
        return Ok((std::borrow::Cow::Borrowed(doc), false, None));
    };
    let mut added = None;
    let mut lines: Vec<String> = doc.lines().map(str::to_owned).collect();
    lines[at] = lines[at].replace("new_value", "value_count");
    let cond = lines
        .iter()
        .position(|l| l.trim_start().starts_with("condition:") && l.starts_with(' '))
        .ok_or("a new_value correlation needs condition.field (the value learned)")?;
    let line = lines[cond].clone();
    let rest = line.trim_start().trim_start_matches("condition:").trim();
    if let Some(inner) = rest.strip_prefix('{') {
        lines[cond] = format!(
            "{}condition: {{gte: 1, {inner}",
            &line[..line.len() - line.trim_start().len()]
        );
    } else if rest.is_empty() {
        let indent = lines
            .get(cond + 1)
            .map(|l| l.len() - l.trim_start().len())
            .unwrap_or(4);
        lines.insert(cond + 1, format!("{}gte: 1", " ".repeat(indent)));
        added = Some(cond + 2);
    } else {
        return Err("a new_value correlation's condition is a mapping with `field`".into());
    }
    Ok((
        std::borrow::Cow::Owned(lines.join("\n") + "\n"),
        true,
        added,
    ))
}

type NewValue<'a> = (std::borrow::Cow<'a, str>, bool, Option<usize>);

/// `reason` with every `line N` after the `added` line moved back one: the
/// line numbers of the file, not of the text read_new_value gave the parser.
fn unshift_lines(reason: String, added: Option<usize>) -> String {
    let Some(added) = added else { return reason };
    let mut out = String::with_capacity(reason.len());
    let mut rest = reason.as_str();
    while let Some(at) = rest.find("line ") {
        let (before, after) = rest.split_at(at + "line ".len());
        out.push_str(before);
        let digits = after.len() - after.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        match after[..digits].parse::<usize>() {
            Ok(n) if n > added => out.push_str(&(n - 1).to_string()),
            _ => out.push_str(&after[..digits]),
        }
        rest = &after[digits..];
    }
    out.push_str(rest);
    out
}

/// Every `.yml`/`.yaml` file under `dir`, recursively, in a stable order.
pub fn rule_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next)? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yml" | "yaml")
            ) {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Loads every rule file under `dir`.
pub fn load_dir(dir: &Path) -> Loaded {
    let mut sources = Vec::new();
    dir_sources(dir, &mut sources);
    load_all(&sources)
}

/// One rule file to load.
pub(crate) enum Source {
    /// Compiled into the binary: its text, and its path under `rules/`.
    Builtin(&'static str, String),
    /// A file on disk.
    File(PathBuf),
    /// A directory that could not be listed.
    Unlisted(RuleError),
}

impl Source {
    fn load(&self) -> Loaded {
        match self {
            Source::Builtin(text, path) => {
                load_text(text, RuleOrigin::Builtin { path: path.clone() })
            }
            Source::File(file) => {
                let label = file.display().to_string();
                match std::fs::read_to_string(file) {
                    Ok(text) => load_text(&text, RuleOrigin::File { path: label }),
                    Err(e) => Loaded {
                        errors: vec![RuleError {
                            file: label,
                            line: 0,
                            reason: format!("cannot read the file: {e}"),
                        }],
                        ..Loaded::default()
                    },
                }
            }
            Source::Unlisted(error) => Loaded {
                errors: vec![error.clone()],
                ..Loaded::default()
            },
        }
    }
}

/// The rule files under `dir`, in order, onto `sources`.
pub(crate) fn dir_sources(dir: &Path, sources: &mut Vec<Source>) {
    match rule_files(dir) {
        Ok(files) => sources.extend(files.into_iter().map(Source::File)),
        Err(e) => sources.push(Source::Unlisted(RuleError {
            file: dir.display().to_string(),
            line: 0,
            reason: format!("cannot read the rules directory: {e}"),
        })),
    }
}

/// Loads `sources`, on as many threads as there are cores (parsing the
/// YAML is most of a start-up), and puts their rules and errors together
/// in the order of `sources`.
pub(crate) fn load_all(sources: &[Source]) -> Loaded {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(sources.len())
        .max(1);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let done: Vec<std::sync::Mutex<Option<Loaded>>> = sources
        .iter()
        .map(|_| std::sync::Mutex::new(None))
        .collect();
    let work = || {
        loop {
            let at = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let (Some(source), Some(slot)) = (sources.get(at), done.get(at)) else {
                return;
            };
            let loaded = source.load();
            *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(loaded);
        }
    };
    std::thread::scope(|scope| {
        for _ in 1..threads {
            scope.spawn(work);
        }
        work();
    });
    let mut loaded = Loaded::default();
    for slot in done {
        if let Some(one) = slot.into_inner().unwrap_or_else(|p| p.into_inner()) {
            loaded.extend(one);
        }
    }
    loaded
}

/// Loads the rules in one file's text.
pub fn load_text(text: &str, origin: RuleOrigin) -> Loaded {
    let mut loaded = Loaded::default();
    // Collection actions (`action: global`) tie documents together: such a
    // file is parsed as a whole and its errors point at its first line.
    let documents = if text.lines().any(|l| l.starts_with("action:")) {
        vec![(1, text.to_owned())]
    } else {
        split_documents(text)
    };
    for (start_line, doc) in documents {
        load_document(&doc, start_line, &origin, &mut loaded);
    }
    loaded
}

/// Splits a multi-document YAML text on `---` lines: (first line, text).
fn split_documents(text: &str) -> Vec<(usize, String)> {
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut start = 1;
    for (i, line) in text.lines().enumerate() {
        if line.trim_end() == "---" {
            if !current.trim().is_empty() {
                docs.push((start, std::mem::take(&mut current)));
            }
            current.clear();
            start = i + 2;
            continue;
        }
        current.push_str(line);
        current.push('\n');
    }
    if !current.trim().is_empty() {
        docs.push((start, current));
    }
    docs
}

fn load_document(doc: &str, start_line: usize, origin: &RuleOrigin, loaded: &mut Loaded) {
    let error = |reason: String, construct: Option<&str>| RuleError {
        file: origin.path().to_owned(),
        line: locate(doc, start_line, &reason, construct),
        reason,
    };
    let (text, new_value, added) = match read_new_value(doc) {
        Ok(read) => read,
        Err(reason) => {
            loaded.errors.push(error(reason, Some("condition:")));
            return;
        }
    };
    let collection = match parse_sigma_yaml(&text) {
        Ok(collection) => collection,
        Err(e) => {
            loaded
                .errors
                .push(error(unshift_lines(e.to_string(), added), None));
            return;
        }
    };
    for reason in collection.errors {
        loaded
            .errors
            .push(error(unshift_lines(reason, added), None));
    }
    for rule in collection.correlations {
        if rule.id.as_deref().is_none_or(|i| i.trim().is_empty()) {
            loaded.errors.push(error(
                "a correlation rule needs an id (alert ids are derived from it)".into(),
                Some("correlation:"),
            ));
            continue;
        }
        loaded.correlations.push(Correlation {
            rule,
            origin: origin.clone(),
            line: start_line,
            new_value,
        });
    }
    if !collection.filters.is_empty() {
        loaded.errors.push(error(
            "filter documents are not supported; put the exclusion in the rule's condition".into(),
            Some("filter:"),
        ));
    }
    for rule in collection.rules {
        match compile(rule, doc, start_line, origin) {
            Ok(rule) => loaded.rules.push(rule),
            Err(e) => loaded.errors.push(e),
        }
    }
}

fn compile(
    rule: SigmaRule,
    doc: &str,
    start_line: usize,
    origin: &RuleOrigin,
) -> Result<Rule, RuleError> {
    let error = |reason: String, construct: Option<&str>| RuleError {
        file: origin.path().to_owned(),
        line: locate(doc, start_line, &reason, construct),
        reason,
    };
    let product = rule.logsource.product.as_deref();
    let service = rule.logsource.service.as_deref();
    if product != Some("aws") || service != Some("cloudtrail") {
        return Err(error(
            format!(
                "unsupported logsource (product: {}, service: {}): trailwatch reads only \
                 product: aws, service: cloudtrail",
                product.unwrap_or("none"),
                service.unwrap_or("none")
            ),
            Some("logsource:"),
        ));
    }
    let compiled = rsigma_eval::compile_rule(&rule).map_err(|e| error(e.to_string(), None))?;
    let examples = examples(&rule).map_err(|reason| error(reason, Some("rsigma.exemplars")))?;
    let id = match &rule.id {
        Some(id) if !id.trim().is_empty() => id.clone(),
        _ => file_stem(origin.path()),
    };
    let grouped = rule
        .custom_attributes
        .get("trailwatch.grouping")
        .and_then(|v| v.as_bool())
        != Some(false);
    Ok(Rule {
        id,
        meta: meta_of!(rule, origin),
        line: start_line,
        examples,
        emit: true,
        grouped,
        feeds: false,
        sigma: std::sync::Arc::new(rule),
        program: super::eval::Program::compile(&compiled),
        compiled,
        alert_json: std::sync::OnceLock::new(),
    })
}

/// The rule's `rsigma.exemplars`, with their events as JSON.
fn examples(rule: &SigmaRule) -> Result<Vec<Example>, String> {
    let list = rsigma_parser::exemplars(rule).map_err(|errors| {
        let all: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        format!("rsigma.exemplars: {}", all.join("; "))
    })?;
    let mut out = Vec::with_capacity(list.len());
    for exemplar in list {
        let rsigma_parser::ExemplarPayload::Event(event) = &exemplar.payload else {
            return Err(format!(
                "rsigma.exemplars: example '{}' has `events`, which only correlation rules take",
                exemplar.name
            ));
        };
        let event = serde_json::to_value(event).map_err(|e| {
            format!(
                "rsigma.exemplars: example '{}' is not JSON-like: {e}",
                exemplar.name
            )
        })?;
        out.push(Example {
            name: exemplar.name.clone(),
            expect_match: exemplar.expect == rsigma_parser::Expect::Match,
            event,
        });
    }
    Ok(out)
}

fn file_stem(path: &str) -> String {
    Path::new(path)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or(path)
        .to_owned()
}

/// The line an error is about: a line number in a YAML error, else the line
/// of the construct it names (a quoted token, or `construct`), else the
/// document's first line.
fn locate(doc: &str, start_line: usize, reason: &str, construct: Option<&str>) -> usize {
    if let Some(line) = yaml_error_line(reason) {
        return start_line + line - 1;
    }
    let quoted = reason
        .split('\'')
        .nth(1)
        .or_else(|| reason.split('`').nth(1))
        .filter(|q| !q.is_empty());
    for needle in [quoted, construct].into_iter().flatten() {
        if let Some(i) = doc.lines().position(|l| l.contains(needle)) {
            return start_line + i;
        }
    }
    start_line
}

/// `... at line 7 column 3` in a YAML parser message.
fn yaml_error_line(reason: &str) -> Option<usize> {
    let rest = &reason[reason.find("line ")? + 5..];
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok().filter(|&n| n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Severity;

    fn origin() -> RuleOrigin {
        RuleOrigin::File {
            path: "user/rules.yml".into(),
        }
    }

    const GOOD: &str = "title: Stop\nid: r-stop\nlogsource:\n  product: aws\n  service: cloudtrail\n\
        detection:\n  sel:\n    eventName: StopLogging\n  condition: sel\nlevel: high\n";

    /// Found by the chaos suite's rule fuzzing: a YAML error after the line
    /// the first-seen reading adds (`gte: 1`) named the line after the real one.
    #[test]
    fn a_yaml_error_in_a_first_seen_rule_names_the_file_s_own_line() {
        let text = "title: New\nid: r-new\ncorrelation:\n  type: new_value\n  rules:\n    - r-stop\n\
            \x20 group-by:\n    - userIdentity.arn\n  timespan: 30d\n  condition:\n    field: sourceIPAddress\n\
            level: low\nfalsepositives: [unclosed\n";
        let loaded = load_text(text, origin());
        let e = loaded.errors.first().expect("an error");
        let last = text.lines().count();
        assert!(
            e.line <= last + 1,
            "line {} of {last}: {}",
            e.line,
            e.reason
        );
        assert!(
            !e.reason.contains(&format!("line {}", last + 2)),
            "the reason's lines are the file's: {}",
            e.reason
        );
        assert_eq!(
            unshift_lines("at line 14 column 1, at line 3".into(), Some(11)),
            "at line 13 column 1, at line 3"
        );
    }

    #[test]
    fn a_bad_document_does_not_stop_the_others() {
        let text = format!(
            "{GOOD}---\ntitle: Bad\nlogsource:\n  product: aws\n  service: cloudtrail\n\
             detection:\n  sel:\n    eventName|bogus: x\n  condition: sel\n---\n\
             title: Win\nlogsource:\n  product: windows\ndetection:\n  sel:\n    a: b\n  condition: sel\n"
        );
        let loaded = load_text(&text, origin());
        assert_eq!(loaded.rules.len(), 1);
        assert_eq!(loaded.rules[0].id, "r-stop");
        assert_eq!(loaded.rules[0].meta.severity, Severity::High);
        assert_eq!(loaded.errors.len(), 2, "{:?}", loaded.errors);
        let bogus = &loaded.errors[0];
        assert_eq!(bogus.file, "user/rules.yml");
        assert_eq!(bogus.line, 18, "{bogus}");
        assert!(bogus.reason.contains("bogus"), "{bogus}");
        let windows = &loaded.errors[1];
        assert_eq!(windows.line, 22, "{windows}");
        assert!(windows.reason.contains("product: windows"), "{windows}");
    }

    #[test]
    fn yaml_syntax_errors_name_their_line() {
        let text = format!("{GOOD}---\ntitle: Broken\ndetection: [unclosed\n");
        let loaded = load_text(&text, origin());
        assert_eq!(loaded.rules.len(), 1);
        assert_eq!(loaded.errors.len(), 1);
        let err = &loaded.errors[0];
        assert!((12..=14).contains(&err.line), "{err}");
    }

    #[test]
    fn a_rule_without_id_takes_its_file_stem() {
        let text = GOOD.replace("id: r-stop\n", "");
        let loaded = load_text(&text, origin());
        assert_eq!(loaded.rules[0].id, "rules");
    }
}
