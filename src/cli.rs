//! Subcommands. Exit codes: 0 allowed / nothing blocking, 1 denied / blocking findings,
//! 2 bad input or an error (the message names the file and the JSON path).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand, ValueEnum};

use iam_eval::{authorize, Decision, ExplainInput};

use crate::live::LiveArgs;

/// Diagnoses AccessDenied on reads of SSE-KMS-encrypted S3 objects, across accounts.
#[derive(Debug, Parser)]
#[command(name = "s3-kms-auditor", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Diagnoses a denied request against an account snapshot (docs/snapshot-format.md), or
    /// against the accounts' current state read from AWS (`--live --event FILE`).
    Diagnose {
        /// The account snapshot.
        #[arg(long, required_unless_present = "live", conflicts_with = "live")]
        snapshot: Option<PathBuf>,
        /// Read the accounts' current state from AWS instead of a snapshot (needs --event).
        #[arg(long, requires = "event")]
        live: bool,
        #[command(flatten)]
        aws: LiveArgs,
        /// A CloudTrail record, EventBridge event, or trail log file.
        #[arg(long, conflicts_with_all = ["principal", "action", "resource"])]
        event: Option<PathBuf>,
        /// The caller's ARN (ad hoc request).
        #[arg(long, requires_all = ["action", "resource"])]
        principal: Option<String>,
        /// The action (`s3:GetObject`, `s3:PutObject`, `kms:Decrypt`...).
        #[arg(long)]
        action: Option<String>,
        /// The object ARN (`arn:aws:s3:::bucket/key`) or key ARN.
        #[arg(long)]
        resource: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Reads from AWS what the diagnosis of an event needs and writes it as a snapshot.
    Snapshot {
        /// A CloudTrail record, EventBridge event, or trail log file.
        #[arg(long)]
        event: PathBuf,
        /// Where to write the snapshot (`OUT-2.json`... for further denied records).
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        aws: LiveArgs,
    },
    /// Checks every cross-account read path the bucket policies of a snapshot intend.
    Sweep {
        /// The account snapshot.
        #[arg(long)]
        snapshot: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
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
        Command::Sweep { snapshot, format } => sweep(&snapshot, format),
        Command::Diagnose {
            snapshot: Some(snapshot),
            event,
            principal,
            action,
            resource,
            format,
            ..
        } => diagnose(
            &snapshot,
            event.as_deref(),
            principal.zip(action).zip(resource),
            format,
        ),
        Command::Diagnose {
            event: Some(event),
            aws,
            format,
            ..
        } => diagnose_live(&event, &aws, format),
        Command::Diagnose { .. } => anyhow::bail!("give --snapshot FILE, or --live --event FILE"),
        Command::Snapshot { event, out, aws } => snapshot(&event, &out, &aws),
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

fn load_snapshot(path: &Path) -> Result<auditor::snapshot::Snapshot> {
    let text = read(path)?;
    // Read through the duplicate-preserving parser: a key given twice is an error.
    auditor::snapshot::Snapshot::from_text(&text)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

type Adhoc = Option<((String, String), String)>;

fn diagnose(
    snapshot: &Path,
    event: Option<&Path>,
    adhoc: Adhoc,
    format: Format,
) -> Result<ExitCode> {
    let snap = load_snapshot(snapshot)?;
    let mut skipped = Vec::new();
    let queries = match (event, adhoc) {
        (Some(path), _) => {
            let text = read(path)?;
            let v: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| anyhow::anyhow!("{}: not valid JSON: {e}", path.display()))?;
            let outcomes = auditor::event::parse_events(&v)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            let mut qs = Vec::new();
            for o in outcomes {
                match o {
                    auditor::event::EventOutcome::Denied(req) => qs.push(*req),
                    auditor::event::EventOutcome::Skipped { event_id, reason } => {
                        skipped.push(format!(
                            "{}: skipped: {reason}",
                            event_id.unwrap_or_else(|| "record".into())
                        ));
                    }
                }
            }
            qs
        }
        (None, Some(((p, a), r))) => {
            let req =
                auditor::event::adhoc_request(&p, &a, &r).map_err(|e| anyhow::anyhow!("{e}"))?;
            vec![req]
        }
        (None, None) => anyhow::bail!("give --event FILE, or --principal, --action and --resource"),
    };
    for s in &skipped {
        eprintln!("{s}");
    }
    if queries.is_empty() {
        // A record that needs no diagnosis (a success, a policy change) is not bad input.
        nothing_to_diagnose(event, &skipped, format)?;
        return Ok(ExitCode::SUCCESS);
    }
    let outputs: Vec<_> = queries
        .iter()
        .map(|q| auditor::diagnose::diagnose(&snap, q))
        .collect();
    report(&outputs, format)
}

/// Prints diagnoses; exit 1 when any is not `allowed`.
fn report(outputs: &[auditor::diagnose::Diagnosis], format: Format) -> Result<ExitCode> {
    let denied = outputs
        .iter()
        .any(|d| d.verdict != auditor::diagnose::Verdict::Allowed);
    match format {
        Format::Text => {
            for d in outputs {
                print!("{}", auditor::diagnose::render_text(d));
            }
        }
        Format::Json => {
            let v = if outputs.len() == 1 {
                serde_json::to_value(&outputs[0])?
            } else {
                serde_json::json!({ "diagnoses": outputs })
            };
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
    }
    Ok(if denied {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn read_event(path: &Path) -> Result<serde_json::Value> {
    let text = read(path)?;
    serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: not valid JSON: {e}", path.display()))
}

fn diagnose_live(event: &Path, aws: &LiveArgs, format: Format) -> Result<ExitCode> {
    let v = read_event(event)?;
    let (collected, skipped) =
        crate::live::collect(aws, &v).with_context(|| format!("{}", event.display()))?;
    for s in &skipped {
        eprintln!("{s}");
    }
    if collected.is_empty() {
        nothing_to_diagnose(Some(event), &skipped, format)?;
        return Ok(ExitCode::SUCCESS);
    }
    for c in &collected {
        eprintln!("{}", c.cost);
    }
    let outputs: Vec<_> = collected.into_iter().map(|c| c.diagnosis).collect();
    report(&outputs, format)
}

fn snapshot(event: &Path, out: &Path, aws: &LiveArgs) -> Result<ExitCode> {
    let v = read_event(event)?;
    let (collected, skipped) =
        crate::live::collect(aws, &v).with_context(|| format!("{}", event.display()))?;
    for s in &skipped {
        eprintln!("{s}");
    }
    if collected.is_empty() {
        println!(
            "nothing to collect: no authorization failure in {}",
            event.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    for (i, c) in collected.iter().enumerate() {
        let path = crate::live::numbered(out, i + 1);
        let text = serde_json::to_string_pretty(&c.snapshot)?;
        std::fs::write(&path, text + "\n")
            .with_context(|| format!("{}: cannot write the snapshot", path.display()))?;
        eprintln!("{}", c.cost);
        println!("{}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn sweep(snapshot: &Path, format: Format) -> Result<ExitCode> {
    let snap = load_snapshot(snapshot)?;
    let result = auditor::sweep::sweep(&snap);
    match format {
        Format::Text => print!("{}", auditor::sweep::render_text(&result)),
        Format::Json => println!("{}", serde_json::to_string_pretty(&result)?),
    }
    Ok(if result.has_blocking() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The answer for an event file with no denial in it, in the format asked for.
fn nothing_to_diagnose<S: std::fmt::Display>(
    event: Option<&Path>,
    skipped: &[S],
    format: Format,
) -> Result<()> {
    let file = event.map(|p| p.display().to_string()).unwrap_or_default();
    match format {
        Format::Text => println!(
            "nothing to diagnose: no record in {file} is an authorization failure of an S3 object or KMS operation{}",
            if skipped.is_empty() { "" } else { " (skipped records are listed on stderr)" }
        ),
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "diagnoses": [],
                "skipped": skipped.iter().map(ToString::to_string).collect::<Vec<_>>(),
            }))?
        ),
    }
    Ok(())
}
