//! The SDK's HTTP client when the environment asks for more than its
//! default: a proxy or a private certificate authority.

/// The SDK's HTTP client when the environment asks for more than its
/// default: a proxy (`HTTPS_PROXY`, `HTTP_PROXY`, with `NO_PROXY` and the
/// metadata and loopback addresses always direct) or a private CA
/// (`AWS_CA_BUNDLE`, trusted besides the system's roots).
pub(super) fn http_client() -> Option<aws_smithy_runtime_api::client::http::SharedHttpClient> {
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
