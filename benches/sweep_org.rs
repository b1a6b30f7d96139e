//! The offline sweep at organization scale (docs/scaling.md). Not a timed test: a
//! benchmark and its tools.
//!
//! * `cargo bench --no-default-features --bench sweep_org` generates a synthetic
//!   organization of 100 accounts in memory, sweeps it on every core and prints paths per
//!   second, checking that exactly the planted breaks are found.
//! * `... --bench sweep_org -- gen --accounts N --out DIR --expected FILE` writes one
//!   snapshot file per account (`DIR/<account-id>.json`) and the planted breaks.
//! * `... --bench sweep_org -- mem --accounts N`: the in-memory run for N accounts.
//! * `... --bench sweep_org -- check --expected FILE --sweep FILE` compares the output of
//!   `s3-kms-auditor sweep --format json` with them (exit 1 on any difference).
//!
//! `scripts/bench-sweep` runs the release CLI on N = 100 and N = 1,000 with these.
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

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() -> ExitCode {
    // `cargo bench` adds `--bench`.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    match args.first().map(String::as_str) {
        Some("gen") => {
            let n: usize = arg(&args, "--accounts")
                .expect("--accounts N")
                .parse()
                .expect("a number of accounts");
            let out = PathBuf::from(arg(&args, "--out").expect("--out DIR"));
            let expected = PathBuf::from(arg(&args, "--expected").expect("--expected FILE"));
            let start = Instant::now();
            let org = synth::generate(&synth::Params::new(n));
            let bytes = synth::write(&org, &out, &expected).expect("writes the organization");
            println!(
                "generated {n} accounts ({} grants, {} planted breaks, {} one-sided requests) in {}: {:.1} MB, {:.1} s",
                org.expected["grants"],
                org.expected["breaks"].as_array().map_or(0, Vec::len),
                org.expected["one_sided"].as_array().map_or(0, Vec::len),
                out.display(),
                bytes as f64 / 1e6,
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
            let c = synth::check(&read("--expected"), &read("--sweep"));
            println!(
                "{} paths checked; {} breaks found, {} planted; missing {}, false {}, unknown {}, one-sided reported {}",
                c.paths,
                c.found,
                c.planted,
                c.missing.len(),
                c.false_breaks.len(),
                c.unknown,
                c.one_sided_reported.len()
            );
            for m in c.missing.iter().take(10) {
                println!("  missing: {m}");
            }
            for f in c.false_breaks.iter().chain(&c.one_sided_reported).take(10) {
                println!("  false: {f}");
            }
            if c.exact() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        _ => {
            // `mem`, or no argument: in memory, generation and reading excluded, the sweep
            // alone timed.
            let n = arg(&args, "--accounts")
                .and_then(|n| n.parse().ok())
                .unwrap_or(100);
            let org = synth::generate(&synth::Params::new(n));
            let mut snap = auditor::snapshot::Snapshot::default();
            for (_, doc) in &org.accounts {
                let one = auditor::snapshot::Snapshot::from_value(doc).expect("valid");
                snap.accounts.extend(one.accounts);
            }
            let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
            let start = Instant::now();
            let stages = |stage: &str, done: usize, total: usize| {
                if done == total {
                    println!(
                        "  {stage}: {total} at {:.3} s",
                        start.elapsed().as_secs_f64()
                    );
                }
            };
            let s = auditor::sweep::sweep_with(
                &snap,
                auditor::sweep::Options {
                    threads,
                    progress: Some(&stages),
                },
            );
            let secs = start.elapsed().as_secs_f64();
            let c = synth::check(&org.expected, &serde_json::to_value(&s).expect("JSON"));
            println!(
                "sweep_org/{n} accounts: {} paths in {secs:.3} s on {threads} threads = {:.0} paths/s; {} breaks found, {} planted, exact: {}",
                s.summary.paths,
                s.summary.paths as f64 / secs,
                c.found,
                c.planted,
                c.exact()
            );
            if c.exact() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
    }
}
