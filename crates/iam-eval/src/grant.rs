//! KMS grants: allow-only permissions on one key for one grantee.
//!
//! A grant lets its grantee use the operations it lists, subject to encryption-context
//! constraints; it also establishes "key trust" for a cross-account caller, so neither a key
//! policy statement nor an IAM policy is needed alongside it (AWS KMS Developer Guide, "Grants in AWS KMS").
//! Reference: <https://docs.aws.amazon.com/kms/latest/developerguide/grants.html>

use std::collections::BTreeMap;

use crate::context::Context;
use crate::error::ParseError;
use crate::json::Json;
use crate::principal::{Caller, CallerKind, PolicyPrincipal};

/// A grant, as `ListGrants` returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// `GrantId`.
    pub grant_id: Option<String>,
    /// `Name`.
    pub name: Option<String>,
    /// `KeyId` (the key ARN).
    pub key_id: Option<String>,
    /// `GranteePrincipal`.
    pub grantee: String,
    /// `Operations` (`Decrypt`, `GenerateDataKey`, ...), as written.
    pub operations: Vec<String>,
    /// `Constraints.EncryptionContextEquals`.
    pub context_equals: Option<BTreeMap<String, String>>,
    /// `Constraints.EncryptionContextSubset`.
    pub context_subset: Option<BTreeMap<String, String>>,
    grantee_principal: PolicyPrincipal,
}

impl Grant {
    /// Parses a `ListGrants` entry given as a `serde_json::Value`.
    pub fn from_value(v: &serde_json::Value) -> Result<Grant, ParseError> {
        Grant::parse(&Json::from_value(v))
    }

    /// Parses a `ListGrants` entry.
    pub fn parse(json: &Json) -> Result<Grant, ParseError> {
        let Json::Object(_) = json else {
            return Err(ParseError::new(
                "",
                format!("expected a grant object, found {}", json.kind()),
            ));
        };
        let text = |k: &str| -> Result<Option<String>, ParseError> {
            match json.get(k) {
                None | Some(Json::Null) => Ok(None),
                Some(Json::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(ParseError::new(
                    k,
                    format!("expected a string, found {}", other.kind()),
                )),
            }
        };
        let grantee = text("GranteePrincipal")?
            .ok_or_else(|| ParseError::new("GranteePrincipal", "missing `GranteePrincipal`"))?;
        let operations = match json.get("Operations") {
            Some(Json::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, o)| match o {
                    Json::String(s) => Ok(s.clone()),
                    other => Err(ParseError::new(
                        format!("Operations[{i}]"),
                        format!("expected a string, found {}", other.kind()),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(other) => {
                return Err(ParseError::new(
                    "Operations",
                    format!("expected an array, found {}", other.kind()),
                ))
            }
            None => return Err(ParseError::new("Operations", "missing `Operations`")),
        };
        let constraint = |k: &str| -> Result<Option<BTreeMap<String, String>>, ParseError> {
            let Some(c) = json.get("Constraints") else {
                return Ok(None);
            };
            match c.get(k) {
                None | Some(Json::Null) => Ok(None),
                Some(Json::Object(members)) => members
                    .iter()
                    .map(|(name, v)| match v {
                        Json::String(s) => Ok((name.clone(), s.clone())),
                        other => Err(ParseError::new(
                            format!("Constraints.{k}.{name}"),
                            format!("expected a string, found {}", other.kind()),
                        )),
                    })
                    .collect::<Result<BTreeMap<_, _>, _>>()
                    .map(Some),
                Some(other) => Err(ParseError::new(
                    format!("Constraints.{k}"),
                    format!("expected an object, found {}", other.kind()),
                )),
            }
        };
        Ok(Grant {
            grantee_principal: PolicyPrincipal::aws(&grantee),
            grant_id: text("GrantId")?,
            name: text("Name")?,
            key_id: text("KeyId")?,
            grantee,
            operations,
            context_equals: constraint("EncryptionContextEquals")?,
            context_subset: constraint("EncryptionContextSubset")?,
        })
    }

    /// Why this grant does or does not allow `operation` (`Decrypt`) for `caller`.
    pub fn check(&self, caller: &Caller, operation: &str, ctx: &Context) -> GrantCheck {
        let grantee_matches = match caller.kind {
            CallerKind::Service | CallerKind::Anonymous => false,
            _ => self.grantee_principal.matches(caller).is_some(),
        };
        if !grantee_matches {
            return GrantCheck::OtherGrantee;
        }
        if !self
            .operations
            .iter()
            .any(|o| o.eq_ignore_ascii_case(operation))
        {
            return GrantCheck::OperationNotListed;
        }
        let request = ctx.encryption_context();
        if let Some(eq) = &self.context_equals {
            if *eq != request {
                return GrantCheck::ConstraintFailed;
            }
        }
        if let Some(sub) = &self.context_subset {
            if !sub.iter().all(|(k, v)| request.get(k) == Some(v)) {
                return GrantCheck::ConstraintFailed;
            }
        }
        GrantCheck::Allows
    }
}

/// The outcome of checking one grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantCheck {
    /// The grant allows the operation.
    Allows,
    /// The grantee is someone else.
    OtherGrantee,
    /// The operation is not listed.
    OperationNotListed,
    /// An encryption-context constraint does not hold.
    ConstraintFailed,
}
