//! The organisation's accounts (`ListAccounts`), each with its name and
//! organisational-unit path (`ListParents` up to the root, with
//! `DescribeOrganizationalUnit` for each unit's name, asked once per unit),
//! through the organisation's role: the management account or its delegated
//! administrator.

use std::collections::HashMap;

use aws_sdk_organizations::error::DisplayErrorContext;

use crate::config::RoleConfig;

use super::AwsClients;

/// An account of the organisation.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OrgAccount {
    pub id: String,
    pub name: String,
    /// `ACTIVE`, `SUSPENDED`, `PENDING_CLOSURE`.
    pub status: String,
    /// The units from the root down, `Workloads/Prod`; empty under the root;
    /// none when it could not be read.
    pub ou_path: Option<String>,
}

impl OrgAccount {
    pub fn active(&self) -> bool {
        self.status.is_empty() || self.status == "ACTIVE"
    }
}

/// The organisation's accounts, or why they could not be listed. A path
/// that cannot be read leaves that account's `ou_path` empty, not the list.
pub async fn accounts(
    clients: &AwsClients,
    role: Option<&RoleConfig>,
) -> Result<Vec<OrgAccount>, String> {
    let client = clients.organizations(role);
    let mut out = Vec::new();
    let mut pages = client.list_accounts().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| format!("ListAccounts: {}", DisplayErrorContext(&e)))?;
        for a in page.accounts() {
            let Some(id) = a.id() else { continue };
            out.push(OrgAccount {
                id: id.to_owned(),
                name: a.name().unwrap_or_default().to_owned(),
                status: a
                    .state()
                    .map(|s| s.as_str().to_owned())
                    .or_else(|| a.status().map(|s| s.as_str().to_owned()))
                    .unwrap_or_default(),
                ou_path: None,
            });
        }
    }
    let mut units: HashMap<String, (String, Option<String>)> = HashMap::new();
    for account in &mut out {
        match ou_path(&client, &account.id, &mut units).await {
            Ok(path) => account.ou_path = Some(path),
            Err(e) => {
                tracing::warn!(account = %account.id, error = %e, "organisational unit path unknown");
            }
        }
    }
    Ok(out)
}

/// The path of units from the root down to `child`; `units` caches each
/// unit's (name, parent).
async fn ou_path(
    client: &aws_sdk_organizations::Client,
    child: &str,
    units: &mut HashMap<String, (String, Option<String>)>,
) -> Result<String, String> {
    let mut names = Vec::new();
    let mut at = parent(client, child).await?;
    // An organisation is at most five units deep; the bound guards a cycle.
    for _ in 0..8 {
        let Some(unit) = at else { break };
        if !units.contains_key(&unit) {
            let name = client
                .describe_organizational_unit()
                .organizational_unit_id(&unit)
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "DescribeOrganizationalUnit {unit}: {}",
                        DisplayErrorContext(&e)
                    )
                })?
                .organizational_unit()
                .and_then(|u| u.name())
                .unwrap_or(&unit)
                .to_owned();
            let up = parent(client, &unit).await?;
            units.insert(unit.clone(), (name, up));
        }
        let (name, up) = units.get(&unit).cloned().unwrap_or_default();
        names.push(name);
        at = up;
    }
    names.reverse();
    Ok(names.join("/"))
}

/// The unit above `child`; none when it is the root.
async fn parent(
    client: &aws_sdk_organizations::Client,
    child: &str,
) -> Result<Option<String>, String> {
    let out = client
        .list_parents()
        .child_id(child)
        .send()
        .await
        .map_err(|e| format!("ListParents {child}: {}", DisplayErrorContext(&e)))?;
    Ok(out
        .parents()
        .iter()
        .find(|p| p.r#type() == Some(&aws_sdk_organizations::types::ParentType::OrganizationalUnit))
        .and_then(|p| p.id())
        .map(str::to_owned))
}

/// The role named `name` in `account`, in `partition`.
pub fn member_role(
    partition: &str,
    account: &str,
    name: &str,
    external_id: Option<&str>,
) -> RoleConfig {
    RoleConfig {
        arn: format!(
            "arn:{partition}:iam::{account}:role/{}",
            name.trim_start_matches('/')
        ),
        external_id: external_id.map(str::to_owned),
    }
}

/// The account a role ARN lives in.
pub fn role_account(arn: &str) -> Option<&str> {
    arn.split(':').nth(4).filter(|a| !a.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_roles_are_partition_aware() {
        let r = member_role("aws-us-gov", "333333333333", "trailwatch-member", Some("x"));
        assert_eq!(
            r.arn,
            "arn:aws-us-gov:iam::333333333333:role/trailwatch-member"
        );
        assert_eq!(role_account(&r.arn), Some("333333333333"));
        assert_eq!(r.external_id.as_deref(), Some("x"));
    }
}
