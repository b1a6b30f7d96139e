//! Evaluation throughput. Run: `cargo bench -p iam-eval --bench eval`.
//!
//! (a) the knowledge-center cross-account read: the S3 hop (bucket policy + two identity
//!     policies) and the KMS hop (key policy + the same identity policies), with the
//!     forward-access-session context;
//! (b) a 200-statement policy set (identity, bucket policy, SCPs) where the deciding statement
//!     is the last one;
//! (c) parsing a 500 KB `explain` input (200 statements and one condition block with 15,000
//!     keys), which the duplicate-key check once made quadratic.
#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test or benchmark fails loudly on a bad fixture"
)]

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use iam_eval::{authorize, Context, ContextValue, Named, Policy, PolicyKind, PolicySet, Request};
use serde_json::json;

const ROLE: &str = "arn:aws:iam::444455556666:role/reader";
const SESSION: &str = "arn:aws:sts::444455556666:assumed-role/reader/s1";
const KEY: &str = "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const OBJECT: &str = "arn:aws:s3:::doc-example-bucket/reports/q1.csv";

fn policy(v: serde_json::Value, kind: PolicyKind) -> Policy {
    Policy::parse(&iam_eval::Json::from_value(&v), kind).expect("benchmark policy parses")
}

fn kc(c: &mut Criterion) {
    let bucket = policy(
        json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "CrossAccountRead", "Effect": "Allow", "Principal": {"AWS": ROLE},
         "Action": "s3:GetObject", "Resource": "arn:aws:s3:::doc-example-bucket/*"},
        {"Sid": "DenyInsecure", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
         "Resource": ["arn:aws:s3:::doc-example-bucket", "arn:aws:s3:::doc-example-bucket/*"],
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}),
        PolicyKind::Resource,
    );
    let key = policy(
        json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "EnableIAM", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
         "Action": "kms:*", "Resource": "*"},
        {"Sid": "AllowReaderDecrypt", "Effect": "Allow", "Principal": {"AWS": ROLE},
         "Action": "kms:Decrypt", "Resource": "*",
         "Condition": {"StringEquals": {"kms:ViaService": "s3.us-west-2.amazonaws.com"}}}]}),
        PolicyKind::Resource,
    );
    let id_s3 = policy(
        json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::doc-example-bucket/*"}]}),
        PolicyKind::Identity,
    );
    let id_kms = policy(
        json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": KEY}]}),
        PolicyKind::Identity,
    );
    let identity = vec![
        Named {
            name: "ReadReports",
            policy: &id_s3,
        },
        Named {
            name: "DecryptReports",
            policy: &id_kms,
        },
    ];
    let mut ctx = Context::new();
    ctx.insert("aws:SecureTransport", ContextValue::Single("true".into()));
    ctx.insert("aws:SourceIp", ContextValue::Single("198.51.100.24".into()));
    let s3_req = Request::new(
        SESSION,
        "s3:GetObject",
        OBJECT,
        Some("111122223333"),
        ctx.clone(),
    )
    .expect("request");
    let mut kms_ctx = ctx;
    kms_ctx.insert("aws:ViaAWSService", ContextValue::Single("true".into()));
    kms_ctx.insert(
        "kms:ViaService",
        ContextValue::Single("s3.us-west-2.amazonaws.com".into()),
    );
    kms_ctx.insert(
        "kms:EncryptionContext:aws:s3:arn",
        ContextValue::Single(OBJECT.into()),
    );
    let kms_req = Request::new(SESSION, "kms:Decrypt", KEY, None, kms_ctx).expect("request");
    let s3_set = PolicySet {
        identity: identity.clone(),
        resource: Some(Named {
            name: "bucket",
            policy: &bucket,
        }),
        ..PolicySet::default()
    };
    let kms_set = PolicySet {
        identity,
        resource: Some(Named {
            name: "key",
            policy: &key,
        }),
        ..PolicySet::default()
    };
    assert_eq!(
        authorize(&s3_req, &s3_set).decision,
        iam_eval::Decision::Allowed
    );
    assert_eq!(
        authorize(&kms_req, &kms_set).decision,
        iam_eval::Decision::Allowed
    );

    let mut g = c.benchmark_group("kc_cross_account");
    g.throughput(Throughput::Elements(1));
    g.bench_function("s3_hop", |b| {
        b.iter(|| authorize(black_box(&s3_req), black_box(&s3_set)))
    });
    g.bench_function("kms_hop", |b| {
        b.iter(|| authorize(black_box(&kms_req), black_box(&kms_set)))
    });
    g.bench_function("both_hops", |b| {
        b.iter(|| {
            let a = authorize(black_box(&s3_req), black_box(&s3_set));
            let k = authorize(black_box(&kms_req), black_box(&kms_set));
            (a.decision, k.decision)
        })
    });
    g.finish();
}

fn large(c: &mut Criterion) {
    // 150 identity statements across 5 policies, a 40-statement bucket policy, 10 SCP
    // statements over two levels: 200 statements, the matching allow last.
    let mut identity_docs = Vec::new();
    for p in 0..5 {
        let mut sts = Vec::new();
        for i in 0..30 {
            let n = p * 30 + i;
            sts.push(json!({"Sid": format!("S{n}"), "Effect": "Allow",
                "Action": [format!("s3:Get{n}*"), "dynamodb:Query"],
                "Resource": format!("arn:aws:s3:::bucket-{n}/*"),
                "Condition": {"StringEquals": {"aws:PrincipalTag/team": format!("t{n}")}}}));
        }
        if p == 4 {
            sts.push(
                json!({"Sid": "Match", "Effect": "Allow", "Action": "s3:GetObject",
                "Resource": "arn:aws:s3:::doc-example-bucket/*"}),
            );
        }
        identity_docs.push(policy(
            json!({"Version": "2012-10-17", "Statement": sts}),
            PolicyKind::Identity,
        ));
    }
    let mut bsts = Vec::new();
    for i in 0..39 {
        bsts.push(json!({"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{:012}:role/r{i}", i)},
            "Action": "s3:GetObject", "Resource": "arn:aws:s3:::doc-example-bucket/*"}));
    }
    bsts.push(json!({"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::doc-example-bucket/*"}));
    let bucket = policy(
        json!({"Version": "2012-10-17", "Statement": bsts}),
        PolicyKind::Resource,
    );
    let scp_root = policy(
        json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "Action": "s3:*", "Resource": "*", "Condition": {"StringNotEquals": {"aws:RequestedRegion": ["us-west-2", "us-east-1"]}}},
        {"Effect": "Deny", "Action": "kms:ScheduleKeyDeletion", "Resource": "*"},
        {"Effect": "Deny", "Action": "iam:*", "Resource": "*", "Condition": {"StringNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/admin"}}},
        {"Effect": "Deny", "NotAction": ["s3:*", "kms:*", "sts:*"], "Resource": "*", "Condition": {"Bool": {"aws:ViaAWSService": "false"}}}]}),
        PolicyKind::Identity,
    );
    let scp_ou = policy(
        json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:*", "kms:*"], "Resource": "*"},
        {"Effect": "Deny", "Action": "s3:DeleteBucket", "Resource": "*"},
        {"Effect": "Deny", "Action": "s3:PutBucketPolicy", "Resource": "*"},
        {"Effect": "Deny", "Action": "organizations:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "s3:*", "Resource": "*", "Condition": {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}}]}),
        PolicyKind::Identity,
    );
    let total: usize = identity_docs
        .iter()
        .map(|p| p.statements.len())
        .sum::<usize>()
        + bucket.statements.len()
        + scp_root.statements.len()
        + scp_ou.statements.len();
    assert!((195..=205).contains(&total), "{total} statements");
    let names: Vec<String> = (0..identity_docs.len())
        .map(|i| format!("policy{i}"))
        .collect();
    let set = PolicySet {
        identity: identity_docs
            .iter()
            .zip(&names)
            .map(|(p, n)| Named { name: n, policy: p })
            .collect(),
        resource: Some(Named {
            name: "bucket",
            policy: &bucket,
        }),
        scp: vec![
            vec![Named {
                name: "root",
                policy: &scp_root,
            }],
            vec![Named {
                name: "ou",
                policy: &scp_ou,
            }],
        ],
        ..PolicySet::default()
    };
    let mut ctx = Context::new();
    ctx.insert(
        "aws:RequestedRegion",
        ContextValue::Single("us-west-2".into()),
    );
    ctx.insert("aws:ViaAWSService", ContextValue::Single("false".into()));
    ctx.insert("aws:SourceIp", ContextValue::Single("198.51.100.24".into()));
    ctx.insert(
        "aws:PrincipalTag/team",
        ContextValue::Single("reports".into()),
    );
    let req =
        Request::new(SESSION, "s3:GetObject", OBJECT, Some("111122223333"), ctx).expect("request");
    assert_eq!(authorize(&req, &set).decision, iam_eval::Decision::Allowed);
    let mut g = c.benchmark_group("policy_set_200_statements");
    g.throughput(Throughput::Elements(1));
    g.bench_function("authorize", |b| {
        b.iter(|| authorize(black_box(&req), black_box(&set)))
    });
    g.finish();
}

/// An `explain` input of at least 500 KB: 200 ordinary statements plus one Deny whose
/// `StringEquals` block has 15,000 keys (the shape that made the duplicate-key check slow).
fn input_500kb() -> String {
    let mut sts = Vec::new();
    for i in 0..200 {
        sts.push(json!({"Sid": format!("S{i}"), "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject"],
            "Resource": format!("arn:aws:s3:::bucket-{i}/*"),
            "Condition": {"StringEquals": {"aws:PrincipalTag/team": format!("t{i}")}}}));
    }
    let keys: serde_json::Map<String, serde_json::Value> = (0..15_000)
        .map(|i| (format!("aws:RequestTag/k{i:06}"), json!(format!("v{i}"))))
        .collect();
    sts.push(
        json!({"Sid": "Big", "Effect": "Deny", "Action": "s3:*", "Resource": "*",
        "Condition": {"StringEquals": keys}}),
    );
    json!({"request": {"principal": SESSION, "action": "s3:GetObject", "resource": OBJECT,
            "resource_account": "111122223333"},
        "policies": {"identity": [{"Version": "2012-10-17", "Statement": sts}]}})
    .to_string()
}

fn parse_500kb(c: &mut Criterion) {
    let text = input_500kb();
    assert!(text.len() >= 500_000, "{} bytes", text.len());
    let parsed = iam_eval::ExplainInput::parse(&text).expect("the benchmark input parses");
    assert_eq!(parsed.identity.len(), 1);
    let mut g = c.benchmark_group("parse_500kb_policy_set");
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.sample_size(20);
    g.bench_function("explain_input", |b| {
        b.iter(|| iam_eval::ExplainInput::parse(black_box(&text)))
    });
    g.finish();
}

criterion_group!(benches, kc, large, parse_500kb);
criterion_main!(benches);
