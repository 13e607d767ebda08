//! The lookup store's reading side: alerts and activity by time and by who,
//! what, where. Several values of one filter match any of them (OR); filters
//! of different kinds must all match (AND). Newest first, a page at a time
//! (keyset: the position of the last row shown, never an offset).

use std::collections::HashMap;

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

/// Which table a filter runs on: the alerts keep their columns in the row;
/// the activity index names principals, events and places by number.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Table {
    Alerts,
    Activity,
}

/// `column IN (?, ?…)` for `n` values.
fn is_in(column: &str, n: usize) -> String {
    format!("{column} IN ({})", vec!["?"; n].join(", "))
}

/// The WHERE clause of a filter and its values.
fn where_clause(f: &Filter, table: Table) -> (String, Vec<Value>) {
    let mut sql = String::from("at >= ? AND at < ?");
    let mut args = vec![Value::Integer(f.since), Value::Integer(f.until)];
    let texts = |values: &[String], times: usize| -> Vec<Value> {
        (0..times)
            .flat_map(|_| values.iter().map(|v| Value::Text(v.clone())))
            .collect()
    };
    // (values, the alerts' condition, the activity index's condition, how
    // many times the values appear in it)
    let n = |v: &Vec<String>| v.len();
    let filters: [(&Vec<String>, String, String, usize); 8] = [
        (
            &f.principals,
            format!(
                "({} OR {} OR {})",
                is_in("principal", n(&f.principals)),
                is_in("principal_name", n(&f.principals)),
                is_in("access_key", n(&f.principals))
            ),
            format!(
                "principal IN (SELECT id FROM activity_principals WHERE {} OR {} OR {})",
                is_in("arn", n(&f.principals)),
                is_in("name", n(&f.principals)),
                is_in("access_key", n(&f.principals))
            ),
            3,
        ),
        (
            &f.targets,
            is_in("target", n(&f.targets)),
            is_in("target", n(&f.targets)),
            1,
        ),
        (
            &f.ips,
            is_in("source_ip", n(&f.ips)),
            is_in("source_ip", n(&f.ips)),
            1,
        ),
        (
            &f.accounts,
            is_in("account", n(&f.accounts)),
            format!(
                "place IN (SELECT id FROM activity_places WHERE {})",
                is_in("account", n(&f.accounts))
            ),
            1,
        ),
        (
            &f.regions,
            is_in("region", n(&f.regions)),
            format!(
                "place IN (SELECT id FROM activity_places WHERE {})",
                is_in("region", n(&f.regions))
            ),
            1,
        ),
        (
            &f.events,
            is_in("event_name", n(&f.events)),
            format!(
                "event IN (SELECT id FROM activity_events WHERE {})",
                is_in("name", n(&f.events))
            ),
            1,
        ),
        (
            &f.sources,
            is_in("event_source", n(&f.sources)),
            format!(
                "event IN (SELECT id FROM activity_events WHERE {})",
                is_in("source", n(&f.sources))
            ),
            1,
        ),
        (&f.rules, is_in("rule_id", n(&f.rules)), String::new(), 1),
    ];
    for (values, alerts, activity, times) in filters {
        let condition = match table {
            Table::Alerts => alerts,
            Table::Activity => activity,
        };
        if values.is_empty() || condition.is_empty() {
            continue;
        }
        sql.push_str(" AND ");
        sql.push_str(&condition);
        args.extend(texts(values, times));
    }
    if table == Table::Alerts && !f.levels.is_empty() {
        sql.push_str(&format!(" AND {}", is_in("level", f.levels.len())));
        args.extend(f.levels.iter().map(|l| Value::Integer(*l as i64)));
    }
    if !f.user_agents.is_empty() {
        let likes = vec!["instr(lower(user_agent), ?) > 0"; f.user_agents.len()].join(" OR ");
        sql.push_str(&format!(" AND ({likes})"));
        args.extend(f.user_agents.iter().map(|v| Value::Text(v.to_lowercase())));
    }
    if let Some(page) = f.before {
        let row = match table {
            Table::Alerts => "seq",
            Table::Activity => "id",
        };
        sql.push_str(&format!(" AND (at, {row}) < (?, ?)"));
        args.extend([Value::Integer(page.at), Value::Integer(page.row)]);
    }
    (sql, args)
}

impl StateStore {
    /// The alerts a filter selects, newest first, at most `limit`.
    pub fn lookup_alerts(&self, f: &Filter) -> Result<Vec<StoredAlert>> {
        let (clause, mut args) = where_clause(f, Table::Alerts);
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
        let (clause, mut args) = where_clause(f, Table::Activity);
        args.push(Value::Integer(f.limit as i64));
        // The rows first (by the activity table's own indexes), then what
        // their numbers name.
        let sql = format!(
            "SELECT a.id, a.at, a.event_id, p.arn, p.name, p.access_key, pl.account, pl.region,
                    e.name, e.source, a.target, a.source_ip, a.user_agent, a.error_code,
                    o.bucket, o.key
             FROM (SELECT * FROM activity WHERE {clause} ORDER BY at DESC, id DESC LIMIT ?) a
             LEFT JOIN activity_principals p ON p.id = a.principal
             LEFT JOIN activity_events e ON e.id = a.event
             LEFT JOIN activity_places pl ON pl.id = a.place
             LEFT JOIN activity_objects o ON o.id = a.object
             ORDER BY a.at DESC, a.id DESC"
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
                        principal: named(r.get(3)?),
                        principal_name: named(r.get(4)?),
                        access_key: named(r.get(5)?),
                        account: named(r.get(6)?),
                        region: named(r.get(7)?),
                        event_name: named(r.get(8)?),
                        event_source: named(r.get(9)?),
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

impl StateStore {
    /// How many alerts each rule raised on the days (UTC) from `since` to
    /// `until`, most first: kept per day as alerts come in, so the count
    /// costs what the days hold, not what the alerts do.
    pub fn alerts_per_rule(&self, since: i64, until: i64) -> Result<Vec<(String, i64)>> {
        self.counted(
            "SELECT rule_id, SUM(n) FROM alert_days WHERE day >= ?1 AND day <= ?2
             GROUP BY rule_id ORDER BY 2 DESC",
            vec![
                Value::Integer(since.div_euclid(86_400)),
                Value::Integer((until - 1).div_euclid(86_400)),
            ],
        )
    }

    /// Where the activity `f` selects came from: its accounts, source IPs
    /// and user agents, the `top` most frequent of each with their counts,
    /// over its newest `FACET_ROWS` rows, in one pass.
    pub fn activity_facets(&self, f: &Filter, top: usize) -> Result<Facets> {
        let (clause, mut args) = where_clause(f, Table::Activity);
        args.push(Value::Integer(FACET_ROWS as i64));
        let sql = format!(
            "SELECT pl.account, a.source_ip, a.user_agent FROM
               (SELECT place, source_ip, user_agent FROM activity WHERE {clause}
                ORDER BY at DESC LIMIT ?) a
             LEFT JOIN activity_places pl ON pl.id = a.place"
        );
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
        let mut rows = stmt
            .query(params_from_iter(args))
            .map_err(|e| self.err(e))?;
        let mut counts: [HashMap<String, i64>; 3] = Default::default();
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            for (i, c) in counts.iter_mut().enumerate() {
                let v: Option<String> = row.get(i).map_err(|e| self.err(e))?;
                if let Some(v) = v.filter(|v| !v.is_empty()) {
                    *c.entry(v).or_default() += 1;
                }
            }
        }
        let [accounts, ips, user_agents] = counts.map(|c| {
            let mut v: Vec<(String, i64)> = c.into_iter().collect();
            v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            v.truncate(top);
            v
        });
        Ok(Facets {
            accounts,
            ips,
            user_agents,
        })
    }

    /// Every stored row of `trails` (the discovered trails' last status) or
    /// `targets` (each bucket and prefix's last pass): (key, JSON).
    pub fn statuses(&self, table: StatusTable) -> Result<Vec<(String, serde_json::Value)>> {
        let sql = match table {
            StatusTable::Trails => "SELECT arn, json FROM trails ORDER BY arn",
            StatusTable::Targets => "SELECT id, json FROM targets ORDER BY id",
        };
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (key, json) = row.map_err(|e| self.err(e))?;
            out.push((key, serde_json::from_str(&json).unwrap_or_default()));
        }
        Ok(out)
    }

    fn counted(&self, sql: &str, args: Vec<Value>) -> Result<Vec<(String, i64)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params_from_iter(args), |r| {
                Ok((
                    r.get::<_, Option<String>>(0)?.unwrap_or_default(),
                    r.get::<_, i64>(1)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }
}

/// Which status rows `statuses` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusTable {
    Trails,
    Targets,
}

/// How many of the newest rows `activity_facets` counts.
pub const FACET_ROWS: usize = 10_000;

/// Where a principal's activity came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facets {
    pub accounts: Vec<(String, i64)>,
    pub ips: Vec<(String, i64)>,
    pub user_agents: Vec<(String, i64)>,
}

/// A dictionary's value: '' (absent) or nothing found is `None`.
fn named(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
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
