//! Table tests for the matchers: one `#[test]` per row, so that a failure names the rule that
//! broke. Tables: action matching, resource matching, principal matching, condition operators
//! on single values, and IP/CIDR parsing.
//!
//! Action, resource and condition rows go through the public entry points a caller uses
//! (`Policy::from_text` + `Request::new` + `authorize`); principal and CIDR rows call the
//! matchers directly.

// A test fails by panicking; the helpers outside `#[test]` functions do so on purpose.
#![allow(
    clippy::indexing_slicing,
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test fails loudly on a bad fixture"
)]

use std::net::IpAddr;

use iam_eval::condition::IpNet;
use iam_eval::principal::PolicyPrincipal;
use iam_eval::{
    authorize, Caller, Context, ContextValue, Decision, MatchKind, Named, Policy, PolicyKind,
    PolicySet, Request,
};

/// The caller of every action, resource and condition row: an IAM user evaluated in its own
/// account, so the identity policy alone decides.
const USER: &str = "arn:aws:iam::111122223333:user/alice";
const ACCOUNT: &str = "111122223333";
const OBJECT: &str = "arn:aws:s3:::doc-example-bucket/reports/q1.csv";

/// Evaluates one identity policy for `USER` and returns the decision.
fn decide(policy: &str, action: &str, resource: &str, context: &[(&str, &str)]) -> Decision {
    let policy = Policy::from_text(policy, PolicyKind::Identity)
        .unwrap_or_else(|e| panic!("the row's policy must parse: {e}\n{policy}"));
    let mut ctx = Context::new();
    for (k, v) in context {
        ctx.insert(k, ContextValue::Single((*v).to_owned()));
    }
    let request = Request::new(USER, action, resource, Some(ACCOUNT), ctx)
        .unwrap_or_else(|e| panic!("the row's request must be valid: {e}"));
    let set = PolicySet {
        identity: vec![Named {
            name: "identity[0]",
            policy: &policy,
        }],
        ..PolicySet::default()
    };
    authorize(&request, &set).decision
}

/// An Allow statement with the given `Action` value (JSON) on every resource.
fn action_policy(action_json: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":{action_json},"Resource":"*"}}]}}"#
    )
}

// ---------------------------------------------------------------------------------------
// Actions: `service:name` patterns, case-insensitive, `*` and `?` in the name only.
// ---------------------------------------------------------------------------------------

macro_rules! action_rows {
    ($($name:ident: $pattern:expr, $action:expr => $allowed:expr;)*) => {$(
        #[test]
        fn $name() {
            let policy = action_policy(&format!("{:?}", $pattern));
            let got = decide(&policy, $action, OBJECT, &[]) == Decision::Allowed;
            assert_eq!(got, $allowed, "Action {:?} vs request {:?}", $pattern, $action);
        }
    )*};
}

action_rows! {
    action_exact_match: "s3:GetObject", "s3:GetObject" => true;
    action_name_case_insensitive: "s3:getobject", "s3:GetObject" => true;
    action_service_case_insensitive: "S3:GetObject", "s3:GetObject" => true;
    action_request_case_insensitive: "s3:GetObject", "S3:GETOBJECT" => true;
    action_star_everything: "*", "kms:Decrypt" => true;
    action_service_star: "s3:*", "s3:PutObject" => true;
    action_service_star_other_service: "s3:*", "kms:Decrypt" => false;
    action_prefix_star: "s3:Get*", "s3:GetObjectVersion" => true;
    action_prefix_star_no_match: "s3:Get*", "s3:PutObject" => false;
    action_star_matches_empty_suffix: "s3:GetObject*", "s3:GetObject" => true;
    action_inner_star: "kms:*DataKey*", "kms:GenerateDataKeyWithoutPlaintext" => true;
    action_question_one_char: "kms:Re?ncrypt*", "kms:ReEncryptFrom" => true;
    action_question_needs_one_char: "s3:GetObject?", "s3:GetObject" => false;
    action_other_name: "s3:GetObject", "s3:GetObjectAcl" => false;
    action_same_name_other_service: "kms:GetObject", "s3:GetObject" => false;
    action_no_substring_match: "s3:Object", "s3:GetObject" => false;
}

macro_rules! action_list_rows {
    ($($name:ident: $json:expr, $action:expr => $allowed:expr;)*) => {$(
        #[test]
        fn $name() {
            let got = decide(&action_policy($json), $action, OBJECT, &[]) == Decision::Allowed;
            assert_eq!(got, $allowed, "Action {} vs request {:?}", $json, $action);
        }
    )*};
}

action_list_rows! {
    action_array_second_entry_matches: r#"["s3:PutObject","s3:GetObject"]"#, "s3:GetObject" => true;
    action_array_no_entry_matches: r#"["s3:PutObject","kms:Decrypt"]"#, "s3:GetObject" => false;
}

macro_rules! not_action_rows {
    ($($name:ident: $json:expr, $action:expr => $allowed:expr;)*) => {$(
        #[test]
        fn $name() {
            let policy = format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","NotAction":{},"Resource":"*"}}]}}"#,
                $json
            );
            let got = decide(&policy, $action, OBJECT, &[]) == Decision::Allowed;
            assert_eq!(got, $allowed, "NotAction {} vs request {:?}", $json, $action);
        }
    )*};
}

not_action_rows! {
    not_action_listed_action_not_covered: r#""s3:GetObject""#, "s3:GetObject" => false;
    not_action_unlisted_action_covered: r#""s3:GetObject""#, "s3:PutObject" => true;
    not_action_service_star_covers_other_services: r#""s3:*""#, "kms:Decrypt" => true;
    not_action_is_case_insensitive: r#""S3:GETOBJECT""#, "s3:GetObject" => false;
}

macro_rules! action_rejected_rows {
    ($($name:ident: $pattern:expr;)*) => {$(
        #[test]
        fn $name() {
            let policy = action_policy(&format!("{:?}", $pattern));
            let err = Policy::from_text(&policy, PolicyKind::Identity)
                .expect_err("the action must be rejected");
            assert_eq!(err.path(), "Statement[0].Action", "{err}");
        }
    )*};
}

action_rejected_rows! {
    action_rejected_wildcard_in_service: "s3*:GetObject";
    action_rejected_question_in_service: "s?:GetObject";
    action_rejected_without_colon: "GetObject";
    action_rejected_empty_name: "s3:";
}

// ---------------------------------------------------------------------------------------
// Resources: ARNs segment by segment, case-sensitive, `*` crossing `/` in the resource part.
// ---------------------------------------------------------------------------------------

macro_rules! resource_rows {
    ($($name:ident: $pattern:expr, $resource:expr => $allowed:expr;)*) => {$(
        #[test]
        fn $name() {
            let policy = format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"*","Resource":{:?}}}]}}"#,
                $pattern
            );
            let got = decide(&policy, "s3:GetObject", $resource, &[]) == Decision::Allowed;
            assert_eq!(got, $allowed, "Resource {:?} vs {:?}", $pattern, $resource);
        }
    )*};
}

resource_rows! {
    resource_object_star_crosses_slash: "arn:aws:s3:::doc-example-bucket/*", OBJECT => true;
    resource_bucket_arn_does_not_cover_object: "arn:aws:s3:::doc-example-bucket", OBJECT => false;
    resource_key_case_sensitive: "arn:aws:s3:::doc-example-bucket/Reports/*", OBJECT => false;
    resource_bucket_name_case_sensitive: "arn:aws:s3:::Doc-Example-Bucket/*", OBJECT => false;
    resource_question_mark_one_char: "arn:aws:s3:::doc-example-bucket/reports/q?.csv", OBJECT => true;
    resource_star_in_bucket_name: "arn:aws:s3:::doc-*-bucket/reports/*", OBJECT => true;
    resource_star_alone: "*", OBJECT => true;
    resource_region_star_in_key_arn: "arn:aws:kms:*:111122223333:key/*", "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab" => true;
    resource_alias_arn_does_not_cover_key: "arn:aws:kms:us-west-2:111122223333:alias/reports", "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab" => false;
    // A * ending the last segment of a short pattern crosses colons (docs/design.md).
    resource_short_arn_trailing_star_crosses_colons: "arn:aws:s3:*", OBJECT => true;
    resource_short_arn_without_trailing_star_matches_nothing: "arn:aws:s3", OBJECT => false;
    resource_short_arn_other_service: "arn:aws:kms:*", OBJECT => false;
    resource_all_objects_of_all_buckets: "arn:aws:s3:::*", OBJECT => true;
    resource_account_star_in_key_arn: "arn:aws:kms:us-west-2:*:key/1234abcd-12ab-34cd-56ef-1234567890ab", "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab" => true;
}

// ---------------------------------------------------------------------------------------
// Principals (IAM User Guide, "AWS JSON policy elements: Principal"): how a policy principal matches a caller, and how strongly.
// ---------------------------------------------------------------------------------------

macro_rules! principal_rows {
    ($($name:ident: $policy:expr, $caller:expr => $expected:expr;)*) => {$(
        #[test]
        fn $name() {
            let caller = Caller::parse($caller)
                .unwrap_or_else(|e| panic!("the row's caller must parse: {e}"));
            let got = PolicyPrincipal::aws($policy).matches(&caller);
            let want: Option<MatchKind> = $expected;
            assert_eq!(got, want, "policy principal {:?} vs caller {:?}", $policy, $caller);
        }
    )*};
}

const SESSION: &str = "arn:aws:sts::444455556666:assumed-role/reader/s1";

principal_rows! {
    principal_star_matches_session_as_everyone: "*", SESSION => Some(MatchKind::Everyone);
    principal_star_matches_service_as_everyone: "*", "s3.amazonaws.com" => Some(MatchKind::Everyone);
    principal_account_id_names_the_account: "444455556666", SESSION => Some(MatchKind::Account);
    principal_root_arn_names_the_account: "arn:aws:iam::444455556666:root", SESSION => Some(MatchKind::Account);
    principal_root_arn_covers_users: "arn:aws:iam::444455556666:root", "arn:aws:iam::444455556666:user/alice" => Some(MatchKind::Account);
    principal_root_arn_covers_root_caller: "arn:aws:iam::444455556666:root", "arn:aws:iam::444455556666:root" => Some(MatchKind::Account);
    principal_other_account_no_match: "111122223333", SESSION => None;
    principal_account_never_matches_service: "444455556666", "s3.amazonaws.com" => None;
    principal_role_matches_its_session: "arn:aws:iam::444455556666:role/reader", SESSION => Some(MatchKind::Role);
    principal_role_with_path_matches_session: "arn:aws:iam::444455556666:role/team/reader", SESSION => Some(MatchKind::Role);
    principal_role_matches_bare_role_caller: "arn:aws:iam::444455556666:role/reader", "arn:aws:iam::444455556666:role/reader" => Some(MatchKind::Role);
    principal_role_name_case_sensitive: "arn:aws:iam::444455556666:role/Reader", SESSION => None;
    principal_role_in_other_account: "arn:aws:iam::111122223333:role/reader", SESSION => None;
    principal_other_role: "arn:aws:iam::444455556666:role/writer", SESSION => None;
    principal_role_does_not_match_user_of_same_name: "arn:aws:iam::444455556666:role/alice", "arn:aws:iam::444455556666:user/alice" => None;
    principal_session_matches_same_session: SESSION, SESSION => Some(MatchKind::Direct);
    principal_session_other_session_name: "arn:aws:sts::444455556666:assumed-role/reader/s2", SESSION => None;
    principal_session_not_matched_by_bare_role_caller: SESSION, "arn:aws:iam::444455556666:role/reader" => None;
    principal_user_matches_user: "arn:aws:iam::444455556666:user/alice", "arn:aws:iam::444455556666:user/alice" => Some(MatchKind::Direct);
    principal_user_path_is_part_of_the_arn: "arn:aws:iam::444455556666:user/staff/alice", "arn:aws:iam::444455556666:user/alice" => None;
    principal_user_without_path_does_not_match_user_with_path: "arn:aws:iam::444455556666:user/alice", "arn:aws:iam::444455556666:user/staff/alice" => None;
    principal_user_with_same_path: "arn:aws:iam::444455556666:user/staff/alice", "arn:aws:iam::444455556666:user/staff/alice" => Some(MatchKind::Direct);
    principal_root_arn_other_partition: "arn:aws-cn:iam::444455556666:root", SESSION => None;
    principal_root_arn_aws_vs_china_caller: "arn:aws:iam::444455556666:root", "arn:aws-cn:sts::444455556666:assumed-role/reader/s1" => None;
    principal_root_arn_china_vs_china_caller: "arn:aws-cn:iam::444455556666:root", "arn:aws-cn:sts::444455556666:assumed-role/reader/s1" => Some(MatchKind::Account);
    principal_account_id_any_partition: "444455556666", "arn:aws-us-gov:sts::444455556666:assumed-role/reader/s1" => Some(MatchKind::Account);
    principal_role_other_partition: "arn:aws-us-gov:iam::444455556666:role/reader", SESSION => None;
    principal_user_other_partition: "arn:aws-cn:iam::444455556666:user/alice", "arn:aws:iam::444455556666:user/alice" => None;
    principal_user_does_not_match_session: "arn:aws:iam::444455556666:user/alice", SESSION => None;
    principal_user_does_not_match_its_federated_session: "arn:aws:iam::444455556666:user/bob", "arn:aws:sts::444455556666:federated-user/bob" => None;
    principal_federated_user_session: "arn:aws:sts::444455556666:federated-user/bob", "arn:aws:sts::444455556666:federated-user/bob" => Some(MatchKind::Direct);
    principal_orphaned_role_id_matches_nothing: "AROA4444EXAMPLEREADER", SESSION => None;
    principal_unrecognized_text_matches_nothing: "reader", SESSION => None;
}

macro_rules! principal_form_rows {
    ($($name:ident: $policy:expr => $pattern:pat,)*) => {$(
        #[test]
        fn $name() {
            let got = PolicyPrincipal::aws($policy);
            assert!(matches!(got, $pattern), "{:?} read as {got:?}", $policy);
        }
    )*};
}

principal_form_rows! {
    principal_form_star_is_everyone: "*" => PolicyPrincipal::Everyone,
    principal_form_account_id: "444455556666" => PolicyPrincipal::AccountIn { partition: None, .. },
    principal_form_china_root_arn: "arn:aws-cn:iam::444455556666:root" => PolicyPrincipal::AccountIn { partition: Some(_), .. },
    principal_form_root_arn_is_account: "arn:aws:iam::444455556666:root" => PolicyPrincipal::Account(_),
    principal_form_unique_id_is_orphaned: "AIDA4444EXAMPLEALICE" => PolicyPrincipal::Orphaned(_),
    principal_form_short_account_is_unrecognized: "44445555666" => PolicyPrincipal::Unrecognized(_),
}

// ---------------------------------------------------------------------------------------
// Conditions on single values: one operator, one key, one context value (or none).
// ---------------------------------------------------------------------------------------

macro_rules! condition_rows {
    ($($name:ident: $condition:expr, $value:expr => $holds:expr;)*) => {$(
        #[test]
        fn $name() {
            let policy = format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{}}}]}}"#,
                $condition
            );
            let value: Option<&str> = $value;
            let ctx: Vec<(&str, &str)> = value.map(|v| ("test:Key", v)).into_iter().collect();
            let got = decide(&policy, "s3:GetObject", OBJECT, &ctx) == Decision::Allowed;
            assert_eq!(got, $holds, "Condition {} with test:Key = {:?}", $condition, value);
        }
    )*};
}

condition_rows! {
    cond_string_equals_same: r#"{"StringEquals":{"test:Key":"blue"}}"#, Some("blue") => true;
    cond_string_equals_case_sensitive: r#"{"StringEquals":{"test:Key":"blue"}}"#, Some("Blue") => false;
    cond_string_equals_star_is_literal: r#"{"StringEquals":{"test:Key":"bl*"}}"#, Some("blue") => false;
    cond_string_equals_absent_key: r#"{"StringEquals":{"test:Key":"blue"}}"#, None => false;
    cond_string_equals_if_exists_absent_key: r#"{"StringEqualsIfExists":{"test:Key":"blue"}}"#, None => true;
    cond_string_equals_if_exists_present_other: r#"{"StringEqualsIfExists":{"test:Key":"blue"}}"#, Some("red") => false;
    cond_string_equals_key_name_case_insensitive: r#"{"StringEquals":{"TEST:KEY":"blue"}}"#, Some("blue") => true;
    cond_string_equals_any_of_values: r#"{"StringEquals":{"test:Key":["red","blue"]}}"#, Some("blue") => true;
    cond_string_not_equals_other: r#"{"StringNotEquals":{"test:Key":"blue"}}"#, Some("red") => true;
    cond_string_not_equals_absent_key: r#"{"StringNotEquals":{"test:Key":"blue"}}"#, None => true;
    cond_string_not_equals_is_nor: r#"{"StringNotEquals":{"test:Key":["red","blue"]}}"#, Some("blue") => false;
    cond_string_equals_ignore_case: r#"{"StringEqualsIgnoreCase":{"test:Key":"BLUE"}}"#, Some("blue") => true;
    cond_string_not_equals_ignore_case: r#"{"StringNotEqualsIgnoreCase":{"test:Key":"BLUE"}}"#, Some("blue") => false;
    cond_string_like_star: r#"{"StringLike":{"test:Key":"team-*"}}"#, Some("team-data") => true;
    cond_string_like_question: r#"{"StringLike":{"test:Key":"v?"}}"#, Some("v1") => true;
    cond_string_like_whole_string: r#"{"StringLike":{"test:Key":"team"}}"#, Some("team-data") => false;
    cond_string_not_like_match: r#"{"StringNotLike":{"test:Key":"team-*"}}"#, Some("team-data") => false;
    cond_numeric_equals_as_number: r#"{"NumericEquals":{"test:Key":"10"}}"#, Some("10.0") => true;
    cond_numeric_less_than_not_lexical: r#"{"NumericLessThan":{"test:Key":"10"}}"#, Some("9") => true;
    cond_numeric_less_than_equal_value: r#"{"NumericLessThan":{"test:Key":"10"}}"#, Some("10") => false;
    cond_numeric_less_than_equals_equal_value: r#"{"NumericLessThanEquals":{"test:Key":"10"}}"#, Some("10") => true;
    cond_numeric_greater_than_json_number: r#"{"NumericGreaterThan":{"test:Key":5}}"#, Some("6") => true;
    cond_numeric_request_not_a_number: r#"{"NumericGreaterThanEquals":{"test:Key":"0"}}"#, Some("many") => false;
    cond_numeric_not_equals_same: r#"{"NumericNotEquals":{"test:Key":"3"}}"#, Some("3") => false;
    cond_date_less_than_iso: r#"{"DateLessThan":{"test:Key":"2030-01-01T00:00:00Z"}}"#, Some("2026-03-02T09:14:03Z") => true;
    cond_date_greater_than_epoch_policy: r#"{"DateGreaterThan":{"test:Key":"1700000000"}}"#, Some("2026-03-02T09:14:03Z") => true;
    cond_date_equals_epoch_vs_iso: r#"{"DateEquals":{"test:Key":"2024-01-01T00:00:00Z"}}"#, Some("1704067200") => true;
    cond_date_equals_offset_same_instant: r#"{"DateEquals":{"test:Key":"2024-01-01T02:00:00+02:00"}}"#, Some("2024-01-01T00:00:00Z") => true;
    cond_date_greater_than_equals_same_instant: r#"{"DateGreaterThanEquals":{"test:Key":"2024-01-01"}}"#, Some("2024-01-01T00:00:00Z") => true;
    cond_date_not_a_date: r#"{"DateLessThan":{"test:Key":"2030-01-01"}}"#, Some("yesterday") => false;
    cond_bool_true: r#"{"Bool":{"test:Key":"true"}}"#, Some("true") => true;
    cond_bool_json_boolean_policy_value: r#"{"Bool":{"test:Key":true}}"#, Some("true") => true;
    cond_bool_case_insensitive: r#"{"Bool":{"test:Key":"TRUE"}}"#, Some("true") => true;
    cond_bool_false_vs_true: r#"{"Bool":{"test:Key":"false"}}"#, Some("true") => false;
    cond_bool_absent_key: r#"{"Bool":{"test:Key":"false"}}"#, None => false;
    cond_binary_equals_same_bytes: r#"{"BinaryEquals":{"test:Key":"QmluYXJ5VmFsdWU="}}"#, Some("QmluYXJ5VmFsdWU=") => true;
    cond_binary_equals_other_bytes: r#"{"BinaryEquals":{"test:Key":"QmluYXJ5VmFsdWU="}}"#, Some("T3RoZXI=") => false;
    cond_ip_address_inside: r#"{"IpAddress":{"test:Key":"203.0.113.0/24"}}"#, Some("203.0.113.77") => true;
    cond_ip_address_outside: r#"{"IpAddress":{"test:Key":"203.0.113.0/24"}}"#, Some("203.0.114.1") => false;
    cond_ip_address_ipv6: r#"{"IpAddress":{"test:Key":"2001:db8::/32"}}"#, Some("2001:db8:1::5") => true;
    cond_ip_address_request_not_an_ip: r#"{"IpAddress":{"test:Key":"0.0.0.0/0"}}"#, Some("example.com") => false;
    cond_not_ip_address_outside: r#"{"NotIpAddress":{"test:Key":"203.0.113.0/24"}}"#, Some("198.51.100.1") => true;
    cond_not_ip_address_absent_key: r#"{"NotIpAddress":{"test:Key":"203.0.113.0/24"}}"#, None => true;
    cond_arn_like_wildcard: r#"{"ArnLike":{"test:Key":"arn:aws:iam::*:role/reader"}}"#, Some("arn:aws:iam::444455556666:role/reader") => true;
    cond_arn_like_case_sensitive: r#"{"ArnLike":{"test:Key":"arn:aws:iam::*:role/Reader"}}"#, Some("arn:aws:iam::444455556666:role/reader") => false;
    cond_arn_equals_short_pattern_matches_nothing: r#"{"ArnEquals":{"test:Key":"arn:aws:iam::*"}}"#, Some("arn:aws:iam::444455556666:role/reader") => false;
    cond_arn_like_star_does_not_absorb_colon: r#"{"ArnLike":{"test:Key":"arn:aws:iam::*:role/reader"}}"#, Some("arn:aws:iam::444455556666:x:role/reader") => false;
    cond_arn_not_like_other: r#"{"ArnNotLike":{"test:Key":"arn:aws:iam::111122223333:*"}}"#, Some("arn:aws:iam::444455556666:role/reader") => true;
    cond_arn_like_request_not_an_arn: r#"{"ArnLike":{"test:Key":"arn:*:*:*:*:*"}}"#, Some("reader") => false;
    cond_null_true_absent: r#"{"Null":{"test:Key":"true"}}"#, None => true;
    cond_null_true_present: r#"{"Null":{"test:Key":"true"}}"#, Some("x") => false;
    cond_null_false_present: r#"{"Null":{"test:Key":"false"}}"#, Some("x") => true;
    cond_null_true_empty_string: r#"{"Null":{"test:Key":"true"}}"#, Some("") => true;
    cond_for_any_value_single_value: r#"{"ForAnyValue:StringEquals":{"test:Key":"blue"}}"#, Some("blue") => true;
    cond_for_any_value_absent_key: r#"{"ForAnyValue:StringEquals":{"test:Key":"blue"}}"#, None => false;
    cond_for_all_values_absent_key: r#"{"ForAllValues:StringEquals":{"test:Key":"blue"}}"#, None => true;
    cond_for_all_values_single_value_outside: r#"{"ForAllValues:StringEquals":{"test:Key":"blue"}}"#, Some("red") => false;
}

macro_rules! condition_rejected_rows {
    ($($name:ident: $condition:expr, $path:expr;)*) => {$(
        #[test]
        fn $name() {
            let policy = format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{}}}]}}"#,
                $condition
            );
            let err = Policy::from_text(&policy, PolicyKind::Identity)
                .expect_err("the condition must be rejected");
            assert_eq!(err.path(), $path, "{err}");
        }
    )*};
}

condition_rejected_rows! {
    cond_rejected_unknown_operator: r#"{"StringLik":{"test:Key":"v"}}"#, "Statement[0].Condition.StringLik";
    cond_rejected_operator_wrong_case: r#"{"stringequals":{"test:Key":"v"}}"#, "Statement[0].Condition.stringequals";
    cond_rejected_unknown_qualifier: r#"{"ForSomeValues:StringEquals":{"test:Key":"v"}}"#, "Statement[0].Condition.ForSomeValues:StringEquals";
    cond_rejected_null_if_exists: r#"{"NullIfExists":{"test:Key":"true"}}"#, "Statement[0].Condition.NullIfExists";
    cond_rejected_non_numeric_value: r#"{"NumericLessThan":{"test:Key":"ten"}}"#, "Statement[0].Condition.NumericLessThan.test:Key";
    cond_rejected_invalid_date: r#"{"DateLessThan":{"test:Key":"next tuesday"}}"#, "Statement[0].Condition.DateLessThan.test:Key";
    cond_rejected_invalid_cidr: r#"{"IpAddress":{"test:Key":"10.0.0.0/33"}}"#, "Statement[0].Condition.IpAddress.test:Key";
    cond_rejected_invalid_base64: r#"{"BinaryEquals":{"test:Key":"not base64!"}}"#, "Statement[0].Condition.BinaryEquals.test:Key";
    cond_rejected_null_not_boolean: r#"{"Null":{"test:Key":"maybe"}}"#, "Statement[0].Condition.Null.test:Key";
}

// ---------------------------------------------------------------------------------------
// IP networks: IPv4 and IPv6 CIDRs and bare addresses.
// ---------------------------------------------------------------------------------------

macro_rules! cidr_parse_rows {
    ($($name:ident: $text:expr => $valid:expr;)*) => {$(
        #[test]
        fn $name() {
            assert_eq!(IpNet::parse($text).is_some(), $valid, "IpNet::parse({:?})", $text);
        }
    )*};
}

cidr_parse_rows! {
    cidr_ipv4_network: "10.0.0.0/8" => true;
    cidr_ipv4_zero_prefix: "0.0.0.0/0" => true;
    cidr_ipv4_host_prefix: "192.0.2.1/32" => true;
    cidr_ipv4_bare_address: "192.0.2.1" => true;
    cidr_ipv4_prefix_too_long: "10.0.0.0/33" => false;
    cidr_ipv4_octet_out_of_range: "300.1.1.1/8" => false;
    cidr_ipv4_three_octets: "10.0.0/8" => false;
    cidr_ipv4_negative_prefix: "10.0.0.0/-1" => false;
    cidr_ipv4_empty_prefix: "10.0.0.0/" => false;
    cidr_ipv6_network: "2001:db8::/32" => true;
    cidr_ipv6_full_prefix: "2001:db8::1/128" => true;
    cidr_ipv6_prefix_too_long: "2001:db8::/129" => false;
    cidr_ipv6_bare_address: "2001:db8::1" => true;
    cidr_not_an_address: "example.com/24" => false;
    cidr_empty: "" => false;
}

macro_rules! cidr_contains_rows {
    ($($name:ident: $net:expr, $ip:expr => $inside:expr;)*) => {$(
        #[test]
        fn $name() {
            let net = IpNet::parse($net)
                .unwrap_or_else(|| panic!("the row's network {:?} must parse", $net));
            let ip: IpAddr = $ip.parse()
                .unwrap_or_else(|e| panic!("the row's address {:?} must parse: {e}", $ip));
            assert_eq!(net.contains(ip), $inside, "{:?} contains {:?}", $net, $ip);
        }
    )*};
}

cidr_contains_rows! {
    contains_ipv4_inside: "10.0.0.0/8", "10.255.1.2" => true;
    contains_ipv4_outside: "10.0.0.0/8", "11.0.0.1" => false;
    contains_ipv4_last_address: "192.0.2.0/25", "192.0.2.127" => true;
    contains_ipv4_just_past_range: "192.0.2.0/25", "192.0.2.128" => false;
    contains_ipv4_zero_prefix_everything: "0.0.0.0/0", "198.51.100.7" => true;
    contains_ipv4_host_bits_in_network_ignored: "10.1.2.3/8", "10.200.0.1" => true;
    contains_ipv4_bare_address_is_one_host: "192.0.2.1", "192.0.2.2" => false;
    contains_ipv4_bare_address_itself: "192.0.2.1", "192.0.2.1" => true;
    contains_ipv6_inside: "2001:db8::/32", "2001:db8:ffff::1" => true;
    contains_ipv6_outside: "2001:db8::/32", "2001:db9::1" => false;
    contains_ipv6_uncompressed_request: "2001:db8::/32", "2001:0db8:0000:0000:0000:0000:0000:0001" => true;
    contains_ipv6_zero_prefix_everything: "::/0", "2001:db8::1" => true;
    contains_families_never_mix_v4_net: "0.0.0.0/0", "2001:db8::1" => false;
    contains_families_never_mix_v6_net: "::/0", "10.0.0.1" => false;
    contains_ipv4_mapped_ipv6_not_in_ipv4_net: "10.0.0.0/8", "::ffff:10.0.0.1" => false;
}
