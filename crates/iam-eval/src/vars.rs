//! Policy variables: `${aws:username}`, `${aws:PrincipalTag/team, 'none'}`, `${*}`.
//!
//! Variables are recognised only in `Version: "2012-10-17"` documents; elsewhere `${...}` is
//! literal text. A variable's value is substituted as literal text: a `*` in a tag value does
//! not become a wildcard (the safer reading of an undocumented point, see docs/design.md).

use crate::context::{Context, ContextValue};
use crate::pattern::{parse_glob, Elem};

/// A piece of text that may contain policy variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    /// Policy text (wildcards keep their meaning where the operator has them).
    Text(String),
    /// `${key}` or `${key, 'default'}`: the key as the policy spells it (reported when the
    /// request lacks it) and lowercased (looked up; context keys are case-insensitive).
    Var {
        key: String,
        lower: String,
        default: Option<String>,
    },
    /// `${*}`, `${?}`, `${$}`: the character itself, literally.
    Special(char),
}

impl Template {
    /// Parses `text`; with `variables == false` the whole text is literal policy text.
    pub fn parse(text: &str, variables: bool) -> Template {
        if !variables || !text.contains("${") {
            return Template {
                parts: vec![Part::Text(text.to_owned())],
            };
        }
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            let after = rest.get(start + 2..).unwrap_or("");
            let Some(end) = after.find('}') else { break };
            let (head, inner) = (
                rest.get(..start).unwrap_or(""),
                after.get(..end).unwrap_or(""),
            );
            if !head.is_empty() {
                parts.push(Part::Text(head.to_owned()));
            }
            parts.push(parse_var(inner));
            rest = after.get(end + 1..).unwrap_or("");
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Template { parts }
    }

    /// Parses the text of a `Resource` / `NotResource` entry: variables are recognised only
    /// in the resource part, after the fifth colon ("You can use policy variables in the
    /// Resource element, but only in the resource portion of the ARN",
    /// <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html>).
    /// A `${` that starts before the fifth colon is literal text. The flag says whether there
    /// was one (with `variables`), so that the evaluation can warn.
    pub fn parse_resource_arn(text: &str, variables: bool) -> (Template, bool) {
        let resource_start = text
            .match_indices(':')
            .nth(4)
            .map_or(text.len(), |(i, _)| i + 1);
        let (head, tail) = text.split_at(resource_start);
        let misplaced = variables && head.contains("${");
        if !misplaced {
            return (Template::parse(text, variables), false);
        }
        let mut parts = vec![Part::Text(head.to_owned())];
        parts.extend(
            Template::parse(tail, variables)
                .parts
                .into_iter()
                .filter(|p| !matches!(p, Part::Text(t) if t.is_empty())),
        );
        // Literal head text followed by literal tail text is one literal.
        if let [Part::Text(a), Part::Text(b)] = parts.as_slice() {
            parts = vec![Part::Text(format!("{a}{b}"))];
        }
        (Template { parts }, true)
    }

    /// Whether the text contains at least one variable.
    pub fn has_variables(&self) -> bool {
        self.parts.iter().any(|p| !matches!(p, Part::Text(_)))
    }

    /// The text when it has no variables.
    pub fn as_literal(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [Part::Text(t)] => Some(t),
            [] => Some(""),
            _ => None,
        }
    }

    /// Resolves into glob elements: policy text keeps its wildcards, substituted values are
    /// literal. `None` when a variable has no value and no default (its key is pushed to
    /// `unknown`).
    pub fn resolve_glob(&self, ctx: &Context, unknown: &mut Vec<String>) -> Option<Vec<Elem>> {
        let mut out = Vec::new();
        let mut ok = true;
        for p in &self.parts {
            match p {
                Part::Text(t) => out.extend(parse_glob(t)),
                Part::Special(c) => out.push(Elem::Lit(c.to_string().into())),
                Part::Var {
                    key,
                    lower,
                    default,
                } => match lookup(ctx, lower, default.as_deref()) {
                    Some(v) => out.push(Elem::Lit(v.into())),
                    None => {
                        unknown.push(key.clone());
                        ok = false;
                    }
                },
            }
        }
        ok.then_some(out)
    }

    /// Resolves into plain text (for operators without wildcards).
    pub fn resolve_text(&self, ctx: &Context, unknown: &mut Vec<String>) -> Option<String> {
        let mut out = String::new();
        let mut ok = true;
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Special(c) => out.push(*c),
                Part::Var {
                    key,
                    lower,
                    default,
                } => match lookup(ctx, lower, default.as_deref()) {
                    Some(v) => out.push_str(v),
                    None => {
                        unknown.push(key.clone());
                        ok = false;
                    }
                },
            }
        }
        ok.then_some(out)
    }
}

fn lookup<'a>(ctx: &'a Context, key: &str, default: Option<&'a str>) -> Option<&'a str> {
    match ctx.get_lower(key) {
        // Only single-valued keys can be variables.
        Some(ContextValue::Single(v)) => Some(v),
        _ => default,
    }
}

fn parse_var(inner: &str) -> Part {
    match inner.trim() {
        "*" => return Part::Special('*'),
        "?" => return Part::Special('?'),
        "$" => return Part::Special('$'),
        _ => {}
    }
    match inner.split_once(',') {
        Some((key, dflt)) => {
            let d = dflt.trim();
            let d = d
                .strip_prefix('\'')
                .and_then(|x| x.strip_suffix('\''))
                .unwrap_or(d);
            Part::Var {
                key: key.trim().to_owned(),
                lower: key.trim().to_lowercase(),
                default: Some(d.to_owned()),
            }
        }
        None => Part::Var {
            key: inner.trim().to_owned(),
            lower: inner.trim().to_lowercase(),
            default: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context {
        let mut c = Context::new();
        c.insert("aws:username", ContextValue::Single("al*ce".into()));
        c
    }

    #[test]
    fn substitutes_literally() {
        let t = Template::parse("home/${aws:username}/*", true);
        let mut unknown = Vec::new();
        let elems = t.resolve_glob(&ctx(), &mut unknown).unwrap();
        let p = crate::pattern::Pattern::from_elems(elems);
        assert!(p.is_match("home/al*ce/x"));
        assert!(!p.is_match("home/alice/x"));
    }

    #[test]
    fn default_and_unknown() {
        let t = Template::parse("${aws:PrincipalTag/team, 'none'}", true);
        let mut unknown = Vec::new();
        assert_eq!(
            t.resolve_text(&ctx(), &mut unknown).as_deref(),
            Some("none")
        );
        let t = Template::parse("${aws:PrincipalTag/team}", true);
        assert_eq!(t.resolve_text(&ctx(), &mut unknown), None);
        // Reported as the policy spells it.
        assert_eq!(unknown, vec!["aws:PrincipalTag/team".to_string()]);
    }

    #[test]
    fn variables_only_after_the_fifth_colon() {
        let (t, misplaced) =
            Template::parse_resource_arn("arn:aws:iam::${aws:PrincipalAccount}:user/x", true);
        assert!(misplaced);
        assert_eq!(
            t.as_literal(),
            Some("arn:aws:iam::${aws:PrincipalAccount}:user/x")
        );
        let (t, misplaced) =
            Template::parse_resource_arn("arn:aws:kms:${aws:r}:1:key/${aws:username}", true);
        assert!(misplaced);
        let mut u = Vec::new();
        assert_eq!(
            t.resolve_text(&ctx(), &mut u).as_deref(),
            Some("arn:aws:kms:${aws:r}:1:key/al*ce")
        );
        let (t, misplaced) = Template::parse_resource_arn("arn:aws:s3:::b/${aws:username}", true);
        assert!(!misplaced && t.has_variables());
        let (_, misplaced) = Template::parse_resource_arn("arn:aws:iam::${aws:x}:root", false);
        assert!(
            !misplaced,
            "no variables at all in old documents, so nothing is misplaced"
        );
    }

    #[test]
    fn specials_and_old_version() {
        let mut u = Vec::new();
        assert_eq!(
            Template::parse("a${*}b${$}", true)
                .resolve_text(&ctx(), &mut u)
                .as_deref(),
            Some("a*b$")
        );
        assert_eq!(
            Template::parse("${aws:username}", false).as_literal(),
            Some("${aws:username}")
        );
    }
}
