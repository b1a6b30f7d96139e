//! `iam-eval`: a pure, explainable evaluator of AWS IAM policies.
//!
//! Given a request (principal, action, resource, resource account, context) and the policies
//! that apply to it (identity policies, a resource policy, a permissions boundary, a session
//! policy, SCPs and RCPs per organization level, KMS grants), [`authorize`] returns the
//! decision AWS would make, every layer that blocks it, the statements that decided, and the
//! condition keys the request did not supply.
//!
//! The crate does no I/O, reads no clock and never panics on input: the current time is a
//! context key (`aws:CurrentTime`) like any other.
#![warn(missing_docs)]

pub mod arn;
pub mod condition;
pub mod context;
pub mod error;
pub mod json;
pub mod pattern;
pub mod policy;
pub mod principal;
pub mod vars;

pub use context::{Context, ContextValue};
pub use error::ParseError;
pub use json::Json;
pub use policy::{Effect, Policy, PolicyKind, Statement};
pub use principal::{Caller, CallerKind, MatchKind};
pub mod authorize;
pub mod grant;
pub mod request;

pub use authorize::{authorize, Decision, Evaluation, Layer, Named, PolicySet, StatementRef};
pub use grant::Grant;
pub use request::Request;
pub mod explain;
pub mod input;
pub use input::ExplainInput;
