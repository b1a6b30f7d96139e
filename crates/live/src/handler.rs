//! One event in, its diagnoses out: collect, diagnose, publish.
//!
//! [`diagnose_event`] is what `s3-kms-auditor diagnose --live` and `snapshot` run;
//! [`handle`] adds the publish; the Lambda runs [`noise::handle_noisy`], which puts dedup,
//! suppression rules, the rate limit and the scheduled re-check around it (docs/live.md,
//! "Noise control"). Outcomes of [`handle`]:
//!
//! * an event that is not a CloudTrail API call, or a record that needs no diagnosis (a
//!   success, another operation, a change call that failed), is ignored with a log line;
//! * a change that can alter a read path (`auditor::event::CHANGE_EVENTS`: a bucket or key
//!   policy, a grant, a key's state, an identity policy, an SCP...) drops the cached entries
//!   it touches, so the next diagnosis in this container reads the new state, and is
//!   acknowledged with a log line. [`handle`] publishes nothing for it; with a state store,
//!   [`impact::handle_with_state`] then assesses which read paths it broke, fixed or opened
//!   and publishes those;
//! * an event that cannot be read is reported on the topic (`verdict: error`), since a retry
//!   would fail the same way;
//! * a read that got no answer from AWS (throttling, a 5xx, a timeout, a reset connection,
//!   still failing after the SDK's retries) is never evidence. When no record of the event
//!   could be diagnosed, the invocation fails, so the platform retries it and, after that,
//!   hands it to the dead-letter queue or on-failure destination (`template.yaml`). When other
//!   records of the same event were diagnosed, those are published and each record that
//!   failed gets a "could not diagnose" report (`verdict: error`, naming the read, the error
//!   and the record's event id) instead, so that a retry does not publish them again;
//! * a publish that fails fails the invocation; the records this invocation already published
//!   are remembered by the container for an hour (Lambda's longest event age in
//!   `template.yaml`), so the retry publishes only the rest when it lands in the same
//!   container.
//!
//! So every event ends in exactly one of: published diagnoses, a published report, a
//! deliberate ignore with its reason (logged), or a failed invocation. Nothing is lost
//! silently, and no record is published twice because a later record failed.

use std::time::{Duration, Instant};

use auditor::diagnose::{diagnose, Diagnosis};
use auditor::event::{parse_events, EventError, EventOutcome};
use auditor::report::sns::{error_notification, notification};
use auditor::request::Request;
use auditor::snapshot::{Snapshot, SnapshotError};
use serde::Serialize;
use serde_json::Value;

use crate::collect::{CollectError, Collector};
use crate::meter::{Meter, Stats};
use crate::ports::{Accounts, Publisher, ReadError};

const CLOUDTRAIL_DETAIL_TYPE: &str = "AWS API Call via CloudTrail";

/// Why an event could not be handled.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// The event is not a CloudTrail record this tool can read.
    #[error("the event cannot be read: {0}")]
    InvalidEvent(#[from] EventError),
    /// AWS did not answer a read.
    #[error("collection failed: {0}")]
    Collection(#[from] CollectError),
    /// The notification could not be published.
    #[error("publishing to SNS failed: {0}")]
    Publish(#[source] ReadError),
    /// The noise-control state store (DynamoDB) did not answer or refused a write.
    #[error("the noise-control state store failed: {0}")]
    NoiseState(#[source] ReadError),
    /// The collected snapshot does not parse: a defect of the collector.
    #[error("the collected snapshot is invalid (a defect, please report it): {0}")]
    Snapshot(#[from] SnapshotError),
    /// The state store could not be read or written (policy-change impact).
    #[error("{0}")]
    State(#[source] crate::state::StateFailure),
}

impl LiveError {
    /// A stable name for the failure, for `lambda_runtime` diagnostics and alarms.
    pub fn error_type(&self) -> &'static str {
        match self {
            LiveError::InvalidEvent(_) => "InvalidEvent",
            LiveError::Collection(_) => "CollectionFailed",
            LiveError::Publish(_) => "PublishFailed",
            LiveError::NoiseState(_) => "NoiseStateFailed",
            LiveError::Snapshot(_) => "InternalError",
            LiveError::State(_) => "StateStoreFailed",
        }
    }
}

#[cfg(feature = "lambda")]
impl From<LiveError> for lambda_runtime::Diagnostic {
    fn from(e: LiveError) -> lambda_runtime::Diagnostic {
        lambda_runtime::Diagnostic {
            error_type: e.error_type().to_owned(),
            error_message: e.to_string(),
        }
    }
}

/// One diagnosed record.
#[derive(Debug, Clone)]
pub struct Diagnosed {
    /// The record's `eventID`.
    pub event_id: Option<String>,
    /// What was collected: the snapshot that reproduces the diagnosis offline.
    pub snapshot: Value,
    /// The diagnosis.
    pub diagnosis: Diagnosis,
    /// The AWS calls it took.
    pub stats: Stats,
    /// Collection and diagnosis time.
    pub duration: Duration,
}

/// A record that needed no diagnosis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// Its `eventID`.
    pub event_id: Option<String>,
    /// Why.
    pub reason: String,
}

/// A change record, acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangeSeen {
    /// Its `eventID`.
    pub event_id: Option<String>,
    /// Its `eventName`.
    pub event_name: String,
    /// The account it was made in.
    pub account: Option<String>,
    /// The cache entries it dropped.
    pub invalidated: Vec<String>,
}

/// A denied record whose collection got no answer from AWS.
#[derive(Debug, Clone)]
pub struct Failed {
    /// Its `eventID`.
    pub event_id: Option<String>,
    /// The read that failed, its account and the error.
    pub error: CollectError,
}

/// The diagnoses of every denied record in an event.
#[derive(Debug, Clone, Default)]
pub struct EventReport {
    /// Denied records, diagnosed.
    pub diagnosed: Vec<Diagnosed>,
    /// Denied records that could not be collected (only when asked to go on).
    pub failed: Vec<Failed>,
    /// Change records, whose cached state was dropped.
    pub changes: Vec<ChangeSeen>,
    /// Records that needed none.
    pub skipped: Vec<Skipped>,
}

/// Collects and diagnoses every denied record of `event` (a CloudTrail record, EventBridge
/// envelope or trail log file).
pub async fn diagnose_event<A: Accounts>(
    collector: &Collector<A>,
    event: &Value,
) -> Result<EventReport, LiveError> {
    diagnose_records(collector, event, false).await
}

/// [`diagnose_event`]; with `go_on`, a record whose collection fails is listed in
/// [`EventReport::failed`] and the next records are still diagnosed.
async fn diagnose_records<A: Accounts>(
    collector: &Collector<A>,
    event: &Value,
    go_on: bool,
) -> Result<EventReport, LiveError> {
    let mut report = EventReport::default();
    for outcome in parse_events(event)? {
        match outcome {
            EventOutcome::Denied(req) => match diagnose_request(collector, &req).await {
                Ok(d) => report.diagnosed.push(d),
                Err(LiveError::Collection(error)) if go_on => {
                    let event_id = req.event.as_ref().and_then(|e| e.event_id.clone());
                    report.failed.push(Failed { event_id, error });
                }
                Err(e) => return Err(e),
            },
            // In record order: a denial after the change in the same trail log file is
            // diagnosed with the new state.
            EventOutcome::Change(change) => {
                let invalidated = collector.invalidate(&change);
                report.changes.push(ChangeSeen {
                    event_id: change.event_id,
                    event_name: change.event_name,
                    account: change.account,
                    invalidated,
                });
            }
            EventOutcome::Skipped { event_id, reason } => report.skipped.push(Skipped {
                event_id,
                reason: reason.to_string(),
            }),
        }
    }
    Ok(report)
}

/// Collects and diagnoses one denied request.
pub async fn diagnose_request<A: Accounts>(
    collector: &Collector<A>,
    req: &Request,
) -> Result<Diagnosed, LiveError> {
    let started = Instant::now();
    let meter = Meter::new();
    // Boxed: the collection's future is large, and deeply nested types slow the build.
    let snapshot = Box::pin(collector.collect(req, &meter)).await?;
    let snap = Snapshot::from_value(&snapshot)?;
    let diagnosis = diagnose(&snap, req);
    Ok(Diagnosed {
        event_id: req.event.as_ref().and_then(|e| e.event_id.clone()),
        snapshot,
        diagnosis,
        stats: meter.stats(),
        duration: started.elapsed(),
    })
}

/// What an invocation did, returned to the caller and logged.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// The EventBridge event id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// Why the whole event was ignored, when it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignored: Option<String>,
    /// One entry per published diagnosis.
    pub published: Vec<Published>,
    /// Records that needed no diagnosis.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Skipped>,
    /// Change records: acknowledged, their cached state dropped, nothing published.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<ChangeSeen>,
    /// The error report published instead of a diagnosis, when the event was unreadable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_reported: Option<String>,
    /// "Could not diagnose" reports published for denied records whose reads got no answer
    /// while other records of the event were diagnosed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reported: Vec<Reported>,
    /// Records an earlier, failed invocation of this event already published (event ids):
    /// not published again.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub already_published: Vec<String>,
}

/// A "could not diagnose" report for one record.
#[derive(Debug, Clone, Serialize)]
pub struct Reported {
    /// The CloudTrail `eventID`.
    pub event_id: Option<String>,
    /// The read that got no answer (`iam:GetPolicyVersion`).
    pub operation: String,
    /// Its account.
    pub account: String,
    /// The error, after the SDK's retries.
    pub error: String,
    /// The SNS message id.
    pub message_id: String,
}

/// One published diagnosis.
#[derive(Debug, Clone, Serialize)]
pub struct Published {
    /// The CloudTrail `eventID`.
    pub event_id: Option<String>,
    /// `denied`, `allowed` or `unknown`.
    pub verdict: Value,
    /// The finding codes.
    pub finding_codes: Vec<String>,
    /// The SNS message id.
    pub message_id: String,
    /// AWS calls, including the publish.
    pub api_calls: u32,
    /// Round-trip depth, including the publish.
    pub depth: u32,
    /// Calls by operation.
    pub calls_by_operation: std::collections::BTreeMap<String, u32>,
    /// Reads answered from the container's cache.
    pub cache_hits: u32,
    /// The SDK's retries (attempts beyond the calls).
    pub retries: u32,
    /// Milliseconds from the start of collection to the publish's answer.
    pub duration_ms: u128,
}

/// Handles one Lambda event: diagnoses every denied record and publishes each diagnosis.
pub async fn handle<A: Accounts, P: Publisher>(
    collector: &Collector<A>,
    publisher: &P,
    event: &Value,
) -> Result<Summary, LiveError> {
    let envelope_id = event.get("id").and_then(Value::as_str).map(str::to_owned);
    let mut summary = Summary {
        event_id: envelope_id.clone(),
        ..Summary::default()
    };
    if let Some(reason) = not_handled(event) {
        tracing::info!(event_id = envelope_id.as_deref(), reason = %reason, "event ignored");
        summary.ignored = Some(reason);
        return Ok(summary);
    }
    let report = match diagnose_records(collector, event, true).await {
        Ok(r) => r,
        Err(e @ LiveError::InvalidEvent(_)) => {
            // Retrying cannot help: report it on the topic, where people look.
            tracing::error!(event_id = envelope_id.as_deref(), error_type = e.error_type(), error = %e, "event cannot be diagnosed");
            let n = error_notification(envelope_id.as_deref(), e.error_type(), &e.to_string());
            let id = publisher.publish(&n).await.map_err(LiveError::Publish)?;
            summary.error_reported = Some(id);
            return Ok(summary);
        }
        Err(e) => return Err(e),
    };
    for s in &report.skipped {
        tracing::info!(event_id = s.event_id.as_deref(), reason = %s.reason, "record needs no diagnosis");
    }
    summary.skipped = report.skipped;
    for c in &report.changes {
        tracing::info!(
            event_id = c.event_id.as_deref(),
            event_name = %c.event_name,
            account = c.account.as_deref(),
            invalidated = ?c.invalidated,
            "change acknowledged: cached state dropped, nothing published"
        );
    }
    summary.changes = report.changes;
    let ledger = collector.published();
    // What this invocation publishes, remembered only if a later publish fails.
    let mut sent: Vec<String> = Vec::new();
    let diagnosed = report.diagnosed.len();
    for (i, d) in report.diagnosed.into_iter().enumerate() {
        let key = ledger_key(envelope_id.as_deref(), d.event_id.as_deref(), i);
        if ledger.contains(&key) {
            tracing::info!(
                event_id = d.event_id.as_deref(),
                "already published by an earlier invocation of this event"
            );
            summary
                .already_published
                .push(d.event_id.clone().unwrap_or(key));
            continue;
        }
        let started = Instant::now();
        let n = notification(&d.diagnosis);
        let message_id = match publisher.publish(&n).await {
            Ok(id) => id,
            Err(e) => {
                ledger.remember(&sent);
                return Err(LiveError::Publish(e));
            }
        };
        sent.push(key);
        summary
            .published
            .push(published(d, &n, message_id, started.elapsed()));
    }
    settle_failed(
        ledger,
        publisher,
        diagnosed,
        report.failed,
        &mut sent,
        &mut summary,
    )
    .await?;
    Ok(summary)
}

/// The ledger's name for a record: the envelope's id and the record's `eventID` (its position
/// when it has none).
fn ledger_key(envelope: Option<&str>, record: Option<&str>, position: usize) -> String {
    format!(
        "{}/{}",
        envelope.unwrap_or_default(),
        record
            .map(str::to_owned)
            .unwrap_or_else(|| position.to_string())
    )
}

/// Accounts for the denied records of an event whose reads got no answer, once the others
/// are settled (`handled` of them: published, or, under noise control, counted). When none
/// was, the invocation fails with the first failure, so that Lambda retries the event and
/// then hands it to the dead-letter queue: a throttle is never a verdict. Otherwise each
/// failed record gets a "could not diagnose" report (`verdict: error`) on `publisher`, so
/// that no retry repeats the others; the reports an earlier invocation of the event already
/// published (`ledger`) are not published again, and a publish that fails remembers `sent`
/// (what this invocation published) before the invocation fails.
pub(crate) async fn settle_failed<P: Publisher>(
    ledger: &PublishedLedger,
    publisher: &P,
    handled: usize,
    failed: Vec<Failed>,
    sent: &mut Vec<String>,
    summary: &mut Summary,
) -> Result<(), LiveError> {
    if handled == 0 {
        if let Some(f) = failed.into_iter().next() {
            return Err(LiveError::Collection(f.error));
        }
        return Ok(());
    }
    let envelope_id = summary.event_id.clone();
    for (i, f) in failed.into_iter().enumerate() {
        let key = ledger_key(envelope_id.as_deref(), f.event_id.as_deref(), handled + i);
        if ledger.contains(&key) {
            summary
                .already_published
                .push(f.event_id.clone().unwrap_or(key));
            continue;
        }
        let error = LiveError::Collection(f.error.clone());
        tracing::error!(event_id = f.event_id.as_deref(), operation = %f.error.operation, account = %f.error.account, error = %f.error.source, "record could not be diagnosed: reported");
        let n = error_notification(
            f.event_id.as_deref().or(envelope_id.as_deref()),
            error.error_type(),
            &error.to_string(),
        );
        let message_id = match publisher.publish(&n).await {
            Ok(id) => id,
            Err(e) => {
                ledger.remember(sent);
                return Err(LiveError::Publish(e));
            }
        };
        sent.push(key);
        summary.reported.push(Reported {
            event_id: f.event_id,
            operation: f.error.operation,
            account: f.error.account,
            error: f.error.source.to_string(),
            message_id,
        });
    }
    Ok(())
}

/// The log line and summary entry of a published diagnosis; `publish_time` is what the
/// publish took.
pub(crate) fn published(
    d: Diagnosed,
    n: &auditor::report::sns::Notification,
    message_id: String,
    publish_time: Duration,
) -> Published {
    {
        let mut stats = d.stats;
        stats.calls += 1;
        stats.depth += 1;
        *stats.by_operation.entry("sns:Publish".into()).or_default() += 1;
        let codes: Vec<String> = d
            .diagnosis
            .findings
            .iter()
            .map(|f| f.code.as_str().to_owned())
            .collect();
        let verdict = serde_json::to_value(d.diagnosis.verdict).unwrap_or(Value::Null);
        let duration = d.duration + publish_time;
        tracing::info!(
            event_id = d.event_id.as_deref(),
            verdict = %verdict.as_str().unwrap_or_default(),
            finding_codes = ?codes,
            confidence = ?d.diagnosis.confidence,
            api_calls = stats.calls,
            depth = stats.depth,
            cache_hits = stats.cache_hits,
            retries = stats.retries,
            calls_by_operation = ?stats.by_operation,
            duration_ms = duration.as_millis() as u64,
            message_id = %message_id,
            trimmed = n.trimmed.len(),
            "diagnosis published"
        );
        Published {
            event_id: d.event_id,
            verdict,
            finding_codes: codes,
            message_id,
            api_calls: stats.calls,
            depth: stats.depth,
            calls_by_operation: stats.by_operation,
            cache_hits: stats.cache_hits,
            retries: stats.retries,
            duration_ms: duration.as_millis(),
        }
    }
}

/// Records of events whose invocation failed after publishing them, so that Lambda's retry
/// (which re-sends the whole event) does not publish them again. Per container: a retry that
/// lands in another container publishes them again (the deduplication table, where
/// configured, catches that).
#[derive(Debug, Default)]
pub struct PublishedLedger {
    entries: std::sync::Mutex<std::collections::HashMap<String, Instant>>,
}

/// How long a record is remembered: Lambda drops an asynchronous event older than an hour
/// (`MaximumEventAgeInSeconds` in `template.yaml`), so no retry comes later.
const LEDGER_KEEP: Duration = Duration::from_secs(3600);

impl PublishedLedger {
    fn remember(&self, keys: &[String]) {
        if let Ok(mut m) = self.entries.lock() {
            m.retain(|_, at| at.elapsed() < LEDGER_KEEP);
            for k in keys {
                m.insert(k.clone(), Instant::now());
            }
        }
    }

    fn contains(&self, key: &str) -> bool {
        self.entries
            .lock()
            .map(|m| m.get(key).is_some_and(|at| at.elapsed() < LEDGER_KEEP))
            .unwrap_or(false)
    }
}

/// Why an event is not one this function handles (an EventBridge event of another kind).
pub(crate) fn not_handled(event: &Value) -> Option<String> {
    let obj = event.as_object()?;
    let detail_type = obj.get("detail-type")?;
    match detail_type.as_str() {
        Some(CLOUDTRAIL_DETAIL_TYPE) => None,
        Some(other) => Some(format!(
            "`{other}` events are not handled; only `{CLOUDTRAIL_DETAIL_TYPE}`"
        )),
        None => Some("`detail-type` is not a string".into()),
    }
}

pub mod noise;

pub mod impact;
#[cfg(test)]
mod tests;
