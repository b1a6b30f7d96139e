//! Properties that must hold for every input, checked on generated policies and requests:
//! the parser never panics, adding an Allow never turns an allow into a deny, adding a Deny
//! never turns a deny into an allow, and the form a document is given in (JSON object, JSON
//! string, URL-encoded JSON string) never changes the answer.
#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test or benchmark fails loudly on a bad fixture"
)]

use iam_eval::{authorize, ContextValue, Decision, ExplainInput, Json, Policy, PolicyKind};
use proptest::prelude::*;
use serde_json::{json, Value};

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "[ -~]{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("Allow"),
            Just("Deny"),
            Just("*"),
            Just("s3:GetObject"),
            Just("2012-10-17"),
            Just("arn:aws:s3:::b/*"),
            Just("StringEquals"),
            Just("${aws:username}")
        ]
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let keys = prop_oneof![
            Just("Version"),
            Just("Statement"),
            Just("Effect"),
            Just("Action"),
            Just("NotAction"),
            Just("Resource"),
            Just("NotResource"),
            Just("Principal"),
            Just("NotPrincipal"),
            Just("Condition"),
            Just("AWS"),
            Just("StringLike"),
            Just("ForAnyValue:StringEquals"),
            Just("IpAddress"),
            Just("aws:SourceIp"),
            Just("Sid"),
            Just("x")
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((keys, inner), 0..5).prop_map(|kv| {
                Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn parser_never_panics_on_json(v in arb_json()) {
        let _ = Policy::from_value(&v);
        let _ = Policy::parse(&Json::from_value(&v), PolicyKind::Resource);
        let _ = ExplainInput::from_json(&Json::from_value(&json!({"request": v.clone(), "policies": {"identity": [v]}})));
    }

    #[test]
    fn parser_never_panics_on_text(s in "\\PC{0,200}") {
        let _ = Policy::from_text(&s, PolicyKind::Any);
        let _ = ExplainInput::parse(&s);
    }
}

const PRINCIPALS: &[&str] = &[
    "arn:aws:sts::444455556666:assumed-role/reader/s1",
    "arn:aws:iam::444455556666:role/reader",
    "arn:aws:sts::111122223333:assumed-role/reader/s1",
    "arn:aws:iam::111122223333:user/alice",
    "arn:aws:iam::111122223333:root",
    "arn:aws:sts::444455556666:federated-user/bob",
];
const ACTIONS: &[&str] = &[
    "s3:GetObject",
    "s3:PutObject",
    "kms:Decrypt",
    "kms:GenerateDataKey",
];
const RESOURCES: &[&str] = &[
    "arn:aws:s3:::doc-example-bucket/reports/q1.csv",
    "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
];

fn arb_statement(with_principal: bool) -> impl Strategy<Value = Value> {
    let action = prop_oneof![
        Just(json!("*")),
        Just(json!("s3:*")),
        Just(json!("s3:GetObject")),
        Just(json!("kms:Decrypt")),
        Just(json!(["kms:Decrypt", "s3:Get*"])),
        Just(json!("s3:Put*"))
    ];
    let resource = prop_oneof![
        Just(json!("*")),
        Just(json!("arn:aws:s3:::doc-example-bucket/*")),
        Just(json!("arn:aws:kms:us-west-2:111122223333:key/*")),
        Just(json!("arn:aws:s3:::other/*"))
    ];
    let principal = prop_oneof![
        Just(json!("*")),
        Just(json!({"AWS": "444455556666"})),
        Just(json!({"AWS": "arn:aws:iam::111122223333:root"})),
        Just(json!({"AWS": "arn:aws:iam::444455556666:role/reader"})),
        Just(json!({"AWS": "arn:aws:sts::444455556666:assumed-role/reader/s1"})),
        Just(json!({"AWS": "arn:aws:iam::111122223333:user/alice"}))
    ];
    let condition = prop_oneof![
        Just(None),
        Just(Some(json!({"StringEquals": {"aws:SourceVpce": "vpce-1"}}))),
        Just(Some(
            json!({"StringNotEquals": {"aws:PrincipalAccount": "444455556666"}})
        )),
        Just(Some(json!({"Bool": {"aws:ViaAWSService": "true"}}))),
        Just(Some(
            json!({"StringLike": {"kms:ViaService": "s3.*.amazonaws.com"}})
        )),
    ];
    (
        any::<bool>(),
        action,
        resource,
        principal,
        condition,
        any::<bool>(),
    )
        .prop_map(move |(allow, a, r, p, c, not_action)| {
            let mut st = serde_json::Map::new();
            st.insert("Effect".into(), json!(if allow { "Allow" } else { "Deny" }));
            st.insert(if not_action { "NotAction" } else { "Action" }.into(), a);
            st.insert("Resource".into(), r);
            if with_principal {
                st.insert("Principal".into(), p);
            }
            if let Some(c) = c {
                st.insert("Condition".into(), c);
            }
            Value::Object(st)
        })
}

fn arb_policy(with_principal: bool) -> impl Strategy<Value = Value> {
    prop::collection::vec(arb_statement(with_principal), 0..4)
        .prop_map(|s| json!({"Version": "2012-10-17", "Statement": s}))
}

fn arb_input() -> impl Strategy<Value = Value> {
    (
        0..PRINCIPALS.len(),
        0..ACTIONS.len(),
        0..RESOURCES.len(),
        prop::collection::vec(arb_policy(false), 0..3),
        prop::option::of(arb_policy(true)),
        prop::option::of(arb_policy(false)),
        prop::option::of(arb_policy(false)),
        any::<bool>(),
    )
        .prop_map(|(p, a, r, identity, resource, boundary, scp, via)| {
            let mut policies = json!({"identity": identity});
            if let Some(x) = resource { policies["resource"] = x; }
            if let Some(x) = boundary { policies["permissions_boundary"] = x; }
            if let Some(x) = scp { policies["scp"] = json!([[x]]); }
            let mut context = json!({});
            if via {
                context = json!({"aws:ViaAWSService": "true", "kms:ViaService": "s3.us-west-2.amazonaws.com"});
            }
            json!({
                "request": {"principal": PRINCIPALS[p], "action": ACTIONS[a], "resource": RESOURCES[r],
                            "resource_account": "111122223333", "context": context},
                "policies": policies,
            })
        })
}

fn decide(input: &Value) -> (Decision, Vec<String>) {
    let parsed = ExplainInput::from_json(&Json::from_value(input)).expect("generated input parses");
    let ev = authorize(&parsed.request, &parsed.policy_set());
    (
        ev.decision,
        ev.denied_by.iter().map(|l| l.as_str().to_owned()).collect(),
    )
}

/// The decision, the deciding statements and the unknown context keys, for comparison.
fn outcome(input: &Value) -> (Decision, Vec<String>, Value, Vec<String>) {
    let parsed = ExplainInput::from_json(&Json::from_value(input)).expect("generated input parses");
    let ev = authorize(&parsed.request, &parsed.policy_set());
    (
        ev.decision,
        ev.denied_by.iter().map(|l| l.as_str().to_owned()).collect(),
        serde_json::to_value(&ev.statements).expect("statements serialize"),
        ev.unknown_context_keys.clone(),
    )
}

/// The input with every policy document (identity, resource, boundary, SCPs) replaced by
/// `f(document)`.
fn map_documents(input: &Value, f: &dyn Fn(&Value) -> Value) -> Value {
    let mut out = input.clone();
    let p = &mut out["policies"];
    if let Some(ids) = p["identity"].as_array_mut() {
        for doc in ids.iter_mut() {
            *doc = f(doc);
        }
    }
    for k in ["resource", "permissions_boundary"] {
        if let Some(doc) = p.get_mut(k) {
            *doc = f(doc);
        }
    }
    if let Some(levels) = p.get_mut("scp").and_then(Value::as_array_mut) {
        for level in levels.iter_mut().filter_map(Value::as_array_mut) {
            for doc in level.iter_mut() {
                *doc = f(doc);
            }
        }
    }
    out
}

/// Every path of an existing policy document in the input (a place to add a statement).
fn policy_paths(input: &Value) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let p = &input["policies"];
    if let Some(ids) = p["identity"].as_array() {
        for i in 0..ids.len() {
            out.push(vec!["identity".into(), i.to_string()]);
        }
    }
    for k in ["resource", "permissions_boundary"] {
        if p.get(k).is_some() {
            out.push(vec![k.into()]);
        }
    }
    if p.get("scp").is_some() {
        out.push(vec!["scp".into(), "0".into(), "0".into()]);
    }
    out
}

fn add_statement(input: &mut Value, path: &[String], st: Value) {
    let mut cur = &mut input["policies"];
    for seg in path {
        cur = match seg.parse::<usize>() {
            Ok(i) => &mut cur[i],
            Err(_) => &mut cur[seg.as_str()],
        };
    }
    if let Some(a) = cur["Statement"].as_array_mut() {
        a.push(st);
    }
}

proptest! {
    // Allowed inputs are a minority of generated ones; allow enough rejections to reach the
    // case count for the monotonicity properties.
    #![proptest_config(ProptestConfig {
        cases: 300,
        max_global_rejects: 100_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn document_form_does_not_change_the_answer(input in arb_input()) {
        // The same policies given as JSON objects, as JSON strings, and as URL-encoded JSON
        // strings (as IAM's Get*Policy APIs return them) must give the same answer.
        let as_object = outcome(&input);
        let as_string = outcome(&map_documents(&input, &|doc| Value::String(doc.to_string())));
        let url_encoded = outcome(&map_documents(&input, &|doc| {
            Value::String(
                percent_encoding::utf8_percent_encode(&doc.to_string(), percent_encoding::NON_ALPHANUMERIC)
                    .to_string(),
            )
        }));
        prop_assert_eq!(&as_object, &as_string);
        prop_assert_eq!(&as_object, &url_encoded);
    }

    #[test]
    fn adding_an_allow_never_denies(input in arb_input(), which in any::<prop::sample::Index>(), st in arb_statement(true)) {
        let before = decide(&input).0;
        let paths = policy_paths(&input);
        prop_assume!(before == Decision::Allowed && !paths.is_empty());
        let path = which.get(&paths).clone();
        let mut st = st;
        st["Effect"] = json!("Allow");
        if path[0] != "resource" { st.as_object_mut().unwrap().remove("Principal"); }
        let mut after = input.clone();
        add_statement(&mut after, &path, st);
        prop_assert_eq!(decide(&after).0, Decision::Allowed);
    }

    #[test]
    fn adding_a_deny_never_allows(input in arb_input(), which in any::<prop::sample::Index>(), st in arb_statement(true)) {
        let before = decide(&input).0;
        let paths = policy_paths(&input);
        prop_assume!(before != Decision::Allowed && !paths.is_empty());
        let path = which.get(&paths).clone();
        let mut st = st;
        st["Effect"] = json!("Deny");
        if path[0] != "resource" { st.as_object_mut().unwrap().remove("Principal"); }
        let mut after = input.clone();
        add_statement(&mut after, &path, st);
        prop_assert_ne!(decide(&after).0, Decision::Allowed);
    }
}

#[test]
fn context_values_round_trip() {
    let v: ContextValue = serde_json::from_value(json!(["a", "b"])).unwrap();
    assert_eq!(v.values(), ["a".to_string(), "b".to_string()]);
}
