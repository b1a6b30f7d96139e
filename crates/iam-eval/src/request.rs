//! The request being authorized, with the context keys that follow from it.

use crate::arn::Arn;
use crate::context::{Context, ContextValue};
use crate::error::ParseError;
use crate::principal::{is_account_id, Caller, CallerKind};

/// An authorization request: who, what action, on which resource, in what context.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The caller.
    pub caller: Caller,
    /// The action as given (`kms:Decrypt`).
    pub action: String,
    service_lower: String,
    name_lower: String,
    /// The resource ARN being authorized.
    pub resource: String,
    /// `resource` split on its first five colons (empty when it is not an ARN).
    resource_parts: Vec<String>,
    /// The account that owns the resource, when known.
    pub resource_account: Option<String>,
    /// The request context, including derived keys.
    pub context: Context,
}

impl Request {
    /// Builds a request, deriving the context keys that AWS always sets and that follow from
    /// the request itself (`aws:PrincipalArn`, `aws:PrincipalAccount`, `aws:PrincipalType`,
    /// `aws:username` for IAM users, `aws:PrincipalIsAWSService`, `aws:ResourceAccount`,
    /// `kms:CallerAccount` for KMS actions). Values already in `context` win. Error paths are
    /// the request fields (`principal`, `action`, `resource_account`).
    pub fn new(
        principal: &str,
        action: &str,
        resource: &str,
        resource_account: Option<&str>,
        mut context: Context,
    ) -> Result<Request, ParseError> {
        let mut caller =
            Caller::parse(principal).map_err(|e| ParseError::new("principal", e.to_string()))?;
        if let Some(ContextValue::Single(role_arn)) = context.get("aws:PrincipalArn") {
            caller.set_role_arn(&role_arn.clone());
        }
        let (service, name) = action
            .split_once(':')
            .filter(|(s, n)| !s.is_empty() && !n.is_empty() && !action.contains(['*', '?']))
            .ok_or_else(|| {
                ParseError::new(
                    "action",
                    format!(
                        "invalid action `{action}`: expected `service:Action` without wildcards"
                    ),
                )
            })?;
        if resource.is_empty() {
            return Err(ParseError::new("resource", "the resource is empty"));
        }
        let resource_account = match resource_account {
            Some(a) if is_account_id(a) => Some(a.to_owned()),
            Some(a) => {
                return Err(ParseError::new(
                    "resource_account",
                    format!("`{a}` is not a 12-digit account id"),
                ))
            }
            None => Arn::parse(resource)
                .map(|a| a.account)
                .filter(|a| is_account_id(a))
                .map(str::to_owned),
        };
        let service_lower = service.to_lowercase();
        let single = |s: &str| ContextValue::Single(s.to_owned());
        if let Some(arn) = caller.principal_arn() {
            context.insert_if_absent("aws:PrincipalArn", single(arn));
        }
        match (&caller.account, caller.kind) {
            (Some(acct), _) => context.insert_if_absent("aws:PrincipalAccount", single(acct)),
            (None, CallerKind::Anonymous) => {
                context.insert_if_absent("aws:PrincipalAccount", single("anonymous"));
            }
            _ => {}
        }
        if caller.kind != CallerKind::Service {
            context.insert_if_absent("aws:PrincipalType", single(caller.kind.principal_type()));
        }
        if caller.kind != CallerKind::Anonymous {
            let is_service = if caller.kind == CallerKind::Service {
                "true"
            } else {
                "false"
            };
            context.insert_if_absent("aws:PrincipalIsAWSService", single(is_service));
        }
        if caller.kind == CallerKind::User {
            if let Some(n) = &caller.name {
                context.insert_if_absent("aws:username", single(n));
            }
        }
        if let Some(acct) = &resource_account {
            context.insert_if_absent("aws:ResourceAccount", single(acct));
        }
        if service_lower == "kms" {
            if let Some(acct) = &caller.account {
                context.insert_if_absent("kms:CallerAccount", single(acct));
            }
        }
        Ok(Request {
            caller,
            action: action.to_owned(),
            name_lower: name.to_lowercase(),
            service_lower,
            resource: resource.to_owned(),
            resource_parts: {
                let parts: Vec<String> = resource.splitn(6, ':').map(str::to_owned).collect();
                if parts.len() == 6 {
                    parts
                } else {
                    Vec::new()
                }
            },
            resource_account,
            context,
        })
    }

    /// Whether a compiled ARN pattern matches the resource.
    pub fn resource_matches(&self, pattern: &crate::arn::ArnPattern) -> bool {
        pattern.is_match_parts(&self.resource, &self.resource_parts)
    }

    /// Sets the S3 canonical user id of the caller's account (a policy may name the account
    /// by it); nothing in the request itself carries it.
    pub fn with_canonical_id(mut self, id: Option<String>) -> Request {
        self.caller.canonical_id = id;
        self
    }

    /// The action's service prefix, lowercased.
    pub fn service(&self) -> &str {
        &self.service_lower
    }

    /// The action's name, lowercased.
    pub fn action_name(&self) -> &str {
        &self.name_lower
    }

    /// The action's name as given (`Decrypt`).
    pub fn action_name_as_given(&self) -> &str {
        self.action.split_once(':').map_or("", |(_, n)| n)
    }

    /// Whether the resource is a KMS key (key policies must allow; IAM only through them).
    pub fn is_kms_key(&self) -> bool {
        self.service_lower == "kms"
            && self.resource_parts.get(2).is_some_and(|s| s == "kms")
            && self
                .resource_parts
                .get(5)
                .is_some_and(|r| r.starts_with("key/"))
    }
}
