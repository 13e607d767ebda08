//! Proxies and private certificate authorities, from the environment as the
//! AWS CLI and curl read it: `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY` (either
//! case) for the AWS clients and every HTTP sink, and `AWS_CA_BUNDLE` for the
//! AWS clients (the Rust SDK does not read it itself). The instance-metadata
//! and container-credential addresses and loopback never go through a proxy.

use std::path::PathBuf;

/// Never proxied, whatever `NO_PROXY` says: loopback, the EC2 instance
/// metadata service, the ECS/EKS container credential endpoints.
pub const ALWAYS_DIRECT: [&str; 6] = [
    "localhost",
    "127.0.0.1",
    "::1",
    "169.254.169.254",
    "169.254.170.2",
    "fd00:ec2::254",
];

/// The proxy settings of the environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Proxies {
    pub https: Option<String>,
    pub http: Option<String>,
    /// `NO_PROXY`'s entries and `ALWAYS_DIRECT`, comma-separated.
    pub no_proxy: String,
}

impl Proxies {
    /// From this process's environment.
    pub fn from_env() -> Proxies {
        Proxies::from_lookup(|name| std::env::var(name).ok())
    }

    /// From `lookup` (the environment, or a test's map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Proxies {
        let var = |upper: &str| {
            lookup(upper)
                .or_else(|| lookup(&upper.to_lowercase()))
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let mut direct: Vec<String> = var("NO_PROXY")
            .map(|v| {
                v.split(',')
                    .map(|e| e.trim().to_owned())
                    .filter(|e| !e.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        for always in ALWAYS_DIRECT {
            if !direct.iter().any(|d| d == always) {
                direct.push(always.to_owned());
            }
        }
        Proxies {
            https: var("HTTPS_PROXY"),
            http: var("HTTP_PROXY"),
            no_proxy: direct.join(","),
        }
    }

    /// Whether any proxy is set.
    pub fn any(&self) -> bool {
        self.https.is_some() || self.http.is_some()
    }
}

/// `AWS_CA_BUNDLE`: a PEM file of certificates the AWS clients trust
/// besides the system's.
pub fn aws_ca_bundle() -> Option<PathBuf> {
    std::env::var_os("AWS_CA_BUNDLE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_and_loopback_are_always_direct() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let p = Proxies::from_lookup(env(&[
            ("https_proxy", "http://proxy.corp:3128"),
            ("NO_PROXY", " .corp , localhost"),
        ]));
        assert_eq!(p.https.as_deref(), Some("http://proxy.corp:3128"));
        assert_eq!(p.http, None);
        assert_eq!(
            p.no_proxy,
            ".corp,localhost,127.0.0.1,::1,169.254.169.254,169.254.170.2,fd00:ec2::254"
        );
        let none = Proxies::from_lookup(env(&[]));
        assert!(!none.any());
        assert!(none.no_proxy.contains("169.254.169.254"));
    }
}
