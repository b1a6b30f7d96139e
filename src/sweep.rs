//! `sweep`: its input (one snapshot file, or a directory of per-account snapshot files as
//! the state store holds them) and its progress on standard error.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use auditor::snapshot::Snapshot;

/// Reads `--snapshot`: a snapshot file, or a directory whose `*.json` files are snapshots,
/// merged into one.
pub fn load(path: &Path, max: u64, threads: usize, progress: &Progress) -> Result<Snapshot> {
    if path.is_dir() {
        load_dir(path, max, threads, progress)
    } else {
        crate::cli::load_snapshot(path, max)
    }
}

/// Reads every `*.json` file of `dir` (in name order) through the snapshot reader and
/// merges them. A file named for an account (`111122223333.json`, as the state store names
/// them) must describe that account, and is the one source of it: the parts of other accounts
/// such a file also holds (the keys of another account its buckets use, the other side of a
/// path the live auditor kept) are used only for an account no file is named for, from the
/// first file in name order. An account that two files not named for it both describe in
/// full, or a bucket two accounts list, is an error naming both files, since the merge would
/// have to pick one of them.
fn load_dir(dir: &Path, max: u64, threads: usize, progress: &Progress) -> Result<Snapshot> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("{}: cannot read the directory", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    if files.is_empty() {
        anyhow::bail!(
            "{}: the directory holds no snapshot file (`<account-id>.json`)",
            dir.display()
        );
    }
    let stem_of = |file: &Path| -> Option<String> {
        file.file_stem()
            .and_then(|s| s.to_str())
            .filter(|s| auditor::refs::is_account_id(s))
            .map(str::to_owned)
    };
    let named: BTreeSet<String> = files.iter().filter_map(|f| stem_of(f)).collect();
    // Parsed on every thread (parsing is most of the time of a large directory), merged in
    // name order, so the first error reported is the first in name order.
    let parsed = parse_all(&files, max, threads, progress);
    let mut merged = Snapshot::default();
    // Where each merged account came from, and whether that file is its own source (named for
    // it, or a whole snapshot not named for any account).
    let mut account_file: BTreeMap<String, (usize, bool)> = BTreeMap::new();
    for (i, (file, snap)) in files.iter().zip(parsed).enumerate() {
        let snap = snap?;
        let stem = stem_of(file);
        if let Some(stem) = &stem {
            if !snap.accounts.contains_key(stem) {
                anyhow::bail!(
                    "{}: the file is named for account {stem} but does not describe it (accounts: {})",
                    file.display(),
                    snap.accounts.keys().cloned().collect::<Vec<_>>().join(", ")
                );
            }
        }
        let other = |at: usize| files.get(at).map(|f| f.display().to_string());
        for (id, account) in snap.accounts {
            let own = match stem.as_deref() {
                None => true,
                Some(s) => s == id,
            };
            if !own && named.contains(&id) {
                continue; // the account's own file describes it
            }
            match account_file.get(&id).copied() {
                Some((_, false)) if own => {}
                Some((_, false)) => continue, // a part, already taken from an earlier file
                Some((first, true)) if own => anyhow::bail!(
                    "{}: accounts.{id}: account {id} is also described by {}; give each account one file",
                    file.display(),
                    other(first).unwrap_or_default()
                ),
                Some((_, true)) => continue,
                None => {}
            }
            account_file.insert(id.clone(), (i, own));
            merged.accounts.insert(id, account);
        }
        merged.collection_errors.extend(snap.collection_errors);
    }
    // Bucket names are global: two accounts listing one bucket cannot both be right.
    let mut bucket_owner: BTreeMap<&str, &str> = BTreeMap::new();
    for (id, account) in &merged.accounts {
        for bucket in account.s3.keys() {
            if let Some(first) = bucket_owner.insert(bucket, id) {
                let file = |a: &str| {
                    account_file
                        .get(a)
                        .and_then(|(at, _)| files.get(*at))
                        .map(|f| f.display().to_string())
                        .unwrap_or_default()
                };
                anyhow::bail!(
                    "{}: accounts.{id}.s3.{bucket}: bucket `{bucket}` is also listed by {} (account {first}); bucket names are global",
                    file(id),
                    file(first)
                );
            }
        }
    }
    merged.description = Some(format!(
        "{} snapshot files of {}",
        files.len(),
        dir.display()
    ));
    Ok(merged)
}

/// Every file read through the snapshot reader, in order, on `threads` threads.
fn parse_all(
    files: &[PathBuf],
    max: u64,
    threads: usize,
    progress: &Progress,
) -> Vec<Result<Snapshot>> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let slots: Mutex<Vec<Option<Result<Snapshot>>>> =
        Mutex::new(files.iter().map(|_| None).collect());
    let work = || loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(file) = files.get(i) else { break };
        let parsed = crate::cli::load_snapshot(file, max);
        if let Some(slot) = slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get_mut(i)
        {
            *slot = Some(parsed);
        }
        let now = done.fetch_add(1, Ordering::Relaxed) + 1;
        progress.report("snapshot files read", now, files.len());
    };
    std::thread::scope(|s| {
        for _ in 0..threads.clamp(1, files.len().max(1)) {
            s.spawn(work);
        }
    });
    slots
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(anyhow::anyhow!("a snapshot file was not read"))))
        .collect()
}

/// Progress on standard error: a bar redrawn in place when standard error is a terminal,
/// a plain line every few seconds otherwise (a log, CI), nothing with `--quiet`. Short runs
/// print nothing when standard error is not a terminal.
pub struct Progress {
    mode: Mode,
    state: Mutex<State>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Quiet,
    Bar,
    Lines,
}

struct State {
    start: Instant,
    last: Option<Instant>,
    /// Whether anything was printed for the current stage.
    printed: bool,
}

/// How often the bar is redrawn.
const BAR_EVERY: Duration = Duration::from_millis(100);
/// How often a plain line is printed.
const LINE_EVERY: Duration = Duration::from_secs(5);

impl Progress {
    /// Progress for this process's standard error.
    pub fn new(quiet: bool) -> Progress {
        let mode = if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Bar
        } else {
            Mode::Lines
        };
        Progress {
            mode,
            state: Mutex::new(State {
                start: Instant::now(),
                last: None,
                printed: false,
            }),
        }
    }

    /// `done` of `total` items of the stage `what` are finished.
    pub fn report(&self, what: &str, done: usize, total: usize) {
        if self.mode == Mode::Quiet {
            return;
        }
        let mut s = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let every = if self.mode == Mode::Bar {
            BAR_EVERY
        } else {
            LINE_EVERY
        };
        if done >= total {
            drop(s);
            self.finish(what, total);
            return;
        }
        let due = s.last.map_or(now - s.start >= every, |l| now - l >= every);
        if !due {
            return;
        }
        s.last = Some(now);
        s.printed = true;
        let secs = (now - s.start).as_secs_f64();
        let pct = done.saturating_mul(100) / total.max(1);
        let mut err = std::io::stderr().lock();
        // Progress is best effort: a closed standard error must not end the sweep.
        let _ = if self.mode == Mode::Bar {
            let width = 30;
            let filled = done.saturating_mul(width) / total.max(1);
            write!(
                err,
                "\r[{}{}] {pct:>3}% {done}/{total} {what}, {secs:.1} s",
                "#".repeat(filled),
                ".".repeat(width - filled.min(width))
            )
        } else {
            writeln!(err, "sweep: {done}/{total} {what} ({pct}%), {secs:.0} s")
        };
        let _ = err.flush();
    }

    /// The stage `what` is over: the bar's line is ended, and a run that printed progress
    /// says how long the stage took.
    pub fn finish(&self, what: &str, total: usize) {
        if self.mode == Mode::Quiet {
            return;
        }
        let mut s = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if s.printed {
            let secs = s.start.elapsed().as_secs_f64();
            let end = if self.mode == Mode::Bar { "\r" } else { "" };
            let _ = writeln!(
                std::io::stderr().lock(),
                "{end}sweep: {total} {what} in {secs:.1} s{}",
                " ".repeat(if self.mode == Mode::Bar { 30 } else { 0 })
            );
        }
        *s = State {
            start: Instant::now(),
            last: None,
            printed: false,
        };
    }
}
