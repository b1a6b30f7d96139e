//! The organization sweep (issue 11; docs/live.md, "Organization sweep"), on AWS's own
//! machinery: an EventBridge schedule starts it, an SQS queue fans it out, Lambda's
//! concurrency limit on the queue's event source bounds it.
//!
//! * **Plan** ([`plan`]): a `Scheduled Event` invokes the function. The sweep id is the
//!   schedule's time and the start of the event's id ([`sweep_id`]), so that Lambda's retry of
//!   the same invocation plans the same sweep. The planner lists the accounts (Organizations
//!   `ListAccounts`, or the configured list), stores the plan (`sweeps/<id>/plan.json`) and
//!   enqueues one `collect` message per account, ten per `SendMessageBatch`, sending failed
//!   entries again.
//! * **Collect** (one message per account): the worker assumes the member role, reads the
//!   whole account (`Collector::collect_account`), stores it in `accounts/<id>.json` (its own
//!   entry replaced, with a conditional write) and marks `sweeps/<id>/collected/<account>`
//!   with the stored document's footprint (`impact::org::footprint`: its buckets, and the
//!   accounts, buckets and canonical ids it names).
//! * **Evaluate**: the worker whose mark completes the collection (collected + failed =
//!   planned, counted by listing) reads the footprints (one read per account, and the
//!   document of any stored account this sweep did not collect), works out for each account
//!   the stored accounts its paths can involve (`impact::org::neighbours`), enqueues one
//!   `evaluate` message per collected account naming them, and marks `sweeps/<id>/evaluate`.
//!   Evaluating after every account is collected means every path is judged on this sweep's
//!   state of both its sides. The evaluate worker composes the organization from the stored
//!   snapshots its message names (all of them for a message that names none), evaluates
//!   every path touching its account (both ways), compares with the account's stored path
//!   index, publishes one summary when something changed (a path's verdict, or an advisory
//!   new on one of its buckets), replaces the index and marks
//!   `sweeps/<id>/evaluated/<account>`. A sweep thus reads each account's snapshot about as
//!   many times as accounts its paths touch, not once per account of the organization
//!   (docs/scaling.md, "The live sweep").
//! * **Complete**: the worker whose mark completes the evaluation publishes the completion
//!   message with the sweep's counts and marks `sweeps/<id>/complete`.
//!
//! Every failure is reported per message (`batchItemFailures`): SQS delivers the message
//! again after its visibility timeout, and after `maxReceiveCount` receives moves it to the
//! dead-letter queue. On its last receive ([`SweepConfig::max_receive`]) the worker also marks
//! `sweeps/<id>/failed-<phase>/<account>` with the error, so that the sweep still completes
//! and its completion message names the account: a sweep never loses an account silently.
//!
//! Marks are written after what they announce (the messages sent, the summary published): a
//! worker that dies in between is retried and does it again, so a message may be duplicated
//! in a rare race, never lost.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use auditor::impact::org::{
    compare_sweep, compose, evaluate_touching, footprint, neighbours, replace_account, swept_index,
    AccountSweep, Footprint, SweepChangeKind, SweepTotals,
};
use auditor::impact::state::PathIndex;
use auditor::notify::{completion_notification, sweep_notification};
use auditor::snapshot::Snapshot;
use futures_util::future::join_all;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::collect::Collector;
use crate::meter::Meter;
use crate::ports::{
    Accounts, Inventory, Publisher, Queue, ReadError, StateList, StateStore, WriteIf, Written,
};
use crate::state::{
    account_of_snapshot_name, index_name, snapshot_name, write_with_retry, ACCOUNTS_PREFIX,
};

/// The `kind` of every sweep message, so that anything else on the queue is refused.
pub const MESSAGE_KIND: &str = "s3ka-sweep";

/// How many times failed `SendMessageBatch` entries are sent again.
const SEND_ATTEMPTS: u32 = 5;

/// Stored snapshots read side by side by an evaluate worker.
const READS_AT_ONCE: usize = 16;

/// The sweep's settings (config.rs).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SweepConfig {
    /// `S3KA_SWEEP_QUEUE_URL`: the queue; without it the function plans no sweep.
    pub queue_url: Option<String>,
    /// `S3KA_SWEEP_ACCOUNTS`: the accounts to sweep, when not listed from Organizations.
    pub accounts: Vec<String>,
    /// `S3KA_SWEEP_ORGANIZATIONS`: list the accounts with Organizations `ListAccounts`.
    pub organizations: bool,
    /// `S3KA_SWEEP_MAX_RECEIVE`: the queue's `maxReceiveCount`; a message failing on this
    /// receive is the account's last attempt.
    pub max_receive: u32,
}

/// A sweep's phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Read the account and store it.
    Collect,
    /// Evaluate the paths touching the account.
    Evaluate,
}

impl Phase {
    fn as_str(self) -> &'static str {
        match self {
            Phase::Collect => "collect",
            Phase::Evaluate => "evaluate",
        }
    }
}

/// One queue message: one account, one phase, one sweep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepMessage {
    /// [`MESSAGE_KIND`].
    pub kind: String,
    /// The sweep id.
    pub sweep: String,
    /// The phase.
    pub phase: Phase,
    /// The account.
    pub account: String,
    /// `evaluate` only: the stored accounts the evaluation reads (`impact::org::neighbours`);
    /// absent, every stored account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reads: Option<Vec<String>>,
}

/// The stored plan of a sweep (`sweeps/<id>/plan.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// The sweep id.
    pub sweep: String,
    /// The schedule's time (the event's `time`).
    pub started: String,
    /// When the planner ran, in seconds since the Unix epoch.
    pub started_epoch: u64,
    /// The accounts, sorted.
    pub accounts: Vec<String>,
}

/// What the planner did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Planned {
    /// The sweep id.
    pub sweep: String,
    /// Accounts planned.
    pub accounts: usize,
    /// Messages enqueued (0 when a retried invocation found the sweep already planned).
    pub enqueued: usize,
}

/// Why a sweep step failed.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// A read or write AWS refused or did not answer.
    #[error("{what}: {source}")]
    Aws {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: ReadError,
    },
    /// The state store kept conflicting or failed.
    #[error("{0}")]
    State(#[from] crate::state::StateFailure),
    /// Collecting the account failed.
    #[error("{0}")]
    Collect(#[from] crate::collect::CollectError),
    /// The sweep is not configured (no queue).
    #[error("{0}")]
    NotConfigured(String),
}

fn aws(what: impl Into<String>) -> impl FnOnce(ReadError) -> SweepError {
    let what = what.into();
    move |source| SweepError::Aws { what, source }
}

/// The sweep id of a schedule event: its time without separators and the first eight
/// letters and digits of its id (`20261203T150000Z-1a2b3c4d`). The same event (Lambda
/// retries an asynchronous invocation with the same payload) always gives the same id.
pub fn sweep_id(time: &str, event_id: &str) -> String {
    let t: String = time
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == 'T' || *c == 'Z')
        .collect();
    let id: String = event_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect();
    format!("{t}-{id}")
}

/// A sweep-start event: an EventBridge `Scheduled Event` (the template's schedule rule).
/// Returns the sweep id and the schedule's time.
pub fn sweep_start(event: &Value) -> Option<(String, String)> {
    let scheduled = event.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event");
    let source = event.get("source").and_then(Value::as_str);
    if !scheduled || !matches!(source, Some("aws.events" | "aws.scheduler")) {
        return None;
    }
    let time = event.get("time").and_then(Value::as_str)?.to_owned();
    let id = event.get("id").and_then(Value::as_str)?;
    Some((sweep_id(&time, id), time))
}

/// Whether `event` is a batch of SQS messages.
pub fn is_sqs(event: &Value) -> bool {
    event
        .get("Records")
        .and_then(Value::as_array)
        .and_then(|r| r.first())
        .and_then(|r| r.get("eventSource"))
        .and_then(Value::as_str)
        == Some("aws:sqs")
}

fn now_epoch() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn plan_name(sweep: &str) -> String {
    format!("sweeps/{sweep}/plan.json")
}

fn mark_name(sweep: &str, what: &str, account: &str) -> String {
    format!("sweeps/{sweep}/{what}/{account}")
}

/// Sends every message, ten per `SendMessageBatch`, sending failed entries again with a
/// growing pause; fails when some entry still fails.
pub async fn send_all<Q: Queue>(queue: &Q, messages: &[SweepMessage]) -> Result<usize, SweepError> {
    for chunk in messages.chunks(10) {
        let mut pending: Vec<(String, String)> = chunk
            .iter()
            .enumerate()
            .map(|(i, m)| {
                (
                    format!("m{i}"),
                    serde_json::to_string(m).unwrap_or_default(),
                )
            })
            .collect();
        let mut attempt = 0;
        while !pending.is_empty() {
            attempt += 1;
            let failed = queue
                .send_batch(&pending)
                .await
                .map_err(aws("sqs:SendMessageBatch"))?;
            pending.retain(|(id, _)| failed.contains(id));
            if pending.is_empty() {
                break;
            }
            if attempt >= SEND_ATTEMPTS {
                return Err(SweepError::Aws {
                    what: "sqs:SendMessageBatch".into(),
                    source: ReadError::Service {
                        code: "BatchEntriesFailed".into(),
                        message: Some(format!(
                            "{} entries still failing after {SEND_ATTEMPTS} attempts",
                            pending.len()
                        )),
                    },
                });
            }
            tracing::info!(
                failed = pending.len(),
                attempt,
                "SendMessageBatch entries failed: sending them again"
            );
            tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
        }
    }
    Ok(messages.len())
}

/// Plans the sweep `sweep` (see the module documentation).
pub async fn plan<A, Q, S>(
    accounts: &A,
    home: &str,
    queue: &Q,
    store: &S,
    config: &SweepConfig,
    (sweep, started): (&str, &str),
) -> Result<Planned, SweepError>
where
    A: Accounts,
    A::Reader: Inventory,
    Q: Queue,
    S: StateStore,
{
    let name = plan_name(sweep);
    if let Some(stored) = store
        .get(&name)
        .await
        .map_err(aws(format!("reading {name}")))?
    {
        // A retried invocation: the plan was stored after its messages were sent.
        if serde_json::from_str::<Plan>(&stored.body).is_ok() {
            tracing::info!(sweep, "sweep already planned: nothing enqueued");
            return Ok(Planned {
                sweep: sweep.to_owned(),
                accounts: 0,
                enqueued: 0,
            });
        }
    }
    let mut list: Vec<String> = if config.organizations {
        let reader = accounts
            .reader(home)
            .await
            .map_err(aws("reading the function's own account"))?;
        reader
            .reader
            .list_accounts()
            .await
            .map_err(aws("organizations:ListAccounts"))?
    } else {
        config.accounts.clone()
    };
    list.sort();
    list.dedup();
    let plan = Plan {
        sweep: sweep.to_owned(),
        started: started.to_owned(),
        started_epoch: now_epoch(),
        accounts: list,
    };
    // The plan first (workers count against it), then the messages.
    let body = serde_json::to_string_pretty(&plan).unwrap_or_default();
    match store
        .put(&name, &body, &WriteIf::Absent)
        .await
        .map_err(aws(format!("writing {name}")))?
    {
        Written::Done(_) => {}
        Written::Conflict => {
            tracing::info!(sweep, "sweep planned concurrently: nothing enqueued");
            return Ok(Planned {
                sweep: sweep.to_owned(),
                accounts: plan.accounts.len(),
                enqueued: 0,
            });
        }
    }
    let messages: Vec<SweepMessage> = plan
        .accounts
        .iter()
        .map(|a| SweepMessage {
            kind: MESSAGE_KIND.into(),
            sweep: sweep.to_owned(),
            phase: Phase::Collect,
            account: a.clone(),
            reads: None,
        })
        .collect();
    let enqueued = send_all(queue, &messages).await?;
    tracing::info!(
        sweep,
        accounts = plan.accounts.len(),
        enqueued,
        "sweep planned"
    );
    Ok(Planned {
        sweep: sweep.to_owned(),
        accounts: plan.accounts.len(),
        enqueued,
    })
}

/// What a batch of sweep messages did: the Lambda response (`batchItemFailures`) and, for
/// logs and tests, what each message did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BatchOutcome {
    /// The messages that failed, by `messageId`, for SQS to deliver again.
    #[serde(rename = "batchItemFailures")]
    pub batch_item_failures: Vec<Value>,
    /// What each message did.
    #[serde(skip)]
    pub done: Vec<Done>,
}

/// What one message did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Done {
    /// An account collected and stored.
    Collected {
        /// The account.
        account: String,
    },
    /// An account evaluated; its summary, published when it changed.
    Evaluated {
        /// What the account's sweep found.
        summary: AccountSweep,
        /// The summary's message id, when one was published.
        published: Option<String>,
    },
    /// The completion message was published.
    Completed {
        /// The counts.
        totals: SweepTotals,
    },
    /// The message failed.
    Failed {
        /// Its `messageId`.
        message_id: String,
        /// Why.
        error: String,
    },
}

/// The clients a worker uses.
#[derive(Debug, Clone, Copy)]
pub struct Worker<'a, A, P, Q, S> {
    /// Reads the accounts.
    pub collector: &'a Collector<A>,
    /// Publishes summaries.
    pub publisher: &'a P,
    /// The sweep queue.
    pub queue: &'a Q,
    /// The state store.
    pub store: &'a S,
    /// The settings.
    pub config: &'a SweepConfig,
    /// The Region buckets are listed in.
    pub region: &'a str,
}

impl<A, P, Q, S> Worker<'_, A, P, Q, S>
where
    A: Accounts,
    A::Reader: Inventory,
    P: Publisher,
    Q: Queue,
    S: StateStore + StateList,
{
    /// Handles one SQS batch; every failure is one `batchItemFailures` entry.
    pub async fn handle(&self, event: &Value) -> BatchOutcome {
        let mut out = BatchOutcome::default();
        let records = event
            .get("Records")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for record in &records {
            let id = record
                .get("messageId")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let receives: u32 = record
                .pointer("/attributes/ApproximateReceiveCount")
                .and_then(Value::as_str)
                .and_then(|n| n.parse().ok())
                .unwrap_or(1);
            let body = record.get("body").and_then(Value::as_str).unwrap_or("");
            let message = serde_json::from_str::<SweepMessage>(body)
                .ok()
                .filter(|m| m.kind == MESSAGE_KIND);
            let Some(message) = message else {
                tracing::error!(message_id = %id, "not a sweep message: reported failed, it will reach the dead-letter queue");
                out.batch_item_failures
                    .push(json!({ "itemIdentifier": id }));
                out.done.push(Done::Failed {
                    message_id: id,
                    error: "not a sweep message".into(),
                });
                continue;
            };
            match self.one(&message, &mut out.done).await {
                Ok(()) => {}
                Err(e) => {
                    let last = receives >= self.config.max_receive.max(1);
                    tracing::error!(
                        message_id = %id,
                        sweep = %message.sweep,
                        account = %message.account,
                        phase = message.phase.as_str(),
                        receives,
                        last_attempt = last,
                        error = %e,
                        "sweep message failed"
                    );
                    if last {
                        // The account's last attempt: mark it failed so the sweep completes
                        // and names it; the message itself goes to the dead-letter queue.
                        if let Err(m) = self
                            .mark_failed(&message, &e.to_string(), &mut out.done)
                            .await
                        {
                            tracing::error!(error = %m, "could not mark the account failed");
                        }
                    }
                    out.batch_item_failures
                        .push(json!({ "itemIdentifier": id }));
                    out.done.push(Done::Failed {
                        message_id: id,
                        error: e.to_string(),
                    });
                }
            }
        }
        out
    }

    async fn one(&self, m: &SweepMessage, done: &mut Vec<Done>) -> Result<(), SweepError> {
        match m.phase {
            Phase::Collect => {
                self.collect(m).await?;
                done.push(Done::Collected {
                    account: m.account.clone(),
                });
                if let Some(totals) = self.after_collect(&m.sweep).await? {
                    done.push(Done::Completed { totals });
                }
                Ok(())
            }
            Phase::Evaluate => {
                let (summary, published) = self.evaluate(m).await?;
                done.push(Done::Evaluated { summary, published });
                if let Some(totals) = self.after_evaluate(&m.sweep).await? {
                    done.push(Done::Completed { totals });
                }
                Ok(())
            }
        }
    }

    async fn get(&self, name: &str) -> Result<Option<String>, SweepError> {
        Ok(self
            .store
            .get(name)
            .await
            .map_err(aws(format!("reading {name}")))?
            .map(|s| s.body))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, SweepError> {
        self.store
            .list(prefix)
            .await
            .map_err(aws(format!("listing {prefix}")))
    }

    /// Writes a mark once; a mark already there is left as it is.
    async fn mark(&self, name: &str, body: &str) -> Result<bool, SweepError> {
        let w = self
            .store
            .put(name, body, &WriteIf::Absent)
            .await
            .map_err(aws(format!("writing {name}")))?;
        Ok(matches!(w, Written::Done(_)))
    }

    async fn plan_of(&self, sweep: &str) -> Result<Plan, SweepError> {
        let name = plan_name(sweep);
        let text = self.get(&name).await?.ok_or_else(|| {
            SweepError::NotConfigured(format!("{name} is missing: the sweep was never planned"))
        })?;
        serde_json::from_str(&text)
            .map_err(|e| SweepError::NotConfigured(format!("{name}: not a sweep plan: {e}")))
    }

    async fn collect(&self, m: &SweepMessage) -> Result<(), SweepError> {
        let meter = Meter::new();
        // A sweep reads the account as it is now, never from a warm container's cache.
        self.collector.cache().invalidate_where(|_| true);
        let fresh = self
            .collector
            .collect_account(&m.account, self.region, &meter)
            .await?;
        let account = m.account.clone();
        // The footprint of the document as last written (a lost race writes it again).
        let written: Mutex<Option<Footprint>> = Mutex::new(None);
        write_with_retry(self.store, &snapshot_name(&m.account), |text| {
            let mut stored = text
                .and_then(|t| Snapshot::from_text(t).ok())
                .unwrap_or_default();
            replace_account(&mut stored, &fresh, &account);
            if let Ok(mut w) = written.lock() {
                *w = Some(footprint(&stored, &account));
            }
            format!("{:#}\n", stored.to_value())
        })
        .await?;
        let stats = meter.stats();
        tracing::info!(sweep = %m.sweep, account = %m.account, calls = stats.calls, depth = stats.depth, "account collected and stored");
        let print = written.lock().ok().and_then(|mut w| w.take());
        let body = json!({ "footprint": print }).to_string();
        self.mark(&mark_name(&m.sweep, "collected", &m.account), &body)
            .await?;
        Ok(())
    }

    /// When every account is collected or failed, enqueues the evaluation (and completes the
    /// sweep when no account was collected).
    async fn after_collect(&self, sweep: &str) -> Result<Option<SweepTotals>, SweepError> {
        let marker = format!("sweeps/{sweep}/evaluate");
        if self.get(&marker).await?.is_some() {
            return Ok(None);
        }
        let plan = self.plan_of(sweep).await?;
        let collected = self.accounts_marked(sweep, "collected").await?;
        let failed = self.accounts_marked(sweep, "failed-collect").await?;
        if collected.len() + failed.len() < plan.accounts.len() {
            return Ok(None);
        }
        let reads = self.directory(sweep, &collected).await?;
        let messages: Vec<SweepMessage> = collected
            .iter()
            .map(|a| SweepMessage {
                kind: MESSAGE_KIND.into(),
                sweep: sweep.to_owned(),
                phase: Phase::Evaluate,
                account: a.clone(),
                reads: reads
                    .as_ref()
                    .and_then(|r| r.get(a))
                    .map(|s| s.iter().cloned().collect()),
            })
            .collect();
        let n = send_all(self.queue, &messages).await?;
        self.mark(&marker, "{}").await?;
        tracing::info!(
            sweep,
            collected = collected.len(),
            failed = failed.len(),
            enqueued = n,
            "every account collected: evaluation enqueued"
        );
        if collected.is_empty() {
            // Every account failed: no evaluation will complete the sweep, so complete it here.
            return self.after_evaluate(sweep).await;
        }
        Ok(None)
    }

    async fn accounts_marked(
        &self,
        sweep: &str,
        what: &str,
    ) -> Result<BTreeSet<String>, SweepError> {
        let prefix = format!("sweeps/{sweep}/{what}/");
        Ok(self
            .list(&prefix)
            .await?
            .into_iter()
            .filter_map(|n| n.strip_prefix(&prefix).map(str::to_owned))
            .collect())
    }

    /// For each collected account, the stored accounts its evaluation reads
    /// (`impact::org::neighbours`) from the footprints of the collected marks and of the
    /// stored accounts this sweep did not collect; `None` (read every stored account) when a
    /// mark carries no footprint (written before footprints were kept).
    async fn directory(
        &self,
        sweep: &str,
        collected: &BTreeSet<String>,
    ) -> Result<Option<BTreeMap<String, BTreeSet<String>>>, SweepError> {
        let mut prints: BTreeMap<String, Footprint> = BTreeMap::new();
        let marks: Vec<&String> = collected.iter().collect();
        for chunk in marks.chunks(READS_AT_ONCE) {
            let got = join_all(
                chunk
                    .iter()
                    .map(|a| self.get_owned(mark_name(sweep, "collected", a))),
            )
            .await;
            for (account, text) in chunk.iter().zip(got) {
                let print = text?
                    .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                    .and_then(|v| v.get("footprint").cloned())
                    .and_then(|f| serde_json::from_value::<Footprint>(f).ok());
                let Some(print) = print else {
                    tracing::info!(sweep, account = %account, "a collected mark without a footprint: every evaluation reads every stored account");
                    return Ok(None);
                };
                prints.insert((*account).clone(), print);
            }
        }
        // Stored accounts this sweep did not collect (failed, or stored by change events):
        // the evaluation composes them too, so their footprints count.
        let others: Vec<String> = self
            .list(ACCOUNTS_PREFIX)
            .await?
            .iter()
            .filter_map(|n| account_of_snapshot_name(n))
            .filter(|a| !collected.contains(a))
            .collect();
        for chunk in others.chunks(READS_AT_ONCE) {
            let got = join_all(chunk.iter().map(|a| self.get_owned(snapshot_name(a)))).await;
            for (account, text) in chunk.iter().zip(got) {
                if let Some(doc) = text?.and_then(|t| Snapshot::from_text(&t).ok()) {
                    prints.insert(account.clone(), footprint(&doc, account));
                }
            }
        }
        let reads = neighbours(&prints);
        let total: usize = reads.values().map(BTreeSet::len).sum();
        tracing::info!(
            sweep,
            accounts = prints.len(),
            reads = total,
            "evaluation reads worked out from the footprints"
        );
        Ok(Some(reads))
    }

    async fn get_owned(&self, name: String) -> Result<Option<String>, SweepError> {
        self.get(&name).await
    }

    /// The stored account snapshots `reads` names (every stored one when `None`), by account.
    async fn stored_snapshots(
        &self,
        reads: Option<&[String]>,
    ) -> Result<BTreeMap<String, Snapshot>, SweepError> {
        let names = match reads {
            Some(accounts) => accounts.iter().map(|a| snapshot_name(a)).collect(),
            None => self.list(ACCOUNTS_PREFIX).await?,
        };
        let mut out = BTreeMap::new();
        for chunk in names.chunks(READS_AT_ONCE) {
            let got = join_all(chunk.iter().map(|n| self.get(n))).await;
            for (name, text) in chunk.iter().zip(got) {
                let Some(account) = name
                    .strip_prefix("accounts/")
                    .and_then(|n| n.strip_suffix(".json"))
                else {
                    continue;
                };
                let Some(text) = text? else { continue };
                match Snapshot::from_text(&text) {
                    Ok(s) => {
                        out.insert(account.to_owned(), s);
                    }
                    Err(e) => {
                        tracing::warn!(document = %name, error = %e, "stored snapshot unreadable: left out of the sweep");
                    }
                }
            }
        }
        Ok(out)
    }

    async fn evaluate(
        &self,
        m: &SweepMessage,
    ) -> Result<(AccountSweep, Option<String>), SweepError> {
        let plan = self.plan_of(&m.sweep).await?;
        let org = compose(&self.stored_snapshots(m.reads.as_deref()).await?);
        let now = evaluate_touching(&org, &m.account);
        let name = index_name(&m.account);
        let previous = self
            .get(&name)
            .await?
            .and_then(|t| PathIndex::parse(&t, &name).ok());
        let swept: BTreeSet<&str> = plan.accounts.iter().map(String::as_str).collect();
        let account = m.account.as_str();
        // One side reports a path between two swept accounts: the bucket owner's.
        let reports = |p: &auditor::impact::state::PathVerdict| {
            let owner = p.resource_account.as_deref();
            owner == Some(account)
                || (p.principal_account.as_deref() == Some(account)
                    && !owner.is_some_and(|o| swept.contains(o)))
        };
        let summary = compare_sweep(&m.sweep, account, previous.as_ref(), &now, reports);
        // Published before the index is replaced: a retry after a failed write publishes
        // again rather than never.
        let published = if summary.changed() {
            let n = sweep_notification(&summary);
            let id = self
                .publisher
                .publish(&n)
                .await
                .map_err(aws("sns:Publish"))?;
            tracing::info!(sweep = %m.sweep, account, changes = summary.changes.len(), message_id = %id, "sweep summary published");
            Some(id)
        } else {
            tracing::info!(sweep = %m.sweep, account, paths = summary.paths, "no change since the last sweep: nothing published");
            None
        };
        let index = swept_index(account, &now, &m.sweep);
        write_with_retry(self.store, &name, |_| index.to_text()).await?;
        let reported: Vec<_> = now.iter().filter(|p| reports(p)).collect();
        let counts = json!({
            "paths": now.len(),
            "denied": reported.iter().filter(|p| p.verdict == auditor::diagnose::Verdict::Denied).count(),
            "broken": summary.count(SweepChangeKind::Broken),
            "published": published.is_some(),
        });
        self.mark(
            &mark_name(&m.sweep, "evaluated", account),
            &counts.to_string(),
        )
        .await?;
        Ok((summary, published))
    }

    /// When every collected account is evaluated or failed, publishes the completion.
    async fn after_evaluate(&self, sweep: &str) -> Result<Option<SweepTotals>, SweepError> {
        let marker = format!("sweeps/{sweep}/complete");
        if self.get(&marker).await?.is_some() {
            return Ok(None);
        }
        if self
            .get(&format!("sweeps/{sweep}/evaluate"))
            .await?
            .is_none()
        {
            return Ok(None);
        }
        let collected = self.accounts_marked(sweep, "collected").await?;
        let evaluated = self.accounts_marked(sweep, "evaluated").await?;
        let failed_eval = self.accounts_marked(sweep, "failed-evaluate").await?;
        if evaluated.len() + failed_eval.len() < collected.len() {
            return Ok(None);
        }
        let plan = self.plan_of(sweep).await?;
        let mut totals = SweepTotals {
            sweep: sweep.to_owned(),
            started: plan.started.clone(),
            planned: plan.accounts.len(),
            swept: evaluated.len(),
            duration_seconds: now_epoch().saturating_sub(plan.started_epoch) as f64,
            ..SweepTotals::default()
        };
        for phase in ["failed-collect", "failed-evaluate"] {
            for a in self.accounts_marked(sweep, phase).await? {
                let why = self
                    .get(&mark_name(sweep, phase, &a))
                    .await?
                    .unwrap_or_default();
                totals.failed.push((a, why));
            }
        }
        let names: Vec<String> = evaluated
            .iter()
            .map(|a| mark_name(sweep, "evaluated", a))
            .collect();
        for chunk in names.chunks(READS_AT_ONCE) {
            for text in join_all(chunk.iter().map(|n| self.get(n))).await {
                let v: Value = text?
                    .and_then(|t| serde_json::from_str(&t).ok())
                    .unwrap_or(Value::Null);
                let n = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0) as usize;
                totals.paths_checked += n("paths");
                totals.denied += n("denied");
                totals.broken += n("broken");
                if v.get("published") == Some(&Value::Bool(true)) {
                    totals.changed_accounts += 1;
                }
            }
        }
        let id = self
            .publisher
            .publish(&completion_notification(&totals))
            .await
            .map_err(aws("sns:Publish"))?;
        self.mark(&marker, &serde_json::to_string(&totals).unwrap_or_default())
            .await?;
        tracing::info!(sweep, swept = totals.swept, failed = totals.failed.len(), paths = totals.paths_checked, broken = totals.broken, message_id = %id, "sweep complete");
        Ok(Some(totals))
    }

    async fn mark_failed(
        &self,
        m: &SweepMessage,
        error: &str,
        done: &mut Vec<Done>,
    ) -> Result<(), SweepError> {
        let what = match m.phase {
            Phase::Collect => "failed-collect",
            Phase::Evaluate => "failed-evaluate",
        };
        self.mark(
            &mark_name(&m.sweep, what, &m.account),
            &format!("{} phase: {error}", m.phase.as_str()),
        )
        .await?;
        let completed = match m.phase {
            Phase::Collect => self.after_collect(&m.sweep).await?,
            Phase::Evaluate => self.after_evaluate(&m.sweep).await?,
        };
        if let Some(totals) = completed {
            done.push(Done::Completed { totals });
        }
        Ok(())
    }
}
