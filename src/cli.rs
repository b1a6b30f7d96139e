//! Subcommands. Exit codes: 0 allowed / nothing blocking, 1 denied / blocking findings,
//! 2 bad input or an error (the message names the file and the JSON path).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand, ValueEnum};

use iam_eval::{authorize, Decision, ExplainInput};

/// Diagnoses AccessDenied on reads of SSE-KMS-encrypted S3 objects, across accounts.
#[derive(Debug, Parser)]
#[command(name = "s3-kms-auditor", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Evaluates one request against the policies given in a file (see docs/explain-format.md).
    Explain {
        /// The input file: `{"request": {...}, "policies": {...}}`.
        #[arg(long)]
        input: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people.
    Text,
    /// For machines.
    Json,
}

/// Runs the command and returns the process exit code.
pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Explain { input, format } => explain(&input, format),
    }
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read the file", path.display()))
}

fn explain(path: &Path, format: Format) -> Result<ExitCode> {
    let text = read(path)?;
    let input =
        ExplainInput::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let ev = authorize(&input.request, &input.policy_set());
    match format {
        Format::Text => print!("{}", iam_eval::explain::render_text(&input.request, &ev)),
        Format::Json => {
            let req = &input.request;
            let context: serde_json::Map<String, serde_json::Value> = req
                .context
                .iter()
                .map(|(k, v)| (k.to_owned(), serde_json::to_value(v).unwrap_or_default()))
                .collect();
            let mut out = serde_json::to_value(&ev)?;
            if let Some(obj) = out.as_object_mut() {
                obj.insert(
                    "request".into(),
                    serde_json::json!({
                        "principal": req.caller.arn,
                        "action": req.action,
                        "resource": req.resource,
                        "resource_account": req.resource_account,
                        "context": context,
                    }),
                );
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
    }
    Ok(if ev.decision == Decision::Allowed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
