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

/// Where the accounts' snapshots are stored.
pub const ACCOUNTS_PREFIX: &str = "accounts/";

/// The name of an account's snapshot.
pub fn snapshot_name(account: &str) -> String {
    format!("{ACCOUNTS_PREFIX}{account}.json")
}

/// The account whose snapshot `name` is; `None` for any other document.
pub fn account_of_snapshot_name(name: &str) -> Option<String> {
    let id = name.strip_prefix(ACCOUNTS_PREFIX)?.strip_suffix(".json")?;
    (!id.is_empty() && !id.contains('/')).then(|| id.to_owned())
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use auditor::diagnose::Verdict;

    use super::*;
    use crate::ports::{Read, Stored};

    /// An in-memory store; `steal` writes that many other-writer updates between a read and
    /// the next write, so the write conflicts.
    #[derive(Default)]
    struct Memory {
        docs: Mutex<BTreeMap<String, (String, u32)>>,
        steal: Mutex<u32>,
    }

    impl StateStore for Memory {
        async fn get(&self, name: &str) -> Read<Option<Stored>> {
            let docs = self.docs.lock().unwrap();
            Ok(docs.get(name).map(|(body, v)| Stored {
                body: body.clone(),
                version: v.to_string(),
            }))
        }

        async fn put(&self, name: &str, body: &str, condition: &WriteIf) -> Read<Written> {
            let mut docs = self.docs.lock().unwrap();
            let mut steal = self.steal.lock().unwrap();
            if *steal > 0 {
                *steal -= 1;
                // Another writer's update lands first: same document, new version.
                let entry = docs.entry(name.to_owned()).or_insert((String::new(), 0));
                entry.1 += 1;
            }
            let current = docs.get(name).map(|(_, v)| v.to_string());
            let holds = match condition {
                WriteIf::Absent => current.is_none(),
                WriteIf::Version(v) => current.as_deref() == Some(v.as_str()),
            };
            if !holds {
                return Ok(Written::Conflict);
            }
            let next = docs.get(name).map_or(1, |(_, v)| v + 1);
            docs.insert(name.to_owned(), (body.to_owned(), next));
            Ok(Written::Done(next.to_string()))
        }
    }

    fn verdict(principal: &str) -> PathVerdict {
        PathVerdict {
            principal: principal.into(),
            bucket: "b".into(),
            object: "*".into(),
            action: "s3:GetObject".into(),
            probe: "p".into(),
            verdict: Verdict::Allowed,
            blocking: Vec::new(),
            must_act: Vec::new(),
            principal_account: Some("444455556666".into()),
            resource_account: Some("111122223333".into()),
            advisories: Vec::new(),
        }
    }

    fn update<'a>(
        fresh: &'a Snapshot,
        verdicts: &'a [PathVerdict],
        gone: &'a BTreeSet<PathId>,
    ) -> Update<'a> {
        Update {
            fresh,
            forget: (None, None),
            verdicts,
            gone,
            event_id: Some("e"),
        }
    }

    #[tokio::test]
    async fn a_lost_race_is_retried_and_endless_contention_is_an_error() {
        let store = Memory::default();
        let (fresh, gone) = (Snapshot::default(), BTreeSet::new());
        assert!(load(&store, "111122223333").await.unwrap().is_none());
        let one = [verdict("r1")];
        assert_eq!(
            super::update(&store, "111122223333", update(&fresh, &one, &gone))
                .await
                .unwrap(),
            0
        );
        // Two other writers land between read and write: two retries, then success.
        *store.steal.lock().unwrap() = 2;
        let two = [verdict("r2")];
        assert_eq!(
            super::update(&store, "111122223333", update(&fresh, &two, &gone))
                .await
                .unwrap(),
            2
        );
        let state = load(&store, "111122223333").await.unwrap().unwrap();
        assert_eq!(state.index.paths.len(), 2, "both updates survive");
        // A writer that always loses gives up with the document's name.
        *store.steal.lock().unwrap() = 100;
        let e = super::update(&store, "111122223333", update(&fresh, &two, &gone))
            .await
            .unwrap_err();
        assert_eq!(
            e,
            StateFailure::Contended {
                name: "accounts/111122223333.json".into()
            }
        );
    }

    #[tokio::test]
    async fn an_unreadable_index_is_first_sight_not_an_error() {
        let store = Memory::default();
        store
            .docs
            .lock()
            .unwrap()
            .insert(index_name("111122223333"), ("{not json".into(), 3));
        assert!(load(&store, "111122223333").await.unwrap().is_none());
        // The rebuild overwrites it, conditionally on the version read.
        let (fresh, gone) = (Snapshot::default(), BTreeSet::new());
        let one = [verdict("r1")];
        super::update(&store, "111122223333", update(&fresh, &one, &gone))
            .await
            .unwrap();
        let state = load(&store, "111122223333").await.unwrap().unwrap();
        assert_eq!(state.index.paths.len(), 1);
    }
}
