//! The snapshot writer and reader are inverses: every snapshot the repository ships (the
//! examples and each scenario's snapshot, patch applied) read, written with
//! `Snapshot::to_value` and read again gives an equal typed snapshot, and writing is a fixed
//! point after the first round.
#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails loudly on a bad fixture"
)]

use std::path::{Path, PathBuf};

use auditor::json_patch;
use auditor::snapshot::Snapshot;
use serde_json::Value;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

/// Reads `raw`, writes it, reads the result, and checks both equalities.
fn assert_round_trip(raw: &Value, what: &str) {
    let first = Snapshot::from_value(raw).unwrap_or_else(|e| panic!("{what}: {e}"));
    let written = first.to_value();
    let text = serde_json::to_string_pretty(&written).unwrap();
    let second = Snapshot::from_text(&text).unwrap_or_else(|e| panic!("{what} written: {e}"));
    assert_eq!(first, second, "{what}: read → write → read differs");
    assert_eq!(
        second.to_value(),
        written,
        "{what}: writing is not a fixed point"
    );
}

#[test]
fn examples_round_trip() {
    for name in ["kc-scenario.json", "kc-scenario-fixed.json"] {
        let raw = read_json(&repo_root().join("examples").join(name));
        assert_round_trip(&raw, name);
        // Not vacuous: the example has both accounts and their policies.
        let snap = Snapshot::from_value(&raw).unwrap();
        assert_eq!(snap.accounts.len(), 2, "{name}");
    }
}

#[test]
fn scenario_snapshots_round_trip() {
    let dir = repo_root().join("tests/scenarios");
    let mut checked = 0;
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    entries.sort();
    for path in entries {
        let case = read_json(&path);
        let what = path.display().to_string();
        let mut raw = match case.get("snapshot") {
            Some(Value::String(rel)) => read_json(&repo_root().join(rel)),
            Some(inline) => inline.clone(),
            None => continue,
        };
        if let Some(p) = case.get("patch") {
            let ops = json_patch::parse_patch(p).unwrap_or_else(|e| panic!("{what}: {e}"));
            json_patch::apply(&mut raw, &ops).unwrap_or_else(|e| panic!("{what}: {e}"));
        }
        // Scenarios of invalid snapshots have nothing to round-trip.
        if Snapshot::from_value(&raw).is_err() {
            continue;
        }
        assert_round_trip(&raw, &what);
        checked += 1;
    }
    assert!(checked >= 100, "only {checked} scenario snapshots checked");
}

mod generated {
    //! Snapshots generated from the typed model (S3, KMS and collection errors, the parts
    //! whose payloads the writer builds field by field) survive write → read unchanged.

    use std::collections::BTreeMap;

    use auditor::snapshot::{
        Account, AclGrant, AclPermission, Bucket, CollectionError, DefaultEncryption, Grantee, Key,
        KeyManager, KeyMetadata, KeyState, NamedPolicy, Object, ObjectOwnership, PublicAccessBlock,
        Snapshot,
    };
    use proptest::prelude::*;
    use serde_json::{json, Value};

    const ACCOUNT: &str = "111122223333";

    fn document() -> Value {
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::444455556666:root"}, "Action": "s3:GetObject",
            "Resource": "*"}]})
    }

    /// A policy in one of the forms a snapshot accepts.
    fn source() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(document()),
            Just(Value::String(document().to_string())),
            Just(json!({"Policy": document().to_string()})),
        ]
    }

    fn text() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9/._ :-]{1,12}"
    }

    fn public_access_block() -> impl Strategy<Value = PublicAccessBlock> {
        (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(a, b, c, d)| {
            PublicAccessBlock {
                block_public_acls: a,
                ignore_public_acls: b,
                block_public_policy: c,
                restrict_public_buckets: d,
            }
        })
    }

    fn acl_grant() -> impl Strategy<Value = AclGrant> {
        let grantee = prop_oneof![
            text().prop_map(|id| Grantee::CanonicalUser { id }),
            Just(Grantee::Group {
                uri: "http://acs.amazonaws.com/groups/global/AllUsers".into()
            }),
            Just(Grantee::Email {
                address: "someone@example.com".into()
            }),
        ];
        let permission = prop_oneof![
            Just(AclPermission::FullControl),
            Just(AclPermission::Read),
            Just(AclPermission::Write),
            Just(AclPermission::ReadAcp),
            Just(AclPermission::WriteAcp),
        ];
        (grantee, permission).prop_map(|(grantee, permission)| AclGrant {
            grantee,
            permission,
        })
    }

    fn object() -> impl Strategy<Value = Object> {
        (
            proptest::option::of(prop_oneof![
                Just("AES256"),
                Just("aws:kms"),
                Just("aws:kms:dsse")
            ]),
            proptest::option::of(text()),
            any::<bool>(),
            proptest::option::of(text()),
            proptest::collection::vec(acl_grant(), 0..3),
            proptest::option::of(text()),
            proptest::collection::btree_map(text(), "[a-z]{0,4}", 0..3),
        )
            .prop_map(
                |(sse, kms_key_id, bucket_key_enabled, owner_id, grants, version_id, tags)| {
                    Object {
                        sse: sse.map(str::to_owned),
                        kms_key_id,
                        bucket_key_enabled,
                        owner_id,
                        grants,
                        version_id,
                        tags,
                    }
                },
            )
    }

    fn bucket(name: String) -> impl Strategy<Value = (String, Bucket)> {
        let encryption = (
            prop_oneof![Just("AES256"), Just("aws:kms")],
            proptest::option::of(text()),
            any::<bool>(),
        )
            .prop_map(|(a, k, b)| DefaultEncryption {
                algorithm: a.to_owned(),
                kms_key_id: k,
                bucket_key_enabled: b,
            });
        let ownership = prop_oneof![
            Just(ObjectOwnership::BucketOwnerEnforced),
            Just(ObjectOwnership::BucketOwnerPreferred),
            Just(ObjectOwnership::ObjectWriter),
        ];
        (
            prop_oneof![
                Just("us-west-2"),
                Just("eu-central-1"),
                Just("us-gov-east-1")
            ],
            proptest::option::of(source()),
            proptest::option::of(encryption),
            proptest::option::of(ownership),
            proptest::option::of(public_access_block()),
            proptest::option::of(text()),
            proptest::collection::vec(acl_grant(), 0..3),
            proptest::collection::btree_map(text(), object(), 0..3),
            proptest::option::of(prop_oneof![Just("Requester"), Just("BucketOwner")]),
        )
            .prop_map(
                move |(
                    region,
                    policy,
                    encryption,
                    ownership,
                    pab,
                    owner,
                    grants,
                    objects,
                    payer,
                )| {
                    let policy = policy.map(|p| NamedPolicy::bucket_policy(&name, p).unwrap());
                    let bucket = Bucket {
                        region: region.to_owned(),
                        policy,
                        encryption,
                        ownership,
                        public_access_block: pab,
                        acl_owner_id: owner,
                        acl_grants: grants,
                        objects,
                        request_payment: payer.map(str::to_owned),
                    };
                    (name.clone(), bucket)
                },
            )
    }

    fn key() -> impl Strategy<Value = (String, Key)> {
        (
            "[a-f0-9]{8}",
            any::<bool>(),
            prop_oneof![
                Just("Enabled"),
                Just("Disabled"),
                Just("PendingDeletion"),
                Just("Frozen")
            ],
            any::<bool>(),
            proptest::option::of(source()),
            proptest::collection::vec("alias/[a-z]{1,6}", 0..3),
        )
            .prop_map(|(id, aws, state, multi_region, policy, aliases)| {
                let arn = format!("arn:aws:kms:us-west-2:{ACCOUNT}:key/{id}");
                let key = Key {
                    metadata: KeyMetadata {
                        key_id: id,
                        arn: arn.clone(),
                        key_manager: if aws {
                            KeyManager::Aws
                        } else {
                            KeyManager::Customer
                        },
                        key_state: KeyState::parse(state),
                        multi_region,
                        region: "us-west-2".into(),
                        account: ACCOUNT.into(),
                    },
                    policy: policy.map(|p| NamedPolicy::key_policy(&arn, p).unwrap()),
                    grants: Vec::new(),
                    aliases,
                };
                (arn, key)
            })
    }

    fn snapshot() -> impl Strategy<Value = Snapshot> {
        let buckets = proptest::collection::btree_set("[a-z0-9.-]{3,12}", 0..3)
            .prop_flat_map(|names| names.into_iter().map(bucket).collect::<Vec<_>>());
        let error = (
            text(),
            proptest::option::of(text()),
            proptest::option::of(text()),
        )
            .prop_map(|(operation, resource, message)| CollectionError {
                account: Some(ACCOUNT.into()),
                operation,
                resource,
                error: "AccessDenied".into(),
                message,
            });
        (
            proptest::option::of(text()),
            proptest::option::of(text()),
            proptest::option::of(public_access_block()),
            buckets,
            proptest::collection::vec(key(), 0..3),
            proptest::collection::vec(error, 0..2),
        )
            .prop_map(|(description, canonical_id, pab, buckets, keys, errors)| {
                let account = Account {
                    canonical_id,
                    public_access_block: pab,
                    s3: buckets.into_iter().collect(),
                    kms: keys.into_iter().collect::<BTreeMap<_, _>>(),
                    ..Account::default()
                };
                Snapshot {
                    description,
                    accounts: BTreeMap::from([(ACCOUNT.to_owned(), account)]),
                    collection_errors: errors,
                }
            })
    }

    proptest! {
        #[test]
        fn written_snapshots_read_back_equal(s in snapshot()) {
            let text = serde_json::to_string(&s.to_value()).unwrap();
            let read = Snapshot::from_text(&text).unwrap();
            prop_assert_eq!(read, s);
        }
    }
}
