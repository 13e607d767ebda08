//! Webhook bodies: a JSON template with Datadog-style variables, and the
//! HMAC-SHA256 signature header (DESIGN.md).
//!
//! A variable that stands alone as a JSON value (`"alert": $ALERT_JSON`)
//! becomes raw JSON; one inside a string (`"text": "seen $DATE"`) becomes
//! JSON-escaped text. With no template the body is the alert JSON.

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::datadog;
use crate::alert::{Alert, AlertContext};

/// The signature header's name.
pub const SIGNATURE_HEADER: &str = "X-Trailwatch-Signature";

/// Every template variable; longer names first so that `$ALERT_JSON` is not
/// read as `$ALERT_ID`'s neighbour.
pub const VARIABLES: [&str; 19] = [
    "$ALERT_PRIORITY",
    "$ACCOUNT_NAME",
    "$ACCOUNT_OU_PATH",
    "$EVENT_TITLE",
    "$EVENT_NAME",
    "$EVENT_JSON",
    "$ALERT_JSON",
    "$OCSF_JSON",
    "$SOURCE_IP",
    "$PRINCIPAL",
    "$EVENT_MSG",
    "$SEVERITY",
    "$ALERT_ID",
    "$ACCOUNT",
    "$RULE_ID",
    "$REGION",
    "$DATE",
    "$TAGS",
    "$ID",
];

/// The value of a variable for an alert.
fn value(name: &str, alert: &Alert, context: &AlertContext) -> Value {
    let e = &alert.event;
    let s = |v: &Option<String>| v.clone().map_or(Value::Null, Value::String);
    match name {
        "$EVENT_TITLE" => json!(datadog::title(alert)),
        "$EVENT_MSG" => json!(datadog::text(alert, context)),
        "$DATE" => s(&e.time),
        "$ID" | "$ALERT_ID" => json!(alert.id),
        "$ALERT_PRIORITY" => json!(datadog::level(&alert.rule.severity).1),
        "$TAGS" => json!(datadog::tags(alert, &[]).join(",")),
        "$RULE_ID" => json!(alert.rule.id),
        "$SEVERITY" => json!(alert.rule.severity),
        "$PRINCIPAL" => s(&e.principal),
        "$SOURCE_IP" => s(&e.source_ip),
        "$ACCOUNT" => s(&e.account_id),
        "$ACCOUNT_NAME" => s(&e.account_name),
        "$ACCOUNT_OU_PATH" => s(&e.account_ou_path),
        "$REGION" => s(&e.region),
        "$EVENT_NAME" => s(&e.name),
        "$EVENT_JSON" => serde_json::to_value(&alert.event).unwrap_or(Value::Null),
        "$ALERT_JSON" => serde_json::to_value(alert).unwrap_or(Value::Null),
        "$OCSF_JSON" => crate::alert::ocsf::detection_finding(alert, context),
        _ => Value::Null,
    }
}

/// Renders the body for an alert.
pub fn render(
    template: Option<&str>,
    format: crate::config::AlertFormat,
    alert: &Alert,
    context: &AlertContext,
) -> Result<Vec<u8>, String> {
    let Some(template) = template else {
        return match format {
            crate::config::AlertFormat::Contract => serde_json::to_vec(alert),
            crate::config::AlertFormat::Ocsf => {
                serde_json::to_vec(&crate::alert::ocsf::detection_finding(alert, context))
            }
        }
        .map_err(|e| e.to_string());
    };
    let mut out = String::with_capacity(template.len() + 1024);
    let mut in_string = false;
    let mut escaped = false;
    let mut rest = template;
    while let Some(c) = rest.chars().next() {
        if c == '$'
            && let Some(name) = VARIABLES.iter().find(|v| rest.starts_with(**v))
            && !rest[name.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        {
            let v = value(name, alert, context);
            if in_string {
                // Inside a string: the text, escaped as JSON string content.
                let text = match &v {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                };
                let quoted = serde_json::to_string(&text).map_err(|e| e.to_string())?;
                out.push_str(&quoted[1..quoted.len() - 1]);
            } else {
                out.push_str(&v.to_string());
            }
            rest = &rest[name.len()..];
            continue;
        }
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    serde_json::from_str::<Value>(&out)
        .map_err(|e| format!("the template does not give JSON: {e}"))?;
    Ok(out.into_bytes())
}

/// Checks a template at config time: it must give JSON for an alert.
pub fn check_template(template: &str) -> Result<(), String> {
    let sample = Alert::sample();
    render(
        Some(template),
        crate::config::AlertFormat::Contract,
        &sample,
        &AlertContext::default(),
    )
    .map(|_| ())
}

/// `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.
pub fn signature(secret: &[u8], unix_seconds: i64, body: &[u8]) -> String {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(format!("{unix_seconds}.").as_bytes());
    mac.update(body);
    format!(
        "t={unix_seconds},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::AlertEvent;
    use crate::config::AlertFormat;

    fn alert() -> Alert {
        let mut alert = Alert::sample();
        alert.id = "tw-0123456789abcdef".into();
        alert.rule.id = "r1".into();
        alert.rule.title = "Rule \"one\"".into();
        alert.rule.tags = vec![];
        alert.event = AlertEvent {
            id: Some("e1".into()),
            name: Some("StopLogging".into()),
            time: Some("2026-11-21T10:04:11Z".into()),
            account_id: Some("123456789012".into()),
            account_name: None,
            account_ou_path: None,
            region: Some("us-east-1".into()),
            principal: Some("arn:aws:iam::1:user/a\"b".into()),
            ..AlertEvent::default()
        };
        alert.detected_at = "2026-11-21T10:09:40Z".into();
        alert
    }

    #[test]
    fn no_template_sends_the_alert() {
        let body = render(
            None,
            AlertFormat::Contract,
            &alert(),
            &AlertContext::default(),
        )
        .expect("render");
        let v: Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(v["id"], "tw-0123456789abcdef");
    }

    #[test]
    fn standalone_variables_are_json_and_embedded_ones_are_escaped() {
        let template = r#"{"text": "$EVENT_TITLE at $DATE by $PRINCIPAL", "alert": $ALERT_JSON, "id": $ID, "who": $PRINCIPAL, "ip": $SOURCE_IP, "cost": "$5 is not $IDX"}"#;
        let body = render(
            Some(template),
            AlertFormat::Contract,
            &alert(),
            &AlertContext::default(),
        )
        .expect("render");
        let v: Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(v["alert"]["rule"]["id"], "r1");
        assert_eq!(v["id"], "tw-0123456789abcdef");
        assert_eq!(v["who"], "arn:aws:iam::1:user/a\"b");
        assert!(v["ip"].is_null());
        assert_eq!(
            v["text"],
            "Rule \"one\" by a\"b at 2026-11-21T10:04:11Z by arn:aws:iam::1:user/a\"b"
        );
        assert_eq!(v["cost"], "$5 is not $IDX");
    }

    #[test]
    fn the_account_name_is_a_variable_and_a_datadog_tag() {
        let template =
            r#"{"account": $ACCOUNT, "name": $ACCOUNT_NAME, "text": "in $ACCOUNT_NAME"}"#;
        let render_for = |a: &Alert| -> Value {
            let body = render(
                Some(template),
                AlertFormat::Contract,
                a,
                &AlertContext::default(),
            )
            .expect("render");
            serde_json::from_slice(&body).expect("JSON")
        };
        let unnamed = render_for(&alert());
        assert_eq!(unnamed["account"], "123456789012");
        assert!(unnamed["name"].is_null());
        let mut named = alert();
        named.event.account_name = Some("prod-payments".into());
        let v = render_for(&named);
        assert_eq!(v["name"], "prod-payments");
        assert_eq!(v["text"], "in prod-payments");
        let tags = datadog::tags(&named, &[]);
        assert!(
            tags.contains(&"aws_account_name:prod-payments".to_owned()),
            "{tags:?}"
        );
        assert!(
            !datadog::tags(&alert(), &[])
                .iter()
                .any(|t| t.starts_with("aws_account_name:"))
        );
    }

    #[test]
    fn an_ocsf_webhook_sends_the_finding_and_templates_may_embed_it() {
        let body =
            render(None, AlertFormat::Ocsf, &alert(), &AlertContext::default()).expect("render");
        let v: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(
            (v["class_uid"].clone(), v["metadata"]["uid"].clone()),
            (json!(2004), json!(alert().id))
        );
        let body = render(
            Some("{\"finding\": $OCSF_JSON}"),
            AlertFormat::Contract,
            &alert(),
            &AlertContext::default(),
        )
        .expect("render");
        let v: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(v["finding"]["class_uid"], 2004);
    }

    #[test]
    fn a_template_that_is_not_json_is_refused() {
        let err = render(
            Some("{\"a\": $ALERT_ID"),
            AlertFormat::Contract,
            &alert(),
            &AlertContext::default(),
        )
        .expect_err("not JSON");
        assert!(err.contains("does not give JSON"), "{err}");
    }

    #[test]
    fn signature_matches_an_independent_hmac() {
        // python3 -c "import hmac,hashlib;print(hmac.new(b'secret',b'1700000000.{}',hashlib.sha256).hexdigest())"
        assert_eq!(
            signature(b"secret", 1_700_000_000, b"{}"),
            "t=1700000000,v1=b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163"
        );
    }
}
