//! One IAM policy per role, when the config gives a role per purpose: the
//! discovery roles' (`DescribeTrails`, `GetTrailStatus`, and for the
//! organisation's role its accounts), the member role's (one document for
//! every member account), the readers' (their buckets, with KMS), and the
//! daemon's own identity's (its queue, its shared state, and
//! `sts:AssumeRole` on every role); with each role's trust policy.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::discovery::Trail;
use super::policy::{
    discovery_statements, document, organization_statements, own_statements, read_statements,
};
use crate::config::{Config, RoleConfig};

/// How `iam-policy` names the identity the daemon runs as.
pub const OWN_IDENTITY: &str = "own identity";

/// One role's documents.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RoleDocument {
    /// The role's ARN (`arn:…:iam::*:role/<name>` for the member role in
    /// every account), or `own identity`.
    pub role: String,
    /// `discover`, `organization`, `read`, `assume roles`, `queue`, `state`.
    pub purposes: Vec<String>,
    pub policy: Value,
    /// Who may assume it: the daemon's identity (none for the daemon's own).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trust_policy: Option<Value>,
}

#[derive(Default)]
struct Uses<'a> {
    discover: bool,
    discovered: Vec<&'a Trail>,
    organization: bool,
    read: Vec<&'a Trail>,
    external_id: Option<String>,
}

/// Whether the config gives any role a purpose of its own.
pub fn has_roles(config: &Config) -> bool {
    !config.discovery.accounts.is_empty()
        || !config.readers.is_empty()
        || config.discovery.organization.is_some()
        || config.trails.iter().any(|t| t.role.is_some())
}

/// What `iam-policy` prints: one policy per role when a role has a purpose
/// of its own (`{"roles": [...]}`, with a note saying so), else the one
/// identity's policy.
pub fn printed(config: &Config, trails: &[Trail]) -> (Value, Option<&'static str>) {
    if has_roles(config) {
        let docs = role_documents(config, trails);
        (
            json!({ "roles": docs }),
            Some(
                "one policy per role (a role per purpose is configured), each with the trust policy that lets the daemon's identity assume it",
            ),
        )
    } else {
        (super::policy::policy(config, trails), None)
    }
}

/// The documents for every role the config and these trails use.
pub fn role_documents(config: &Config, trails: &[Trail]) -> Vec<RoleDocument> {
    let p = super::region::partition(config.aws.region.as_deref());
    let d = &config.discovery;
    let org = d.organization.as_ref();
    let member = org.and_then(|o| {
        let name = o.member_role_name.as_ref()?;
        Some((
            format!("arn:{p}:iam::*:role/{name}"),
            format!(":role/{name}"),
            o.member_external_id.clone(),
        ))
    });
    let configured: BTreeSet<&str> = d.accounts.iter().map(|a| a.role.arn.as_str()).collect();
    // A member role in some account stands for the one member document.
    let key = |arn: Option<&String>| -> String {
        match (arn, &member) {
            (None, _) => OWN_IDENTITY.to_owned(),
            (Some(a), Some((template, suffix, _)))
                if a.ends_with(suffix.as_str()) && !configured.contains(a.as_str()) =>
            {
                template.clone()
            }
            (Some(a), _) => a.clone(),
        }
    };
    let mut uses: BTreeMap<String, Uses> = BTreeMap::new();
    let with_role = |role: &RoleConfig, uses: &mut BTreeMap<String, Uses>| {
        uses.entry(role.arn.clone()).or_default().external_id = role.external_id.clone();
    };
    if d.enabled {
        if d.accounts.is_empty() {
            uses.entry(OWN_IDENTITY.into()).or_default().discover = true;
        }
        for a in &d.accounts {
            with_role(&a.role, &mut uses);
            uses.entry(a.role.arn.clone()).or_default().discover = true;
        }
        if let Some((template, _, external_id)) = &member {
            let u = uses.entry(template.clone()).or_default();
            u.discover = true;
            u.external_id = external_id.clone();
        }
        if let Some(o) = org {
            let role = o
                .role
                .as_ref()
                .or_else(|| d.accounts.first().map(|a| &a.role));
            if let Some(r) = role {
                with_role(r, &mut uses);
            }
            uses.entry(key(role.map(|r| &r.arn)))
                .or_default()
                .organization = true;
        }
    }
    for t in trails {
        if t.origin == "discovered" {
            uses.entry(key(t.discovered_by.as_ref()))
                .or_default()
                .discovered
                .push(t);
        }
        uses.entry(key(t.read_by.as_ref()))
            .or_default()
            .read
            .push(t);
    }
    // Readers whose buckets no trail names yet: their globs.
    let globs: Vec<(RoleConfig, Trail)> = config
        .readers
        .iter()
        .flat_map(|r| {
            r.buckets.iter().map(|b| {
                let t = Trail {
                    bucket: b.clone(),
                    ..Trail::default()
                };
                (r.role.clone(), t)
            })
        })
        .filter(|(role, t)| {
            !trails.iter().any(|x| {
                x.read_by.as_ref() == Some(&role.arn)
                    && crate::config::glob_match(&t.bucket, &x.bucket)
            })
        })
        .collect();
    for (role, t) in &globs {
        with_role(role, &mut uses);
        uses.entry(role.arn.clone()).or_default().read.push(t);
    }
    for t in config.trails.iter().filter_map(|t| t.role.as_ref()) {
        with_role(t, &mut uses);
    }

    let caller = config
        .aws
        .role_arn
        .clone()
        .unwrap_or_else(|| format!("arn:{p}:iam::<CALLER_ACCOUNT_ID>:role/<CALLER_ROLE_NAME>"));
    let assumed: Vec<String> = uses
        .keys()
        .filter(|k| k.as_str() != OWN_IDENTITY)
        .cloned()
        .collect();
    let mut out = Vec::new();
    for (role, u) in &uses {
        let mut purposes = Vec::new();
        let mut statements = Vec::new();
        if u.discover || !u.discovered.is_empty() {
            purposes.push("discover");
            statements.extend(discovery_statements(p, &u.discovered));
        }
        if u.organization {
            purposes.push("organization");
            statements.extend(organization_statements(p));
        }
        if !u.read.is_empty() {
            purposes.push("read");
            statements.extend(read_statements(p, config, &u.read));
        }
        let trust_policy = if role == OWN_IDENTITY {
            None
        } else {
            let mut statement = json!({
                "Sid": "TrailwatchDaemon", "Effect": "Allow",
                "Principal": {"AWS": caller},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:RoleSessionName": "trailwatch"}}
            });
            if let Some(id) = &u.external_id {
                statement["Condition"]["StringEquals"]["sts:ExternalId"] = json!(id);
            }
            Some(document(vec![statement]))
        };
        if role == OWN_IDENTITY {
            own(p, config, &assumed, &mut purposes, &mut statements);
        }
        out.push(RoleDocument {
            role: role.clone(),
            purposes: purposes.into_iter().map(str::to_owned).collect(),
            policy: document(statements),
            trust_policy,
        });
    }
    if !uses.contains_key(OWN_IDENTITY) {
        let (mut purposes, mut statements) = (Vec::new(), Vec::new());
        own(p, config, &assumed, &mut purposes, &mut statements);
        out.push(RoleDocument {
            role: OWN_IDENTITY.into(),
            purposes: purposes.into_iter().map(str::to_owned).collect(),
            policy: document(statements),
            trust_policy: None,
        });
    }
    out
}

/// The daemon's own statements: assuming every role, its queue, its state.
fn own(
    p: &str,
    config: &Config,
    assumed: &[String],
    purposes: &mut Vec<&'static str>,
    statements: &mut Vec<Value>,
) {
    if !assumed.is_empty() {
        purposes.push("assume roles");
        statements.push(json!({
            "Sid": "AssumeTrailwatchRoles", "Effect": "Allow",
            "Action": "sts:AssumeRole", "Resource": assumed
        }));
    }
    if matches!(config.source, crate::config::SourceConfig::Sqs(_)) {
        purposes.push("queue");
    }
    if config.shared_state.is_some() {
        purposes.push("state");
    }
    statements.extend(own_statements(p, config));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::from_toml(
            r#"
[aws]
region = "us-east-1"
role_arn = "arn:aws:iam::444444444444:role/trailwatch-host"
[discovery]
regions = ["us-east-1"]
[[discovery.accounts]]
role_arn = "arn:aws:iam::111111111111:role/trailwatch-discovery"
external_id = "ext-1"
[discovery.organization]
member_role_name = "trailwatch-member"
[[readers]]
role_arn = "arn:aws:iam::222222222222:role/trailwatch-reader"
buckets = ["aws-controltower-logs-*"]
"#,
            std::path::Path::new("/"),
        )
        .expect("config")
    }

    fn trail(name: &str, account: &str, bucket: &str, by: &str, read: &str) -> Trail {
        Trail {
            name: name.into(),
            arn: format!("arn:aws:cloudtrail:us-east-1:{account}:trail/{name}"),
            bucket: bucket.into(),
            origin: "discovered".into(),
            kms_key_id: Some("arn:aws:kms:us-east-1:222222222222:key/k".into()),
            discovered_by: Some(by.into()),
            read_by: Some(read.into()),
            ..Trail::default()
        }
    }

    #[test]
    fn each_role_gets_only_its_purpose() {
        let trails = [
            trail(
                "org",
                "111111111111",
                "aws-controltower-logs-222222222222-us-east-1",
                "arn:aws:iam::111111111111:role/trailwatch-discovery",
                "arn:aws:iam::222222222222:role/trailwatch-reader",
            ),
            trail(
                "own",
                "333333333333",
                "member-logs",
                "arn:aws:iam::333333333333:role/trailwatch-member",
                "arn:aws:iam::333333333333:role/trailwatch-member",
            ),
        ];
        let docs = role_documents(&config(), &trails);
        let by: BTreeMap<&str, &RoleDocument> = docs.iter().map(|d| (d.role.as_str(), d)).collect();
        let discovery = by["arn:aws:iam::111111111111:role/trailwatch-discovery"];
        assert_eq!(discovery.purposes, ["discover", "organization"]);
        let text = discovery.policy.to_string();
        assert!(
            !text.contains("s3:") && text.contains("organizations:ListAccounts"),
            "{text}"
        );
        let trust = discovery.trust_policy.as_ref().expect("trust").to_string();
        assert!(trust.contains("ext-1"), "external id in the trust policy");
        assert!(
            trust.contains("arn:aws:iam::444444444444:role/trailwatch-host"),
            "the daemon's role may assume it: {trust}"
        );
        let reader = by["arn:aws:iam::222222222222:role/trailwatch-reader"];
        let text = reader.policy.to_string();
        assert_eq!(reader.purposes, ["read"]);
        assert!(
            text.contains("kms:Decrypt") && !text.contains("cloudtrail:"),
            "{text}"
        );
        assert!(!text.contains("member-logs"), "{text}");
        let member = by["arn:aws:iam::*:role/trailwatch-member"];
        assert_eq!(member.purposes, ["discover", "read"]);
        assert!(member.policy.to_string().contains("member-logs"));
        let own = by[OWN_IDENTITY];
        assert_eq!(own.purposes, ["assume roles"]);
        let text = own.policy.to_string();
        assert!(
            text.contains("arn:aws:iam::*:role/trailwatch-member"),
            "{text}"
        );
        assert!(
            !text.contains("cloudtrail:") && !text.contains("s3:"),
            "{text}"
        );
    }
}
