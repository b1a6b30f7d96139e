//! The `explain` input document: a request and the policies that apply to it.
//!
//! Format (documented in `docs/explain-format.md`):
//! `{"request": {"principal", "action", "resource", "resource_account"?, "context"?},
//!   "policies": {"identity"?, "resource"?, "permissions_boundary"?, "session"?, "vpc_endpoint"?, "scp"?, "rcp"?, "grants"?}}`.
//! Errors name the JSON path from the root of the document.

use crate::authorize::{Named, PolicySet};
use crate::context::{Context, ContextValue};
use crate::error::ParseError;
use crate::grant::Grant;
use crate::json::Json;
use crate::policy::{Policy, PolicyKind};
use crate::request::Request;

/// A parsed `explain` input: the request and owned policies.
#[derive(Debug, Clone)]
pub struct ExplainInput {
    /// The request, with derived context keys.
    pub request: Request,
    /// Identity policies, named `identity[i]`.
    pub identity: Vec<(String, Policy)>,
    /// The resource policy, named `resource`.
    pub resource: Option<(String, Policy)>,
    /// The permissions boundary.
    pub permissions_boundary: Option<(String, Policy)>,
    /// The session policy.
    pub session: Option<(String, Policy)>,
    /// The VPC endpoint policy, named `vpc_endpoint`.
    pub vpc_endpoint: Option<(String, Policy)>,
    /// SCP levels, named `scp[level][i]`.
    pub scp: Vec<Vec<(String, Policy)>>,
    /// RCP levels, named `rcp[level][i]`.
    pub rcp: Vec<Vec<(String, Policy)>>,
    /// KMS grants.
    pub grants: Vec<Grant>,
}

impl ExplainInput {
    /// Parses the input document text.
    pub fn parse(text: &str) -> Result<ExplainInput, ParseError> {
        let json =
            Json::parse(text).map_err(|e| ParseError::new("", format!("not valid JSON: {e}")))?;
        ExplainInput::from_json(&json)
    }

    /// Parses an already-read JSON document.
    pub fn from_json(json: &Json) -> Result<ExplainInput, ParseError> {
        check_object(json, "", &["request", "policies"])?;
        let req = json
            .get("request")
            .ok_or_else(|| ParseError::new("", "missing `request`"))?;
        check_object(
            req,
            "request",
            &[
                "principal",
                "action",
                "resource",
                "resource_account",
                "context",
            ],
        )?;
        let text = |k: &str| -> Result<Option<String>, ParseError> {
            match req.get(k) {
                None => Ok(None),
                Some(Json::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(ParseError::new(
                    format!("request.{k}"),
                    format!("expected a string, found {}", other.kind()),
                )),
            }
        };
        let required = |k: &str| -> Result<String, ParseError> {
            text(k)?
                .ok_or_else(|| ParseError::new(format!("request.{k}"), format!("missing `{k}`")))
        };
        let principal = required("principal")?;
        let action = required("action")?;
        let resource = required("resource")?;
        let resource_account = text("resource_account")?;
        let mut context = Context::new();
        if let Some(c) = req.get("context") {
            let Json::Object(members) = c else {
                return Err(ParseError::new(
                    "request.context",
                    format!("expected an object, found {}", c.kind()),
                ));
            };
            if let Some(dup) = c.duplicate_key() {
                return Err(ParseError::new(
                    "request.context",
                    format!("duplicate key `{dup}`"),
                ));
            }
            for (k, v) in members {
                let path = format!("request.context.{k}");
                let value = match v {
                    Json::Array(items) => ContextValue::Multi(
                        items
                            .iter()
                            .enumerate()
                            .map(|(i, x)| {
                                x.as_scalar_text().ok_or_else(|| {
                                    ParseError::new(
                                        format!("{path}[{i}]"),
                                        format!("expected a string, found {}", x.kind()),
                                    )
                                })
                            })
                            .collect::<Result<_, _>>()?,
                    ),
                    other => ContextValue::Single(other.as_scalar_text().ok_or_else(|| {
                        ParseError::new(
                            path.clone(),
                            format!(
                                "expected a string or an array of strings, found {}",
                                other.kind()
                            ),
                        )
                    })?),
                };
                context.insert(k, value);
            }
        }
        let request = Request::new(
            &principal,
            &action,
            &resource,
            resource_account.as_deref(),
            context,
        )
        .map_err(|e| e.under("request"))?;

        let mut input = ExplainInput {
            request,
            identity: Vec::new(),
            resource: None,
            permissions_boundary: None,
            session: None,
            vpc_endpoint: None,
            scp: Vec::new(),
            rcp: Vec::new(),
            grants: Vec::new(),
        };
        let Some(p) = json.get("policies") else {
            return Ok(input);
        };
        check_object(
            p,
            "policies",
            &[
                "identity",
                "resource",
                "permissions_boundary",
                "session",
                "vpc_endpoint",
                "scp",
                "rcp",
                "grants",
            ],
        )?;
        let one = |k: &str, kind: PolicyKind| -> Result<Option<(String, Policy)>, ParseError> {
            match p.get(k) {
                None | Some(Json::Null) => Ok(None),
                Some(doc) => {
                    let path = format!("policies.{k}");
                    Policy::parse(doc, kind)
                        .map(|pol| Some((k.to_owned(), pol)))
                        .map_err(|e| e.under(&path))
                }
            }
        };
        input.resource = one("resource", PolicyKind::Resource)?;
        input.permissions_boundary = one("permissions_boundary", PolicyKind::Identity)?;
        input.session = one("session", PolicyKind::Identity)?;
        // An endpoint policy is resource-style: it must name a `Principal`.
        input.vpc_endpoint = one("vpc_endpoint", PolicyKind::Resource)?;
        input.identity = list(p.get("identity"), "identity", PolicyKind::Identity)?;
        input.scp = levels(p.get("scp"), "scp", PolicyKind::Identity)?;
        input.rcp = levels(p.get("rcp"), "rcp", PolicyKind::Resource)?;
        if let Some(g) = p.get("grants") {
            let Json::Array(items) = g else {
                return Err(ParseError::new(
                    "policies.grants",
                    format!("expected an array, found {}", g.kind()),
                ));
            };
            for (i, item) in items.iter().enumerate() {
                input.grants.push(
                    Grant::parse(item).map_err(|e| e.under(&format!("policies.grants[{i}]")))?,
                );
            }
        }
        Ok(input)
    }

    /// The policies as a [`PolicySet`] borrowing from this input.
    pub fn policy_set(&self) -> PolicySet<'_> {
        fn named((n, p): &(String, Policy)) -> Named<'_> {
            Named {
                name: n.as_str(),
                policy: p,
            }
        }
        PolicySet {
            identity: self.identity.iter().map(named).collect(),
            resource: self.resource.as_ref().map(named),
            permissions_boundary: self.permissions_boundary.as_ref().map(named),
            session: self.session.as_ref().map(named),
            vpc_endpoint: self.vpc_endpoint.as_ref().map(named),
            scp: self
                .scp
                .iter()
                .map(|l| l.iter().map(named).collect())
                .collect(),
            rcp: self
                .rcp
                .iter()
                .map(|l| l.iter().map(named).collect())
                .collect(),
            grants: self.grants.iter().collect(),
        }
    }
}

fn check_object(json: &Json, path: &str, allowed: &[&str]) -> Result<(), ParseError> {
    let Json::Object(members) = json else {
        return Err(ParseError::new(
            path,
            format!("expected an object, found {}", json.kind()),
        ));
    };
    if let Some(dup) = json.duplicate_key() {
        return Err(ParseError::new(path, format!("duplicate key `{dup}`")));
    }
    for (k, _) in members {
        if !allowed.contains(&k.as_str()) {
            return Err(ParseError::new(
                crate::error::join_path(path, k),
                format!("unknown key `{k}`: expected one of {}", allowed.join(", ")),
            ));
        }
    }
    Ok(())
}

fn list(
    json: Option<&Json>,
    name: &str,
    kind: PolicyKind,
) -> Result<Vec<(String, Policy)>, ParseError> {
    match json {
        None | Some(Json::Null) => Ok(Vec::new()),
        Some(Json::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, doc)| {
                let n = format!("{name}[{i}]");
                Policy::parse(doc, kind)
                    .map(|p| (n.clone(), p))
                    .map_err(|e| e.under(&format!("policies.{n}")))
            })
            .collect(),
        Some(other) => Err(ParseError::new(
            format!("policies.{name}"),
            format!("expected an array of policies, found {}", other.kind()),
        )),
    }
}

fn levels(
    json: Option<&Json>,
    name: &str,
    kind: PolicyKind,
) -> Result<Vec<Vec<(String, Policy)>>, ParseError> {
    match json {
        None | Some(Json::Null) => Ok(Vec::new()),
        Some(Json::Array(levels)) => levels
            .iter()
            .enumerate()
            .map(|(i, level)| match level {
                Json::Array(_) => list(Some(level), &format!("{name}[{i}]"), kind),
                other => Err(ParseError::new(
                    format!("policies.{name}[{i}]"),
                    format!("expected an array of policies (one organization level), found {}", other.kind()),
                )),
            })
            .collect(),
        Some(other) => Err(ParseError::new(
            format!("policies.{name}"),
            format!("expected an array of levels (root to account), each an array of policies, found {}", other.kind()),
        )),
    }
}
