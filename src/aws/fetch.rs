//! Fetching an object: `GetObject`, its body handed on as a stream, and its
//! failures told apart (denied, KMS, gone, worth retrying).

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;

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

/// Opens `s3://bucket/key` for streaming: its body is read as it arrives,
/// never whole into memory (the pipeline decodes it on the blocking pool).
pub async fn open_object(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    kms_key: Option<&str>,
) -> Result<ByteStream, FetchError> {
    let response = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| classify(bucket, key, kms_key, &e))?;
    Ok(response.body)
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
