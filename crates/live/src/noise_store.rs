//! Where noise control keeps its state: per problem, its dedup window, repeats, what was
//! alerted and the request that exposed it; per day, the digest counters; per minute and
//! topic, the messages sent. [`NoiseStore`] is the port; [`crate::aws::DynamoStore`]
//! implements it on a DynamoDB table shared by every instance of the function, with
//! conditional writes; [`MemoryStore`] is the fallback without a table: the same rules, but
//! per container, so two containers each publish a problem once and counts are per container
//! (docs/live.md, "Noise control").

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Mutex;

use auditor::noise::messages::{Alerted, SummaryItem};
use auditor::noise::window::ProblemState;

use crate::ports::ReadError;

/// A problem as stored.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoredProblem {
    /// Its id.
    pub id: String,
    /// Its window and counts.
    pub state: ProblemState,
    /// What was alerted.
    pub alerted: Alerted,
    /// The event that exposed it (JSON) and the position of its denied record in it.
    pub event: Option<(String, usize)>,
    /// The summary entry, while it waits for the next summary (rate-limited).
    pub pending: Option<SummaryItem>,
    /// When the scheduled run last re-diagnosed it.
    pub checked_at: u64,
}

/// What the store said about an occurrence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Occurrence {
    /// This instance claimed the alert; `previous` is the state before (for the repeats the
    /// alert carries, and to release the claim if the publish fails).
    Publish {
        /// The state before the claim.
        previous: Option<ProblemState>,
    },
    /// An alert went out within the window: counted.
    Suppressed,
}

/// A new alert's facts, written with the claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim<'a> {
    /// The problem id.
    pub id: &'a str,
    /// Now (seconds).
    pub now: u64,
    /// The dedup window (seconds).
    pub window: u64,
    /// What is alerted.
    pub alerted: &'a Alerted,
    /// The event JSON and the denied record's position.
    pub event: (&'a str, usize),
}

/// The state noise control keeps.
pub trait NoiseStore: Send + Sync {
    /// Records an occurrence of `claim.id`: claims the alert when none went out within the
    /// window (or the problem is new or closed), else counts a repeat.
    fn occur(
        &self,
        claim: &Claim<'_>,
    ) -> impl Future<Output = Result<Occurrence, ReadError>> + Send;
    /// Undoes a claim whose publish failed, so the retried invocation publishes.
    fn release(
        &self,
        id: &str,
        claimed_at: u64,
        previous: Option<&ProblemState>,
    ) -> impl Future<Output = Result<(), ReadError>> + Send;
    /// Records the published alert's message id and subject.
    fn alerted(
        &self,
        id: &str,
        message_id: &str,
        subject: &str,
    ) -> impl Future<Output = Result<(), ReadError>> + Send;
    /// Marks a claimed problem as waiting for the next summary.
    fn pend(
        &self,
        id: &str,
        item: &SummaryItem,
    ) -> impl Future<Output = Result<(), ReadError>> + Send;
    /// Takes one message from `topic`'s allowance for the minute of `now`; `false` when spent.
    fn take_rate(
        &self,
        topic: &str,
        now: u64,
        limit: u32,
    ) -> impl Future<Output = Result<bool, ReadError>> + Send;
    /// Adds `n` to the digest counter `counter` of `day`.
    fn count(
        &self,
        day: &str,
        counter: &str,
        n: u64,
    ) -> impl Future<Output = Result<(), ReadError>> + Send;
    /// The counters of `day`.
    fn counters(
        &self,
        day: &str,
    ) -> impl Future<Output = Result<BTreeMap<String, u64>, ReadError>> + Send;
    /// Claims the publication of `day`'s digest; `false` when it was claimed before.
    fn claim_digest(
        &self,
        day: &str,
        now: u64,
    ) -> impl Future<Output = Result<bool, ReadError>> + Send;
    /// Every open or pending problem.
    fn problems(&self) -> impl Future<Output = Result<Vec<StoredProblem>, ReadError>> + Send;
    /// After the summary went out: the problem no longer waits.
    fn unpend(&self, id: &str) -> impl Future<Output = Result<(), ReadError>> + Send;
    /// After a flush of repeats: a new window from `now`, if the window is still the one
    /// that ended at `alerted_at`; `false` when another instance moved it.
    fn rewindow(
        &self,
        id: &str,
        alerted_at: u64,
        now: u64,
    ) -> impl Future<Output = Result<bool, ReadError>> + Send;
    /// Records a re-check at `now`.
    fn checked(&self, id: &str, now: u64) -> impl Future<Output = Result<(), ReadError>> + Send;
    /// Closes an open problem; `false` when it was not open (another run closed it).
    fn close(&self, id: &str, now: u64) -> impl Future<Output = Result<bool, ReadError>> + Send;
    /// Reopens a problem whose "resolved" message could not be published.
    fn reopen(&self, id: &str) -> impl Future<Output = Result<(), ReadError>> + Send;
}

#[derive(Debug, Default)]
struct Memory {
    problems: HashMap<String, StoredProblem>,
    counters: HashMap<String, BTreeMap<String, u64>>,
    digests: Vec<String>,
    rate: HashMap<(String, u64), u32>,
}

/// The in-memory fallback: one container's view (weaker: see the module documentation).
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Memory>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut Memory) -> T) -> Result<T, ReadError> {
        let mut m = self.inner.lock().map_err(|_| ReadError::Transport {
            message: "the in-memory noise store's lock is poisoned".into(),
        })?;
        Ok(f(&mut m))
    }
}

impl NoiseStore for MemoryStore {
    async fn occur(&self, c: &Claim<'_>) -> Result<Occurrence, ReadError> {
        self.with(|m| {
            let entry = m.problems.get(c.id).cloned();
            let (decision, state) =
                auditor::noise::decide(entry.as_ref().map(|p| &p.state), c.now, c.window);
            let mut p = entry.clone().unwrap_or_default();
            p.id = c.id.to_owned();
            p.state = state;
            let out = match decision {
                auditor::noise::Decision::Suppress => Occurrence::Suppressed,
                auditor::noise::Decision::Publish { .. } => {
                    // A re-alert of an open problem keeps the first alert it refers to.
                    if !entry.as_ref().is_some_and(|e| e.state.open) {
                        p.alerted = c.alerted.clone();
                    }
                    p.event = Some((c.event.0.to_owned(), c.event.1));
                    p.checked_at = c.now;
                    Occurrence::Publish {
                        previous: entry.map(|e| e.state),
                    }
                }
            };
            m.problems.insert(c.id.to_owned(), p);
            out
        })
    }

    async fn release(
        &self,
        id: &str,
        claimed_at: u64,
        previous: Option<&ProblemState>,
    ) -> Result<(), ReadError> {
        self.with(|m| {
            if let Some(p) = m.problems.get_mut(id) {
                if p.state.alerted_at == Some(claimed_at) {
                    match previous {
                        Some(prev) => {
                            p.state.alerted_at = prev.alerted_at;
                            p.state.open = prev.open;
                            p.state.suppressed += prev.suppressed;
                        }
                        None => {
                            p.state.alerted_at = None;
                            p.state.open = false;
                        }
                    }
                }
            }
        })
    }

    async fn alerted(&self, id: &str, message_id: &str, subject: &str) -> Result<(), ReadError> {
        self.with(|m| {
            if let Some(p) = m.problems.get_mut(id) {
                if p.alerted.message_id.is_none() {
                    p.alerted.message_id = Some(message_id.to_owned());
                    p.alerted.subject = Some(subject.to_owned());
                }
            }
        })
    }

    async fn pend(&self, id: &str, item: &SummaryItem) -> Result<(), ReadError> {
        self.with(|m| {
            if let Some(p) = m.problems.get_mut(id) {
                p.pending = Some(item.clone());
            }
        })
    }

    async fn take_rate(&self, topic: &str, now: u64, limit: u32) -> Result<bool, ReadError> {
        self.with(|m| {
            if limit == 0 {
                return true;
            }
            let minute = auditor::noise::messages::minute_of(now);
            m.rate.retain(|(_, at), _| *at >= minute);
            let sent = m.rate.entry((topic.to_owned(), minute)).or_default();
            if *sent < limit {
                *sent += 1;
                true
            } else {
                false
            }
        })
    }

    async fn count(&self, day: &str, counter: &str, n: u64) -> Result<(), ReadError> {
        self.with(|m| {
            *m.counters
                .entry(day.to_owned())
                .or_default()
                .entry(counter.to_owned())
                .or_default() += n;
        })
    }

    async fn counters(&self, day: &str) -> Result<BTreeMap<String, u64>, ReadError> {
        self.with(|m| m.counters.get(day).cloned().unwrap_or_default())
    }

    async fn claim_digest(&self, day: &str, _now: u64) -> Result<bool, ReadError> {
        self.with(|m| {
            if m.digests.iter().any(|d| d == day) {
                false
            } else {
                m.digests.push(day.to_owned());
                true
            }
        })
    }

    async fn problems(&self) -> Result<Vec<StoredProblem>, ReadError> {
        self.with(|m| {
            let mut v: Vec<StoredProblem> = m
                .problems
                .values()
                .filter(|p| p.state.open || p.pending.is_some())
                .cloned()
                .collect();
            v.sort_by(|a, b| a.id.cmp(&b.id));
            v
        })
    }

    async fn unpend(&self, id: &str) -> Result<(), ReadError> {
        self.with(|m| {
            if let Some(p) = m.problems.get_mut(id) {
                p.pending = None;
            }
        })
    }

    async fn rewindow(&self, id: &str, alerted_at: u64, now: u64) -> Result<bool, ReadError> {
        self.with(|m| match m.problems.get_mut(id) {
            Some(p) if p.state.alerted_at == Some(alerted_at) => {
                p.state.alerted_at = Some(now);
                p.state.suppressed = 0;
                p.checked_at = now;
                true
            }
            _ => false,
        })
    }

    async fn checked(&self, id: &str, now: u64) -> Result<(), ReadError> {
        self.with(|m| {
            if let Some(p) = m.problems.get_mut(id) {
                p.checked_at = now;
            }
        })
    }

    async fn close(&self, id: &str, _now: u64) -> Result<bool, ReadError> {
        self.with(|m| match m.problems.get_mut(id) {
            Some(p) if p.state.open => {
                p.state.open = false;
                p.pending = None;
                true
            }
            _ => false,
        })
    }

    async fn reopen(&self, id: &str) -> Result<(), ReadError> {
        self.with(|m| {
            if let Some(p) = m.problems.get_mut(id) {
                p.state.open = true;
            }
        })
    }
}
