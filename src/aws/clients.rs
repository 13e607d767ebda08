//! AWS clients: one SDK configuration (credentials from the default chain, a
//! profile, or an assumed role with an external id), CloudTrail clients per
//! region and S3 clients per bucket region, cached.

use std::collections::HashMap;
use std::sync::Mutex;

use aws_config::{BehaviorVersion, Region, SdkConfig};

use crate::config::AwsConfig;

/// The SDK's HTTP client when the environment asks for more than its
/// default: a proxy (`HTTPS_PROXY`, `HTTP_PROXY`, with `NO_PROXY` and the
/// metadata and loopback addresses always direct) or a private CA
/// (`AWS_CA_BUNDLE`, trusted besides the system's roots).
fn http_client() -> Option<aws_smithy_runtime_api::client::http::SharedHttpClient> {
    use aws_smithy_http_client::proxy::ProxyConfig;
    use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
    let proxies = crate::config::network::Proxies::from_env();
    let bundle = crate::config::network::aws_ca_bundle();
    if !proxies.any() && bundle.is_none() {
        return None;
    }
    let mut trust = TrustStore::default();
    if let Some(path) = &bundle {
        match std::fs::read(path) {
            Ok(pem) => trust = trust.with_pem_certificate(pem),
            Err(e) => tracing::error!(
                "AWS_CA_BUNDLE {}: {e}; only the system's certificate authorities are trusted",
                path.display()
            ),
        }
    }
    let context = match TlsContext::builder().with_trust_store(trust).build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(
                "AWS_CA_BUNDLE: {e}; only the system's certificate authorities are trusted"
            );
            TlsContext::default()
        }
    };
    let proxy = match (&proxies.https, &proxies.http) {
        (Some(https), Some(http)) if https == http => ProxyConfig::all(https.as_str()),
        (Some(https), _) => ProxyConfig::https(https.as_str()),
        (None, Some(http)) => ProxyConfig::http(http.as_str()),
        (None, None) => Ok(ProxyConfig::disabled()),
    };
    let proxy = match proxy {
        Ok(p) if !p.is_disabled() => p.no_proxy(&proxies.no_proxy),
        Ok(p) => p,
        Err(e) => {
            tracing::error!("HTTPS_PROXY / HTTP_PROXY: {e}; AWS calls go direct");
            ProxyConfig::disabled()
        }
    };
    Some(
        aws_smithy_http_client::Builder::new().build_with_connector_fn(
            move |settings, components| {
                let mut builder = aws_smithy_http_client::Connector::builder();
                builder.set_connector_settings(settings.cloned());
                if let Some(components) = components {
                    builder.set_sleep_impl(components.sleep_impl());
                }
                builder
                    .proxy_config(proxy.clone())
                    .tls_provider(tls::Provider::Rustls(
                        tls::rustls_provider::CryptoMode::AwsLc,
                    ))
                    .tls_context(context.clone())
                    .build()
            },
        ),
    )
}

/// Builds clients on demand and keeps one per region.
#[derive(Debug)]
pub struct AwsClients {
    base: SdkConfig,
    /// CloudTrail only (moto); wins over every other endpoint.
    cloudtrail_endpoint: Option<String>,
    /// An endpoint override is in force for S3 (config or AWS_ENDPOINT_URL*):
    /// emulators need path-style addressing.
    s3_path_style: bool,
    s3: Mutex<HashMap<String, aws_sdk_s3::Client>>,
    cloudtrail: Mutex<HashMap<String, aws_sdk_cloudtrail::Client>>,
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
        if let Some(client) = http_client() {
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
            s3: Mutex::new(HashMap::new()),
            cloudtrail: Mutex::new(HashMap::new()),
        }
    }

    /// The home region (from the config or the SDK's default chain).
    pub fn home_region(&self) -> Option<String> {
        self.base.region().map(|r| r.to_string())
    }

    /// The S3 client that signs for `region`.
    pub fn s3(&self, region: &str) -> aws_sdk_s3::Client {
        let mut cache = self.s3.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .entry(region.to_owned())
            .or_insert_with(|| {
                let conf = aws_sdk_s3::config::Builder::from(&self.base)
                    .region(Region::new(region.to_owned()))
                    .force_path_style(self.s3_path_style)
                    .build();
                aws_sdk_s3::Client::from_conf(conf)
            })
            .clone()
    }

    /// Uses `client` for CloudTrail calls in `region` (a client with its own
    /// settings, or a mocked one in tests).
    pub fn set_cloudtrail(&self, region: &str, client: aws_sdk_cloudtrail::Client) {
        let mut cache = self.cloudtrail.lock().unwrap_or_else(|p| p.into_inner());
        cache.insert(region.to_owned(), client);
    }

    /// The CloudTrail client for `region`.
    pub fn cloudtrail(&self, region: &str) -> aws_sdk_cloudtrail::Client {
        let mut cache = self.cloudtrail.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .entry(region.to_owned())
            .or_insert_with(|| {
                let mut conf = aws_sdk_cloudtrail::config::Builder::from(&self.base)
                    .region(Region::new(region.to_owned()));
                if let Some(url) = &self.cloudtrail_endpoint {
                    conf = conf.endpoint_url(url);
                }
                aws_sdk_cloudtrail::Client::from_conf(conf.build())
            })
            .clone()
    }
}
