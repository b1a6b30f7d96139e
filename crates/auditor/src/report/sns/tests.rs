use super::*;
use crate::diagnose::{diagnose, Hop};
use crate::event::{parse_events, EventOutcome};
use crate::snapshot::Snapshot;

fn kc_diagnosis() -> Diagnosis {
    let raw: Value = serde_json::from_str(include_str!("../../../../../examples/kc-scenario.json"))
        .expect("example snapshot");
    let snap = Snapshot::from_value(&raw).expect("valid snapshot");
    let event: Value = serde_json::from_str(include_str!(
        "../../../../../events/s3-getobject-denied-cross-account.eventbridge.json"
    ))
    .expect("sample event");
    let Some(EventOutcome::Denied(req)) = parse_events(&event).expect("parses").pop() else {
        panic!("the sample is a denial");
    };
    diagnose(&snap, &req)
}

fn attribute<'a>(n: &'a Notification, name: &str) -> Option<&'a AttributeValue> {
    n.attributes
        .iter()
        .find(|a| a.name == name)
        .map(|a| &a.value)
}

fn body(n: &Notification) -> Value {
    serde_json::from_str(&n.message).expect("the message is one JSON document")
}

#[test]
fn subject_carries_what_on_call_triages_by() {
    // GIVEN the example scenario's diagnosis (two blocking causes, the key policy first)
    let d = kc_diagnosis();
    // WHEN it becomes a notification
    let n = notification(&d);
    // THEN the subject has the verdict, the first blocking code and how many more, the
    // account that must act on it, the bucket and the key's prefix
    assert_eq!(
        n.subject,
        "DENIED KEY_POLICY_NO_ALLOW +1 | fix: 111122223333 | doc-example-bucket/reports/"
    );
    assert!(n.trimmed.is_empty());
}

#[test]
fn subject_says_low_confidence_and_incomplete() {
    // GIVEN a denial diagnosed with low confidence and a hop that could not be evaluated
    let mut d = kc_diagnosis();
    d.confidence = Confidence::Low;
    d.hops.push(Hop {
        action: "kms:Decrypt".into(),
        resource: "arn:aws:kms:us-west-2:111122223333:key/other".into(),
        decision: "NotEvaluated".into(),
        denied_by: Vec::new(),
        unknown_context_keys: Vec::new(),
    });
    let n = notification(&d);
    // THEN the subject says so before anything else, and the body and attributes agree
    assert!(
        n.subject.starts_with(
            "DENIED (incomplete, low confidence) KEY_POLICY_NO_ALLOW +1 | fix: 111122223333"
        ),
        "{}",
        n.subject
    );
    assert!(n.subject.len() < 100, "{}", n.subject);
    assert_eq!(body(&n)["complete"], false);
    assert_eq!(
        attribute(&n, "complete"),
        Some(&AttributeValue::String("false".into()))
    );
    // AND a complete, high-confidence diagnosis says neither
    let plain = notification(&kc_diagnosis());
    assert!(!plain.subject.contains("incomplete") && !plain.subject.contains("confidence"));
    assert_eq!(body(&plain)["complete"], true);
}

#[test]
fn unknown_verdicts_name_the_caller_and_are_incomplete() {
    // GIVEN nothing visible blocks, but evidence is missing
    let mut d = kc_diagnosis();
    d.verdict = Verdict::Unknown;
    d.findings.retain(|f| !f.blocking);
    let n = notification(&d);
    // THEN no code or account to act is invented; the caller stands in
    assert_eq!(
        n.subject,
        "UNKNOWN (incomplete) | reader/s1 (444455556666) | doc-example-bucket/reports/"
    );
    assert_eq!(body(&n)["blocking_codes"], json!([]));
    assert_eq!(body(&n)["acting_accounts"], json!([]));
}

#[test]
fn long_locations_are_shortened_never_the_verdict_code_or_account() {
    let mut d = kc_diagnosis();
    d.confidence = Confidence::Low;
    let bucket = "b".repeat(63);
    for h in d.hops.iter_mut().filter(|h| h.action.starts_with("s3:")) {
        h.resource = format!("arn:aws:s3:::{bucket}/{}/x.csv", "p".repeat(200));
    }
    let n = notification(&d);
    assert!(n.subject.len() < 100, "{}", n.subject);
    assert!(
        n.subject.starts_with(
            "DENIED (low confidence) KEY_POLICY_NO_ALLOW +1 | fix: 111122223333 | bbbb"
        ),
        "{}",
        n.subject
    );
    assert!(n.subject.ends_with("..."), "{}", n.subject);
    // The body keeps the whole location.
    assert_eq!(body(&n)["bucket"], bucket.as_str());
    assert_eq!(
        body(&n)["key_prefix"],
        format!("{}/", "p".repeat(200)).as_str()
    );
}

#[test]
fn other_partitions_are_read_too() {
    // GIVEN ARNs of the China partition
    let mut d = kc_diagnosis();
    for h in d.hops.iter_mut() {
        h.resource = h.resource.replacen("arn:aws:", "arn:aws-cn:", 1);
    }
    let n = notification(&d);
    // THEN the bucket and prefix are still found
    assert!(
        n.subject.ends_with(" | doc-example-bucket/reports/"),
        "{}",
        n.subject
    );
    assert_eq!(body(&n)["bucket"], "doc-example-bucket");
}

#[test]
fn body_is_one_json_object_with_filter_fields_text_and_the_diagnosis() {
    let d = kc_diagnosis();
    let n = notification(&d);
    let b = body(&n);
    // Not the per-protocol envelope of `MessageStructure: json`, whose attributes AWS drops.
    assert!(b.get("default").is_none() && b.get("email").is_none());
    // The fields filter policies with `FilterPolicyScope: MessageBody` read.
    assert_eq!(b["subject"], n.subject.as_str());
    assert_eq!(b["verdict"], "denied");
    assert_eq!(b["confidence"], "high");
    assert_eq!(
        b["finding_codes"][0], "KEY_POLICY_NO_ALLOW",
        "{:#}",
        b["finding_codes"]
    );
    assert_eq!(
        b["blocking_codes"],
        json!(["KEY_POLICY_NO_ALLOW", "IDENTITY_POLICY_NO_ALLOW"])
    );
    assert_eq!(
        b["acting_accounts"],
        json!(["111122223333", "444455556666"])
    );
    assert_eq!(b["principal_account"], "444455556666");
    assert_eq!(b["resource_account"], "111122223333");
    assert_eq!(b["bucket"], "doc-example-bucket");
    assert_eq!(b["key_prefix"], "reports/");
    // The report, one line per element, and the diagnosis as `diagnose --format json`.
    let lines: Vec<&str> = b["text"]
        .as_array()
        .expect("text is an array")
        .iter()
        .map(|l| l.as_str().expect("each line is a string"))
        .collect();
    assert_eq!(lines.join("\n") + "\n", render_text(&d));
    assert_eq!(
        b["diagnosis"],
        serde_json::to_value(&d).expect("serializes")
    );
    // Readable as it arrives in an e-mail: each report line on a line of its own.
    assert!(
        n.message
            .lines()
            .any(|l| l.trim_start().starts_with("\"DENIED: 2 causes block")),
        "{}",
        n.message
    );
    assert!(n.message.lines().any(|l| l.starts_with("  \"verdict\": ")));
}

#[test]
fn attributes_for_filter_policies() {
    let d = kc_diagnosis();
    let n = notification(&d);
    assert_eq!(
        attribute(&n, "verdict"),
        Some(&AttributeValue::String("denied".into()))
    );
    let Some(AttributeValue::StringArray(codes)) = attribute(&n, "finding_codes") else {
        panic!("finding_codes is a String.Array");
    };
    let mut expected: Vec<String> = Vec::new();
    for f in &d.findings {
        push_new(&mut expected, f.code.as_str().to_owned());
    }
    assert!(!expected.is_empty());
    assert_eq!(codes, &expected);
    assert_eq!(
        attribute(&n, "finding_codes").map(AttributeValue::string_value),
        Some(Value::from(expected).to_string())
    );
    assert_eq!(
        attribute(&n, "principal_account"),
        Some(&AttributeValue::String("444455556666".into()))
    );
    assert_eq!(
        attribute(&n, "resource_account"),
        Some(&AttributeValue::String("111122223333".into()))
    );
    assert_eq!(
        attribute(&n, "confidence"),
        Some(&AttributeValue::String("high".into()))
    );
    assert_eq!(
        attribute(&n, "acting_accounts"),
        Some(&AttributeValue::StringArray(vec![
            "111122223333".into(),
            "444455556666".into()
        ]))
    );
    // Raw delivery to SQS drops messages with more than ten attributes.
    assert!(n.attributes.len() <= 10);
}

#[test]
fn unknown_accounts_are_left_out_not_blank() {
    let mut d = kc_diagnosis();
    d.resource_account = None;
    let n = notification(&d);
    assert_eq!(attribute(&n, "resource_account"), None);
    assert!(body(&n).get("resource_account").is_none());
}

#[test]
fn oversized_diagnoses_are_trimmed_with_a_note() {
    // GIVEN a diagnosis whose patched policies alone exceed the SNS limit
    let mut d = kc_diagnosis();
    let huge = json!({"Statement": [{"Sid": "x".repeat(SNS_MAX_BYTES)}]});
    for f in d.findings.iter_mut() {
        if let Some(fix) = f.fix.as_mut() {
            fix.patched_policy = Some(huge.clone());
        }
    }
    // WHEN it becomes a notification
    let n = notification(&d);
    // THEN it fits, keeps the verdict and codes, and says what was removed
    assert!(n.size() <= SNS_MAX_BYTES, "{}", n.size());
    assert_eq!(n.trimmed.len(), 1, "{:?}", n.trimmed);
    let b = body(&n);
    assert_eq!(b["verdict"], "denied");
    assert_eq!(b["diagnosis"]["verdict"], "denied");
    assert!(b["trimmed"]["removed"][0]
        .as_str()
        .is_some_and(|s| s.starts_with("fix.patched_policy")));
    assert!(b["diagnosis"]["findings"][0]["fix"]["cli"].is_string());
    assert_eq!(
        b["text"][0].as_str().map(|l| l.starts_with("DENIED")),
        Some(true)
    );
}

#[test]
fn even_a_giant_report_is_cut_rather_than_rejected() {
    // GIVEN explanations so long that no detail removal is enough
    let mut d = kc_diagnosis();
    for f in d.findings.iter_mut() {
        f.explanation = "é\"".repeat(SNS_MAX_BYTES / 2);
    }
    let n = notification(&d);
    assert!(n.size() <= SNS_MAX_BYTES, "{}", n.size());
    let b = body(&n);
    let text = b["text"].as_array().expect("text lines");
    assert!(text
        .iter()
        .any(|l| l.as_str().is_some_and(|t| t.contains("report trimmed"))));
    assert_eq!(b["verdict"], "denied");
    assert_eq!(b["diagnosis"]["verdict"], "denied");
    assert!(b["diagnosis"]["finding_codes"].is_array());
    assert_eq!(b["blocking_codes"][0], "KEY_POLICY_NO_ALLOW");
}

#[test]
fn error_reports_carry_the_failure() {
    let n = error_notification(Some("e-1"), "PublishFailed", "timeout");
    assert_eq!(n.subject, "ERROR: could not diagnose event e-1");
    assert_eq!(
        attribute(&n, "verdict"),
        Some(&AttributeValue::String("error".into()))
    );
    let b = body(&n);
    assert_eq!(b["verdict"], "error");
    assert_eq!(b["error"], "timeout");
    assert_eq!(b["event_id"], "e-1");
    assert!(b["text"][2]
        .as_str()
        .is_some_and(|l| l.contains("PublishFailed: timeout")));
}

#[test]
fn scp_fixes_name_the_organization_management_account() {
    // GIVEN the first blocking cause must be fixed in the organization's management account
    let mut d = kc_diagnosis();
    let first = d
        .findings
        .iter_mut()
        .find(|f| f.blocking)
        .expect("a blocking finding");
    first.fix.as_mut().expect("a fix").account =
        "management account of the organization of 111122223333".into();
    let n = notification(&d);
    assert!(
        n.subject
            .starts_with("DENIED KEY_POLICY_NO_ALLOW +1 | fix: org management of 111122223333 | "),
        "{}",
        n.subject
    );
    assert_eq!(
        body(&n)["acting_accounts"][0],
        "management account of the organization of 111122223333"
    );
}

#[test]
fn direct_kms_calls_name_the_key() {
    let mut d = kc_diagnosis();
    d.hops.retain(|h| h.action.starts_with("kms:"));
    let n = notification(&d);
    assert!(
        n.subject
            .ends_with(" | key 1234abcd-12ab-34cd-56ef-1234567890ab"),
        "{}",
        n.subject
    );
    assert_eq!(body(&n)["kms_key"], "1234abcd-12ab-34cd-56ef-1234567890ab");
    assert!(body(&n).get("bucket").is_none());
}

#[test]
fn subjects_stay_under_the_limit_at_their_longest() {
    // GIVEN every part at its longest: caveats, the longest code, many causes, an SCP fix,
    // a 63-character bucket and a long prefix
    let mut d = kc_diagnosis();
    d.confidence = Confidence::Low;
    d.verdict = Verdict::Denied;
    d.findings[0].code = Code::PermissionsBoundaryExplicitDeny;
    if let Some(fix) = d.findings[0].fix.as_mut() {
        fix.account = "management account of the organization of 111122223333".into();
    }
    for _ in 0..10 {
        d.findings.push(d.findings[1].clone());
    }
    d.hops[0].resource = format!("arn:aws:s3:::{}/{}/k", "b".repeat(63), "p".repeat(300));
    d.hops[0].decision = "NotEvaluated".into();
    let n = notification(&d);
    // THEN the subject fits, and still starts with the verdict, caveats and code
    assert!(n.subject.len() < 100, "{} ({})", n.subject, n.subject.len());
    assert!(
        n.subject.starts_with(
            "DENIED (incomplete, low confidence) PERMISSIONS_BOUNDARY_EXPLICIT_DENY +11"
        ),
        "{}",
        n.subject
    );
}
