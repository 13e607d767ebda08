//! The organisation's accounts (`ListAccounts`), each with its name and
//! organisational-unit path (from the root down: `ListRoots`, then each
//! unit's `ListOrganizationalUnitsForParent` and `ListAccountsForParent`),
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

/// The organisation's accounts, or why they could not be listed. Paths
/// that cannot be read leave `ou_path` empty (null), not the list.
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
    match ou_paths(&client).await {
        Ok(paths) => {
            for account in &mut out {
                account.ou_path = paths.get(&account.id).cloned();
            }
        }
        Err(e) => tracing::warn!(error = %e, "organisational unit paths unknown"),
    }
    Ok(out)
}

/// Each account's path of units from the root down (`Workloads/Prod`,
/// empty under the root), walked top-down: two calls per unit however many
/// accounts there are (an account's own parents would be one per account).
async fn ou_paths(
    client: &aws_sdk_organizations::Client,
) -> Result<HashMap<String, String>, String> {
    let roots = client
        .list_roots()
        .send()
        .await
        .map_err(|e| format!("ListRoots: {}", DisplayErrorContext(&e)))?;
    let mut pending: Vec<(String, String, usize)> = roots
        .roots()
        .iter()
        .filter_map(|r| r.id().map(|id| (id.to_owned(), String::new(), 0)))
        .collect();
    let mut paths = HashMap::new();
    while let Some((parent, path, depth)) = pending.pop() {
        let mut accounts = client
            .list_accounts_for_parent()
            .parent_id(&parent)
            .into_paginator()
            .send();
        while let Some(page) = accounts.next().await {
            let page = page.map_err(|e| {
                format!(
                    "ListAccountsForParent {parent}: {}",
                    DisplayErrorContext(&e)
                )
            })?;
            for id in page.accounts().iter().filter_map(|a| a.id()) {
                paths.insert(id.to_owned(), path.clone());
            }
        }
        // An organisation is at most five units deep; the bound guards a cycle.
        if depth >= 8 {
            continue;
        }
        let mut units = client
            .list_organizational_units_for_parent()
            .parent_id(&parent)
            .into_paginator()
            .send();
        while let Some(page) = units.next().await {
            let page = page.map_err(|e| {
                format!(
                    "ListOrganizationalUnitsForParent {parent}: {}",
                    DisplayErrorContext(&e)
                )
            })?;
            for unit in page.organizational_units() {
                let (Some(id), Some(name)) = (unit.id(), unit.name()) else {
                    continue;
                };
                let below = if path.is_empty() {
                    name.to_owned()
                } else {
                    format!("{path}/{name}")
                };
                pending.push((id.to_owned(), below, depth + 1));
            }
        }
    }
    Ok(paths)
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
