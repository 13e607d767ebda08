//! Corpus profiles: how much of the corpus is attack-like, and how bursty.
//!
//! - `sparse`: one attack example after every `attack_every` background
//!   records (the default 10,000: what `make bench` has always measured);
//! - `dense`: a third of the records attack-like, as in a real incident
//!   capture: after every two background records one example of an alerting
//!   rule or of a rule a correlation counts (denied calls, secret reads,
//!   enumeration), so that windows fill;
//! - `burst`: the background with `events` records by one principal inside
//!   `seconds` of event time: secret reads of many names, enumeration calls
//!   and denied calls, as an attacker's tool or a runaway script makes them.

use serde_json::{Value, json};

use super::template::Template;

/// Which profile, and its burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Sparse,
    Dense,
    Burst { events: u64, seconds: i64 },
}

impl Profile {
    /// `sparse`, `dense` or `burst`.
    pub fn parse(name: &str, events: u64, seconds: i64) -> Result<Profile, String> {
        match name {
            "sparse" => Ok(Profile::Sparse),
            "dense" => Ok(Profile::Dense),
            "burst" if events > 0 && seconds > 0 => Ok(Profile::Burst { events, seconds }),
            "burst" => Err("a burst needs events and seconds above zero".into()),
            other => Err(format!(
                "unknown profile {other:?} (sparse, dense or burst)"
            )),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Profile::Sparse => "sparse",
            Profile::Dense => "dense",
            Profile::Burst { .. } => "burst",
        }
    }
}

/// The one principal of a burst.
pub const BURST_PRINCIPAL: &str = "arn:aws:iam::111122223333:user/burst-actor";

/// The burst's records: reads of 40 secrets, 30 distinct enumeration calls
/// and 6 denied calls, cycled through.
pub fn burst_templates() -> Vec<Template> {
    let identity = json!({"type": "IAMUser", "principalId": "AIDABURSTACTOR000001",
        "arn": BURST_PRINCIPAL, "accountId": "111122223333",
        "accessKeyId": "AKIABURSTACTOR000001", "userName": "burst-actor"});
    let base = |source: &str, name: &str, params: Value| {
        json!({"eventVersion": "1.09", "userIdentity": identity, "eventTime": "",
            "eventSource": source, "eventName": name, "awsRegion": "us-east-1",
            "sourceIPAddress": "203.0.113.66", "userAgent": "python-requests/2.31",
            "requestParameters": params, "responseElements": null, "requestID": "",
            "eventID": "", "readOnly": true, "eventType": "AwsApiCall",
            "managementEvent": true, "recipientAccountId": "111122223333",
            "eventCategory": "Management"})
    };
    let mut records = Vec::new();
    for n in 0..40 {
        records.push(base(
            "secretsmanager.amazonaws.com",
            "GetSecretValue",
            json!({"secretId": format!("prod/app-{n}/credentials")}),
        ));
    }
    let calls = [
        ("iam", "ListUsers"),
        ("iam", "ListRoles"),
        ("iam", "ListGroups"),
        ("iam", "ListPolicies"),
        ("iam", "ListAccessKeys"),
        ("iam", "GetAccountAuthorizationDetails"),
        ("iam", "ListAttachedUserPolicies"),
        ("iam", "GetAccountSummary"),
        ("iam", "ListMFADevices"),
        ("iam", "ListInstanceProfiles"),
        ("s3", "ListBuckets"),
        ("secretsmanager", "ListSecrets"),
        ("ssm", "DescribeParameters"),
        ("lambda", "ListFunctions20150331"),
        ("ec2", "DescribeInstances"),
        ("ec2", "DescribeSecurityGroups"),
        ("ec2", "DescribeVpcs"),
        ("ec2", "DescribeSnapshots"),
        ("ec2", "DescribeRegions"),
        ("rds", "DescribeDBInstances"),
        ("organizations", "DescribeOrganization"),
        ("organizations", "ListAccounts"),
        ("kms", "ListKeys"),
        ("sns", "ListTopics"),
        ("dynamodb", "ListTables"),
        ("ecr", "DescribeRepositories"),
        ("eks", "ListClusters"),
        ("guardduty", "ListDetectors"),
        ("sts", "GetCallerIdentity"),
        ("cloudtrail", "DescribeTrails"),
    ];
    for (service, name) in calls {
        records.push(base(&format!("{service}.amazonaws.com"), name, json!({})));
    }
    for (service, name) in [
        ("iam", "ListUsers"),
        ("organizations", "ListAccounts"),
        ("secretsmanager", "ListSecrets"),
        ("ec2", "DescribeInstances"),
        ("lambda", "ListFunctions20150331"),
        ("kms", "ListKeys"),
    ] {
        let mut r = base(&format!("{service}.amazonaws.com"), name, json!({}));
        r["errorCode"] = json!("AccessDenied");
        r["errorMessage"] = json!("User is not authorized to perform this operation");
        records.push(r);
    }
    records
        .into_iter()
        .filter_map(|r| Template::new(r).ok())
        .collect()
}

/// How many burst records follow each of `m` background records so that
/// `quota` are spread evenly: after record `j`, this many.
pub fn spread(quota: u64, m: usize, j: usize) -> u64 {
    if m == 0 {
        return 0;
    }
    let m = m as u64;
    let j = j as u64;
    (j + 1) * quota / m - j * quota / m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quota_is_spread_exactly() {
        for (quota, m) in [(100_000, 37), (5, 9), (0, 4), (7, 7)] {
            let total: u64 = (0..m).map(|j| spread(quota, m, j)).sum();
            assert_eq!(total, quota);
        }
    }

    #[test]
    fn profiles_parse_and_say_what_is_wrong() {
        assert_eq!(Profile::parse("dense", 0, 0), Ok(Profile::Dense));
        assert_eq!(
            Profile::parse("burst", 10, 300),
            Ok(Profile::Burst {
                events: 10,
                seconds: 300
            })
        );
        assert!(Profile::parse("burst", 0, 300).is_err());
        assert!(Profile::parse("busy", 1, 1).unwrap_err().contains("busy"));
        assert_eq!(burst_templates().len(), 76);
    }
}
