//! A JSON value that keeps every object member in document order, duplicates included.
//!
//! `serde_json::Value` silently keeps the last of two duplicate keys. AWS never stores a
//! policy with duplicate keys, so a document that has them must be rejected with the path of
//! the object, not evaluated with one of the two values picked at random. Parsing into this
//! type first lets the policy checker see duplicates and name where they are.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// A JSON value with ordered members and duplicates preserved.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// A number, kept as its text so that `10` and `10.0` stay distinguishable.
    Number(String),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<Json>),
    /// An object: members in document order, duplicates kept.
    Object(Vec<(String, Json)>),
}

impl Json {
    /// Parses JSON text, keeping duplicate members.
    pub fn parse(text: &str) -> Result<Json, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// Converts a `serde_json::Value` (which cannot hold duplicates).
    pub fn from_value(v: &serde_json::Value) -> Json {
        match v {
            serde_json::Value::Null => Json::Null,
            serde_json::Value::Bool(b) => Json::Bool(*b),
            serde_json::Value::Number(n) => Json::Number(n.to_string()),
            serde_json::Value::String(s) => Json::String(s.clone()),
            serde_json::Value::Array(a) => Json::Array(a.iter().map(Json::from_value).collect()),
            serde_json::Value::Object(o) => Json::Object(
                o.iter()
                    .map(|(k, v)| (k.clone(), Json::from_value(v)))
                    .collect(),
            ),
        }
    }

    /// Converts back to a `serde_json::Value` (the last duplicate wins; call only on checked input).
    pub fn to_value(&self) -> serde_json::Value {
        match self {
            Json::Null => serde_json::Value::Null,
            Json::Bool(b) => serde_json::Value::Bool(*b),
            Json::Number(n) => serde_json::from_str(n).unwrap_or(serde_json::Value::Null),
            Json::String(s) => serde_json::Value::String(s.clone()),
            Json::Array(a) => serde_json::Value::Array(a.iter().map(Json::to_value).collect()),
            Json::Object(o) => serde_json::Value::Object(
                o.iter().map(|(k, v)| (k.clone(), v.to_value())).collect(),
            ),
        }
    }

    /// The first member named `key`, if this is an object.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The first member whose name equals `key` ignoring ASCII case.
    pub fn get_ignore_case(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(members) => members
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The first member name that appears again later in this object, if any. One pass with
    /// a hash set: linear in the number of members (a pairwise scan made a 500 KB input with
    /// one large condition block take seconds).
    pub fn duplicate_key(&self) -> Option<&str> {
        let Json::Object(members) = self else {
            return None;
        };
        let mut seen: HashSet<&str> = HashSet::with_capacity(members.len());
        // The first *repeated* occurrence is found in document order; report the name.
        members
            .iter()
            .map(|(k, _)| k.as_str())
            .find(|k| !seen.insert(k))
    }

    /// A short name of the JSON type, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Number(_) => "a number",
            Json::String(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }

    /// The value as a string when it is a string, a number or a boolean (IAM accepts all three
    /// in condition values and stringifies them).
    pub fn as_scalar_text(&self) -> Option<String> {
        match self {
            Json::String(s) => Some(s.clone()),
            Json::Number(n) => Some(n.clone()),
            Json::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Json, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Json, E> {
        Ok(Json::Number(v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Number(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json, E> {
        Ok(Json::Number(v.to_string()))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Json, E> {
        Ok(Json::String(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Json, E> {
        Ok(Json::String(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Json>()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut members = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, Json>()? {
            members.push((k, v));
        }
        Ok(Json::Object(members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_duplicates_in_order() {
        let j = Json::parse(r#"{"a": 1, "b": 2, "a": 3}"#).unwrap();
        assert_eq!(j.duplicate_key(), Some("a"));
        assert_eq!(j.get("a"), Some(&Json::Number("1".into())));
    }

    #[test]
    fn first_repeated_name_is_reported() {
        let j = Json::parse(r#"{"a": 1, "b": 2, "b": 3, "a": 4}"#).unwrap();
        assert_eq!(j.duplicate_key(), Some("b"));
        let j = Json::parse(r#"{"a": 1, "b": 2}"#).unwrap();
        assert_eq!(j.duplicate_key(), None);
    }

    #[test]
    fn many_members_without_duplicates() {
        let text = format!(
            "{{{}}}",
            (0..20_000)
                .map(|i| format!("\"k{i}\": {i}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        let j = Json::parse(&text).unwrap();
        assert_eq!(j.duplicate_key(), None);
    }

    #[test]
    fn scalars_become_text() {
        assert_eq!(Json::Bool(true).as_scalar_text().as_deref(), Some("true"));
        assert_eq!(
            Json::Number("10".into()).as_scalar_text().as_deref(),
            Some("10")
        );
        assert_eq!(Json::Null.as_scalar_text(), None);
    }
}
