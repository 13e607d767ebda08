//! An alert as an OCSF Detection Finding (class 2004, OCSF 1.1.0): the
//! schema Amazon Security Lake and most SIEMs take. `trailwatch alerts
//! --format ocsf`, and the file and webhook sinks with `format = "ocsf"`,
//! write it.

use serde_json::{Map, Value, json};

use super::{Alert, AlertContext, Severity};
use crate::event::time::parse_rfc3339;

/// The OCSF version the findings follow (`metadata.version`).
pub const OCSF_VERSION: &str = "1.1.0";
const CLASS_UID: i64 = 2004;
const CATEGORY_UID: i64 = 2;

/// OCSF's `severity_id`: 1 informational to 5 critical.
fn severity_id(severity: Option<Severity>) -> i64 {
    match severity {
        Some(Severity::Informational) => 1,
        Some(Severity::Low) => 2,
        Some(Severity::Medium) => 3,
        Some(Severity::High) => 4,
        Some(Severity::Critical) => 5,
        None => 0,
    }
}

/// Milliseconds since the epoch of an RFC 3339 time.
fn millis(text: Option<&str>) -> Option<i64> {
    text.and_then(parse_rfc3339).map(|s| s * 1000)
}

/// Drops the members whose value is null, so that absent fields are absent.
fn compact(map: Map<String, Value>) -> Value {
    Value::Object(map.into_iter().filter(|(_, v)| !v.is_null()).collect())
}

/// The Detection Finding for an alert. A burst's opening is a `Create` and
/// its summary an `Update` of the same finding (`finding_info.uid` is the
/// burst's id); any other alert is a `Create` under its own id.
pub fn detection_finding(alert: &Alert, context: &AlertContext) -> Value {
    let e = &alert.event;
    let summary = alert.burst.as_ref().is_some_and(|b| b.state == "closed");
    let (activity_id, activity_name) = if summary {
        (2, "Update")
    } else {
        (1, "Create")
    };
    let severity = alert.severity();
    let finding_uid = alert
        .burst
        .as_ref()
        .map_or(alert.id.as_str(), |b| b.id.as_str());
    let event_time = millis(e.time.as_deref());
    let detected = millis(Some(&alert.detected_at));
    let (first, last) = match &alert.burst {
        Some(b) => (millis(Some(&b.first)), millis(Some(&b.last))),
        None => (event_time, event_time),
    };
    let mut info = Map::new();
    info.insert("uid".into(), json!(finding_uid));
    info.insert("title".into(), json!(alert.rule.title));
    info.insert("desc".into(), json!(context.description));
    info.insert("types".into(), json!(alert.rule.tags));
    info.insert("created_time".into(), json!(detected));
    info.insert("first_seen_time".into(), json!(first));
    info.insert("last_seen_time".into(), json!(last));
    info.insert(
        "analytic".into(),
        json!({"uid": alert.rule.id, "name": alert.rule.title, "type_id": 1, "type": "Rule",
               "category": alert.rule.source}),
    );
    let related: Vec<Value> =
        e.id.iter()
            .chain(alert.related_event_ids.iter())
            .map(|id| json!({"uid": id, "product_uid": "cloudtrail"}))
            .collect();
    info.insert("related_events".into(), Value::Array(related));

    let mut user = Map::new();
    user.insert("uid".into(), json!(e.principal));
    user.insert("type".into(), json!(e.principal_type));
    let actor = json!({"user": compact(user)});
    let mut evidence = Map::new();
    evidence.insert("actor".into(), actor.clone());
    evidence.insert(
        "api".into(),
        json!({"operation": e.name, "service": {"name": e.source},
               "response": {"error": e.error_code}}),
    );
    if let Some(ip) = &e.source_ip {
        evidence.insert("src_endpoint".into(), json!({"ip": ip}));
    }
    if let Some(agent) = &e.user_agent {
        evidence.insert("http_request".into(), json!({"user_agent": agent}));
    }
    let resources: Vec<Value> = context
        .resource
        .iter()
        .map(|r| json!({"name": super::activity::target_text(r), "type": "AWS resource"}))
        .collect();

    let mut out = Map::new();
    out.insert("activity_id".into(), json!(activity_id));
    out.insert("activity_name".into(), json!(activity_name));
    out.insert("category_uid".into(), json!(CATEGORY_UID));
    out.insert("category_name".into(), json!("Findings"));
    out.insert("class_uid".into(), json!(CLASS_UID));
    out.insert("class_name".into(), json!("Detection Finding"));
    out.insert(
        "type_uid".into(),
        json!(CLASS_UID * 100 + i64::from(activity_id)),
    );
    out.insert(
        "type_name".into(),
        json!(format!("Detection Finding: {activity_name}")),
    );
    out.insert("severity_id".into(), json!(severity_id(severity)));
    out.insert("severity".into(), json!(severity.map(|s| s.to_string())));
    out.insert("status_id".into(), json!(1));
    out.insert("status".into(), json!("New"));
    out.insert("time".into(), json!(event_time.or(detected)));
    out.insert("count".into(), json!(alert.count));
    out.insert("message".into(), json!(alert.rule.title));
    out.insert(
        "metadata".into(),
        json!({"version": OCSF_VERSION, "uid": alert.id,
               "product": {"name": "trailwatch", "vendor_name": "trailwatch",
                           "version": env!("CARGO_PKG_VERSION")},
               "log_name": alert.object.as_ref().map(|o| format!("s3://{}/{}", o.bucket, o.key))}),
    );
    out.insert(
        "cloud".into(),
        json!({"provider": "AWS", "region": e.region,
               "account": {"uid": e.account_id, "type": "AWS Account", "type_id": 10}}),
    );
    out.insert("finding_info".into(), compact(info));
    out.insert("evidences".into(), json!([compact(evidence)]));
    out.insert("resources".into(), Value::Array(resources));
    out.insert("raw_data".into(), json!(context.record));
    compact(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alert_is_a_detection_finding_of_ocsf_1_1() {
        let alert = Alert::sample();
        let context = AlertContext {
            skip_sinks: Vec::new(),
            description: Some("check it".into()),
            resource: Some("\"my-trail\"".into()),
            record: Some("{\"eventID\":\"x\"}".into()),
            ..AlertContext::default()
        };
        let f = detection_finding(&alert, &context);
        assert_eq!(f["class_uid"], 2004);
        assert_eq!(f["category_uid"], 2);
        assert_eq!(f["type_uid"], 200401);
        assert_eq!(f["metadata"]["version"], "1.1.0");
        assert_eq!(f["finding_info"]["uid"], json!(alert.id));
        assert_eq!(f["finding_info"]["analytic"]["uid"], json!(alert.rule.id));
        assert_eq!(f["resources"][0]["name"], "my-trail");
        assert_eq!(f["cloud"]["account"]["uid"], json!(alert.event.account_id));
        assert!(f["time"].as_i64().is_some_and(|t| t > 1_000_000_000_000));
        assert!(
            f["severity_id"]
                .as_i64()
                .is_some_and(|s| (1..=5).contains(&s))
        );
        assert_eq!(f["raw_data"], "{\"eventID\":\"x\"}");
    }

    #[test]
    fn a_burst_summary_updates_the_finding_its_opening_created() {
        let mut alert = Alert::sample();
        alert.burst = Some(super::super::BurstInfo {
            id: "tw-burst".into(),
            state: "closed".into(),
            first: "2026-11-21T10:00:00Z".into(),
            last: "2026-11-21T10:30:00Z".into(),
        });
        let f = detection_finding(&alert, &AlertContext::default());
        assert_eq!(
            (f["activity_id"].clone(), f["type_uid"].clone()),
            (json!(2), json!(200402))
        );
        assert_eq!(f["finding_info"]["uid"], "tw-burst");
        assert_eq!(
            f["finding_info"]["last_seen_time"]
                .as_i64()
                .zip(f["finding_info"]["first_seen_time"].as_i64())
                .map(|(l, f)| l - f),
            Some(1_800_000)
        );
    }
}
