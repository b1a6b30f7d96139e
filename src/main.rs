//! `s3-kms-auditor`: the command-line entry point. Parsing and wiring only; the work is done
//! by the `iam-eval` engine and the `auditor` library.

use std::process::ExitCode;

use clap::Parser;

mod cli;
mod live;
mod sweep;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
