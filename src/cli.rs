//! Subcommands. Exit codes ([`EXIT_CODES`], printed by `--help`): 0 nothing blocking and
//! decided, 1 blocking findings, 2 bad input or an error (the message names the file and the
//! JSON path), 3 unknown (nothing visible blocks, but evidence for a verdict is missing).
//!
//! Everything a command prints goes through [`emit`]: when standard output is a pipe whose
//! reader has gone (`s3-kms-auditor diagnose ... | head`), the rest of the output is dropped
//! quietly and the command ends with the code it would have had.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand, ValueEnum};

use iam_eval::{authorize, Decision, ExplainInput};

use crate::live::LiveArgs;

/// The exit codes, as `--help` prints them (README.md, *What you get*, says the same).
pub const EXIT_CODES: &str = "\
Exit codes (every command but `impact`, which has its own: see `impact --help`; `explain` never returns 3; with several requests, 1 wins over 3, 3 over 0):
  0  nothing blocks and the verdict is decided (allowed; nothing to diagnose)
  1  blocking findings (denied)
  2  bad input or an error: the message names the file and the JSON path
  3  unknown: nothing visible blocks, but evidence needed for a verdict is missing

Output to a closed pipe (`... | head`) ends quietly with the same code.";

/// The exit codes of `impact` (README.md, *Before you deploy: impact*, says the same).
pub const IMPACT_EXIT_CODES: &str = "\
Exit codes:
  0  no read path broke (nothing allowed before is denied after)
  1  a read path broke
  2  bad input or an error: the message names the file and the JSON path
  3  nothing broke, but a path's verdict became or stopped being unknown

Output to a closed pipe (`... | head`) ends quietly with the same code.";

/// Exit code 3: the verdict is `unknown`.
const UNKNOWN: u8 = 3;

/// Diagnoses AccessDenied on reads of SSE-KMS-encrypted S3 objects, across accounts.
#[derive(Debug, Parser)]
#[command(name = "s3-kms-auditor", version, about, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Diagnoses a denied request against an account snapshot (docs/snapshot-format.md), or
    /// against the accounts' current state read from AWS (`--live --event FILE`).
    #[command(after_help = EXIT_CODES)]
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
        /// The object ARN (`arn:<partition>:s3:::bucket/key`, any partition) or key ARN.
        #[arg(long)]
        resource: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        #[command(flatten)]
        bound: Bound,
    },
    /// Reads from AWS what the diagnosis of an event needs and writes it as a snapshot.
    #[command(after_help = EXIT_CODES)]
    Snapshot {
        /// A CloudTrail record, EventBridge event, or trail log file.
        #[arg(long)]
        event: PathBuf,
        /// Where to write the snapshot (`OUT-2.json`... for further denied records).
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        aws: LiveArgs,
        #[command(flatten)]
        bound: Bound,
    },
    /// Checks every cross-account read path a snapshot intends (bucket policy, key policy or
    /// grant, the caller's identity policies), end to end.
    #[command(after_help = EXIT_CODES)]
    Sweep {
        /// The account snapshot, or a directory of per-account snapshot files
        /// (`<account-id>.json`, as the state store holds them), read and merged: every
        /// `*.json` file in it is read; an account or bucket two files describe is an error.
        #[arg(long)]
        snapshot: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// No progress on standard error (a bar on a terminal, else a line every 5 s of a
        /// long run).
        #[arg(long, short)]
        quiet: bool,
        /// Threads to check paths on; default: the machine's cores.
        #[arg(long, value_name = "N")]
        threads: Option<std::num::NonZeroUsize>,
        #[command(flatten)]
        bound: Bound,
    },
    /// Compares every read path before and after a policy change: what it breaks, fixes or
    /// opens (docs/impact-format.md).
    #[command(after_help = IMPACT_EXIT_CODES)]
    Impact {
        /// The account snapshot before the change.
        #[arg(long)]
        before: PathBuf,
        /// The account snapshot after the change (an edited copy of --before).
        #[arg(long, required_unless_present = "change", conflicts_with = "change")]
        after: Option<PathBuf>,
        /// A CloudTrail record or EventBridge event of the change, applied to --before as AWS
        /// would apply it.
        #[arg(long)]
        change: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        #[command(flatten)]
        bound: Bound,
    },
    /// Evaluates one request against the policies given in a file (see docs/explain-format.md).
    #[command(after_help = EXIT_CODES)]
    Explain {
        /// The input file: `{"request": {...}, "policies": {...}}`.
        #[arg(long)]
        input: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        #[command(flatten)]
        bound: Bound,
    },
}

/// The bound on each input file a command reads (docs/design.md, *Size bounds*).
#[derive(Debug, Clone, Copy, clap::Args)]
struct Bound {
    /// Refuse an input file (snapshot, event file, explain input) larger than this many bytes,
    /// checked before it is read; the default is 64 MiB (67108864).
    #[arg(long, value_name = "BYTES", default_value_t = auditor::limits::DEFAULT_MAX_INPUT_BYTES)]
    max_input_bytes: u64,
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
    let max = match &cli.command {
        Command::Explain { bound, .. }
        | Command::Sweep { bound, .. }
        | Command::Impact { bound, .. }
        | Command::Diagnose { bound, .. }
        | Command::Snapshot { bound, .. } => bound.max_input_bytes,
    };
    match cli.command {
        Command::Explain { input, format, .. } => explain(&input, format, max),
        Command::Sweep {
            snapshot,
            format,
            quiet,
            threads,
            ..
        } => sweep(&snapshot, format, quiet, threads, max),
        Command::Impact {
            before,
            after,
            change,
            format,
            ..
        } => impact(&before, after.as_deref(), change.as_deref(), format, max),
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
            max,
        ),
        Command::Diagnose {
            event: Some(event),
            aws,
            format,
            ..
        } => diagnose_live(&event, &aws, format, max),
        Command::Diagnose { .. } => anyhow::bail!("give --snapshot FILE, or --live --event FILE"),
        Command::Snapshot {
            event, out, aws, ..
        } => snapshot(&event, &out, &aws, max),
    }
}

/// Reads an input file, refusing one over `--max-input-bytes` before reading it: the size is
/// checked on the file's metadata, and the read itself stops one byte past the bound (for a
/// pipe or a file that grows while it is read).
fn read(path: &Path, max: u64) -> Result<String> {
    use std::io::Read as _;
    let too_big = |size: String| {
        anyhow::anyhow!(
            "{}: the file is {size} bytes, over the {} bytes an input file may have; give --max-input-bytes to raise the bound",
            path.display(),
            auditor::limits::thousands(max)
        )
    };
    let file = std::fs::File::open(path)
        .with_context(|| format!("{}: cannot read the file", path.display()))?;
    let meta = file
        .metadata()
        .with_context(|| format!("{}: cannot read the file", path.display()))?;
    if meta.is_file() && meta.len() > max {
        return Err(too_big(auditor::limits::thousands(meta.len())));
    }
    let mut bytes = Vec::new();
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .with_context(|| format!("{}: cannot read the file", path.display()))?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > max {
        return Err(too_big(format!(
            "more than {}",
            auditor::limits::thousands(max)
        )));
    }
    String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{}: cannot read the file: not UTF-8 text: {e}",
            path.display()
        )
    })
}

fn explain(path: &Path, format: Format, max: u64) -> Result<ExitCode> {
    let text = read(path, max)?;
    let input =
        ExplainInput::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    // The explain input is written by hand: a policy over its AWS limit is a warning, not an
    // error (docs/design.md, *Size bounds*).
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
        for (at, oversize) in auditor::limits::explain_warnings(&v) {
            eprintln!(
                "warning: {}: {at} is {oversize}; AWS would refuse to store it",
                path.display()
            );
        }
    }
    let ev = authorize(&input.request, &input.policy_set());
    match format {
        Format::Text => emit(&iam_eval::explain::render_text(&input.request, &ev))?,
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
            emit_line(&serde_json::to_string_pretty(&out)?)?;
        }
    }
    Ok(if ev.decision == Decision::Allowed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub(crate) fn load_snapshot(path: &Path, max: u64) -> Result<auditor::snapshot::Snapshot> {
    let text = read(path, max)?;
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
    max: u64,
) -> Result<ExitCode> {
    let snap = load_snapshot(snapshot, max)?;
    let mut skipped = Vec::new();
    let queries = match (event, adhoc) {
        (Some(path), _) => {
            let text = read(path, max)?;
            let v: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| anyhow::anyhow!("{}: not valid JSON: {e}", path.display()))?;
            let outcomes = auditor::event::parse_events(&v)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            let mut qs = Vec::new();
            for o in outcomes {
                match o {
                    auditor::event::EventOutcome::Denied(req) => qs.push(*req),
                    // A change record is not a denial: `impact --change` assesses changes.
                    auditor::event::EventOutcome::Change(change) => {
                        skipped.push(format!(
                            "{}: skipped: {} is a change, not a denied request (see `impact --change`)",
                            change.event_id.unwrap_or_else(|| "record".into()),
                            change.event_name
                        ));
                    }
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

/// Writes `text` to standard output. A reader that has gone away (a closed pipe) is not an
/// error: the rest of the output is dropped and the command keeps its exit code.
fn emit(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.context("cannot write to standard output"),
    }
}

/// [`emit`] with a line break.
fn emit_line(text: &str) -> Result<()> {
    emit(&format!("{text}\n"))
}

/// The exit code for a set of verdicts: 1 when anything blocks, else 3 when any verdict is
/// unknown, else 0.
fn verdict_code(blocking: bool, unknown: bool) -> ExitCode {
    if blocking {
        ExitCode::from(1)
    } else if unknown {
        ExitCode::from(UNKNOWN)
    } else {
        ExitCode::SUCCESS
    }
}

/// Prints diagnoses; exit 1 when any has a blocking finding (or is denied), else 3 when any
/// is unknown.
fn report(outputs: &[auditor::diagnose::Diagnosis], format: Format) -> Result<ExitCode> {
    use auditor::diagnose::Verdict;
    let blocking = outputs
        .iter()
        .any(|d| d.verdict == Verdict::Denied || d.blocking().next().is_some());
    let unknown = outputs.iter().any(|d| d.verdict == Verdict::Unknown);
    match format {
        Format::Text => {
            for d in outputs {
                emit(&auditor::diagnose::render_text(d))?;
            }
        }
        Format::Json => {
            let v = if let [one] = outputs {
                serde_json::to_value(one)?
            } else {
                serde_json::json!({ "diagnoses": outputs })
            };
            emit_line(&serde_json::to_string_pretty(&v)?)?;
        }
    }
    Ok(verdict_code(blocking, unknown))
}

fn read_event(path: &Path, max: u64) -> Result<serde_json::Value> {
    let text = read(path, max)?;
    serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: not valid JSON: {e}", path.display()))
}

fn diagnose_live(event: &Path, aws: &LiveArgs, format: Format, max: u64) -> Result<ExitCode> {
    let v = read_event(event, max)?;
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

fn snapshot(event: &Path, out: &Path, aws: &LiveArgs, max: u64) -> Result<ExitCode> {
    let v = read_event(event, max)?;
    let (collected, skipped) =
        crate::live::collect(aws, &v).with_context(|| format!("{}", event.display()))?;
    for s in &skipped {
        eprintln!("{s}");
    }
    if collected.is_empty() {
        emit_line(&format!(
            "nothing to collect: no authorization failure in {}",
            event.display()
        ))?;
        return Ok(ExitCode::SUCCESS);
    }
    for (i, c) in collected.iter().enumerate() {
        let path = crate::live::numbered(out, i + 1);
        let text = serde_json::to_string_pretty(&c.snapshot)?;
        std::fs::write(&path, text + "\n")
            .with_context(|| format!("{}: cannot write the snapshot", path.display()))?;
        eprintln!("{}", c.cost);
        emit_line(&path.display().to_string())?;
    }
    Ok(ExitCode::SUCCESS)
}

fn sweep(
    snapshot: &Path,
    format: Format,
    quiet: bool,
    threads: Option<std::num::NonZeroUsize>,
    max: u64,
) -> Result<ExitCode> {
    let progress = crate::sweep::Progress::new(quiet);
    let threads = threads
        .or_else(|| std::thread::available_parallelism().ok())
        .map_or(1, std::num::NonZeroUsize::get);
    let snap = crate::sweep::load(snapshot, max, threads, &progress)?;
    let report = |stage: &str, done, total| progress.report(stage, done, total);
    let result = auditor::sweep::sweep_with(
        &snap,
        auditor::sweep::Options {
            threads,
            progress: Some(&report),
        },
    );
    match format {
        Format::Text => emit(&auditor::sweep::render_text(&result))?,
        Format::Json => emit_line(&serde_json::to_string_pretty(&result)?)?,
    }
    Ok(verdict_code(result.has_blocking(), result.has_unknown()))
}

fn impact(
    before: &Path,
    after: Option<&Path>,
    change: Option<&Path>,
    format: Format,
    max: u64,
) -> Result<ExitCode> {
    let old = load_snapshot(before, max)?;
    let result = match (after, change) {
        (Some(after), _) => auditor::impact::impact(&old, &load_snapshot(after, max)?),
        (None, Some(change)) => auditor::impact::impact_of_change(&old, &read_event(change, max)?)
            .map_err(|e| anyhow::anyhow!("{}: {e}", change.display()))?,
        (None, None) => anyhow::bail!("give --after SNAPSHOT or --change EVENT_FILE"),
    };
    match format {
        Format::Text => emit(&auditor::impact::render_text(&result))?,
        Format::Json => emit_line(&serde_json::to_string_pretty(&result)?)?,
    }
    Ok(verdict_code(result.breaks(), !result.undecided.is_empty()))
}

/// The answer for an event file with no denial in it, in the format asked for.
fn nothing_to_diagnose<S: std::fmt::Display>(
    event: Option<&Path>,
    skipped: &[S],
    format: Format,
) -> Result<()> {
    let file = event.map(|p| p.display().to_string()).unwrap_or_default();
    match format {
        Format::Text => emit_line(&format!(
            "nothing to diagnose: no record in {file} is an authorization failure of an S3 object or KMS operation{}",
            if skipped.is_empty() { "" } else { " (skipped records are listed on stderr)" }
        )),
        Format::Json => emit_line(&serde_json::to_string_pretty(&serde_json::json!({
            "diagnoses": [],
            "skipped": skipped.iter().map(ToString::to_string).collect::<Vec<_>>(),
        }))?),
    }
}
