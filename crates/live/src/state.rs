//! The auditor's state per account, read from and written to a [`StateStore`]:
//! `accounts/<id>.json` (the snapshot, in the format `diagnose --snapshot` reads) and
//! `paths/<id>.json` (the path index, docs/impact-format.md "Live state").
//!
//! Every write is conditional on the version read (or on there being none), and a write that
//! lost the race re-reads the document, applies its update again to what the other writer
//! stored, and retries: two changes to one account both survive. A document that cannot be
//! read (corrupt, or written by an older or newer format) counts as absent, so the state is
//! rebuilt rather than the change lost; the overwrite is still conditional on its version.

use std::collections::BTreeSet;

use auditor::impact::state::{forget_principal, merge_snapshot, PathId, PathIndex, PathVerdict};
use auditor::snapshot::Snapshot;

use crate::ports::{ReadError, StateStore, WriteIf, Written};

/// Attempts per document before an update gives up (each lost race costs one).
const ATTEMPTS: u32 = 8;

/// The name of an account's snapshot.
pub fn snapshot_name(account: &str) -> String {
    format!("accounts/{account}.json")
}

/// The name of an account's path index.
pub fn index_name(account: &str) -> String {
    format!("paths/{account}.json")
}

/// What is stored for one account.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountState {
    /// The snapshot the auditor last saw.
    pub snapshot: Snapshot,
    /// The verdicts of the paths touching the account.
    pub index: PathIndex,
}

/// Why the state could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateFailure {
    /// The store did not answer, or refused.
    #[error("state store, `{name}`: {source}")]
    Store {
        /// The document.
        name: String,
        /// The store's error.
        #[source]
        source: ReadError,
    },
    /// Other writers kept winning.
    #[error("state store, `{name}`: still conflicting after {ATTEMPTS} attempts")]
    Contended {
        /// The document.
        name: String,
    },
}

/// The stored state of `account`; `None` at first sight (no path index stored, or one that
/// cannot be read).
pub async fn load<S: StateStore>(
    store: &S,
    account: &str,
) -> Result<Option<AccountState>, StateFailure> {
    let name = index_name(account);
    let Some(stored) = store
        .get(&name)
        .await
        .map_err(|source| StateFailure::Store {
            name: name.clone(),
            source,
        })?
    else {
        return Ok(None);
    };
    let index = match PathIndex::parse(&stored.body, &name) {
        Ok(i) => i,
        Err(e) => {
            tracing::warn!(error = %e, "stored path index unreadable: treated as first sight");
            return Ok(None);
        }
    };
    let name = snapshot_name(account);
    let snapshot = match store.get(&name).await.map_err(|source| StateFailure::Store {
        name: name.clone(),
        source,
    })? {
        Some(s) => Snapshot::from_text(&s.body).unwrap_or_else(|e| {
            tracing::warn!(document = %name, error = %e, "stored snapshot unreadable: starting from an empty one");
            Snapshot::default()
        }),
        None => Snapshot::default(),
    };
    Ok(Some(AccountState { snapshot, index }))
}

/// One account's update: the fresh reads to lay over its snapshot, the verdicts to record
/// and the paths no longer intended.
#[derive(Debug, Clone, Copy)]
pub struct Update<'a> {
    /// What the change's scope re-collected.
    pub fresh: &'a Snapshot,
    /// A role and a user of the account the change deleted.
    pub forget: (Option<&'a str>, Option<&'a str>),
    /// New verdicts (those touching the account are kept).
    pub verdicts: &'a [PathVerdict],
    /// Paths to drop.
    pub gone: &'a BTreeSet<PathId>,
    /// The change's `eventID`.
    pub event_id: Option<&'a str>,
}

/// Applies `update` to the stored state of `account`, snapshot first, then the index (the
/// index is what marks the account as seen). Returns how many writes lost a race and were
/// retried.
pub async fn update<S: StateStore>(
    store: &S,
    account: &str,
    update: Update<'_>,
) -> Result<u32, StateFailure> {
    let snap_conflicts = write_with_retry(store, &snapshot_name(account), |text| {
        let mut snap = text
            .and_then(|t| Snapshot::from_text(t).ok())
            .unwrap_or_default();
        forget_principal(&mut snap, account, update.forget.0, update.forget.1);
        merge_snapshot(&mut snap, update.fresh);
        snap.description = Some(format!(
            "State kept by s3-kms-auditor for account {account}: what its read paths depend on{}",
            update
                .event_id
                .map(|e| format!(", last updated for event {e}"))
                .unwrap_or_default()
        ));
        format!("{:#}\n", snap.to_value())
    })
    .await?;
    let index_conflicts = write_with_retry(store, &index_name(account), |text| {
        let mut index = text
            .and_then(|t| PathIndex::parse(t, &index_name(account)).ok())
            .unwrap_or_else(|| PathIndex::new(account));
        index.apply(update.verdicts, update.gone, update.event_id);
        index.to_text()
    })
    .await?;
    Ok(snap_conflicts + index_conflicts)
}

/// Read, apply `change`, write conditionally; on a lost race, again.
pub(crate) async fn write_with_retry<S: StateStore>(
    store: &S,
    name: &str,
    change: impl Fn(Option<&str>) -> String,
) -> Result<u32, StateFailure> {
    let fail = |source| StateFailure::Store {
        name: name.to_owned(),
        source,
    };
    let mut conflicts = 0;
    for _ in 0..ATTEMPTS {
        let stored = store.get(name).await.map_err(fail)?;
        let condition = match &stored {
            Some(s) => WriteIf::Version(s.version.clone()),
            None => WriteIf::Absent,
        };
        let body = change(stored.as_ref().map(|s| s.body.as_str()));
        match store.put(name, &body, &condition).await.map_err(fail)? {
            Written::Done(_) => return Ok(conflicts),
            Written::Conflict => {
                conflicts += 1;
                tracing::info!(document = %name, conflicts, "conditional write lost a race: re-reading");
            }
        }
    }
    Err(StateFailure::Contended {
        name: name.to_owned(),
    })
}
