//! Everything that talks to AWS: clients per region, trail discovery, bucket
//! regions, listing and fetching.

mod clients;
pub mod discovery;
pub mod fetch;
pub mod listing;
pub mod region;

pub use clients::AwsClients;
