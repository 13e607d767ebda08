//! Where objects come from: everything that talks to AWS (clients per
//! region, trail discovery, bucket regions, listing and fetching, the SQS
//! queue of notifications and what its messages say), the key
//! layout CloudTrail writes, and the IAM policy those calls need. Reads
//! only the config; hands on trails, keys and byte streams.

mod clients;
pub mod discovery;
#[cfg(test)]
pub(crate) mod fake;
pub mod fetch;
mod http_client;
pub mod keys;
pub mod listing;
pub mod notice;
pub mod notification_path;
pub mod organization;
pub mod policy;
pub mod queue;
pub mod region;
pub mod role_policies;

pub use clients::AwsClients;
