//! Silence as a blind spot. A cursor (bucket, prefix, account, region) that
//! has been delivering and then goes quiet for longer than its learned
//! normal gap (twice the longest of its recent gaps between deliveries, kept
//! between `[blind_spots] silence_floor` and `silence_ceiling`): an attacker
//! who breaks delivery in one account or region leaves exactly this. And an
//! active account of the organisation from which no trail trailwatch reads
//! has delivered anything within `no_delivery_after`. One alert when it
//! starts, one resolving summary when it ends; ids by the trail-status
//! formula over what the episode is (the cursor and its last delivery; the
//! account and when it was found silent), so a restart raises no other.

use std::collections::BTreeMap;
use std::time::Duration;

use time::OffsetDateTime;

use crate::alert::builtin::Builtin;
use crate::alert::{AlertEvent, Detected, alert_id};
use crate::aws::keys::{self, KeyTime};
use crate::aws::organization::OrgAccount;
use crate::config::{BlindSpotConfig, StartFrom};

use super::report::TargetReport;
use super::{CrawlError, Crawler};

pub const CURSOR_SILENT: &str = "trailwatch-blind-cursor-silent";
pub const ACCOUNT_NO_DELIVERY: &str = "trailwatch-blind-account-no-delivery";

/// Gaps a cursor remembers.
const GAPS_KEPT: usize = 32;

/// What a cursor's deliveries have taught, and its open silence.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cadence {
    /// Recent gaps between deliveries, in seconds, oldest first.
    pub gaps: Vec<i64>,
    /// The newest key time delivered.
    pub newest: KeyTime,
    /// Seen delivering on time at least once (old logs read for the first
    /// time are history, not a cursor gone quiet).
    pub live: bool,
    /// The open silence's alert id.
    pub silent: Option<String>,
}

impl Cadence {
    /// How long a silence may last before it is a blind spot.
    pub fn allowed(&self, c: &BlindSpotConfig) -> Duration {
        let longest = self.gaps.iter().copied().max().unwrap_or(0).max(0) as u64;
        Duration::from_secs(longest.saturating_mul(2)).clamp(c.silence_floor, c.silence_ceiling)
    }

    /// Learns the gaps between `newest` and the key times delivered now.
    fn learn(&mut self, delivered: &[KeyTime]) {
        let mut times: Vec<&KeyTime> = delivered
            .iter()
            .filter(|t| self.newest.is_empty() || **t > self.newest)
            .collect();
        times.sort();
        times.dedup();
        for t in times {
            if let (Some(a), Some(b)) =
                (keys::parse_key_time(&self.newest), keys::parse_key_time(t))
            {
                self.gaps.push((b - a).whole_seconds());
                if self.gaps.len() > GAPS_KEPT {
                    self.gaps.remove(0);
                }
            }
            self.newest = t.clone();
        }
    }
}

/// A cursor, for the alert's words.
pub struct Place<'a> {
    pub bucket: &'a str,
    pub prefix: &'a str,
    /// `account/region`.
    pub label: &'a str,
}

/// Learns the key times delivered this round (by `account/region`) into
/// each cursor's cadence.
pub fn learn(cadences: &mut BTreeMap<String, Cadence>, delivered: &BTreeMap<String, Vec<KeyTime>>) {
    for (label, times) in delivered {
        cadences.entry(label.clone()).or_default().learn(times);
    }
}

/// Returns the alerts each cursor's silence (or its end) calls for.
pub fn cursor_transitions(
    bucket: &str,
    prefix: &str,
    cadences: &mut BTreeMap<String, Cadence>,
    now: OffsetDateTime,
    config: &BlindSpotConfig,
) -> Vec<Detected> {
    let mut alerts = Vec::new();
    for (label, c) in cadences.iter_mut() {
        let Some(newest) = keys::parse_key_time(&c.newest) else {
            continue;
        };
        let quiet = now - newest;
        let allowed = c.allowed(config);
        let place = Place {
            bucket,
            prefix,
            label,
        };
        if quiet <= allowed {
            c.live = true;
            if let Some(id) = c.silent.take() {
                alerts.push(cursor_alert(&place, c, &id, allowed, true));
            }
        } else if c.live && c.silent.is_none() {
            let id = alert_id(
                CURSOR_SILENT,
                &format!("{bucket}\0{prefix}\0{label}\0{}", c.newest),
            );
            alerts.push(cursor_alert(&place, c, &id, allowed, false));
            c.silent = Some(id);
        }
    }
    alerts
}

fn cursor_alert(
    place: &Place,
    c: &Cadence,
    id: &str,
    allowed: Duration,
    resolved: bool,
) -> Detected {
    let (account, region) = place.label.split_once('/').unwrap_or((place.label, ""));
    let at = format!("s3://{}/{}{}", place.bucket, place.prefix, place.label);
    let last = keys::parse_key_time(&c.newest)
        .map(|t| crate::alert::rfc3339_at(t.unix_timestamp()))
        .unwrap_or_else(|| c.newest.clone());
    let hours = allowed.as_secs_f64() / 3600.0;
    let (alert_id, title, description) = if resolved {
        (
            crate::alert::alert_id(CURSOR_SILENT, &format!("{id}\0resolved")),
            format!("Delivering again: account {account}, {region}"),
            format!(
                "CloudTrail delivers again to {at} (it had been silent since {last}). \
                 What happened in the silence may be missing: check the trail's status and \
                 delivery errors for that time."
            ),
        )
    } else {
        (
            id.to_owned(),
            format!("Blind spot: no CloudTrail logs from account {account}, {region}"),
            format!(
                "Nothing has been delivered to {at} since {last}, longer than its usual gap \
                 allows ({hours:.1} h). A trail stopped or changed, an event selector, a \
                 bucket or key policy, or the region switched off can each cause it: \
                 whatever happens there now raises nothing."
            ),
        )
    };
    Builtin {
        rule: CURSOR_SILENT.into(),
        id: alert_id,
        title,
        severity: "medium".into(),
        tags: vec!["attack.defense-evasion".into(), "attack.t1562.008".into()],
        event: AlertEvent {
            time: Some(last.clone()),
            account_id: Some(account.to_owned()),
            region: Some(region.to_owned()).filter(|r| !r.is_empty()),
            ..AlertEvent::default()
        },
        description,
        falsepositives: vec![
            "A region or account with no activity for longer than it ever rested before.".into(),
        ],
        record: Some(format!(
            "last delivery {last}; usual gap allows {hours:.1} h"
        )),
        resource: Some(at),
        ungrouped: true,
        skip_sinks: Vec::new(),
    }
    .detected()
}

/// An account found silent: since when (RFC 3339), and its alert.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Missing {
    pub since: String,
    pub alert_id: String,
}

/// What the account check keeps between passes.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AccountWatch {
    /// From when the crawl's view reaches back (the first pass's start less
    /// `start_from`): silence is only known once it covers the window.
    pub watched_from: Option<String>,
    pub open: BTreeMap<String, Missing>,
}

/// Compares the organisation's active accounts with the newest delivery
/// from each (`newest`, by account) and returns the alerts a change calls
/// for.
pub fn account_transitions(
    watch: &mut AccountWatch,
    accounts: &[OrgAccount],
    newest: &BTreeMap<String, KeyTime>,
    now: OffsetDateTime,
    after: Duration,
) -> Vec<Detected> {
    let watched_from = watch
        .watched_from
        .as_deref()
        .and_then(crate::event::time::parse_rfc3339)
        .and_then(|u| OffsetDateTime::from_unix_timestamp(u).ok())
        .unwrap_or(now);
    let covered = now - watched_from >= after;
    let mut alerts = Vec::new();
    for a in accounts.iter().filter(|a| a.active()) {
        let last = newest.get(&a.id).and_then(|t| keys::parse_key_time(t));
        let delivering = last.is_some_and(|t| now - t <= after);
        match watch.open.get(&a.id) {
            Some(m) if delivering => {
                let id = alert_id(ACCOUNT_NO_DELIVERY, &format!("{}\0resolved", m.alert_id));
                alerts.push(account_alert(a, &id, &m.since, after, true));
                watch.open.remove(&a.id);
            }
            None if !delivering && covered => {
                let since = crate::alert::rfc3339_at(now.unix_timestamp());
                let id = alert_id(
                    ACCOUNT_NO_DELIVERY,
                    &format!(
                        "{}\0{}",
                        a.id,
                        last.map(|t| crate::alert::rfc3339_at(t.unix_timestamp()))
                            .unwrap_or_default()
                    ),
                );
                alerts.push(account_alert(a, &id, &since, after, false));
                watch.open.insert(
                    a.id.clone(),
                    Missing {
                        since,
                        alert_id: id,
                    },
                );
            }
            _ => {}
        }
    }
    // Accounts that left the organisation close without a summary.
    watch
        .open
        .retain(|id, _| accounts.iter().any(|a| &a.id == id && a.active()));
    alerts
}

fn account_alert(
    a: &OrgAccount,
    id: &str,
    since: &str,
    after: Duration,
    resolved: bool,
) -> Detected {
    let hours = after.as_secs_f64() / 3600.0;
    let who = if a.name.is_empty() {
        a.id.clone()
    } else {
        format!("{} ({})", a.id, a.name)
    };
    let (title, description) = if resolved {
        (
            format!("Logs arrive again from account {who}"),
            format!(
                "A trail trailwatch reads delivers from this account again (none had since before {since})."
            ),
        )
    } else {
        (
            format!("Blind spot: no trail covers account {who}"),
            format!(
                "No trail that trailwatch reads has delivered anything from this active \
                 account of the organisation within {hours:.1} h: no AWSLogs/[o-…/]{}/ \
                 objects. It may be outside the organisation trail, its own trail may be \
                 unread, or delivery broken: whatever happens there raises nothing.",
                a.id
            ),
        )
    };
    Builtin {
        rule: ACCOUNT_NO_DELIVERY.into(),
        id: id.to_owned(),
        title,
        severity: "medium".into(),
        tags: vec!["attack.defense-evasion".into(), "attack.t1562.008".into()],
        event: AlertEvent {
            time: Some(since.to_owned()),
            account_id: Some(a.id.clone()),
            account_name: Some(a.name.clone()).filter(|n| !n.is_empty()),
            account_ou_path: a.ou_path.clone(),
            ..AlertEvent::default()
        },
        description,
        falsepositives: vec![
            "A new account with nothing in it yet; an account being closed.".into(),
        ],
        record: Some(format!(
            "account {} ({}): no delivery within {hours:.1} h",
            a.id, a.status
        )),
        resource: Some(format!("account {}", a.id)),
        ungrouped: true,
        skip_sinks: Vec::new(),
    }
    .detected()
}

/// Where the account check is kept (the state store's kv).
const ACCOUNTS_KEY: &str = "blind_accounts";

impl Crawler {
    /// The organisation's active accounts against the newest delivery from
    /// each across every target: alerts for those gone silent (and their
    /// end), stored with the check's state in one transaction. Returns how
    /// many alerts were new.
    pub(super) async fn account_silence(
        &self,
        reports: &[TargetReport],
        now: OffsetDateTime,
    ) -> Result<u64, CrawlError> {
        let Some(accounts) = self.organization() else {
            return Ok(0);
        };
        let mut newest: BTreeMap<String, KeyTime> = BTreeMap::new();
        for r in reports {
            for (label, t) in &r.cursor_newest {
                let account = label.split('/').next().unwrap_or(label);
                let e = newest.entry(account.to_owned()).or_default();
                if *e < *t {
                    *e = t.clone();
                }
            }
        }
        let before: AccountWatch = self
            .blocking(|s| s.kv(ACCOUNTS_KEY))
            .await?
            .and_then(|v| serde_json::from_str(&v).ok())
            .unwrap_or_default();
        let mut watch = before.clone();
        if watch.watched_from.is_none() {
            let back = match &self.config.crawl.start_from {
                StartFrom::Ago(d) => *d,
                StartFrom::At(_) => Duration::ZERO,
            };
            watch.watched_from = Some(crate::alert::rfc3339_at((now - back).unix_timestamp()));
        }
        let after = self.config.blind_spots.no_delivery_after;
        let alerts = account_transitions(&mut watch, &accounts, &newest, now, after);
        if alerts.is_empty() && watch == before {
            return Ok(0);
        }
        for a in &alerts {
            tracing::warn!(rule = %a.alert.rule.id, title = %a.alert.rule.title, "blind spot");
        }
        let json = serde_json::to_string(&watch).unwrap_or_else(|_| "{}".into());
        Ok(self
            .blocking(move |s| s.set_kv_with_alerts(ACCOUNTS_KEY, &json, &alerts))
            .await? as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> OffsetDateTime {
        keys::parse_key_time(text).expect("key time")
    }

    fn config() -> BlindSpotConfig {
        BlindSpotConfig {
            silence_floor: Duration::from_secs(3600),
            silence_ceiling: Duration::from_secs(6 * 3600),
            no_delivery_after: Duration::from_secs(24 * 3600),
        }
    }

    fn delivered(label: &str, times: &[&str]) -> BTreeMap<String, Vec<KeyTime>> {
        BTreeMap::from([(
            label.to_owned(),
            times.iter().map(|t| (*t).to_owned()).collect(),
        )])
    }

    #[test]
    fn the_usual_gap_is_learnt_and_kept_between_floor_and_ceiling() {
        let mut c = BTreeMap::new();
        learn(
            &mut c,
            &delivered(
                "111111111111/us-east-1",
                &["20261206T1000Z", "20261206T1005Z"],
            ),
        );
        // Out of order, the same minute twice, an older one: no gap of them.
        learn(
            &mut c,
            &delivered(
                "111111111111/us-east-1",
                &["20261206T1010Z", "20261206T1010Z", "20261206T0900Z"],
            ),
        );
        let cadence = &c["111111111111/us-east-1"];
        assert_eq!(cadence.gaps, [300, 300]);
        assert_eq!(cadence.newest, "20261206T1010Z");
        assert_eq!(
            cadence.allowed(&config()),
            Duration::from_secs(3600),
            "the floor"
        );
        let mut quiet = cadence.clone();
        quiet.gaps.push(2 * 3600);
        assert_eq!(
            quiet.allowed(&config()),
            Duration::from_secs(4 * 3600),
            "twice the longest"
        );
        quiet.gaps.push(12 * 3600);
        assert_eq!(
            quiet.allowed(&config()),
            Duration::from_secs(6 * 3600),
            "the ceiling"
        );
    }

    #[test]
    fn a_cursor_gone_quiet_raises_one_alert_then_one_summary() {
        let label = "111111111111/eu-west-1";
        let mut c = BTreeMap::new();
        learn(
            &mut c,
            &delivered(label, &["20261206T1000Z", "20261206T1005Z"]),
        );
        let run = |c: &mut BTreeMap<String, Cadence>, now: &str| {
            cursor_transitions("logs", "AWSLogs/", c, at(now), &config())
        };
        assert!(run(&mut c, "20261206T1010Z").is_empty(), "on time");
        assert!(run(&mut c, "20261206T1100Z").is_empty(), "within the floor");
        let raised = run(&mut c, "20261206T1110Z");
        assert_eq!(raised.len(), 1);
        let a = &raised[0].alert;
        assert_eq!(a.rule.id, CURSOR_SILENT);
        assert_eq!(a.rule.severity, "medium");
        assert_eq!(a.event.account_id.as_deref(), Some("111111111111"));
        assert_eq!(a.event.region.as_deref(), Some("eu-west-1"));
        assert!(raised[0].context.ungrouped);
        assert!(
            run(&mut c, "20261206T1300Z").is_empty(),
            "still quiet: nothing new"
        );
        // A restart that lost the open silence raises the same id again.
        let mut lost = c.clone();
        lost.get_mut(label).expect("cursor").silent = None;
        assert_eq!(run(&mut lost, "20261206T1300Z")[0].alert.id, a.id);

        learn(&mut c, &delivered(label, &["20261206T1305Z"]));
        let back = run(&mut c, "20261206T1306Z");
        assert_eq!(back.len(), 1);
        assert_ne!(back[0].alert.id, a.id);
        assert!(back[0].alert.rule.title.starts_with("Delivering again"));
        assert!(run(&mut c, "20261206T1307Z").is_empty());
    }

    #[test]
    fn old_logs_read_for_the_first_time_are_no_silence() {
        let mut c = BTreeMap::new();
        learn(
            &mut c,
            &delivered(
                "111111111111/us-east-1",
                &["20200101T0000Z", "20200101T0005Z"],
            ),
        );
        let raised =
            cursor_transitions("logs", "AWSLogs/", &mut c, at("20261206T1000Z"), &config());
        assert!(raised.is_empty());
    }

    fn account(id: &str, status: &str) -> OrgAccount {
        OrgAccount {
            id: id.into(),
            name: format!("n{id}"),
            status: status.into(),
            ou_path: Some("Workloads".into()),
        }
    }

    #[test]
    fn an_account_nothing_arrives_from_raises_one_alert_then_one_summary() {
        let accounts = [
            account("111111111111", "ACTIVE"),
            account("222222222222", "ACTIVE"),
            account("333333333333", "SUSPENDED"),
        ];
        let day = Duration::from_secs(24 * 3600);
        let mut newest = BTreeMap::from([("111111111111".to_owned(), "20261206T0900Z".to_owned())]);
        let mut watch = AccountWatch {
            watched_from: Some("2026-12-06T10:00:00Z".into()),
            ..AccountWatch::default()
        };
        // The view does not reach a day back yet: nothing is known.
        assert!(
            account_transitions(&mut watch, &accounts, &newest, at("20261206T1100Z"), day)
                .is_empty()
        );
        let raised = account_transitions(&mut watch, &accounts, &newest, at("20261207T1000Z"), day);
        let ids: Vec<&str> = raised
            .iter()
            .map(|d| d.alert.event.account_id.as_deref().unwrap_or(""))
            .collect();
        assert_eq!(
            ids,
            ["111111111111", "222222222222"],
            "a suspended account is not watched"
        );
        assert!(
            raised
                .iter()
                .all(|d| d.alert.rule.id == ACCOUNT_NO_DELIVERY && d.context.ungrouped)
        );
        assert_eq!(
            raised[1].alert.event.account_ou_path.as_deref(),
            Some("Workloads")
        );
        assert!(
            account_transitions(&mut watch, &accounts, &newest, at("20261207T1100Z"), day)
                .is_empty()
        );
        newest.insert("222222222222".into(), "20261207T1055Z".into());
        let back = account_transitions(&mut watch, &accounts, &newest, at("20261207T1100Z"), day);
        assert_eq!(back.len(), 1);
        assert!(back[0].alert.rule.title.starts_with("Logs arrive again"));
        assert_eq!(watch.open.len(), 1);
        // An account that leaves the organisation is forgotten.
        assert!(
            account_transitions(
                &mut watch,
                &accounts[1..],
                &newest,
                at("20261207T1101Z"),
                day
            )
            .is_empty()
        );
        assert!(watch.open.is_empty());
    }
}
