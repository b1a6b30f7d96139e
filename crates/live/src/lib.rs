//! The live auditor: reads the state a denied request depends on from the accounts involved,
//! diagnoses it with the offline engine, and publishes the result.
//!
//! * [`ports`]: the capabilities the collector needs, as small traits.
//! * [`aws`]: those traits implemented with the AWS SDK, the only code that names it.
//! * [`collect`]: the collector, from a denied request to the snapshot `diagnose --snapshot`
//!   reads, with reads side by side wherever they do not depend on one another.
//! * [`meter`] and [`cache`]: calls and round-trip depth per diagnosis; the per-container
//!   cache of what was read.
//! * [`keys`]: the cache's key scheme, and which keys a change touches.
//! * [`handler`]: one event in, diagnoses published, a summary out. The Lambda and the CLI
//!   both go through it.
//! * [`noise_store`]: where noise control (dedup, suppression counts, rate limit, open
//!   problems) keeps its state: a DynamoDB table, or memory.
//! * [`state`]: the per-account state (snapshot and path index) policy-change impact
//!   compares with, written with conditional writes; [`handler::impact`] assesses changes.
//! * [`sweep`]: the organization sweep — planner, collect and evaluate workers over SQS,
//!   per-account summaries and the completion message.
//! * [`config`]: the function's settings, from the environment, checked once at start.
#![warn(missing_docs)]

pub mod aws;
pub mod cache;
pub mod collect;
pub mod config;
#[cfg(test)]
mod fake;
pub mod handler;
pub mod keys;
pub mod meter;
pub mod noise_store;
pub mod ports;
pub mod state;
pub mod sweep;
