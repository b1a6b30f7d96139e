//! Bad input never panics: arbitrary JSON and mutations of the real samples go through the
//! snapshot parser, the event parser and the diagnosis, which must answer with a value or a
//! path-qualified error.
#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test fails loudly on a bad fixture"
)]

use std::path::Path;

use auditor::diagnose::diagnose;
use auditor::event::{parse_events, EventOutcome};
use auditor::snapshot::Snapshot;
use proptest::prelude::*;
use serde_json::{json, Value};

fn load(rel: &str) -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel);
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(|n| json!(n)),
        "[ -~]{0,10}".prop_map(Value::String),
        prop_oneof![
            Just("111122223333"),
            Just("us-west-2"),
            Just("aws:kms"),
            Just("Enabled"),
            Just("GetObject"),
            Just("s3.amazonaws.com"),
            Just("arn:aws:sts::444455556666:assumed-role/r/s")
        ]
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        let keys = prop_oneof![
            Just("accounts"),
            Just("111122223333"),
            Just("s3"),
            Just("kms"),
            Just("iam"),
            Just("policy"),
            Just("region"),
            Just("objects"),
            Just("metadata"),
            Just("Records"),
            Just("detail"),
            Just("eventName"),
            Just("eventSource"),
            Just("userIdentity"),
            Just("errorCode"),
            Just("requestParameters"),
            Just("RoleDetailList"),
            Just("x")
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((keys, inner), 0..6).prop_map(|kv| Value::Object(
                kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
            )),
        ]
    })
}

/// Replaces the value at a pseudo-random place in `v` with `with`.
fn mutate(v: &mut Value, mut pick: usize, with: Value) -> bool {
    match v {
        Value::Object(m) => {
            let n = m.len();
            if n == 0 {
                return false;
            }
            let keys: Vec<String> = m.keys().cloned().collect();
            let k = &keys[pick % n];
            pick /= n.max(1);
            if pick.is_multiple_of(3) {
                m.insert(k.clone(), with);
                return true;
            }
            m.get_mut(k).is_some_and(|c| mutate(c, pick, with))
        }
        Value::Array(a) => {
            let n = a.len();
            if n == 0 {
                return false;
            }
            let i = pick % n;
            pick /= n.max(1);
            if pick.is_multiple_of(3) {
                a[i] = with;
                return true;
            }
            mutate(&mut a[i], pick, with)
        }
        _ => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_json_never_panics(v in arb_json()) {
        let _ = Snapshot::from_value(&v);
        let _ = parse_events(&v);
    }

    #[test]
    fn mutated_samples_never_panic(pick in any::<usize>(), with in arb_json(), which in 0usize..3) {
        let mut snap = load("tests/scenarios/base/kc-working.json");
        let mut event = load(["events/s3-getobject-denied-cross-account.cloudtrail.json", "events/kms-decrypt-denied-via-s3.eventbridge.json", "events/trail-log-file.json"][which]);
        let mut s2 = snap.clone();
        mutate(&mut s2, pick, with.clone());
        mutate(&mut event, pick.rotate_left(7), with);
        for raw in [&mut snap, &mut s2] {
            let Ok(parsed) = Snapshot::from_value(raw) else { continue };
            if let Ok(outcomes) = parse_events(&event) {
                for o in outcomes {
                    if let EventOutcome::Denied(d) = o {
                        let diag = diagnose(&parsed, &d);
                        prop_assert!(!diag.principal.is_empty());
                    }
                }
            }
        }
    }
}
