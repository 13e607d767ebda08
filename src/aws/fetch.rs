//! Fetching an object: `GetObject` streamed into the decoder on the blocking
//! pool, never read whole into memory.

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use tokio_util::io::SyncIoBridge;

use crate::alert::{Alert, Detected, ObjectRef, now_rfc3339};
use crate::decode::DecodeError;
use crate::detect::{ObjectReport, detect_object};
use crate::rules::RuleSet;

/// Why an object could not be read at all.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    #[error("s3://{bucket}/{key}: access denied: {reason}")]
    AccessDenied {
        bucket: String,
        key: String,
        reason: String,
    },
    #[error("s3://{bucket}/{key}: cannot decrypt: the caller lacks kms:Decrypt on {}: {reason}", kms_key.as_deref().unwrap_or("the trail's KMS key"))]
    KmsDenied {
        bucket: String,
        key: String,
        kms_key: Option<String>,
        reason: String,
    },
    #[error("s3://{bucket}/{key}: the object is gone")]
    Missing { bucket: String, key: String },
    /// Throttling past the retries, a dropped connection: try again later.
    #[error("s3://{bucket}/{key}: {reason}")]
    Transient {
        bucket: String,
        key: String,
        reason: String,
    },
}

/// What reading one object produced.
#[derive(Debug)]
pub struct Fetched {
    pub report: ObjectReport,
    pub alerts: Vec<Detected>,
}

impl Fetched {
    /// A read that broke off on the wire (not in the data) is worth retrying.
    pub fn transient_error(&self) -> Option<&DecodeError> {
        match &self.report.error {
            Some(e @ DecodeError::Io { .. }) => Some(e),
            _ => None,
        }
    }
}

/// Streams `s3://bucket/key` through the decoder and the rules.
pub async fn fetch_and_detect(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    kms_key: Option<&str>,
    rules: std::sync::Arc<RuleSet>,
    max_decompressed_bytes: u64,
) -> Result<Fetched, FetchError> {
    let response = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| classify(bucket, key, kms_key, &e))?;
    let body = response.body.into_async_read();
    let object = ObjectRef {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
    };
    let handle = tokio::task::spawn_blocking(move || {
        let reader = SyncIoBridge::new(body);
        let mut alerts = Vec::new();
        let detected_at = now_rfc3339();
        let report = detect_object(
            reader,
            &rules,
            max_decompressed_bytes,
            |matched, record| {
                for rule in matched {
                    alerts.push(Alert::detected(
                        rule,
                        record,
                        Some(object.clone()),
                        &detected_at,
                    ))
                }
            },
            |matched, record| rules.correlate(record, matched, Some(&object), &detected_at),
        );
        Fetched { report, alerts }
    });
    handle.await.map_err(|e| FetchError::Transient {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        reason: format!("decoder task failed: {e}"),
    })
}

fn classify<R>(
    bucket: &str,
    key: &str,
    kms_key: Option<&str>,
    e: &SdkError<aws_sdk_s3::operation::get_object::GetObjectError, R>,
) -> FetchError
where
    R: std::fmt::Debug + super::region::HttpStatus,
{
    let reason = DisplayErrorContext(e).to_string();
    let (bucket, key) = (bucket.to_owned(), key.to_owned());
    if let SdkError::ServiceError(s) = e {
        let message = s.err().message().unwrap_or("");
        let code = s.err().code().unwrap_or("");
        if message.contains("kms:Decrypt") || code.starts_with("KMS") {
            return FetchError::KmsDenied {
                bucket,
                key,
                kms_key: kms_key.map(str::to_owned),
                reason,
            };
        }
        if s.err().is_no_such_key() {
            return FetchError::Missing { bucket, key };
        }
        if code == "AccessDenied" || s.raw().status_code() == 403 {
            return FetchError::AccessDenied {
                bucket,
                key,
                reason,
            };
        }
    }
    FetchError::Transient {
        bucket,
        key,
        reason,
    }
}
