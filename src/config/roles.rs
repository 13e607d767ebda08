//! A role per purpose: the roles that describe each account's trails
//! (`[[discovery.accounts]]`), the organisation's (`[discovery.organization]`,
//! with the role every member account is entered through), and those that
//! read buckets (`[[readers]]`, a static trail's `role_arn`), each assumed
//! from the daemon's own identity. And `[blind_spots]`: when silence is one.

use std::time::Duration;

use super::ConfigError;
use super::raw::{RawBlindSpots, RawDiscoveryAccount, RawOrganization, RawReader};

/// A role assumed from the daemon's own identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoleConfig {
    pub arn: String,
    pub external_id: Option<String>,
}

/// An account whose trails are described through its own role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryAccount {
    /// A label for `trailwatch trails` (default: the role's account).
    pub name: Option<String>,
    pub role: RoleConfig,
}

/// `[discovery.organization]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizationConfig {
    /// Who calls Organizations (the management account or its delegated
    /// administrator); default: the first discovery account's role, else
    /// the daemon's own identity.
    pub role: Option<RoleConfig>,
    /// The role entered in every active member account to describe its own
    /// trails; none: members are named, not entered.
    pub member_role_name: Option<String>,
    pub member_external_id: Option<String>,
}

/// `[[readers]]`: the role that lists and reads the buckets it matches
/// (and decrypts their objects' KMS keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reader {
    pub role: RoleConfig,
    /// Bucket names or globs (`*`, `?`).
    pub buckets: Vec<String>,
    /// The account whose buckets (as `[[accounts]]` declares them) it reads.
    pub account: Option<String>,
}

/// `[blind_spots]`: a cursor that delivered and then goes silent for longer
/// than its learned gap, kept between the floor and the ceiling; an
/// organisation account from which nothing arrives for `no_delivery_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlindSpotConfig {
    pub silence_floor: Duration,
    pub silence_ceiling: Duration,
    pub no_delivery_after: Duration,
}

impl Default for BlindSpotConfig {
    fn default() -> Self {
        BlindSpotConfig {
            silence_floor: Duration::from_secs(2 * 3600),
            silence_ceiling: Duration::from_secs(24 * 3600),
            no_delivery_after: Duration::from_secs(24 * 3600),
        }
    }
}

/// Whether `name` matches `pattern`, where `*` is any run of characters
/// and `?` any one.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    // Classic two-pointer match with backtracking to the last star.
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
    while j < n.len() {
        if i < p.len() && (p[i] == '?' || p[i] == n[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(s) = star {
            i = s + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|c| *c == '*')
}

pub(super) fn role(
    at: &str,
    arn: Option<String>,
    external_id: Option<String>,
) -> Result<Option<RoleConfig>, ConfigError> {
    let arn = super::validate::nonempty(&format!("{at}role_arn"), arn)?;
    let external_id = super::validate::nonempty(&format!("{at}external_id"), external_id)?;
    match arn {
        None if external_id.is_some() => Err(ConfigError::new(
            format!("{at}external_id"),
            format!("only used with {at}role_arn, which is not set"),
        )),
        None => Ok(None),
        Some(arn) if !is_role_arn(&arn) => Err(ConfigError::new(
            format!("{at}role_arn"),
            format!("\"{arn}\" is not a role ARN (arn:aws:iam::<account>:role/<name>)"),
        )),
        Some(arn) => Ok(Some(RoleConfig { arn, external_id })),
    }
}

/// `arn:<partition>:iam::<12 digits>:role/<name>`.
fn is_role_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "iam"
        && is_account_id(parts[4])
        && parts[5].starts_with("role/")
        && parts[5].len() > "role/".len()
}

pub(super) fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

pub(super) fn discovery_accounts(
    raw: Vec<RawDiscoveryAccount>,
) -> Result<Vec<DiscoveryAccount>, ConfigError> {
    let mut out: Vec<DiscoveryAccount> = Vec::new();
    for (i, a) in raw.into_iter().enumerate() {
        let at = format!("discovery.accounts[{i}].");
        let Some(role) = role(&at, Some(a.role_arn), a.external_id)? else {
            return Err(ConfigError::new(
                format!("{at}role_arn"),
                "must not be empty",
            ));
        };
        if out.iter().any(|o| o.role.arn == role.arn) {
            return Err(ConfigError::new(
                format!("{at}role_arn"),
                format!("{} is listed twice", role.arn),
            ));
        }
        out.push(DiscoveryAccount {
            name: super::validate::nonempty(&format!("{at}name"), a.name)?,
            role,
        });
    }
    Ok(out)
}

pub(super) fn organization(raw: RawOrganization) -> Result<OrganizationConfig, ConfigError> {
    let at = "discovery.organization.";
    let member_role_name = super::validate::nonempty(
        "discovery.organization.member_role_name",
        raw.member_role_name,
    )?;
    if let Some(name) = &member_role_name
        && (name.contains(':') || name.starts_with("role/"))
    {
        return Err(ConfigError::new(
            format!("{at}member_role_name"),
            format!("\"{name}\" is a role's name (with its path, if any), not an ARN"),
        ));
    }
    let member_external_id = super::validate::nonempty(
        "discovery.organization.member_external_id",
        raw.member_external_id,
    )?;
    if member_external_id.is_some() && member_role_name.is_none() {
        return Err(ConfigError::new(
            format!("{at}member_external_id"),
            format!("only used with {at}member_role_name, which is not set"),
        ));
    }
    Ok(OrganizationConfig {
        role: role(at, raw.role_arn, raw.external_id)?,
        member_role_name,
        member_external_id,
    })
}

pub(super) fn readers(
    raw: Vec<RawReader>,
    bucket_owners: &[(String, String)],
) -> Result<Vec<Reader>, ConfigError> {
    let mut out = Vec::new();
    for (i, r) in raw.into_iter().enumerate() {
        let at = format!("readers[{i}].");
        let Some(role) = role(&at, Some(r.role_arn), r.external_id)? else {
            return Err(ConfigError::new(
                format!("{at}role_arn"),
                "must not be empty",
            ));
        };
        for (j, b) in r.buckets.iter().enumerate() {
            if b.trim().is_empty() || b.contains('/') {
                return Err(ConfigError::new(
                    format!("{at}buckets[{j}]"),
                    format!("\"{b}\" is not a bucket name or glob"),
                ));
            }
        }
        if let Some(a) = &r.account {
            if !is_account_id(a) {
                return Err(ConfigError::new(
                    format!("{at}account"),
                    format!("\"{a}\" is not a 12-digit AWS account id"),
                ));
            }
            if !bucket_owners.iter().any(|(_, owner)| owner == a) {
                return Err(ConfigError::new(
                    format!("{at}account"),
                    format!(
                        "{a} has no [[accounts]] entry with `buckets`: which buckets it owns cannot be seen from another account"
                    ),
                ));
            }
        }
        if r.buckets.is_empty() && r.account.is_none() {
            return Err(ConfigError::new(
                format!("{at}buckets"),
                "name the buckets this role reads (or `account`, whose buckets [[accounts]] declares)",
            ));
        }
        out.push(Reader {
            role,
            buckets: r.buckets,
            account: r.account,
        });
    }
    Ok(out)
}

pub(super) fn blind_spots(raw: RawBlindSpots) -> Result<BlindSpotConfig, ConfigError> {
    let d = BlindSpotConfig::default();
    let floor = super::validate::duration(
        "blind_spots.silence_floor",
        raw.silence_floor,
        d.silence_floor,
    )?;
    let ceiling = super::validate::duration(
        "blind_spots.silence_ceiling",
        raw.silence_ceiling,
        d.silence_ceiling,
    )?;
    if ceiling < floor {
        return Err(ConfigError::new(
            "blind_spots.silence_ceiling",
            "must not be shorter than blind_spots.silence_floor",
        ));
    }
    Ok(BlindSpotConfig {
        silence_floor: floor,
        silence_ceiling: ceiling,
        no_delivery_after: super::validate::duration(
            "blind_spots.no_delivery_after",
            raw.no_delivery_after,
            d.no_delivery_after,
        )?,
    })
}

impl super::Config {
    /// The role that reads `bucket`: a static trail's own, else the first
    /// `[[readers]]` entry matching it by name or glob, or by the account
    /// `[[accounts]]` says owns it; none: the daemon's own identity.
    pub fn reader_for(&self, bucket: &str) -> Option<&RoleConfig> {
        if let Some(role) = self
            .trails
            .iter()
            .filter(|t| t.bucket == bucket)
            .find_map(|t| t.role.as_ref())
        {
            return Some(role);
        }
        let owner = self
            .bucket_owners
            .iter()
            .find(|(glob, _)| glob_match(glob, bucket))
            .map(|(_, id)| id.as_str());
        self.readers
            .iter()
            .find(|r| {
                r.buckets.iter().any(|g| glob_match(g, bucket))
                    || (r.account.is_some() && r.account.as_deref() == owner)
            })
            .map(|r| &r.role)
    }
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs_match_names() {
        assert!(glob_match(
            "aws-controltower-logs-*",
            "aws-controltower-logs-222222222222-us-east-1"
        ));
        assert!(glob_match("logs-?", "logs-a"));
        assert!(!glob_match("logs-?", "logs-ab"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
        assert!(glob_match("org-trail-logs", "org-trail-logs"));
        assert!(!glob_match("org-trail-logs", "org-trail-logs-2"));
    }
}
