//! Names put on alerts as they are stored: the account's name and its
//! organisational-unit path, from Organizations (refreshed with each
//! discovery) and from `[[accounts]]` in the config, whose names win (they
//! are how the team chose to call its accounts).

use std::collections::BTreeMap;
use std::sync::RwLock;

use crate::aws::organization::OrgAccount;

#[derive(Debug, Default)]
pub struct AccountNames {
    /// `[[accounts]]`: id -> name.
    configured: BTreeMap<String, String>,
    /// Organizations: id -> (name, OU path).
    organization: RwLock<BTreeMap<String, (String, Option<String>)>>,
}

impl AccountNames {
    pub fn new(configured: BTreeMap<String, String>) -> AccountNames {
        AccountNames {
            configured,
            organization: RwLock::default(),
        }
    }

    /// The organisation's accounts as the last discovery listed them.
    pub fn set_organization(&self, accounts: &[OrgAccount]) {
        let map = accounts
            .iter()
            .map(|a| (a.id.clone(), (a.name.clone(), a.ou_path.clone())))
            .collect();
        *self.organization.write().unwrap_or_else(|p| p.into_inner()) = map;
    }

    /// The name and OU path of `account`, each when known.
    pub fn label(&self, account: &str) -> (Option<String>, Option<String>) {
        let org = self.organization.read().unwrap_or_else(|p| p.into_inner());
        let found = org.get(account);
        let name = self
            .configured
            .get(account)
            .cloned()
            .or_else(|| found.map(|(n, _)| n.clone()).filter(|n| !n.is_empty()));
        (name, found.and_then(|(_, ou)| ou.clone()))
    }
}

impl super::StateStore {
    /// Names accounts (`[[accounts]]`) on the alerts stored from now on.
    pub fn with_account_names(mut self, names: BTreeMap<String, String>) -> Self {
        self.account_names = AccountNames::new(names);
        self
    }

    /// Names and OU paths from the organisation (each discovery), on the
    /// alerts stored from now on.
    pub fn name_organization_accounts(&self, accounts: &[OrgAccount]) {
        self.account_names.set_organization(accounts);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_names_win_and_the_organisation_fills_in() {
        let names = AccountNames::new(BTreeMap::from([(
            "111111111111".to_owned(),
            "prod-payments".to_owned(),
        )]));
        assert_eq!(
            names.label("111111111111"),
            (Some("prod-payments".into()), None)
        );
        names.set_organization(&[
            OrgAccount {
                id: "111111111111".into(),
                name: "payments".into(),
                status: "ACTIVE".into(),
                ou_path: Some("Workloads/Prod".into()),
            },
            OrgAccount {
                id: "222222222222".into(),
                name: "log-archive".into(),
                status: "ACTIVE".into(),
                ou_path: None,
            },
        ]);
        assert_eq!(
            names.label("111111111111"),
            (Some("prod-payments".into()), Some("Workloads/Prod".into()))
        );
        assert_eq!(
            names.label("222222222222"),
            (Some("log-archive".into()), None)
        );
        assert_eq!(names.label("333333333333"), (None, None));
    }
}
