//! A lookup as people ask it (`--since 7d --principal alice --ip …`), turned
//! into the store's filter: times parsed, the window bounded, levels named.

use time::OffsetDateTime;

use crate::alert::Severity;
use crate::config::parse_when;
use crate::state::{Filter, Page};

/// The longest window one query may span.
pub const MAX_WINDOW_DAYS: i64 = 90;
/// The window when none is given.
pub const DEFAULT_SINCE: &str = "7d";
/// The most rows one page may hold.
pub const MAX_LIMIT: usize = 10_000;

/// The filters of a lookup, as text (from the command line or a form).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pub since: Option<String>,
    pub until: Option<String>,
    pub rules: Vec<String>,
    pub levels: Vec<String>,
    pub principals: Vec<String>,
    pub targets: Vec<String>,
    pub ips: Vec<String>,
    pub accounts: Vec<String>,
    pub regions: Vec<String>,
    pub events: Vec<String>,
    pub sources: Vec<String>,
    pub user_agents: Vec<String>,
    pub limit: usize,
    pub before: Option<String>,
}

/// A lookup that cannot run, naming the filter at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{flag}: {reason}")]
pub struct QueryError {
    pub flag: &'static str,
    pub reason: String,
}

fn error(flag: &'static str, reason: impl Into<String>) -> QueryError {
    QueryError {
        flag,
        reason: reason.into(),
    }
}

/// Values without blanks; a value given as `a,b` is two values.
fn values(list: &[String]) -> Vec<String> {
    list.iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Level names; `medium+` is medium and every level above it.
fn levels(list: &[String]) -> Result<Vec<Severity>, QueryError> {
    let mut out = Vec::new();
    for name in values(list) {
        let (base, and_above) = match name.strip_suffix('+') {
            Some(base) => (base, true),
            None => (name.as_str(), false),
        };
        let level = Severity::parse(&base.to_lowercase()).ok_or_else(|| {
            error(
                "--level",
                format!(
                    "\"{name}\" is not one of {} (a trailing + takes the levels above too)",
                    Severity::NAMES.join(", ")
                ),
            )
        })?;
        for s in [
            Severity::Informational,
            Severity::Low,
            Severity::Medium,
            Severity::High,
            Severity::Critical,
        ] {
            if (s == level || (and_above && s > level)) && !out.contains(&s) {
                out.push(s);
            }
        }
    }
    Ok(out)
}

impl Query {
    /// The store's filter for this query at `now`: `since` defaults to 7
    /// days back, `until` to now; a window longer than 90 days, or one that
    /// ends before it starts, is refused.
    pub fn filter(&self, now: OffsetDateTime) -> Result<Filter, QueryError> {
        let since_text = self.since.as_deref().unwrap_or(DEFAULT_SINCE);
        let since = parse_when(since_text, now).map_err(|e| error("--since", e))?;
        let until = match self.until.as_deref() {
            None => now,
            Some(text) => parse_when(text, now).map_err(|e| error("--until", e))?,
        };
        if until <= since {
            return Err(error(
                "--until",
                format!("the window ends ({until}) before it starts ({since})"),
            ));
        }
        let span = until - since;
        if span > time::Duration::days(MAX_WINDOW_DAYS) {
            return Err(error(
                "--since",
                format!(
                    "the window is {} days; one query spans at most {MAX_WINDOW_DAYS} days \
                     (narrow it with --since and --until)",
                    span.whole_days()
                ),
            ));
        }
        let limit = match self.limit {
            0 => 50,
            n if n > MAX_LIMIT => {
                return Err(error("--limit", format!("at most {MAX_LIMIT} rows a page")));
            }
            n => n,
        };
        let before = match self.before.as_deref() {
            None | Some("") => None,
            Some(token) => Some(Page::parse(token).ok_or_else(|| {
                error(
                    "--before",
                    format!("\"{token}\" is not a page position such as 1795255200.42 (printed after a full page)"),
                )
            })?),
        };
        Ok(Filter {
            since: since.unix_timestamp(),
            // `until` is included to the second.
            until: until.unix_timestamp() + 1,
            rules: values(&self.rules),
            levels: levels(&self.levels)?,
            principals: values(&self.principals),
            targets: values(&self.targets),
            ips: values(&self.ips),
            accounts: values(&self.accounts),
            regions: values(&self.regions),
            events: values(&self.events),
            sources: values(&self.sources),
            user_agents: values(&self.user_agents),
            limit,
            before,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> OffsetDateTime {
        time::macros::datetime!(2026-11-21 12:00 UTC)
    }

    #[test]
    fn the_default_window_is_the_last_seven_days() {
        let f = Query::default().filter(now()).expect("filter");
        assert_eq!(f.until - 1 - f.since, 7 * 86_400);
        assert_eq!(f.limit, 50);
    }

    #[test]
    fn a_window_over_ninety_days_is_refused_naming_the_flag() {
        let q = Query {
            since: Some("91d".into()),
            ..Query::default()
        };
        let e = q.filter(now()).expect_err("refused");
        assert_eq!(e.flag, "--since");
        assert!(e.reason.contains("at most 90 days"), "{e}");
        let ok = Query {
            since: Some("2026-08-23T12:00:00Z".into()),
            ..Query::default()
        };
        assert!(ok.filter(now()).is_ok(), "exactly 90 days");
        let backwards = Query {
            since: Some("1d".into()),
            until: Some("2d".into()),
            ..Query::default()
        };
        assert_eq!(
            backwards.filter(now()).expect_err("backwards").flag,
            "--until"
        );
    }

    #[test]
    fn levels_by_name_or_with_the_ones_above_and_values_split_on_commas() {
        let q = Query {
            levels: vec!["high+".into(), "low".into()],
            principals: vec!["alice, bob".into(), "".into()],
            ..Query::default()
        };
        let f = q.filter(now()).expect("filter");
        assert_eq!(
            f.levels,
            vec![Severity::High, Severity::Critical, Severity::Low]
        );
        assert_eq!(f.principals, vec!["alice", "bob"]);
        let bad = Query {
            levels: vec!["severe".into()],
            ..Query::default()
        };
        assert_eq!(bad.filter(now()).expect_err("bad level").flag, "--level");
        let page = Query {
            before: Some("nope".into()),
            ..Query::default()
        };
        assert_eq!(page.filter(now()).expect_err("bad page").flag, "--before");
    }
}
