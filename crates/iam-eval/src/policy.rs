//! The checked policy model, reached from JSON through [`Policy::parse`].
//!
//! The wire shapes AWS stores and returns (`Statement` as object or array, elements as string
//! or array, condition values as strings, numbers or booleans, documents as objects, JSON
//! strings or URL-encoded JSON strings) are absorbed here; the evaluator only sees lists.
//! What AWS would never store is rejected with the JSON path of the offending element.
//! Grammar: <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_grammar.html>

use crate::arn::ArnPattern;
use crate::condition::{self, Condition};
use crate::error::ParseError;
use crate::json::Json;
use crate::pattern::Pattern;
use crate::principal::PolicyPrincipal;
use crate::vars::Template;

/// `Allow` or `Deny` (case-sensitive in documents).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Effect {
    /// `Allow`
    Allow,
    /// `Deny`
    Deny,
}

/// The policy language version; only `2012-10-17` has policy variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// `2012-10-17`
    V2012_10_17,
    /// `2008-10-17`
    V2008_10_17,
    /// No `Version` element (behaves as 2008-10-17).
    Missing,
}

/// Which element rules a document must follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    /// Identity policy, permissions boundary, session policy, SCP: no `Principal`.
    Identity,
    /// Bucket policy, key policy, RCP, trust policy: `Principal` or `NotPrincipal` required.
    Resource,
    /// Either (the kind is not known where the document was found).
    Any,
}

/// A checked policy document.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// `Id`, if any.
    pub id: Option<String>,
    /// `Version`.
    pub version: Version,
    /// Statements in document order.
    pub statements: Vec<Statement>,
}

/// A checked statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// Position in the document (0-based).
    pub index: usize,
    /// `Sid`, if any.
    pub sid: Option<String>,
    /// `Effect`.
    pub effect: Effect,
    /// `Principal` / `NotPrincipal`; `None` in identity-style policies.
    pub principal: Option<PrincipalSpec>,
    /// `Action` / `NotAction`.
    pub action: ActionSpec,
    /// `Resource` / `NotResource`; `None` when absent (trust policies).
    pub resource: Option<ResourceSpec>,
    /// The `Condition` block, flattened to one entry per operator and key (all must hold).
    pub conditions: Vec<Condition>,
    /// `Resource` / `NotResource` entries (as written) with a `${...}` before the fifth colon:
    /// AWS reads it as literal text there, so the entry matches no real resource; the
    /// evaluation warns about it.
    pub misplaced_variables: Vec<String>,
}

/// `Principal` or `NotPrincipal`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalSpec {
    /// `true` for `NotPrincipal`.
    pub not: bool,
    /// The principals listed.
    pub entries: Vec<PolicyPrincipal>,
}

/// `Action` or `NotAction`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionSpec {
    /// `true` for `NotAction`.
    pub not: bool,
    /// The patterns listed.
    pub entries: Vec<ActionPattern>,
}

/// One action pattern, compiled lowercase (actions are case-insensitive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionPattern {
    /// As written.
    pub text: String,
    /// `None` for `*` (every action of every service).
    service: Option<String>,
    name: Pattern,
}

impl ActionPattern {
    /// Matches a lowercased `service:name`.
    pub fn is_match_lower(&self, service: &str, name: &str) -> bool {
        match &self.service {
            None => true,
            Some(s) => s == service && self.name.is_match(name),
        }
    }
}

/// `Resource` or `NotResource`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceSpec {
    /// `true` for `NotResource`.
    pub not: bool,
    /// The entries listed.
    pub entries: Vec<ResourceEntry>,
}

/// One resource entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceEntry {
    /// `*`
    Any,
    /// A compiled ARN pattern.
    Arn(ArnPattern),
    /// An ARN with policy variables, compiled per request.
    Template(Template),
    /// Text that cannot be compiled as a resource pattern: it matches no resource. (Every
    /// `arn:` text compiles since short patterns such as `arn:aws:kms:*` match; kept so that
    /// matches on this enum stay valid.)
    Unmatchable(String),
}

impl Policy {
    /// Parses a document given as a JSON value: an object, a JSON string holding a document, or
    /// a URL-encoded JSON string (as IAM's Get*Policy APIs return it). Element rules of
    /// [`PolicyKind::Any`] apply.
    pub fn from_value(v: &serde_json::Value) -> Result<Policy, ParseError> {
        Policy::parse(&Json::from_value(v), PolicyKind::Any)
    }

    /// Parses document text (JSON, or URL-encoded JSON), rejecting duplicate keys.
    pub fn from_text(text: &str, kind: PolicyKind) -> Result<Policy, ParseError> {
        Policy::parse(&Json::String(text.to_owned()), kind)
    }

    /// Parses a document in any accepted form.
    pub fn parse(json: &Json, kind: PolicyKind) -> Result<Policy, ParseError> {
        match json {
            Json::String(text) => {
                let doc = decode_document_text(text)?;
                Policy::parse_object(&doc, kind)
            }
            other => Policy::parse_object(other, kind),
        }
    }

    fn parse_object(json: &Json, kind: PolicyKind) -> Result<Policy, ParseError> {
        let Json::Object(members) = json else {
            return Err(ParseError::new(
                "",
                format!(
                    "expected a policy document (an object), found {}",
                    json.kind()
                ),
            ));
        };
        if let Some(dup) = json.duplicate_key() {
            return Err(ParseError::new("", format!("duplicate key `{dup}`")));
        }
        for (k, _) in members {
            if !matches!(k.as_str(), "Version" | "Id" | "Statement") {
                return Err(ParseError::new(
                    k.clone(),
                    format!("unknown policy element `{k}`"),
                ));
            }
        }
        let version = match json.get("Version") {
            None => Version::Missing,
            Some(Json::String(v)) if v == "2012-10-17" => Version::V2012_10_17,
            Some(Json::String(v)) if v == "2008-10-17" => Version::V2008_10_17,
            Some(other) => {
                return Err(ParseError::new(
                    "Version",
                    format!(
                        "unsupported version {}: expected `2012-10-17` or `2008-10-17`",
                        show(other)
                    ),
                ))
            }
        };
        let id = match json.get("Id") {
            None => None,
            Some(Json::String(s)) => Some(s.clone()),
            Some(other) => {
                return Err(ParseError::new(
                    "Id",
                    format!("expected a string, found {}", other.kind()),
                ))
            }
        };
        let raw_statements: Vec<(String, &Json)> = match json.get("Statement") {
            None => return Err(ParseError::new("", "missing `Statement`")),
            Some(Json::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, s)| (format!("Statement[{i}]"), s))
                .collect(),
            Some(obj @ Json::Object(_)) => vec![("Statement".to_owned(), obj)],
            Some(other) => {
                return Err(ParseError::new(
                    "Statement",
                    format!(
                        "expected an object or an array of objects, found {}",
                        other.kind()
                    ),
                ))
            }
        };
        let variables = version == Version::V2012_10_17;
        let statements = raw_statements
            .into_iter()
            .enumerate()
            .map(|(index, (path, s))| parse_statement(s, &path, index, kind, variables))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Policy {
            id,
            version,
            statements,
        })
    }
}

/// Turns document text into JSON: plain JSON, or URL-encoded JSON.
fn decode_document_text(text: &str) -> Result<Json, ParseError> {
    let trimmed = text.trim_start();
    let decoded;
    let source = if trimmed.starts_with('{') {
        text
    } else {
        decoded = percent_encoding::percent_decode_str(text)
            .decode_utf8()
            .map_err(|_| ParseError::new("", "the URL-encoded policy is not valid UTF-8"))?
            .into_owned();
        &decoded
    };
    Json::parse(source)
        .map_err(|e| ParseError::new("", format!("the policy is not valid JSON: {e}")))
}

fn show(j: &Json) -> String {
    match j {
        Json::String(s) => format!("`{s}`"),
        other => other.kind().to_owned(),
    }
}

/// A list element: a string or an array of strings.
fn string_list(json: &Json, path: &str) -> Result<Vec<(String, String)>, ParseError> {
    match json {
        Json::String(s) => Ok(vec![(path.to_owned(), s.clone())]),
        Json::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Json::String(s) => Ok((format!("{path}[{i}]"), s.clone())),
                other => Err(ParseError::new(
                    format!("{path}[{i}]"),
                    format!("expected a string, found {}", other.kind()),
                )),
            })
            .collect(),
        other => Err(ParseError::new(
            path,
            format!(
                "expected a string or an array of strings, found {}",
                other.kind()
            ),
        )),
    }
}

fn parse_statement(
    json: &Json,
    path: &str,
    index: usize,
    kind: PolicyKind,
    variables: bool,
) -> Result<Statement, ParseError> {
    let Json::Object(members) = json else {
        return Err(ParseError::new(
            path,
            format!("expected a statement object, found {}", json.kind()),
        ));
    };
    if let Some(dup) = json.duplicate_key() {
        return Err(ParseError::new(path, format!("duplicate key `{dup}`")));
    }
    for (k, _) in members {
        if !matches!(
            k.as_str(),
            "Sid"
                | "Effect"
                | "Principal"
                | "NotPrincipal"
                | "Action"
                | "NotAction"
                | "Resource"
                | "NotResource"
                | "Condition"
        ) {
            return Err(ParseError::new(
                format!("{path}.{k}"),
                format!("unknown statement element `{k}`"),
            ));
        }
    }
    let sid = match json.get("Sid") {
        None => None,
        Some(Json::String(s)) => Some(s.clone()),
        Some(other) => {
            return Err(ParseError::new(
                format!("{path}.Sid"),
                format!("expected a string, found {}", other.kind()),
            ))
        }
    };
    let effect = match json.get("Effect") {
        Some(Json::String(e)) if e == "Allow" => Effect::Allow,
        Some(Json::String(e)) if e == "Deny" => Effect::Deny,
        Some(other) => {
            return Err(ParseError::new(
                format!("{path}.Effect"),
                format!("invalid effect {}: expected `Allow` or `Deny`", show(other)),
            ))
        }
        None => return Err(ParseError::new(path, "missing `Effect`")),
    };

    let principal = match (json.get("Principal"), json.get("NotPrincipal")) {
        (Some(_), Some(_)) => {
            return Err(ParseError::new(
                path,
                "a statement cannot have both `Principal` and `NotPrincipal`",
            ))
        }
        (Some(p), None) => Some((false, p, format!("{path}.Principal"))),
        (None, Some(p)) => Some((true, p, format!("{path}.NotPrincipal"))),
        (None, None) => None,
    };
    let principal = match (principal, kind) {
        (Some((_, _, ppath)), PolicyKind::Identity) => {
            return Err(ParseError::new(
                ppath,
                "identity-based policies cannot name a principal",
            ))
        }
        (None, PolicyKind::Resource) => {
            return Err(ParseError::new(
                path,
                "missing `Principal`: resource-based policies must name one",
            ))
        }
        (Some((not, p, ppath)), _) => Some(PrincipalSpec {
            not,
            entries: parse_principal(p, &ppath)?,
        }),
        (None, _) => None,
    };

    let action = match (json.get("Action"), json.get("NotAction")) {
        (Some(_), Some(_)) => {
            return Err(ParseError::new(
                path,
                "a statement cannot have both `Action` and `NotAction`",
            ))
        }
        (Some(a), None) => ActionSpec {
            not: false,
            entries: parse_actions(a, &format!("{path}.Action"))?,
        },
        (None, Some(a)) => ActionSpec {
            not: true,
            entries: parse_actions(a, &format!("{path}.NotAction"))?,
        },
        (None, None) => return Err(ParseError::new(path, "missing `Action` or `NotAction`")),
    };

    let mut misplaced_variables = Vec::new();
    let resource = match (json.get("Resource"), json.get("NotResource")) {
        (Some(_), Some(_)) => {
            return Err(ParseError::new(
                path,
                "a statement cannot have both `Resource` and `NotResource`",
            ))
        }
        (Some(r), None) => Some(ResourceSpec {
            not: false,
            entries: parse_resources(
                r,
                &format!("{path}.Resource"),
                variables,
                &mut misplaced_variables,
            )?,
        }),
        (None, Some(r)) => Some(ResourceSpec {
            not: true,
            entries: parse_resources(
                r,
                &format!("{path}.NotResource"),
                variables,
                &mut misplaced_variables,
            )?,
        }),
        (None, None) if kind == PolicyKind::Identity => {
            return Err(ParseError::new(path, "missing `Resource` or `NotResource`"))
        }
        (None, None) => None,
    };

    let conditions = match json.get("Condition") {
        None => Vec::new(),
        Some(c) => condition::parse_block(c, &format!("{path}.Condition"), variables)?,
    };

    Ok(Statement {
        index,
        sid,
        effect,
        principal,
        action,
        resource,
        conditions,
        misplaced_variables,
    })
}

fn parse_principal(json: &Json, path: &str) -> Result<Vec<PolicyPrincipal>, ParseError> {
    match json {
        Json::String(s) if s == "*" => Ok(vec![PolicyPrincipal::Everyone]),
        Json::Object(members) => {
            if let Some(dup) = json.duplicate_key() {
                return Err(ParseError::new(path, format!("duplicate key `{dup}`")));
            }
            let mut out = Vec::new();
            for (k, v) in members {
                let kpath = format!("{path}.{k}");
                let values = string_list(v, &kpath)?;
                for (_, value) in values {
                    out.push(match k.as_str() {
                        "AWS" => PolicyPrincipal::aws(&value),
                        "Service" => PolicyPrincipal::Service(value),
                        "Federated" => PolicyPrincipal::Federated(value),
                        "CanonicalUser" => PolicyPrincipal::CanonicalUser(value),
                        _ => {
                            return Err(ParseError::new(
                                kpath,
                                format!("unknown principal type `{k}`: expected `AWS`, `Service`, `Federated` or `CanonicalUser`"),
                            ))
                        }
                    });
                }
            }
            Ok(out)
        }
        other => Err(ParseError::new(
            path,
            format!(
                "expected `\"*\"` or an object such as {{\"AWS\": ...}}, found {}",
                show(other)
            ),
        )),
    }
}

fn parse_actions(json: &Json, path: &str) -> Result<Vec<ActionPattern>, ParseError> {
    string_list(json, path)?
        .into_iter()
        .map(|(p, text)| {
            if text == "*" {
                return Ok(ActionPattern {
                    text,
                    service: None,
                    name: Pattern::glob("*"),
                });
            }
            let Some((service, name)) = text.split_once(':') else {
                return Err(ParseError::new(
                    p,
                    format!("invalid action `{text}`: expected `service:action`"),
                ));
            };
            if service.is_empty() || service.contains(['*', '?']) || name.is_empty() {
                return Err(ParseError::new(
                    p,
                    format!("invalid action `{text}`: the service prefix cannot contain wildcards"),
                ));
            }
            Ok(ActionPattern {
                service: Some(service.to_lowercase()),
                name: Pattern::glob(&name.to_lowercase()),
                text,
            })
        })
        .collect()
}

fn parse_resources(
    json: &Json,
    path: &str,
    variables: bool,
    misplaced: &mut Vec<String>,
) -> Result<Vec<ResourceEntry>, ParseError> {
    string_list(json, path)?
        .into_iter()
        .map(|(p, text)| {
            if text == "*" {
                return Ok(ResourceEntry::Any);
            }
            if !text.starts_with("arn:") {
                return Err(ParseError::new(
                    p,
                    format!("invalid resource `{text}`: expected an ARN or `*`"),
                ));
            }
            let (template, misplaced_variable) = Template::parse_resource_arn(&text, variables);
            if misplaced_variable {
                misplaced.push(text.clone());
            }
            Ok(match template.as_literal() {
                Some(lit) => match ArnPattern::parse_resource(lit) {
                    Some(pattern) => ResourceEntry::Arn(pattern),
                    None => ResourceEntry::Unmatchable(text),
                },
                None => ResourceEntry::Template(template),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, kind: PolicyKind) -> Result<Policy, ParseError> {
        Policy::from_text(text, kind)
    }

    #[test]
    fn statement_object_and_strings() {
        let p = parse(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}}"#,
            PolicyKind::Identity,
        )
        .unwrap();
        assert_eq!(p.statements.len(), 1);
        assert_eq!(p.statements[0].effect, Effect::Allow);
    }

    #[test]
    fn url_encoded_document() {
        let enc = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22s3%3AGetObject%22%2C%22Resource%22%3A%22%2A%22%7D%5D%7D";
        let p = parse(enc, PolicyKind::Identity).unwrap();
        assert_eq!(p.statements.len(), 1);
    }

    #[test]
    fn errors_name_paths() {
        let cases = [
            (
                r#"{"Statement":[{"Effect":"allow","Action":"s3:*","Resource":"*"}]}"#,
                "Statement[0].Effect",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","NotAction":"s3:*","Resource":"*"}]}"#,
                "Statement[0]",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Effect":"Deny","Action":"s3:*","Resource":"*"}]}"#,
                "Statement[0]",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringLik":{"a":"b"}}}]}"#,
                "Statement[0].Condition.StringLik",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":["s3:*","s3*:Get"],"Resource":"*"}]}"#,
                "Statement[0].Action[1]",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"}]}"#,
                "Statement[0].Principal",
            ),
        ];
        for (doc, path) in cases {
            let err = parse(doc, PolicyKind::Identity).unwrap_err();
            assert_eq!(err.path(), path, "{doc}: {err}");
        }
    }

    #[test]
    fn resource_policy_needs_principal() {
        let err = parse(
            r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#,
            PolicyKind::Resource,
        )
        .unwrap_err();
        assert_eq!(err.path(), "Statement[0]");
    }
}
