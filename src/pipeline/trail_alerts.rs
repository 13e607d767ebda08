//! Alerts about trails themselves: one that was logging and stopped, or one
//! that reports a delivery error. Tampering is caught even when the
//! `StopLogging` record never arrives.

use crate::alert::builtin::Builtin;
use crate::alert::{AlertEvent, Detected, alert_id};
use crate::aws::discovery::Trail;

pub const NOT_LOGGING: &str = "trailwatch-trail-not-logging";
pub const DELIVERY_ERROR: &str = "trailwatch-trail-delivery-error";

/// The alerts that the change from `before` to `now` calls for.
pub fn transitions(before: Option<&Trail>, now: &Trail) -> Vec<Detected> {
    let mut out = Vec::new();
    if let Some(before) = before
        && before.logging
        && !now.logging
    {
        // The stop time identifies this stop: a later stop is a new alert.
        let when = now.stop_logging_time.clone().unwrap_or_default();
        out.push(alert(
            NOT_LOGGING,
            "CloudTrail trail stopped logging",
            "high",
            now,
            &when,
            now.stop_logging_time.clone(),
        ));
    }
    if let Some(error) = &now.latest_delivery_error {
        let changed = before.is_none_or(|b| b.latest_delivery_error.as_ref() != Some(error));
        if changed {
            let when = now.latest_delivery_attempt.clone().unwrap_or_default();
            out.push(alert(
                DELIVERY_ERROR,
                "CloudTrail trail cannot deliver its logs",
                "high",
                now,
                &format!("{error}\0{when}"),
                now.latest_delivery_attempt.clone(),
            ));
        }
    }
    out
}

fn alert(
    rule_id: &str,
    title: &str,
    severity: &str,
    trail: &Trail,
    key: &str,
    time: Option<String>,
) -> Detected {
    let account = trail.arn.split(':').nth(4).map(str::to_owned);
    let description = if rule_id == NOT_LOGGING {
        "GetTrailStatus says this trail stopped logging, whether or not its StopLogging \
         record arrived. Check who stopped it (the StopLogging event in another trail, or \
         the account's other logs) and start it again if nobody owns the change."
    } else {
        "GetTrailStatus reports a delivery error: CloudTrail cannot write this trail's logs \
         (bucket policy, KMS key policy or a deleted bucket). Until it is fixed, activity \
         is not recorded. Check the bucket policy and the KMS key policy."
    };
    Builtin {
        rule: rule_id.to_owned(),
        id: alert_id(rule_id, &format!("{}\0{key}", trail.arn)),
        title: format!("{title}: {}", trail.name),
        severity: severity.to_owned(),
        tags: vec!["attack.defense-evasion".into(), "attack.t1562.008".into()],
        event: AlertEvent {
            name: Some("GetTrailStatus".into()),
            source: Some("cloudtrail.amazonaws.com".into()),
            time,
            account_id: account,
            region: trail.home_region.clone(),
            error_code: trail.latest_delivery_error.clone(),
            ..AlertEvent::default()
        },
        description: description.to_owned(),
        falsepositives: vec!["A trail retired or reconfigured on purpose.".to_owned()],
        record: serde_json::to_string(trail).ok(),
        resource: Some(trail.arn.clone()),
        // Blind-spot alerts are never grouped (DESIGN.md).
        ungrouped: true,
        ..Builtin::default()
    }
    .detected()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trail(logging: bool, error: Option<&str>) -> Trail {
        Trail {
            name: "main".into(),
            arn: "arn:aws:cloudtrail:us-east-1:111111111111:trail/main".into(),
            home_region: Some("us-east-1".into()),
            bucket: "b".into(),
            prefix: None,
            kms_key_id: None,
            organization: false,
            logging,
            latest_delivery_error: error.map(str::to_owned),
            latest_delivery_attempt: Some("2026-11-21T10:00:00Z".into()),
            stop_logging_time: (!logging).then(|| "2026-11-21T10:01:00Z".into()),
            origin: "discovered".into(),
            ..Trail::default()
        }
    }

    #[test]
    fn a_trail_that_stops_logging_raises_one_alert() {
        let alerts = transitions(Some(&trail(true, None)), &trail(false, None));
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].alert.rule.id, NOT_LOGGING);
        assert_eq!(
            alerts[0].alert.event.account_id.as_deref(),
            Some("111111111111")
        );
        // Seen again while still stopped: nothing new.
        assert!(transitions(Some(&trail(false, None)), &trail(false, None)).is_empty());
        // First sighting of a stopped trail: not a transition.
        assert!(transitions(None, &trail(false, None)).is_empty());
    }

    #[test]
    fn a_new_delivery_error_raises_an_alert_with_a_stable_id() {
        let a = transitions(Some(&trail(true, None)), &trail(true, Some("AccessDenied")));
        let b = transitions(None, &trail(true, Some("AccessDenied")));
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].alert.rule.id, DELIVERY_ERROR);
        assert_eq!(a[0].alert.id, b[0].alert.id);
        assert!(
            transitions(
                Some(&trail(true, Some("AccessDenied"))),
                &trail(true, Some("AccessDenied"))
            )
            .is_empty()
        );
    }
}
