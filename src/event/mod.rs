//! The CloudTrail record and access to its fields.

mod bytes;
mod json;
mod record;
pub(crate) mod shallow;
pub mod time;

pub use bytes::{find_string_end, same_bytes};
pub use json::Json;
pub(crate) use record::TopNames;
pub use record::{FieldPath, MemberStore, Record, RecordError};
pub use shallow::ShallowError;
