//! Pure diagnosis of denied S3 reads and writes of SSE-KMS objects.
//!
//! The crate never touches the network or the file system: callers hand it
//! `serde_json::Value`s (an account snapshot, CloudTrail records) and strings, and get typed
//! models and findings back.
//!
//! * [`snapshot`]: the offline picture of one or more accounts (IAM, Organizations, S3, KMS),
//!   parsed and validated with path-qualified errors.
//! * [`event`]: CloudTrail records, EventBridge envelopes and trail log files turned into the
//!   requests that were denied.
//! * [`diagnose`]: the two-hop diagnosis — every blocking cause, the account that must act,
//!   and fixes verified by re-evaluation.
//! * [`report::sns`] (also reachable as [`notify`]): the SNS message a diagnosis is published
//!   as (triage subject, JSON body for filter policies and people, attributes, trimming under
//!   the size limit).
//! * [`request`]: the request to diagnose, modelled once ([`request::Request`]), with its
//!   [`request::Operation`] and the evidence the record gives.
//! * [`refs`]: partitions, buckets, objects, keys and principals — the only code that
//!   formats or interprets their ARNs and service names.
//! * [`limits`]: the size bounds on events, policies and input files, in one place.
//! * [`json_patch`]: RFC 6902 patches over the snapshot document, used to apply and verify
//!   fixes.
#![warn(missing_docs)]

// Older name of `refs`, kept for modules that still import `crate::arn`.
pub(crate) use refs as arn;
pub mod diagnose;
pub mod event;
pub mod impact;
pub mod json_patch;
pub mod limits;
pub mod noise;
mod reader;
pub mod refs;
pub mod report;
pub mod request;
pub mod snapshot;
pub mod sweep;

/// The SNS message of a diagnosis; the same module as [`report::sns`], under its former name.
pub use report::sns as notify;
