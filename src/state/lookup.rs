//! The lookup store's reading side: alerts and activity by time and by who,
//! what, where. Several values of one filter match any of them (OR); filters
//! of different kinds must all match (AND). Newest first, a page at a time
//! (keyset: the position of the last row shown, never an offset).

use rusqlite::types::Value;
use rusqlite::{OptionalExtension, params_from_iter};

use super::{Result, StateStore};
use crate::alert::{Activity, Alert, AlertContext, Severity};

/// Where a page ends: the time and row of its last (oldest) row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub at: i64,
    pub row: i64,
}

impl Page {
    /// As `--before` takes it back: `<unix seconds>.<row>`.
    pub fn token(&self) -> String {
        format!("{}.{}", self.at, self.row)
    }

    pub fn parse(token: &str) -> Option<Page> {
        let (at, row) = token.split_once('.')?;
        Some(Page {
            at: at.parse().ok()?,
            row: row.parse().ok()?,
        })
    }
}

/// What to look up. Times are Unix seconds, `since` included, `until` not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub since: i64,
    pub until: i64,
    pub rules: Vec<String>,
    pub levels: Vec<Severity>,
    /// An ARN, a user or role name, or an access key id.
    pub principals: Vec<String>,
    pub targets: Vec<String>,
    pub ips: Vec<String>,
    pub accounts: Vec<String>,
    pub regions: Vec<String>,
    pub events: Vec<String>,
    pub sources: Vec<String>,
    /// Matched anywhere in the user agent, ignoring case.
    pub user_agents: Vec<String>,
    pub limit: usize,
    pub before: Option<Page>,
}

/// An alert as the store keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredAlert {
    pub seq: i64,
    /// The event's time (Unix seconds), or when it was stored.
    pub at: i64,
    pub alert: Alert,
    pub context: AlertContext,
}

/// A record in the activity index, with the object it was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityRow {
    pub id: i64,
    pub activity: Activity,
    pub bucket: Option<String>,
    pub key: Option<String>,
}

/// The WHERE clause of a filter and its values, for a table whose row key
/// is `row` (alerts: `seq`; activity: `id`).
fn where_clause(f: &Filter, row: &str, alerts: bool) -> (String, Vec<Value>) {
    let mut sql = String::from("at >= ? AND at < ?");
    let mut args = vec![Value::Integer(f.since), Value::Integer(f.until)];
    let mut any_of = |columns: &[&str], values: &[String]| {
        if values.is_empty() {
            return;
        }
        let marks = vec!["?"; values.len()].join(", ");
        let ors: Vec<String> = columns
            .iter()
            .map(|c| format!("{c} IN ({marks})"))
            .collect();
        sql.push_str(&format!(" AND ({})", ors.join(" OR ")));
        for _ in columns {
            args.extend(values.iter().map(|v| Value::Text(v.clone())));
        }
    };
    if alerts {
        any_of(&["rule_id"], &f.rules);
    }
    any_of(
        &["principal", "principal_name", "access_key"],
        &f.principals,
    );
    any_of(&["target"], &f.targets);
    any_of(&["source_ip"], &f.ips);
    any_of(&["account"], &f.accounts);
    any_of(&["region"], &f.regions);
    any_of(&["event_name"], &f.events);
    any_of(&["event_source"], &f.sources);
    if alerts && !f.levels.is_empty() {
        let marks = vec!["?"; f.levels.len()].join(", ");
        sql.push_str(&format!(" AND level IN ({marks})"));
        args.extend(f.levels.iter().map(|l| Value::Integer(*l as i64)));
    }
    if !f.user_agents.is_empty() {
        let likes = vec!["instr(lower(user_agent), ?) > 0"; f.user_agents.len()].join(" OR ");
        sql.push_str(&format!(" AND ({likes})"));
        args.extend(f.user_agents.iter().map(|v| Value::Text(v.to_lowercase())));
    }
    if let Some(page) = f.before {
        sql.push_str(&format!(" AND (at, {row}) < (?, ?)"));
        args.extend([Value::Integer(page.at), Value::Integer(page.row)]);
    }
    (sql, args)
}

impl StateStore {
    /// The alerts a filter selects, newest first, at most `limit`.
    pub fn lookup_alerts(&self, f: &Filter) -> Result<Vec<StoredAlert>> {
        let (clause, mut args) = where_clause(f, "seq", true);
        args.push(Value::Integer(f.limit as i64));
        let sql = format!(
            "SELECT seq, at, json, context FROM alerts WHERE {clause}
             ORDER BY at DESC, seq DESC LIMIT ?"
        );
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params_from_iter(args), |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, at, json, context) = row.map_err(|e| self.err(e))?;
            out.push(stored(seq, at, &json, context).map_err(|e| self.err(e))?);
        }
        Ok(out)
    }

    /// One alert by its id (`tw-…`).
    pub fn alert_by_id(&self, id: &str) -> Result<Option<StoredAlert>> {
        let conn = self.conn();
        let row = conn
            .query_row(
                "SELECT seq, COALESCE(at, created_at), json, context FROM alerts WHERE id = ?1",
                [id],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, Option<String>>(3)?,
                    ))
                },
            )
            .optional()
            .map_err(|e| self.err(e))?;
        match row {
            None => Ok(None),
            Some((seq, at, json, context)) => stored(seq, at, &json, context)
                .map(Some)
                .map_err(|e| self.err(e)),
        }
    }

    /// The activity a filter selects, newest first, at most `limit`.
    pub fn lookup_activity(&self, f: &Filter) -> Result<Vec<ActivityRow>> {
        let (clause, mut args) = where_clause(f, "a.id", false);
        args.push(Value::Integer(f.limit as i64));
        // The filter's columns are the activity table's (`at` too).
        let sql = format!(
            "SELECT a.id, a.at, a.event_id, a.principal, a.principal_name, a.access_key,
                    a.account, a.region, a.event_name, a.event_source, a.target, a.source_ip,
                    a.user_agent, a.error_code, o.bucket, o.key
             FROM activity a LEFT JOIN activity_objects o ON o.id = a.object
             WHERE {clause} ORDER BY a.at DESC, a.id DESC LIMIT ?"
        );
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params_from_iter(args), |r| {
                Ok(ActivityRow {
                    id: r.get(0)?,
                    activity: Activity {
                        at: r.get(1)?,
                        event_id: r.get(2)?,
                        principal: r.get(3)?,
                        principal_name: r.get(4)?,
                        access_key: r.get(5)?,
                        account: r.get(6)?,
                        region: r.get(7)?,
                        event_name: r.get(8)?,
                        event_source: r.get(9)?,
                        target: r.get(10)?,
                        source_ip: r.get(11)?,
                        user_agent: r.get(12)?,
                        error_code: r.get(13)?,
                    },
                    bucket: r.get(14)?,
                    key: r.get(15)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }
}

fn stored(
    seq: i64,
    at: i64,
    json: &str,
    context: Option<String>,
) -> std::result::Result<StoredAlert, serde_json::Error> {
    Ok(StoredAlert {
        seq,
        at,
        alert: serde_json::from_str(json)?,
        context: context
            .and_then(|c| serde_json::from_str(&c).ok())
            .unwrap_or_default(),
    })
}
