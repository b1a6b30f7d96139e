//! The policy parser (iam-eval): arbitrary bytes as a policy document of either kind, and as
//! an `explain` input (docs/explain-format.md), which parses several policies and a request.
//! A parse error is a fine outcome; a panic, an abort or a hang is a finding.
#![no_main]

use iam_eval::{ExplainInput, Json, Policy, PolicyKind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(json) = Json::parse(text) {
        for kind in [PolicyKind::Identity, PolicyKind::Resource] {
            let _ = Policy::parse(&json, kind);
        }
    }
    if let Ok(input) = ExplainInput::parse(text) {
        // A parsed input is evaluated, as `explain` does.
        let _ = iam_eval::authorize(&input.request, &input.policy_set());
    }
});
