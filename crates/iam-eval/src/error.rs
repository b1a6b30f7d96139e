//! Errors for documents the engine cannot accept.

use thiserror::Error;

/// A document or request that AWS would never store or send, with the JSON path of the
/// offending element (for example `Statement[2].Condition.StringLike`).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{}{message}", if path.is_empty() { String::new() } else { format!("{path}: ") })]
#[non_exhaustive]
pub struct ParseError {
    /// JSON path relative to the value that was parsed; empty for the value itself.
    pub path: String,
    /// What is wrong, lowercase, user input in backticks.
    pub message: String,
}

impl ParseError {
    /// A new error at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> ParseError {
        ParseError {
            path: path.into(),
            message: message.into(),
        }
    }

    /// The JSON path of the offending element.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The same error with `prefix` prepended to its path (`policies.identity[0]` +
    /// `Statement[1]` = `policies.identity[0].Statement[1]`).
    pub fn under(mut self, prefix: &str) -> ParseError {
        self.path = join_path(prefix, &self.path);
        self
    }
}

/// Joins two JSON-path fragments: `a` + `b` = `a.b`, `a` + `[0]` = `a[0]`.
pub fn join_path(prefix: &str, rest: &str) -> String {
    if prefix.is_empty() {
        rest.to_owned()
    } else if rest.is_empty() {
        prefix.to_owned()
    } else if rest.starts_with('[') {
        format!("{prefix}{rest}")
    } else {
        format!("{prefix}.{rest}")
    }
}
