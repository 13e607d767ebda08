//! The CloudTrail record and access to its fields.

mod json;
mod record;

pub use json::Json;
pub use record::{Record, RecordError};
