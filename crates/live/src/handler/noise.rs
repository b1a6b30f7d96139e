//! Noise control around the handler: one alert per problem, expected denials muted, bursts
//! summarised, problems resolved (issue 12; docs/live.md, "Noise control").
//!
//! [`handle_noisy`] is what the Lambda runs. For each denied record, as early as the record
//! allows:
//!
//! 1. the default and configured suppressions that need no diagnosis
//!    ([`auditor::noise::rules::Rules::check_early`]): a match is counted for the digest;
//! 2. the pre-key (principal, bucket, key, operation): when this container diagnosed the same
//!    pre-key within the cache's time-to-live, the problem is known without collecting, and a
//!    repeat within the window is counted with one conditional write and nothing else;
//! 3. otherwise the diagnosis, the problem's identity, the rules that need a finding code,
//!    then the store: the first occurrence (or the first after the window) claims the alert
//!    with a conditional write; a repeat is counted;
//! 4. a claimed alert is published if the topic's allowance for the minute is not spent, with
//!    the repeats suppressed since the previous alert; otherwise it waits for the summary.
//!
//! The scheduled run (an EventBridge schedule whose input is [`SCHEDULED_INPUT`]) publishes
//! the summary of waiting problems worst-first, re-diagnoses open problems from the event that
//! exposed them (a "resolved" message when nothing blocks any more; the pending repeats when
//! the window ended with some), and publishes the previous day's digest once.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use auditor::event::{parse_events, ChangeEvent, EventOutcome};
use auditor::noise::messages::{
    digest_notification, resolved_notification, summary_notifications, Alerted, SummaryItem,
};
use auditor::noise::rules::{Rules, RulesError};
use auditor::noise::window::{carried, flush_due};
use auditor::noise::{day_of, PreKey, ProblemKey, Repeats};
use auditor::report::sns::{notification, with_problem, Notification};
use auditor::request::Request;
use serde::Serialize;
use serde_json::Value;

use super::{
    diagnose_request, handle, not_handled, published, settle_failed, ChangeSeen, Failed, LiveError,
    Skipped, Summary,
};
use crate::collect::{may_alter, Collector};
use crate::noise_store::{Claim, NoiseStore, Occurrence, StoredProblem};
use crate::ports::{Accounts, Publisher};

/// The input of the scheduled rule (template.yaml, `NoiseSchedule`): a bare object no
/// EventBridge event has, so a forwarded event cannot pass for it.
pub const SCHEDULED_INPUT: &str = r#"{"s3ka": "scheduled-run"}"#;

/// Noise-control settings, from the environment.
///
/// | variable | default | meaning |
/// | --- | --- | --- |
/// | `S3KA_TABLE_NAME` | none | the DynamoDB table the template creates; without it, state is per container (memory) |
/// | `S3KA_DEDUP_WINDOW_SECONDS` | 3600 | repeats of a problem within this time after its alert are counted, not published |
/// | `S3KA_RATE_LIMIT_PER_MINUTE` | 20 | messages per minute to the topic before problems wait for the summary (0: no limit) |
/// | `S3KA_DEFAULT_SUPPRESSIONS` | `true` | mute AWS services' expected denials (`auditor::noise::rules`) |
/// | `S3KA_SUPPRESSIONS` | `[]` | configured suppressions, a JSON array (docs/live.md) |
/// | `S3KA_RECHECK_SECONDS` | 900 | how often the scheduled run re-diagnoses an open problem |
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoiseConfig {
    /// `S3KA_TABLE_NAME`.
    pub table: Option<String>,
    /// `S3KA_DEDUP_WINDOW_SECONDS`.
    pub window: u64,
    /// `S3KA_RATE_LIMIT_PER_MINUTE`.
    pub rate_limit: u32,
    /// `S3KA_DEFAULT_SUPPRESSIONS` and `S3KA_SUPPRESSIONS`.
    pub rules: Rules,
    /// `S3KA_RECHECK_SECONDS`.
    pub recheck: u64,
}

impl Default for NoiseConfig {
    fn default() -> NoiseConfig {
        NoiseConfig {
            table: None,
            window: 3600,
            rate_limit: 20,
            rules: Rules {
                defaults: true,
                configured: Vec::new(),
            },
            recheck: 900,
        }
    }
}

/// A noise-control setting that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("environment variable `{var}`: {message}")]
pub struct NoiseConfigError {
    /// The variable.
    pub var: &'static str,
    /// What is wrong.
    pub message: String,
}

impl NoiseConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<NoiseConfig, NoiseConfigError> {
        NoiseConfig::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads settings through `get`.
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<NoiseConfig, NoiseConfigError> {
        let get = |k: &str| {
            get(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let number = |var: &'static str, default: u64| -> Result<u64, NoiseConfigError> {
            match get(var) {
                None => Ok(default),
                Some(v) => v.parse().map_err(|_| NoiseConfigError {
                    var,
                    message: format!("`{v}` is not a whole number"),
                }),
            }
        };
        let defaults = match get("S3KA_DEFAULT_SUPPRESSIONS").as_deref() {
            None | Some("true") => true,
            Some("false") => false,
            Some(other) => {
                return Err(NoiseConfigError {
                    var: "S3KA_DEFAULT_SUPPRESSIONS",
                    message: format!("`{other}` is not `true` or `false`"),
                })
            }
        };
        let rules =
            match get("S3KA_SUPPRESSIONS") {
                None => Rules {
                    defaults,
                    configured: Vec::new(),
                },
                Some(text) => Rules::parse(&text, "S3KA_SUPPRESSIONS", defaults).map_err(
                    |e: RulesError| NoiseConfigError {
                        var: "S3KA_SUPPRESSIONS",
                        message: format!("{}: {}", e.path, e.message),
                    },
                )?,
            };
        let window = number("S3KA_DEDUP_WINDOW_SECONDS", 3600)?;
        let rate_limit =
            u32::try_from(number("S3KA_RATE_LIMIT_PER_MINUTE", 20)?).map_err(|_| {
                NoiseConfigError {
                    var: "S3KA_RATE_LIMIT_PER_MINUTE",
                    message: "too large".into(),
                }
            })?;
        Ok(NoiseConfig {
            table: get("S3KA_TABLE_NAME"),
            window,
            rate_limit,
            rules,
            recheck: number("S3KA_RECHECK_SECONDS", 900)?,
        })
    }
}

/// Noise control of one container: the settings, the state store, the topic the rate limit
/// counts, and the pre-key memo.
#[derive(Debug)]
pub struct Noise<S> {
    /// The settings.
    pub config: NoiseConfig,
    /// Where the state lives.
    pub store: S,
    topic: String,
    memo_ttl: u64,
    memo: Mutex<HashMap<PreKey, (Alerted, u64)>>,
}

impl<S: NoiseStore> Noise<S> {
    /// Noise control publishing to `topic`; a pre-key is remembered for `memo_ttl` (the
    /// collector cache's time-to-live: what it learned is as fresh as the reads behind it).
    pub fn new(config: NoiseConfig, store: S, topic: &str, memo_ttl: Duration) -> Noise<S> {
        Noise {
            config,
            store,
            topic: topic.to_owned(),
            memo_ttl: memo_ttl.as_secs(),
            memo: Mutex::new(HashMap::new()),
        }
    }

    fn memo_get(&self, pre: &PreKey, now: u64) -> Option<Alerted> {
        let memo = self.memo.lock().ok()?;
        let (a, at) = memo.get(pre)?;
        (now < at.saturating_add(self.memo_ttl)).then(|| a.clone())
    }

    fn memo_put(&self, pre: PreKey, a: Alerted, now: u64) {
        if self.memo_ttl == 0 {
            return;
        }
        if let Ok(mut memo) = self.memo.lock() {
            let ttl = self.memo_ttl;
            memo.retain(|_, (_, at)| now < at.saturating_add(ttl));
            memo.insert(pre, (a, now));
        }
    }

    fn forget(&self) {
        if let Ok(mut memo) = self.memo.lock() {
            memo.clear();
        }
    }
}

/// A denial counted as a repeat of an alerted problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Repeat {
    /// The record's `eventID`.
    pub event_id: Option<String>,
    /// The problem.
    pub problem_id: String,
    /// Whether it took a diagnosis (false: known from the pre-key, nothing collected).
    pub diagnosed: bool,
}

/// A denial muted by a suppression rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Muted {
    /// The record's `eventID`.
    pub event_id: Option<String>,
    /// `default:<name>` or `rule:<id>`.
    pub by: String,
}

/// A problem held back by the rate limit, for the next summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Held {
    /// The record's `eventID`.
    pub event_id: Option<String>,
    /// The problem.
    pub problem_id: String,
}

/// What the scheduled run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ScheduledRun {
    /// Message ids of the summaries published.
    pub summaries: Vec<String>,
    /// Problems they summarised.
    pub summarised: usize,
    /// Problems re-diagnosed.
    pub rechecked: Vec<String>,
    /// Problems resolved (a "resolved" message each).
    pub resolved: Vec<String>,
    /// Problems whose pending repeats were published with a fresh diagnosis.
    pub flushed: Vec<String>,
    /// The digest's message id, when one went out.
    pub digest: Option<String>,
    /// Re-checks that failed (kept open, tried again next run).
    pub failures: Vec<String>,
}

/// What an invocation did, with noise control.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NoisySummary {
    /// Published diagnoses, changes, skipped records, errors.
    #[serde(flatten)]
    pub base: Summary,
    /// Repeats counted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub repeats: Vec<Repeat>,
    /// Denials muted by rule.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub muted: Vec<Muted>,
    /// Problems held for the summary.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub held: Vec<Held>,
    /// Expired rules that would have matched.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub expired_rules: Vec<String>,
    /// The scheduled run's report, for a scheduled invocation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduled: Option<ScheduledRun>,
    /// The re-check of the open problems the event's changes touch, when they touch any
    /// (only its re-check fields are filled).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change_recheck: Option<ScheduledRun>,
}

fn state_err(e: crate::ports::ReadError) -> LiveError {
    LiveError::NoiseState(e)
}

/// Whether `event` is the scheduled run's.
pub fn is_scheduled(event: &Value) -> bool {
    serde_json::from_str::<Value>(SCHEDULED_INPUT).is_ok_and(|v| &v == event)
}

/// Handles one event with noise control at `now` (seconds since the epoch).
pub async fn handle_noisy<A: Accounts, P: Publisher, S: NoiseStore>(
    collector: &Collector<A>,
    publisher: &P,
    noise: &Noise<S>,
    event: &Value,
    now: u64,
) -> Result<NoisySummary, LiveError> {
    let mut out = NoisySummary::default();
    if is_scheduled(event) {
        out.scheduled = Some(scheduled_run(collector, publisher, noise, now).await?);
        return Ok(out);
    }
    let outcomes = match (not_handled(event), parse_events(event)) {
        (None, Ok(o)) => o,
        // Ignored or unreadable: exactly what the plain handler does (log, or an error report).
        _ => {
            out.base = handle(collector, publisher, event).await?;
            return Ok(out);
        }
    };
    out.base.event_id = event.get("id").and_then(Value::as_str).map(str::to_owned);
    let event_text = event.to_string();
    let mut index = 0;
    // Denied records that ended in an outcome, those whose reads got no answer, and changes.
    let (mut handled, mut failed, mut changes) = (0, Vec::new(), Vec::new());
    for outcome in outcomes {
        match outcome {
            EventOutcome::Denied(req) => {
                let got = denied(
                    collector,
                    publisher,
                    noise,
                    &req,
                    (&event_text, index),
                    now,
                    &mut out,
                )
                .await;
                match got {
                    Ok(()) => handled += 1,
                    // Settled with the plain handler's rule once every record was seen.
                    Err(LiveError::Collection(error)) => failed.push(Failed {
                        event_id: req.event.as_ref().and_then(|e| e.event_id.clone()),
                        error,
                    }),
                    Err(e) => return Err(e),
                }
                index += 1;
            }
            EventOutcome::Change(change) => {
                let invalidated = collector.invalidate(&change);
                // What the memo learned came from the state the change replaced.
                noise.forget();
                tracing::info!(event_id = change.event_id.as_deref(), event_name = %change.event_name, invalidated = ?invalidated, "change acknowledged: cached state dropped");
                out.base.changes.push(ChangeSeen {
                    event_id: change.event_id.clone(),
                    event_name: change.event_name.clone(),
                    account: change.account.clone(),
                    invalidated,
                });
                changes.push(*change);
            }
            EventOutcome::Skipped { event_id, reason } => {
                tracing::info!(event_id = event_id.as_deref(), reason = %reason, "record needs no diagnosis");
                out.base.skipped.push(Skipped {
                    event_id,
                    reason: reason.to_string(),
                });
            }
        }
    }
    // Diagnoses are deduplicated by the store, so only the reports need the ledger.
    let mut sent = Vec::new();
    settle_failed(
        collector.published(),
        publisher,
        handled,
        failed,
        &mut sent,
        &mut out.base,
    )
    .await?;
    if !changes.is_empty() {
        let run = recheck_changed(collector, publisher, noise, &changes, now).await?;
        if run != ScheduledRun::default() {
            out.change_recheck = Some(run);
        }
    }
    Ok(out)
}

/// Re-checks, as the scheduled run does ([`recheck`]), every open problem that one of
/// `changes` may have fixed ([`may_alter`]: by bucket, key, principal or organization; a key
/// change by the accounts the problem names), whatever its last re-check.
async fn recheck_changed<A: Accounts, P: Publisher, S: NoiseStore>(
    collector: &Collector<A>,
    publisher: &P,
    noise: &Noise<S>,
    changes: &[ChangeEvent],
    now: u64,
) -> Result<ScheduledRun, LiveError> {
    let mut run = ScheduledRun::default();
    let problems = noise.store.problems().await.map_err(state_err)?;
    let mut seen = BTreeSet::new();
    for p in problems.iter().filter(|p| is_open(p)) {
        if !seen.insert(p.id.clone()) {
            continue;
        }
        let Some(req) = p
            .event
            .as_ref()
            .and_then(|(text, i)| exposing_request(text, *i))
        else {
            continue;
        };
        // `CODE@account`: the accounts that must act.
        let accounts: Vec<&str> = p
            .alerted
            .blocking
            .iter()
            .filter_map(|b| b.split_once('@').map(|(_, a)| a))
            .collect();
        if changes.iter().any(|c| may_alter(c, &req, &accounts)) {
            tracing::info!(problem = %p.id, "a change touches an open problem: re-checking it");
            recheck(collector, publisher, noise, p, now, &mut run).await?;
        }
    }
    Ok(run)
}

/// Whether the problem is open and had something blocking to resolve.
fn is_open(p: &StoredProblem) -> bool {
    p.state.open && !p.alerted.blocking.is_empty()
}

async fn note_expired<S: NoiseStore>(
    noise: &Noise<S>,
    day: &str,
    expired: &[String],
    out: &mut NoisySummary,
) -> Result<(), LiveError> {
    for id in expired {
        if out.expired_rules.contains(id) {
            continue;
        }
        tracing::warn!(rule = %id, "suppression rule has expired and no longer applies; renew or remove it");
        noise
            .store
            .count(day, &format!("expired:{id}"), 1)
            .await
            .map_err(state_err)?;
        out.expired_rules.push(id.clone());
    }
    Ok(())
}

async fn denied<A: Accounts, P: Publisher, S: NoiseStore>(
    collector: &Collector<A>,
    publisher: &P,
    noise: &Noise<S>,
    req: &Request,
    event: (&str, usize),
    now: u64,
    out: &mut NoisySummary,
) -> Result<(), LiveError> {
    let store = &noise.store;
    let cfg = &noise.config;
    let event_id = req.event.as_ref().and_then(|e| e.event_id.clone());
    let today = day_of(now);
    let early = cfg.rules.check_early(req, &today);
    note_expired(noise, &today, &early.expired, out).await?;
    if let Some(s) = early.suppressed {
        return mute(noise, &today, event_id, s.counter(), out).await;
    }
    let pre = PreKey::of(req);
    if let Some(known) = noise.memo_get(&pre, now) {
        let claim = Claim {
            id: &known.id,
            now,
            window: cfg.window,
            alerted: &known,
            event,
        };
        match store.occur(&claim).await.map_err(state_err)? {
            Occurrence::Suppressed => {
                return repeat(noise, &today, event_id, known.id, false, out).await;
            }
            // The window has ended: the alert needs a fresh diagnosis, which may find another
            // problem; give the claim back and take the full path.
            Occurrence::Publish { previous } => store
                .release(&known.id, now, previous.as_ref())
                .await
                .map_err(state_err)?,
        }
    }
    let d = diagnose_request(collector, req).await?;
    let key = ProblemKey::of(req, &d.diagnosis);
    let alerted = Alerted {
        id: key.id(),
        identity: key.label(),
        blocking: key.blocking.clone(),
        message_id: None,
        subject: None,
    };
    noise.memo_put(pre, alerted.clone(), now);
    let codes: Vec<String> = d
        .diagnosis
        .blocking()
        .map(|f| f.code.as_str().to_owned())
        .collect();
    let late = cfg.rules.check(req, &codes, &today);
    note_expired(noise, &today, &late.expired, out).await?;
    if let Some(s) = late.suppressed {
        return mute(noise, &today, event_id, s.counter(), out).await;
    }
    let claim = Claim {
        id: &alerted.id,
        now,
        window: cfg.window,
        alerted: &alerted,
        event,
    };
    let previous = match store.occur(&claim).await.map_err(state_err)? {
        Occurrence::Suppressed => {
            return repeat(noise, &today, event_id, alerted.id.clone(), true, out).await;
        }
        Occurrence::Publish { previous } => previous,
    };
    let repeats = previous.as_ref().and_then(carried);
    if !store
        .take_rate(&noise.topic, now, cfg.rate_limit)
        .await
        .map_err(state_err)?
    {
        let (occurrences, first) = previous
            .as_ref()
            .filter(|p| p.open)
            .map_or((1, now), |p| (p.occurrences + 1, p.first_seen));
        let item = SummaryItem::of(
            &alerted.id,
            &alerted.identity,
            &d.diagnosis,
            occurrences,
            first,
            now,
        );
        store.pend(&alerted.id, &item).await.map_err(state_err)?;
        store
            .count(&today, "rate_limited", 1)
            .await
            .map_err(state_err)?;
        tracing::info!(event_id = event_id.as_deref(), problem = %alerted.id, "rate limit reached: problem held for the next summary");
        out.held.push(Held {
            event_id,
            problem_id: alerted.id,
        });
        return Ok(());
    }
    let started = Instant::now();
    let n = with_problem(
        notification(&d.diagnosis),
        &Repeats::problem_field(&alerted.id, &alerted.identity, repeats),
    );
    let message_id = match publisher.publish(&n).await {
        Ok(id) => id,
        Err(e) => {
            // Give the alert back so that Lambda's retry publishes it.
            if let Err(r) = store.release(&alerted.id, now, previous.as_ref()).await {
                tracing::error!(problem = %alerted.id, error = %r, "could not release the claim of a failed publish");
            }
            return Err(LiveError::Publish(e));
        }
    };
    store
        .alerted(&alerted.id, &message_id, &n.subject)
        .await
        .map_err(state_err)?;
    tracing::info!(problem = %alerted.id, identity = %alerted.identity, suppressed_repeats = repeats.map_or(0, |r| r.count), "problem alerted");
    out.base
        .published
        .push(published(d, &n, message_id, started.elapsed()));
    Ok(())
}

async fn mute<S: NoiseStore>(
    noise: &Noise<S>,
    day: &str,
    event_id: Option<String>,
    by: String,
    out: &mut NoisySummary,
) -> Result<(), LiveError> {
    noise.store.count(day, &by, 1).await.map_err(state_err)?;
    tracing::info!(event_id = event_id.as_deref(), by = %by, "denial suppressed by rule");
    out.muted.push(Muted { event_id, by });
    Ok(())
}

async fn repeat<S: NoiseStore>(
    noise: &Noise<S>,
    day: &str,
    event_id: Option<String>,
    problem_id: String,
    diagnosed: bool,
    out: &mut NoisySummary,
) -> Result<(), LiveError> {
    noise
        .store
        .count(day, "repeat", 1)
        .await
        .map_err(state_err)?;
    tracing::info!(event_id = event_id.as_deref(), problem = %problem_id, diagnosed, "repeat within the dedup window: counted");
    out.repeats.push(Repeat {
        event_id,
        problem_id,
        diagnosed,
    });
    Ok(())
}

async fn publish<P: Publisher>(publisher: &P, n: &Notification) -> Result<String, LiveError> {
    publisher.publish(n).await.map_err(LiveError::Publish)
}

/// The scheduled run: summaries, re-checks, the digest.
pub async fn scheduled_run<A: Accounts, P: Publisher, S: NoiseStore>(
    collector: &Collector<A>,
    publisher: &P,
    noise: &Noise<S>,
    now: u64,
) -> Result<ScheduledRun, LiveError> {
    let store = &noise.store;
    let cfg = &noise.config;
    let mut run = ScheduledRun::default();
    let problems = store.problems().await.map_err(state_err)?;
    let pending: Vec<&StoredProblem> = problems.iter().filter(|p| p.pending.is_some()).collect();
    if !pending.is_empty() {
        let items: Vec<SummaryItem> = pending.iter().filter_map(|p| p.pending.clone()).collect();
        for n in summary_notifications(&items, now) {
            run.summaries.push(publish(publisher, &n).await?);
        }
        for p in &pending {
            store.unpend(&p.id).await.map_err(state_err)?;
        }
        run.summarised = items.len();
    }
    let mut seen = BTreeSet::new();
    for p in problems.iter().filter(|p| is_open(p)) {
        if !seen.insert(p.id.clone()) {
            continue;
        }
        let due = flush_due(&p.state, now, cfg.window);
        if due.is_none() && now < p.checked_at.saturating_add(cfg.recheck) {
            continue;
        }
        recheck(collector, publisher, noise, p, now, &mut run).await?;
    }
    let yesterday = day_of(now.saturating_sub(86_400));
    let counters = store.counters(&yesterday).await.map_err(state_err)?;
    if !counters.is_empty()
        && store
            .claim_digest(&yesterday, now)
            .await
            .map_err(state_err)?
    {
        run.digest = Some(publish(publisher, &digest_notification(&yesterday, &counters)).await?);
    }
    tracing::info!(
        summaries = run.summaries.len(),
        rechecked = run.rechecked.len(),
        resolved = run.resolved.len(),
        flushed = run.flushed.len(),
        digest = run.digest.is_some(),
        "scheduled run"
    );
    Ok(run)
}

/// Re-diagnoses the open problem `p` from the event that exposed it: when nothing blocks any
/// more, closes it and publishes one "resolved" message; when its window ended with repeats,
/// publishes them with the fresh diagnosis; otherwise notes the re-check. A re-check that gets
/// no answer from AWS leaves the problem open (in `run.failures`) for the next run.
async fn recheck<A: Accounts, P: Publisher, S: NoiseStore>(
    collector: &Collector<A>,
    publisher: &P,
    noise: &Noise<S>,
    p: &StoredProblem,
    now: u64,
    run: &mut ScheduledRun,
) -> Result<(), LiveError> {
    let store = &noise.store;
    let due = flush_due(&p.state, now, noise.config.window);
    let Some(req) = p
        .event
        .as_ref()
        .and_then(|(text, i)| exposing_request(text, *i))
    else {
        run.failures.push(format!(
            "{}: the stored event no longer reads as a denial",
            p.id
        ));
        return Ok(());
    };
    let d = match diagnose_request(collector, &req).await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(problem = %p.id, error = %e, "re-check failed; the problem stays open");
            run.failures.push(format!("{}: {e}", p.id));
            return Ok(());
        }
    };
    run.rechecked.push(p.id.clone());
    if d.diagnosis.blocking().next().is_none() {
        if store.close(&p.id, now).await.map_err(state_err)? {
            let verdict = serde_json::to_value(d.diagnosis.verdict)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let n = resolved_notification(
                &p.alerted,
                &verdict,
                p.state.first_seen,
                p.state.last_seen,
                p.state.occurrences,
                now,
            );
            if let Err(e) = publish(publisher, &n).await {
                store.reopen(&p.id).await.map_err(state_err)?;
                return Err(e);
            }
            tracing::info!(problem = %p.id, identity = %p.alerted.identity, "problem resolved");
            run.resolved.push(p.id.clone());
        }
    } else if let Some(r) = due {
        let alerted_at = p.state.alerted_at.unwrap_or(0);
        if store
            .rewindow(&p.id, alerted_at, now)
            .await
            .map_err(state_err)?
        {
            let n = with_problem(
                notification(&d.diagnosis),
                &Repeats::problem_field(&p.id, &p.alerted.identity, Some(r)),
            );
            publish(publisher, &n).await?;
            run.flushed.push(p.id.clone());
        }
    } else {
        store.checked(&p.id, now).await.map_err(state_err)?;
    }
    Ok(())
}

/// The `index`-th denied request of the stored event.
fn exposing_request(text: &str, index: usize) -> Option<Request> {
    let event: Value = serde_json::from_str(text).ok()?;
    parse_events(&event)
        .ok()?
        .into_iter()
        .filter_map(|o| match o {
            EventOutcome::Denied(r) => Some(r),
            _ => None,
        })
        .nth(index)
        .map(|r| *r)
}

#[cfg(test)]
mod tests;
