//! Pure diagnosis of denied S3 reads and writes of SSE-KMS objects.
//!
//! The crate never touches the network or the file system: callers hand it
//! `serde_json::Value`s (an account snapshot, CloudTrail records) and strings, and get typed
//! models and findings back.
//!
//! * [`json_patch`]: RFC 6902 patches over the snapshot document, used to apply and verify
//!   fixes.
#![warn(missing_docs)]

pub mod json_patch;
