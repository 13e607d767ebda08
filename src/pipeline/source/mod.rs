//! Where the crawl learns of new objects: one seam, two sides. `poll` lists
//! every cursor from its watermark (the default, and the reconciler in SQS
//! mode); `sqs` reads a queue of S3 notifications. Both hand the same
//! `Work` to `process` and count its outcomes into the same target reports,
//! so an object is read, committed and reported the same way either way.

pub(super) mod poll;
pub mod sqs;
