//! The `Condition` element: operators, values, and their evaluation against a request context.
//!
//! Composition (IAM User Guide, "Condition element" and "Creating a condition with multiple keys or values"): operators AND, keys under one operator AND, values of one key OR
//! for positive operators and NOR for negated ones. Missing keys: positive operators
//! are false, negated operators true, `...IfExists` true, `Null` tests presence. Set
//! qualifiers ("Set operators for multivalued context keys"): `ForAnyValue` on an absent or empty set is false, `ForAllValues` true.
//! Reference: <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html>

use std::fmt;
use std::net::IpAddr;

use base64::Engine as _;

use crate::arn::ArnPattern;
use crate::context::{Context, ContextValue};
use crate::error::ParseError;
use crate::json::Json;
use crate::pattern::Pattern;
use crate::vars::Template;

/// `ForAllValues:` / `ForAnyValue:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetQualifier {
    /// `ForAllValues:` — every request value must match.
    ForAllValues,
    /// `ForAnyValue:` — at least one request value must match.
    ForAnyValue,
}

/// The base operators of the IAM reference; the negated ones are listed separately because
/// their multi-value and missing-key semantics differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(
    missing_docs,
    reason = "each variant is the IAM operator of the same name"
)]
pub enum Operator {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    NumericEquals,
    NumericNotEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateNotEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    BinaryEquals,
    IpAddress,
    NotIpAddress,
    ArnEquals,
    ArnLike,
    ArnNotEquals,
    ArnNotLike,
    Null,
}

impl Operator {
    fn from_name(name: &str) -> Option<Operator> {
        use Operator::*;
        Some(match name {
            "StringEquals" => StringEquals,
            "StringNotEquals" => StringNotEquals,
            "StringEqualsIgnoreCase" => StringEqualsIgnoreCase,
            "StringNotEqualsIgnoreCase" => StringNotEqualsIgnoreCase,
            "StringLike" => StringLike,
            "StringNotLike" => StringNotLike,
            "NumericEquals" => NumericEquals,
            "NumericNotEquals" => NumericNotEquals,
            "NumericLessThan" => NumericLessThan,
            "NumericLessThanEquals" => NumericLessThanEquals,
            "NumericGreaterThan" => NumericGreaterThan,
            "NumericGreaterThanEquals" => NumericGreaterThanEquals,
            "DateEquals" => DateEquals,
            "DateNotEquals" => DateNotEquals,
            "DateLessThan" => DateLessThan,
            "DateLessThanEquals" => DateLessThanEquals,
            "DateGreaterThan" => DateGreaterThan,
            "DateGreaterThanEquals" => DateGreaterThanEquals,
            "Bool" => Bool,
            "BinaryEquals" => BinaryEquals,
            "IpAddress" => IpAddress,
            "NotIpAddress" => NotIpAddress,
            "ArnEquals" => ArnEquals,
            "ArnLike" => ArnLike,
            "ArnNotEquals" => ArnNotEquals,
            "ArnNotLike" => ArnNotLike,
            "Null" => Null,
            _ => return None,
        })
    }

    /// Whether the operator is negated (values NOR; missing key → true).
    pub fn is_negated(self) -> bool {
        use Operator::*;
        matches!(
            self,
            StringNotEquals
                | StringNotEqualsIgnoreCase
                | StringNotLike
                | NumericNotEquals
                | DateNotEquals
                | NotIpAddress
                | ArnNotEquals
                | ArnNotLike
        )
    }

    fn allows_variables(self) -> bool {
        use Operator::*;
        matches!(
            self,
            StringEquals
                | StringNotEquals
                | StringEqualsIgnoreCase
                | StringNotEqualsIgnoreCase
                | StringLike
                | StringNotLike
                | Bool
                | ArnEquals
                | ArnLike
                | ArnNotEquals
                | ArnNotLike
        )
    }
}

/// One compiled policy value.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    /// Text for String*/Bool (maybe with variables).
    Text(Template),
    /// A literal `StringLike` pattern, compiled once.
    Glob(Pattern),
    Number(f64),
    /// Milliseconds since the epoch.
    Date(i64),
    Net(IpNet),
    Bytes(Vec<u8>),
    /// Compiled ARN pattern (no variables).
    Arn(ArnPattern),
    /// ARN text with variables, compiled at evaluation time.
    ArnTemplate(Template),
    /// `Null`'s `true`/`false`.
    Flag(bool),
}

/// An IP network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// Parses `a.b.c.d/n`, an IPv6 CIDR, or a bare address (a single host).
    pub fn parse(text: &str) -> Option<IpNet> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (text.parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(IpNet { addr, prefix })
    }

    /// No broader than /8 (IPv4) or /32 (IPv6), and outside the RFC 1918 private ranges.
    pub fn is_narrow_public(&self) -> bool {
        match self.addr {
            IpAddr::V4(a) => self.prefix >= 8 && !a.is_private(),
            IpAddr::V6(_) => self.prefix >= 32,
        }
    }

    /// Whether `ip` lies inside this network (families never mix).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// One `operator: { key: values }` pair of a condition block.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// The operator as written (`ForAnyValue:StringLikeIfExists`).
    pub operator_text: String,
    /// Set qualifier, if any.
    pub qualifier: Option<SetQualifier>,
    /// Base operator.
    pub operator: Operator,
    /// `...IfExists` suffix.
    pub if_exists: bool,
    /// The key as written.
    pub key: String,
    key_lower: String,
    values: Vec<Value>,
}

/// The result of evaluating one condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Whether the condition holds.
    pub holds: bool,
    /// Whether the key (or a variable in a value) was absent from the context.
    pub key_absent: bool,
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.operator_text, self.key)
    }
}

/// Parses a statement's `Condition` object (`path` is the path of that object).
pub fn parse_block(json: &Json, path: &str, variables: bool) -> Result<Vec<Condition>, ParseError> {
    let Json::Object(ops) = json else {
        return Err(ParseError::new(
            path,
            format!("expected an object, found {}", json.kind()),
        ));
    };
    if let Some(dup) = json.duplicate_key() {
        return Err(ParseError::new(path, format!("duplicate operator `{dup}`")));
    }
    let mut out = Vec::new();
    for (op_text, keys) in ops {
        let op_path = format!("{path}.{op_text}");
        let (qualifier, operator, if_exists) = parse_operator(op_text, &op_path)?;
        let Json::Object(members) = keys else {
            return Err(ParseError::new(
                op_path,
                format!(
                    "expected an object of condition keys, found {}",
                    keys.kind()
                ),
            ));
        };
        if let Some(dup) = keys.duplicate_key() {
            return Err(ParseError::new(
                op_path,
                format!("duplicate condition key `{dup}`"),
            ));
        }
        for (key, raw) in members {
            let key_path = format!("{op_path}.{key}");
            let texts: Vec<String> = match raw {
                Json::Array(items) => items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        v.as_scalar_text().ok_or_else(|| {
                            ParseError::new(
                                format!("{key_path}[{i}]"),
                                format!("expected a string, number or boolean, found {}", v.kind()),
                            )
                        })
                    })
                    .collect::<Result<_, _>>()?,
                other => vec![other.as_scalar_text().ok_or_else(|| {
                    ParseError::new(
                        key_path.clone(),
                        format!(
                            "expected a string, number, boolean or array, found {}",
                            other.kind()
                        ),
                    )
                })?],
            };
            let values = texts
                .iter()
                .map(|t| parse_value(operator, t, variables))
                .collect::<Option<Vec<Value>>>()
                .ok_or_else(|| {
                    ParseError::new(
                        key_path.clone(),
                        format!("a value is not valid for `{op_text}`: {}", texts.join(", ")),
                    )
                })?;
            out.push(Condition {
                operator_text: op_text.clone(),
                qualifier,
                operator,
                if_exists,
                key: key.clone(),
                key_lower: key.to_lowercase(),
                values,
            });
        }
    }
    Ok(out)
}

fn parse_operator(
    text: &str,
    path: &str,
) -> Result<(Option<SetQualifier>, Operator, bool), ParseError> {
    let (qualifier, rest) = match text.split_once(':') {
        Some(("ForAllValues", rest)) => (Some(SetQualifier::ForAllValues), rest),
        Some(("ForAnyValue", rest)) => (Some(SetQualifier::ForAnyValue), rest),
        Some((q, _)) => {
            return Err(ParseError::new(
                path,
                format!("unknown set qualifier `{q}`"),
            ));
        }
        None => (None, text),
    };
    let (base, if_exists) = match rest.strip_suffix("IfExists") {
        Some(b) => (b, true),
        None => (rest, false),
    };
    let op = Operator::from_name(base)
        .ok_or_else(|| ParseError::new(path, format!("unknown condition operator `{text}`")))?;
    if op == Operator::Null && (if_exists || qualifier.is_some()) {
        return Err(ParseError::new(
            path,
            format!("`Null` takes no qualifier or suffix: `{text}`"),
        ));
    }
    Ok((qualifier, op, if_exists))
}

fn parse_value(op: Operator, text: &str, variables: bool) -> Option<Value> {
    use Operator::*;
    let vars = variables && op.allows_variables();
    Some(match op {
        StringLike | StringNotLike => {
            let t = Template::parse(text, vars);
            match t.as_literal() {
                Some(lit) => Value::Glob(Pattern::glob(lit)),
                None => Value::Text(t),
            }
        }
        StringEquals
        | StringNotEquals
        | StringEqualsIgnoreCase
        | StringNotEqualsIgnoreCase
        | Bool => Value::Text(Template::parse(text, vars)),
        NumericEquals
        | NumericNotEquals
        | NumericLessThan
        | NumericLessThanEquals
        | NumericGreaterThan
        | NumericGreaterThanEquals => Value::Number(parse_number(text)?),
        DateEquals
        | DateNotEquals
        | DateLessThan
        | DateLessThanEquals
        | DateGreaterThan
        | DateGreaterThanEquals => Value::Date(parse_date(text)?),
        BinaryEquals => Value::Bytes(
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .ok()?,
        ),
        IpAddress | NotIpAddress => Value::Net(IpNet::parse(text)?),
        ArnEquals | ArnLike | ArnNotEquals | ArnNotLike => {
            let t = Template::parse(text, vars);
            match t.as_literal() {
                Some(lit) => match ArnPattern::parse(lit) {
                    Some(p) => Value::Arn(p),
                    // A value that is not an ARN can never match an ARN; keep it as a
                    // pattern that matches nothing rather than rejecting the policy.
                    None => Value::Text(t),
                },
                None => Value::ArnTemplate(t),
            }
        }
        Null => match text.to_ascii_lowercase().as_str() {
            "true" => Value::Flag(true),
            "false" => Value::Flag(false),
            _ => return None,
        },
    })
}

fn parse_number(text: &str) -> Option<f64> {
    let t = text.trim();
    t.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// Parses a W3C ISO-8601 date/time (`2020-01-01T00:00:01Z`, with offset, or date only) or
/// epoch seconds, to milliseconds since the epoch.
pub fn parse_date(text: &str) -> Option<i64> {
    let t = text.trim();
    if let Ok(secs) = t.parse::<i64>() {
        return secs.checked_mul(1000);
    }
    if let Ok(secs) = t.parse::<f64>() {
        if secs.is_finite() {
            #[allow(
                clippy::cast_possible_truncation,
                reason = "truncation to whole milliseconds is intended"
            )]
            return Some((secs * 1000.0) as i64);
        }
    }
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(t) {
        return Some(dt.timestamp_millis());
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(n) = chrono::NaiveDateTime::parse_from_str(t.trim_end_matches('Z'), fmt) {
            return Some(n.and_utc().timestamp_millis());
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Some(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis());
    }
    None
}

impl Condition {
    /// Whether every value is a fixed value: an equality-style operator with no wildcard and
    /// no policy variable (what S3 Block Public Access accepts as restricting a grant).
    pub fn has_fixed_values(&self) -> bool {
        use Operator::*;
        let equality = matches!(
            self.operator,
            StringEquals | StringEqualsIgnoreCase | ArnEquals | ArnLike | IpAddress | Bool
        ) && self.qualifier != Some(SetQualifier::ForAllValues);
        equality
            && self.values.iter().all(|v| match v {
                Value::Text(t) => t.as_literal().is_some_and(|l| !l.contains(['*', '?'])),
                Value::Arn(p) => !p.has_wildcard(),
                Value::ArnTemplate(_) | Value::Glob(_) => false,
                Value::Net(_)
                | Value::Bytes(_)
                | Value::Number(_)
                | Value::Date(_)
                | Value::Flag(_) => true,
            })
    }

    /// Whether every value is an IP range that S3 Block Public Access accepts as restricting
    /// a grant: IPv4 no broader than /8, IPv6 no broader than /32, and not a private
    /// (RFC 1918) range, which `aws:SourceIp` never carries. `false` for non-IP values.
    pub fn has_narrow_public_ip_ranges(&self) -> bool {
        !self.values.is_empty()
            && self.values.iter().all(|v| match v {
                Value::Net(net) => net.is_narrow_public(),
                _ => false,
            })
    }

    /// The key in lowercase.
    pub fn key_lower(&self) -> &str {
        &self.key_lower
    }

    /// Evaluates against the context; absent keys and unresolvable variables are pushed to
    /// `unknown`.
    pub fn evaluate(&self, ctx: &Context, unknown: &mut Vec<String>) -> Outcome {
        let value = ctx.get_lower(&self.key_lower);
        if self.operator == Operator::Null {
            let absent = value.is_none_or(ContextValue::is_null);
            if value.is_none() {
                unknown.push(self.key.clone());
            }
            // `"true"` holds when absent, `"false"` when present; several values OR.
            let holds = self
                .values
                .iter()
                .any(|v| matches!(v, Value::Flag(f) if *f == absent));
            return Outcome {
                holds,
                key_absent: value.is_none(),
            };
        }
        let negated = self.operator.is_negated();
        let Some(value) = value else {
            unknown.push(self.key.clone());
            let holds = if self.if_exists {
                true
            } else {
                match self.qualifier {
                    Some(SetQualifier::ForAllValues) => true,
                    Some(SetQualifier::ForAnyValue) => false,
                    None => negated,
                }
            };
            return Outcome {
                holds,
                key_absent: true,
            };
        };
        let request = value.values();
        let mut absent_var = false;
        // m(r): does request value r match some policy value (positive sense)?
        let mut any_match = |r: &str| -> bool {
            self.values.iter().any(|p| {
                let before = unknown.len();
                let m = self.positive_match(p, r, ctx, unknown);
                if unknown.len() > before {
                    absent_var = true;
                }
                m
            })
        };
        let holds = match self.qualifier {
            Some(SetQualifier::ForAnyValue) => {
                if negated {
                    request.iter().any(|r| !any_match(r))
                } else {
                    request.iter().any(|r| any_match(r))
                }
            }
            Some(SetQualifier::ForAllValues) => {
                if negated {
                    request.iter().all(|r| !any_match(r))
                } else {
                    request.iter().all(|r| any_match(r))
                }
            }
            None => {
                if request.is_empty() {
                    // An empty value counts as missing.
                    self.if_exists || negated
                } else if negated {
                    !request.iter().any(|r| any_match(r))
                } else {
                    request.iter().any(|r| any_match(r))
                }
            }
        };
        Outcome {
            holds,
            key_absent: absent_var,
        }
    }

    /// The base operator's positive match of one request value against one policy value
    /// (for negated operators: the match of the operator they negate).
    fn positive_match(&self, p: &Value, r: &str, ctx: &Context, unknown: &mut Vec<String>) -> bool {
        use Operator::*;
        match (self.operator, p) {
            (StringEquals | StringNotEquals, Value::Text(t)) => match t.as_literal() {
                Some(lit) => lit == r,
                None => t.resolve_text(ctx, unknown).is_some_and(|v| v == r),
            },
            (StringEqualsIgnoreCase | StringNotEqualsIgnoreCase, Value::Text(t)) => {
                with_text(t, ctx, unknown, |v| eq_ignore_case(v, r))
            }
            (StringLike | StringNotLike, Value::Glob(p)) => p.is_match(r),
            (StringLike | StringNotLike, Value::Text(t)) => t
                .resolve_glob(ctx, unknown)
                .is_some_and(|e| Pattern::from_elems(e).is_match(r)),
            (Bool, Value::Text(t)) => {
                with_text(t, ctx, unknown, |v| v.eq_ignore_ascii_case(trim(r)))
            }
            (op, Value::Number(n)) => {
                let Some(x) = parse_number(r) else {
                    return false;
                };
                match op {
                    NumericEquals | NumericNotEquals => (x - n).abs() == 0.0,
                    NumericLessThan => x < *n,
                    NumericLessThanEquals => x <= *n,
                    NumericGreaterThan => x > *n,
                    NumericGreaterThanEquals => x >= *n,
                    _ => false,
                }
            }
            (op, Value::Date(d)) => {
                let Some(x) = parse_date(r) else { return false };
                match op {
                    DateEquals | DateNotEquals => x == *d,
                    DateLessThan => x < *d,
                    DateLessThanEquals => x <= *d,
                    DateGreaterThan => x > *d,
                    DateGreaterThanEquals => x >= *d,
                    _ => false,
                }
            }
            (_, Value::Net(net)) => r.trim().parse::<IpAddr>().is_ok_and(|ip| net.contains(ip)),
            (_, Value::Bytes(b)) => match base64::engine::general_purpose::STANDARD.decode(r) {
                Ok(rb) => &rb == b,
                Err(_) => r.as_bytes() == b.as_slice(),
            },
            (_, Value::Arn(p)) => p.is_match(r),
            (_, Value::ArnTemplate(t)) => t
                .resolve_glob(ctx, unknown)
                .and_then(ArnPattern::from_elems)
                .is_some_and(|p| p.is_match(r)),
            // An Arn* value that is not an ARN matches nothing.
            (ArnEquals | ArnLike | ArnNotEquals | ArnNotLike, Value::Text(_)) => false,
            _ => false,
        }
    }
}

/// Applies `f` to the value's text: borrowed when literal, resolved when it holds variables
/// (`false` when a variable has no value).
fn with_text(
    t: &Template,
    ctx: &Context,
    unknown: &mut Vec<String>,
    f: impl Fn(&str) -> bool,
) -> bool {
    match t.as_literal() {
        Some(lit) => f(lit),
        None => t.resolve_text(ctx, unknown).is_some_and(|v| f(&v)),
    }
}

/// `str::trim`, skipping the Unicode scan when the text starts and ends with a visible ASCII
/// character (the usual `true` / `false`), which `trim` would leave unchanged.
fn trim(r: &str) -> &str {
    match (r.as_bytes().first(), r.as_bytes().last()) {
        (Some(a), Some(z)) if a.is_ascii_graphic() && z.is_ascii_graphic() => r,
        _ => r.trim(),
    }
}

/// Case-insensitive equality without allocating for ASCII text; full Unicode lowercasing
/// otherwise.
fn eq_ignore_case(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        a.eq_ignore_ascii_case(b)
    } else {
        a.to_lowercase() == b.to_lowercase()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(text: &str) -> Vec<Condition> {
        parse_block(&Json::parse(text).unwrap(), "Condition", true).unwrap()
    }

    fn holds(text: &str, ctx: &[(&str, ContextValue)]) -> bool {
        let mut c = Context::new();
        for (k, v) in ctx {
            c.insert(k, v.clone());
        }
        let mut u = Vec::new();
        block(text)
            .iter()
            .all(|cond| cond.evaluate(&c, &mut u).holds)
    }

    fn s(v: &str) -> ContextValue {
        ContextValue::Single(v.into())
    }

    #[test]
    fn missing_key_rules() {
        assert!(!holds(r#"{"StringEquals":{"aws:SourceVpce":"v"}}"#, &[]));
        assert!(holds(r#"{"StringNotEquals":{"aws:SourceVpce":"v"}}"#, &[]));
        assert!(holds(
            r#"{"StringEqualsIfExists":{"aws:SourceVpce":"v"}}"#,
            &[]
        ));
        assert!(holds(r#"{"Null":{"aws:SourceVpce":"true"}}"#, &[]));
        assert!(!holds(r#"{"Null":{"aws:SourceVpce":"false"}}"#, &[]));
    }

    #[test]
    fn negated_multi_value_is_nor() {
        let c = r#"{"StringNotEquals":{"k":["a","b"]}}"#;
        assert!(!holds(c, &[("k", s("a"))]));
        assert!(holds(c, &[("k", s("c"))]));
    }

    #[test]
    fn set_qualifiers_on_empty() {
        let empty = ContextValue::Multi(vec![]);
        assert!(holds(
            r#"{"ForAllValues:StringEquals":{"k":"a"}}"#,
            &[("k", empty.clone())]
        ));
        assert!(!holds(
            r#"{"ForAnyValue:StringEquals":{"k":"a"}}"#,
            &[("k", empty)]
        ));
    }

    #[test]
    fn ip_and_dates() {
        assert!(holds(
            r#"{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}"#,
            &[("aws:SourceIp", s("10.1.2.3"))]
        ));
        assert!(holds(
            r#"{"IpAddress":{"aws:SourceIp":"2001:db8::/32"}}"#,
            &[("aws:SourceIp", s("2001:db8::1"))]
        ));
        assert!(holds(
            r#"{"DateLessThan":{"aws:CurrentTime":"2030-01-01"}}"#,
            &[("aws:CurrentTime", s("2026-11-28T20:00:00Z"))]
        ));
        assert!(holds(
            r#"{"DateGreaterThan":{"aws:CurrentTime":"1700000000"}}"#,
            &[("aws:CurrentTime", s("2026-11-28T20:00:00Z"))]
        ));
    }

    #[test]
    fn rejects_bad_operator_and_values() {
        for bad in [
            r#"{"StringLik":{"k":"v"}}"#,
            r#"{"IpAddress":{"k":"300.1.1.1/8"}}"#,
            r#"{"NumericLessThan":{"k":"abc"}}"#,
            r#"{"NullIfExists":{"k":"true"}}"#,
            r#"{"ForSomeValues:StringEquals":{"k":"v"}}"#,
        ] {
            assert!(
                parse_block(&Json::parse(bad).unwrap(), "Condition", true).is_err(),
                "{bad}"
            );
        }
    }
}
