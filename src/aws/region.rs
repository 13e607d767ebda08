//! A bucket's region: `HeadBucket`'s `x-amz-bucket-region` (answered even
//! across accounts, and on the 301 a wrong region gets), falling back to
//! `GetBucketLocation`.

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use super::AwsClients;

/// Why a bucket's region could not be found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bucket {bucket}: cannot find its region: {reason}")]
pub struct RegionError {
    pub bucket: String,
    pub reason: String,
    /// S3 said the caller may not read the bucket.
    pub access_denied: bool,
}

/// Finds the region of `bucket`, asking from `ask_region` first.
pub async fn bucket_region(
    clients: &AwsClients,
    bucket: &str,
    ask_region: &str,
) -> Result<String, RegionError> {
    let head = clients
        .s3(bucket, ask_region)
        .head_bucket()
        .bucket(bucket)
        .send()
        .await;
    let head_error = match head {
        Ok(out) => {
            if let Some(region) = out.bucket_region().filter(|r| !r.is_empty()) {
                return Ok(region.to_owned());
            }
            None
        }
        Err(e) => {
            // A 301 (or a 403 from another account) still names the region.
            if let Some(region) = e
                .raw_response()
                .and_then(|r| r.headers().get("x-amz-bucket-region"))
                .filter(|r| !r.is_empty())
            {
                return Ok(region.to_owned());
            }
            Some(e)
        }
    };
    match clients
        .s3(bucket, ask_region)
        .get_bucket_location()
        .bucket(bucket)
        .send()
        .await
    {
        Ok(out) => Ok(location_region(
            out.location_constraint().map(|c| c.as_str()),
        )),
        Err(e) => {
            let denied = is_access_denied(&e) || head_error.as_ref().is_some_and(is_access_denied);
            let reason = match &head_error {
                Some(h) => format!(
                    "HeadBucket: {}; GetBucketLocation: {}",
                    DisplayErrorContext(h),
                    DisplayErrorContext(&e)
                ),
                None => format!("GetBucketLocation: {}", DisplayErrorContext(&e)),
            };
            Err(RegionError {
                bucket: bucket.to_owned(),
                reason,
                access_denied: denied,
            })
        }
    }
}

/// `GetBucketLocation`'s constraint as a region: none is us-east-1, `EU` is eu-west-1.
pub fn location_region(constraint: Option<&str>) -> String {
    match constraint {
        None | Some("") => "us-east-1".to_owned(),
        Some("EU") => "eu-west-1".to_owned(),
        Some(region) => region.to_owned(),
    }
}

/// Whether an S3 error is a denial (403 / AccessDenied), for any operation.
pub fn is_access_denied<E, R>(e: &SdkError<E, R>) -> bool
where
    E: ProvideErrorMetadata,
    R: HttpStatus,
{
    match e {
        SdkError::ServiceError(s) => {
            s.err().code() == Some("AccessDenied") || s.raw().status_code() == 403
        }
        _ => false,
    }
}

/// The HTTP status of a raw response (lets `is_access_denied` stay generic).
pub trait HttpStatus {
    fn status_code(&self) -> u16;
}

impl HttpStatus for aws_smithy_runtime_api::http::Response {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

/// The partition a region belongs to: `aws-cn` for China, `aws-us-gov` for
/// GovCloud, `aws` otherwise (and when the region is not known). ARNs the
/// code builds take it; the ARNs it reads are split without assuming one.
pub fn partition(region: Option<&str>) -> &'static str {
    match region {
        Some(r) if r.starts_with("cn-") => "aws-cn",
        Some(r) if r.starts_with("us-gov-") => "aws-us-gov",
        _ => "aws",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_constraints() {
        assert_eq!(location_region(None), "us-east-1");
        assert_eq!(location_region(Some("")), "us-east-1");
        assert_eq!(location_region(Some("EU")), "eu-west-1");
        assert_eq!(location_region(Some("ap-southeast-2")), "ap-southeast-2");
    }
}
