//! The first built-in pack against real attack records (Stratus Red Team
//! detonations): each trail-tampering technique fires its rule, also when the
//! attack tool's user agent is replaced by an ordinary client, and a close
//! benign record does not.

mod common;

use serde_json::{Value, json};
use trailwatch::event::Record;
use trailwatch::rules::{RuleSet, builtin_rules};

fn builtin() -> RuleSet {
    let loaded = builtin_rules();
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let (set, errors) = RuleSet::build(loaded.rules, loaded.correlations);
    assert!(errors.is_empty(), "{errors:?}");
    set
}

/// The rules that fire once the record's user agent is an ordinary client's:
/// these records come from Stratus detonations, which announce themselves to
/// the attacker-tool rule.
fn fired(set: &RuleSet, record: &Value) -> Vec<String> {
    let mut record = record.clone();
    record["userAgent"] = json!("aws-cli/2.15.30 Python/3.11.8 Linux/6.1 exe/x86_64.ubuntu.22");
    fired_as_is(set, &record)
}

/// The rules that fire on the record as it is.
fn fired_as_is(set: &RuleSet, record: &Value) -> Vec<String> {
    let text = record.to_string();
    let record = Record::parse(&text).expect("record parses");
    let mut ids = Vec::new();
    let mut scratch = Vec::new();
    // Rules that only feed a correlation are not alerts.
    set.for_each_match(&record, &mut scratch, |r| {
        if r.emit {
            ids.push(r.id.clone())
        }
    });
    ids
}

/// Which built-in rule must fire on which detonation.
const EXPECTED: &[(&str, &str)] = &[
    (
        "aws.defense-evasion.cloudtrail-stop",
        "aws-cloudtrail-stop-logging",
    ),
    (
        "aws.defense-evasion.cloudtrail-delete",
        "aws-cloudtrail-delete-trail",
    ),
    (
        "aws.defense-evasion.cloudtrail-event-selectors",
        "aws-cloudtrail-event-selectors-reduced",
    ),
    (
        "aws.initial-access.console-login-without-mfa",
        "aws-console-login-without-mfa",
    ),
];

fn detonation(name: &str) -> Vec<Value> {
    common::stratus()
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no detonation {name}"))
        .1
}

#[test]
fn each_technique_fires_its_rule_with_any_user_agent() {
    let set = builtin();
    for (technique, rule_id) in EXPECTED {
        let records = detonation(technique);
        let hits = records
            .iter()
            .filter(|r| fired_as_is(&set, r).contains(&rule_id.to_string()));
        assert!(hits.count() > 0, "{rule_id} did not fire on {technique}");
        // The same records from an ordinary client: the rule must not lean on
        // the attack tool's name.
        let hits = records
            .iter()
            .filter(|r| fired(&set, r).contains(&rule_id.to_string()));
        assert!(
            hits.count() > 0,
            "{rule_id} depends on the user agent in {technique}"
        );
    }
}

#[test]
fn update_trail_and_root_activity_fire() {
    let set = builtin();
    // UpdateTrail and root activity have no Stratus detonation: build them
    // from the StopLogging record, changing only what the technique changes.
    let base = detonation("aws.defense-evasion.cloudtrail-stop").remove(0);
    let mut update = base.clone();
    update["eventName"] = json!("UpdateTrail");
    update["requestParameters"] = json!({"name": "t", "s3BucketName": "attacker-bucket"});
    assert!(fired(&set, &update).contains(&"aws-cloudtrail-update-trail".to_string()));

    let mut root = base.clone();
    root["eventName"] = json!("DescribeTrails");
    root["userIdentity"] = json!({"type": "Root", "principalId": "111122223333",
        "arn": "arn:aws:iam::111122223333:root", "accountId": "111122223333"});
    assert_eq!(fired(&set, &root), ["aws-root-account-activity"]);
}

#[test]
fn close_benign_records_do_not_fire() {
    let set = builtin();
    let stop = detonation("aws.defense-evasion.cloudtrail-stop").remove(0);
    let mut start = stop.clone();
    start["eventName"] = json!("StartLogging");
    assert!(
        fired(&set, &start).is_empty(),
        "StartLogging fired {:?}",
        fired(&set, &start)
    );

    let mut other_service = detonation("aws.defense-evasion.cloudtrail-delete").remove(0);
    other_service["eventSource"] = json!("codecommit.amazonaws.com");
    assert!(fired(&set, &other_service).is_empty());

    let mut failed_update = stop.clone();
    failed_update["eventName"] = json!("UpdateTrail");
    failed_update["errorCode"] = json!("AccessDenied");
    assert!(fired(&set, &failed_update).is_empty());

    let mut selectors = detonation("aws.defense-evasion.cloudtrail-event-selectors").remove(0);
    selectors["requestParameters"]["eventSelectors"] = json!([{
        "dataResources": [{"type": "AWS::S3::Object", "values": []}],
        "excludeManagementEventSources": [],
        "includeManagementEvents": true,
        "readWriteType": "All"
    }]);
    assert!(fired(&set, &selectors).is_empty(), "full selectors fired");

    let mut login = detonation("aws.initial-access.console-login-without-mfa").remove(0);
    login["additionalEventData"]["MFAUsed"] = json!("Yes");
    assert!(fired(&set, &login).is_empty(), "login with MFA fired");
    let mut saml = detonation("aws.initial-access.console-login-without-mfa").remove(0);
    saml["additionalEventData"]["SamlProviderArn"] = json!("arn:aws:iam::1:saml-provider/okta");
    assert!(fired(&set, &saml).is_empty(), "SAML login fired");

    let mut service_root = stop.clone();
    service_root["userIdentity"] = json!({"type": "Root", "invokedBy": "support.amazonaws.com"});
    service_root["eventName"] = json!("DescribeTrails");
    assert!(
        fired(&set, &service_root).is_empty(),
        "root via service fired"
    );
}

#[test]
fn excluding_a_management_source_fires() {
    let set = builtin();
    let mut selectors = detonation("aws.defense-evasion.cloudtrail-event-selectors").remove(0);
    selectors["requestParameters"]["eventSelectors"] = json!([{
        "excludeManagementEventSources": ["kms.amazonaws.com"],
        "includeManagementEvents": true,
        "readWriteType": "All"
    }]);
    assert_eq!(
        fired(&set, &selectors),
        ["aws-cloudtrail-event-selectors-reduced"]
    );
}

#[test]
fn an_allowlist_entry_quiets_its_rule_for_the_matching_principal_only() {
    let records = detonation("aws.persistence.iam-backdoor-user");
    let rule = "aws-iam-access-key-created-for-other-user";
    let record = records
        .iter()
        .find(|r| fired(&builtin(), r).contains(&rule.to_string()))
        .expect("the backdoor-user detonation fires the rule")
        .clone();
    let principal = record["userIdentity"]["arn"]
        .as_str()
        .expect("arn")
        .to_owned();
    let allow = |arn: &str| trailwatch::rules::Allow {
        rules: vec![rule.to_owned()],
        conditions: vec![("userIdentity.arn".to_owned(), vec![arn.to_owned()])],
        reason: Some("the key-rotation job".to_owned()),
    };
    let quiet = builtin().with_allowlist(vec![allow(&principal)]);
    assert!(!fired(&quiet, &record).contains(&rule.to_string()));
    let other = builtin().with_allowlist(vec![allow("arn:aws:iam::*:user/ci-*")]);
    assert!(fired(&other, &record).contains(&rule.to_string()));
}
