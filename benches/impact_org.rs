//! Policy-change impact at organization scale (docs/scaling.md, "Impact at scale"). Not a
//! timed test: a benchmark and its tools.
//!
//! * `cargo bench --no-default-features --bench impact_org -- gen --readers N --before FILE
//!   --after FILE --expected FILE` writes a synthetic organization (`synth::hub`: N reader
//!   roles of one hub bucket, spread over N/10 accounts of the sweep's generator) before and
//!   after an edit of the hub key's policy that drops every reader, and what must break.
//! * `... -- check --expected FILE --impact FILE` compares the output of
//!   `s3-kms-auditor impact --format json` with it (exit 1 on any difference).
//! * `... -- mem --readers N` (or no argument: N = 500): the impact alone, in memory, with
//!   what it diagnosed.
//!
//! `scripts/bench-impact` runs the release CLI on N = 100, 500 and 2,000 with these.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a benchmark fails loudly on a bad fixture"
)]

mod synth;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use auditor::snapshot::Snapshot;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// A snapshot document as the snapshot writer writes it (so the files are what the state
/// store or an export would hold).
fn written(doc: &serde_json::Value) -> String {
    let snap = Snapshot::from_value(doc).expect("a valid snapshot");
    serde_json::to_string(&auditor::snapshot::write::to_value(&snap)).expect("JSON")
}

fn main() -> ExitCode {
    // `cargo bench` adds `--bench`.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let readers = || -> usize {
        arg(&args, "--readers")
            .map_or(Ok(500), |n| n.parse())
            .expect("a number of readers")
    };
    match args.first().map(String::as_str) {
        Some("gen") => {
            let n = readers();
            let path = |name: &str| {
                PathBuf::from(arg(&args, name).unwrap_or_else(|| panic!("{name} FILE")))
            };
            let start = Instant::now();
            let hub = synth::hub(n);
            let before = written(&hub.before);
            let after = written(&hub.after);
            std::fs::write(path("--before"), &before).expect("writes --before");
            std::fs::write(path("--after"), &after).expect("writes --after");
            std::fs::write(
                path("--expected"),
                serde_json::to_string_pretty(&hub.expected).expect("JSON"),
            )
            .expect("writes --expected");
            println!(
                "generated {} accounts, {n} hub readers: {:.1} MB before, {:.1} MB after, {:.1} s",
                hub.expected["accounts"],
                before.len() as f64 / 1e6,
                after.len() as f64 / 1e6,
                start.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Some("check") => {
            let read = |name: &str| -> serde_json::Value {
                let path = arg(&args, name).unwrap_or_else(|| panic!("{name} FILE"));
                serde_json::from_str(&std::fs::read_to_string(&path).expect("readable"))
                    .expect("JSON")
            };
            let c = synth::check_hub(&read("--expected"), &read("--impact"));
            println!(
                "{} paths broken, {} expected, {} unchanged; {}",
                c.broken,
                c.expected,
                c.unchanged,
                if c.wrong.is_empty() { "exact" } else { "WRONG" }
            );
            for w in c.wrong.iter().take(10) {
                println!("  {w}");
            }
            if c.wrong.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        _ => {
            // `mem`, or no argument: in memory, generation and reading excluded.
            let n = readers();
            let hub = synth::hub(n);
            let before = Snapshot::from_value(&hub.before).expect("valid");
            let after = Snapshot::from_value(&hub.after).expect("valid");
            let start = Instant::now();
            let (i, work) = auditor::impact::impact_counted(&before, &after);
            let secs = start.elapsed().as_secs_f64();
            let c = synth::check_hub(&hub.expected, &serde_json::to_value(&i).expect("JSON"));
            println!(
                "impact_org/{n} readers: {} broken, {} unchanged in {secs:.3} s; groups {} ({} diagnosed), paths diagnosed {}, distinct fixes {}; exact: {}",
                i.broken.len(),
                i.unchanged,
                work.groups,
                work.groups_diagnosed,
                work.paths_diagnosed,
                work.distinct_fixes,
                c.wrong.is_empty()
            );
            if c.wrong.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
    }
}
