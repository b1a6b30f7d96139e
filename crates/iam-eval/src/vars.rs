//! Policy variables: `${aws:username}`, `${aws:PrincipalTag/team, 'none'}`, `${*}`.
//!
//! Variables are recognised only in `Version: "2012-10-17"` documents; elsewhere `${...}` is
//! literal text. A variable's value is substituted as literal text: a `*` in a tag value does
//! not become a wildcard (the safer reading of an undocumented point, see spec §3.6).

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
    /// `${key}` or `${key, 'default'}`; key lowercased.
    Var {
        key: String,
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
                Part::Var { key, default } => match lookup(ctx, key, default.as_deref()) {
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
                Part::Var { key, default } => match lookup(ctx, key, default.as_deref()) {
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
                key: key.trim().to_lowercase(),
                default: Some(d.to_owned()),
            }
        }
        None => Part::Var {
            key: inner.trim().to_lowercase(),
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
        assert_eq!(unknown, vec!["aws:principaltag/team".to_string()]);
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
