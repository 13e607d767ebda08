//! AWS clients: the daemon's own identity (the default chain, a profile, or
//! `aws.role_arn` with an external id) and a role per purpose chained from
//! it (discovery per account, the organisation's, a reader per bucket), each
//! role's credentials cached and refreshed by the SDK's provider; clients
//! cached per (role, region).

use std::collections::HashMap;
use std::sync::Mutex;

use aws_config::{BehaviorVersion, Region, SdkConfig};

use crate::config::{AwsConfig, RoleConfig};

/// A role, or none: the daemon's own identity.
type As = Option<RoleConfig>;

/// Builds clients on demand and keeps one per (role, region).
#[derive(Debug)]
pub struct AwsClients {
    base: SdkConfig,
    /// CloudTrail only (moto); wins over every other endpoint.
    cloudtrail_endpoint: Option<String>,
    /// An endpoint override is in force for S3 (config or AWS_ENDPOINT_URL*):
    /// emulators need path-style addressing.
    s3_path_style: bool,
    /// Each role's configuration: the base with the role's credentials
    /// provider, so every client of one role shares its credentials.
    roles: Mutex<HashMap<RoleConfig, SdkConfig>>,
    /// The role that reads each bucket (none listed: own identity).
    readers: Mutex<HashMap<String, RoleConfig>>,
    s3: Mutex<HashMap<(As, String), aws_sdk_s3::Client>>,
    cloudtrail: Mutex<HashMap<(As, String), aws_sdk_cloudtrail::Client>>,
    /// Organizations clients set by hand (tests), by role.
    organizations: Mutex<HashMap<As, aws_sdk_organizations::Client>>,
}

impl AwsClients {
    /// The DynamoDB client for the shared state (home region; `endpoint`
    /// wins over every other, for moto).
    pub fn dynamodb(&self, endpoint: Option<&str>) -> aws_sdk_dynamodb::Client {
        let mut conf = aws_sdk_dynamodb::config::Builder::from(&self.base);
        if let Some(url) = endpoint {
            conf = conf.endpoint_url(url);
        }
        aws_sdk_dynamodb::Client::from_conf(conf.build())
    }

    /// The SQS client for a queue in `region` (the home region when the
    /// queue's URL does not name one: an emulator's).
    pub fn sqs(&self, region: Option<&str>) -> aws_sdk_sqs::Client {
        let mut conf = aws_sdk_sqs::config::Builder::from(&self.base);
        if let Some(r) = region {
            conf = conf.region(Region::new(r.to_owned()));
        }
        aws_sdk_sqs::Client::from_conf(conf.build())
    }
}

/// Retries per call: the SDK's standard mode with jittered backoff, with more
/// room than its default 3 for S3's `SlowDown`.
const MAX_ATTEMPTS: u32 = 6;

impl AwsClients {
    pub async fn new(config: &AwsConfig) -> AwsClients {
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).retry_config(
            aws_config::retry::RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS),
        );
        if let Some(region) = &config.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(profile) = &config.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(url) = &config.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let Some(client) = super::http_client::http_client() {
            loader = loader.http_client(client);
        }
        let mut base = loader.load().await;
        if let Some(role_arn) = &config.role_arn {
            let mut role = aws_config::sts::AssumeRoleProvider::builder(role_arn)
                .session_name("trailwatch")
                .configure(&base);
            if let Some(external_id) = &config.external_id {
                role = role.external_id(external_id);
            }
            let provider = role.build().await;
            base = base
                .into_builder()
                .credentials_provider(
                    aws_credential_types::provider::SharedCredentialsProvider::new(provider),
                )
                .build();
        }
        let env_override = ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"]
            .iter()
            .any(|v| std::env::var(v).is_ok_and(|s| !s.is_empty()));
        AwsClients {
            s3_path_style: config.endpoint_url.is_some() || env_override,
            cloudtrail_endpoint: config.cloudtrail_endpoint_url.clone(),
            base,
            roles: Mutex::new(HashMap::new()),
            readers: Mutex::new(HashMap::new()),
            s3: Mutex::new(HashMap::new()),
            cloudtrail: Mutex::new(HashMap::new()),
            organizations: Mutex::new(HashMap::new()),
        }
    }

    /// The configuration that calls as `role` (chained from the daemon's
    /// own identity), built once per role.
    fn config_as(&self, role: Option<&RoleConfig>) -> SdkConfig {
        let Some(role) = role else {
            return self.base.clone();
        };
        let mut roles = self.roles.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = roles.get(role) {
            return c.clone();
        }
        let mut builder = aws_config::sts::AssumeRoleProvider::builder(&role.arn)
            .session_name("trailwatch")
            .configure(&self.base);
        if let Some(id) = &role.external_id {
            builder = builder.external_id(id);
        }
        // Given a configuration, `build` awaits nothing: it only assembles
        // the STS call that each refresh makes.
        use futures::FutureExt;
        let Some(provider) = builder.build().now_or_never() else {
            tracing::error!(role = %role.arn, "cannot set up the role's credentials; calls go as the daemon's own identity");
            return self.base.clone();
        };
        let conf = self
            .base
            .clone()
            .into_builder()
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(provider),
            )
            .build();
        roles.insert(role.clone(), conf.clone());
        conf
    }

    /// Records which role reads `bucket` (none: the daemon's own identity).
    pub fn set_reader(&self, bucket: &str, role: Option<&RoleConfig>) {
        let mut readers = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        match role {
            Some(r) => readers.insert(bucket.to_owned(), r.clone()),
            None => readers.remove(bucket),
        };
    }

    /// The role that reads `bucket` (none: the daemon's own identity).
    pub fn reader_of(&self, bucket: &str) -> Option<RoleConfig> {
        let readers = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        readers.get(bucket).cloned()
    }

    /// The Organizations client (its API lives in one region per partition:
    /// us-east-1 for `aws`; the home region elsewhere, emulators included).
    pub fn organizations(&self, role: Option<&RoleConfig>) -> aws_sdk_organizations::Client {
        let set = self.organizations.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = set.get(&role.cloned()) {
            return c.clone();
        }
        drop(set);
        let conf = self.config_as(role);
        let mut b = aws_sdk_organizations::config::Builder::from(&conf);
        let home = self.home_region().unwrap_or_default();
        if super::region::partition(Some(&home)) == "aws" {
            b = b.region(Region::new("us-east-1"));
        }
        if let Some(url) = &self.cloudtrail_endpoint {
            b = b.endpoint_url(url);
        }
        aws_sdk_organizations::Client::from_conf(b.build())
    }

    /// The home region (from the config or the SDK's default chain).
    pub fn home_region(&self) -> Option<String> {
        self.base.region().map(|r| r.to_string())
    }

    /// The S3 client that reads `bucket` (as the role that reads it) and
    /// signs for `region`.
    pub fn s3(&self, bucket: &str, region: &str) -> aws_sdk_s3::Client {
        let key = (self.reader_of(bucket), region.to_owned());
        if let Some(c) = self.s3.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return c.clone();
        }
        let conf = self.config_as(key.0.as_ref());
        let mut cache = self.s3.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .entry(key)
            .or_insert_with(|| {
                let conf = aws_sdk_s3::config::Builder::from(&conf)
                    .region(Region::new(region.to_owned()))
                    .force_path_style(self.s3_path_style)
                    .build();
                aws_sdk_s3::Client::from_conf(conf)
            })
            .clone()
    }

    /// Uses `client` for CloudTrail calls as `role` in `region` (a client
    /// with its own settings, or a mocked one in tests).
    pub fn set_cloudtrail(
        &self,
        role: Option<&RoleConfig>,
        region: &str,
        client: aws_sdk_cloudtrail::Client,
    ) {
        let mut cache = self.cloudtrail.lock().unwrap_or_else(|p| p.into_inner());
        cache.insert((role.cloned(), region.to_owned()), client);
    }

    /// Uses `client` for Organizations calls as `role` (a mocked one in
    /// tests).
    pub fn set_organizations(
        &self,
        role: Option<&RoleConfig>,
        client: aws_sdk_organizations::Client,
    ) {
        let mut set = self.organizations.lock().unwrap_or_else(|p| p.into_inner());
        set.insert(role.cloned(), client);
    }

    /// The CloudTrail client that calls as `role` in `region`.
    pub fn cloudtrail(
        &self,
        role: Option<&RoleConfig>,
        region: &str,
    ) -> aws_sdk_cloudtrail::Client {
        let key = (role.cloned(), region.to_owned());
        if let Some(c) = self
            .cloudtrail
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return c.clone();
        }
        let conf = self.config_as(role);
        let mut cache = self.cloudtrail.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .entry(key)
            .or_insert_with(|| {
                let mut conf = aws_sdk_cloudtrail::config::Builder::from(&conf)
                    .region(Region::new(region.to_owned()));
                if let Some(url) = &self.cloudtrail_endpoint {
                    conf = conf.endpoint_url(url);
                }
                aws_sdk_cloudtrail::Client::from_conf(conf.build())
            })
            .clone()
    }
}
