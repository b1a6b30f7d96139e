//! Policy-change impact in the Lambda (issue 10): for each change record, the read paths it
//! broke, fixed or opened, published on the diagnoses' topic.
//!
//! [`handle_with_state`] runs [`super::handle`] first (diagnoses published, the warm cache
//! entries a change touches dropped), then for each change record:
//!
//! 1. loads the stored state of the change's account (`crate::state`), or, for an SCP or RCP
//!    change (made in the management account), of the accounts the policy reaches
//!    ([`org_reach`]);
//! 2. works out the scope in pure code (`auditor::impact::scope`) and re-collects only that
//!    scope with the collector, one probe (principal reading an object) per stored path, plus
//!    the bucket read as its owner for a bucket change;
//! 3. lays the fresh reads over the stored snapshot, collects the principals of paths that
//!    only the fresh reads intend (a new grant to a role of another account), and evaluates
//!    every path before and after (`auditor::impact::impact`), keeping those whose verdict
//!    differs from the stored one (`state::compare`);
//! 4. publishes the broken, fixed and opened paths (`report::sns::impact_messages`,
//!    `kind: impact`): one message per group of paths the change moved the same way for the
//!    same cause, at most ten, then one summary; then stores the new state of every account
//!    those paths touch.
//!
//! Unchanged verdicts publish nothing. At first sight of an account (no stored state) the
//! state is built and nothing is published, with a log line saying so: there is nothing to
//! compare with.

use std::collections::{BTreeMap, BTreeSet};

use auditor::event::{adhoc_request, parse_events, ChangeEvent, EventOutcome};
use auditor::impact::scope::{scope, Probe};
use auditor::impact::state::{accounts_of, compare, evaluate, forget_principal, PathId, PathIndex};
use auditor::impact::{impact, Impact, ImpactPath, Touched};
use auditor::report::sns::{impact_messages, ImpactKind};
use auditor::snapshot::Snapshot;
use futures_util::future::join_all;
use serde::Serialize;
use serde_json::Value;

use super::{handle, LiveError, Summary};
use crate::collect::{Collector, OrgScopeRead};
use crate::meter::Meter;
use crate::ports::{Accounts, Publisher, StateList, StateStore};
use crate::state::{self, Update};

/// What an invocation did, with the impact of its change records.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImpactSummary {
    /// Diagnoses, skipped records, acknowledged changes.
    #[serde(flatten)]
    pub summary: Summary,
    /// One entry per change record assessed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub impacts: Vec<ChangeImpact>,
}

/// The impact of one change record.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ChangeImpact {
    /// Its `eventID`.
    pub event_id: Option<String>,
    /// Its `eventName`.
    pub event_name: String,
    /// The account it was made in.
    pub account: Option<String>,
    /// No state was stored for the account: it was built, nothing was published.
    pub first_sight: bool,
    /// Paths allowed before, denied after.
    pub broken: Vec<PathId>,
    /// Paths denied before, allowed after, that the bucket's side intended.
    pub fixed: Vec<PathId>,
    /// Paths newly allowed that the bucket's side did not intend before.
    pub opened: Vec<PathId>,
    /// Paths whose verdict did not change.
    pub unchanged: usize,
    /// Probes collected (requests re-read).
    pub probes: usize,
    /// Message ids of the published impact messages.
    pub published: Vec<String>,
    /// Accounts whose state was written.
    pub stored: Vec<String>,
    /// Conditional writes that lost a race and were retried.
    pub conflicts: u32,
    /// Why nothing was assessed, when nothing was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_assessed: Option<String>,
}

/// [`handle`], then the impact of every change record of `event` (see the module
/// documentation).
pub async fn handle_with_state<A: Accounts, P: Publisher, S: StateStore + StateList>(
    collector: &Collector<A>,
    publisher: &P,
    store: &S,
    event: &Value,
) -> Result<ImpactSummary, LiveError> {
    let summary = handle(collector, publisher, event).await?;
    let impacts = if summary.changes.is_empty() {
        Vec::new()
    } else {
        assess_changes(collector, publisher, store, event).await?
    };
    Ok(ImpactSummary { summary, impacts })
}

/// The impact of every change record of `event`, after a handler (plain or noise-controlled)
/// has acknowledged them and dropped the cached state they touch. An event with no change
/// record, or one that does not parse (the handler already reported it), has none.
pub async fn assess_changes<A: Accounts, P: Publisher, S: StateStore + StateList>(
    collector: &Collector<A>,
    publisher: &P,
    store: &S,
    event: &Value,
) -> Result<Vec<ChangeImpact>, LiveError> {
    let mut impacts = Vec::new();
    let Ok(outcomes) = parse_events(event) else {
        return Ok(impacts);
    };
    for outcome in outcomes {
        if let EventOutcome::Change(change) = outcome {
            impacts.push(Box::pin(assess(collector, publisher, store, &change)).await?);
        }
    }
    Ok(impacts)
}

/// The impact of one change: assessed, published, stored.
pub async fn assess<A: Accounts, P: Publisher, S: StateStore + StateList>(
    collector: &Collector<A>,
    publisher: &P,
    store: &S,
    change: &ChangeEvent,
) -> Result<ChangeImpact, LiveError> {
    let mut seen = ChangeImpact {
        event_id: change.event_id.clone(),
        event_name: change.event_name.clone(),
        account: change.account.clone(),
        ..ChangeImpact::default()
    };
    let Some(account) = change.account.clone() else {
        seen.not_assessed = Some("the record names no account".into());
        tracing::info!(
            event_id = change.event_id.as_deref(),
            "change not assessed: the record names no account"
        );
        return Ok(seen);
    };
    // An SCP or RCP change is recorded in the management account, but reaches the accounts
    // under its target: their stored states are the ones assessed.
    let reached = org_reach(collector, store, change).await?;
    let mut loaded = Vec::new();
    for a in reached.as_deref().unwrap_or(std::slice::from_ref(&account)) {
        if let Some(s) = state::load(store, a).await.map_err(LiveError::State)? {
            loaded.push(s);
        }
    }
    if reached.is_some() && loaded.is_empty() {
        seen.not_assessed = Some("no stored state of an account the policy reaches".into());
        tracing::info!(
            event_id = change.event_id.as_deref(),
            reached = ?reached,
            "organization policy change not assessed: no account it reaches has stored state"
        );
        return Ok(seen);
    }
    seen.first_sight = loaded.is_empty();
    let mut loaded = loaded.into_iter();
    let (mut before, mut index) = match loaded.next() {
        Some(s) => (s.snapshot, s.index),
        None => (Snapshot::default(), PathIndex::new(&account)),
    };
    for more in loaded {
        auditor::impact::state::merge_snapshot(&mut before, &more.snapshot);
        for p in more.index.paths {
            if index.get(&p.id()).is_none() {
                index.paths.push(p);
            }
        }
    }
    let sc = scope(change, &before, &index.paths);
    let mut after = before.clone();
    // A deleted role or user: a fresh read finds nothing to lay over the stored one.
    let mut deleted: (Option<&str>, Option<&str>) = (None, None);
    for t in &change.touches {
        match (t, change.event_name.as_str()) {
            (Touched::Role { name }, "DeleteRole") => deleted.0 = Some(name),
            (Touched::User { name }, "DeleteUser") => deleted.1 = Some(name),
            _ => {}
        }
    }
    forget_principal(&mut after, &account, deleted.0, deleted.1);
    let mut probes: BTreeSet<Probe> = sc.probes.clone();
    let mut fresh = collect(collector, &probes).await?;
    auditor::impact::state::merge_snapshot(&mut after, &fresh);
    // Paths only the fresh reads intend (a new principal in a bucket or key policy): read
    // their principal's side too, once. A path the stored snapshot already intended but the
    // loaded indexes do not hold touches none of the loaded accounts (another account's path
    // to a shared bucket): the change's scope left it out, and re-reading it would reassess an
    // account the change does not reach.
    let known: BTreeSet<PathId> = index
        .paths
        .iter()
        .map(|p| p.id())
        .chain(evaluate(&before).iter().map(|p| p.id()))
        .collect();
    let discovered: BTreeSet<Probe> = evaluate(&after)
        .iter()
        .filter(|p| !known.contains(&p.id()))
        .map(Probe::of)
        .filter(|p| !probes.contains(p))
        .collect();
    if !discovered.is_empty() {
        let more = collect(collector, &discovered).await?;
        auditor::impact::state::merge_snapshot(&mut after, &more);
        auditor::impact::state::merge_snapshot(&mut fresh, &more);
        probes.extend(discovered);
    }
    seen.probes = probes.len();
    // Fixes are verified by patching the snapshot document: the policies need the JSON
    // Pointers only a snapshot read from its document has.
    let after = reread(&after)?;
    let fresh = reread(&fresh)?;
    let verdicts = evaluate(&after);
    let after_ids: BTreeSet<PathId> = verdicts.iter().map(|p| p.id()).collect();
    let gone: BTreeSet<PathId> = sc
        .paths
        .iter()
        .map(|p| p.id())
        .filter(|id| !after_ids.contains(id))
        .collect();

    let mut result: Impact = impact(&before, &after);
    result.change = Some(change.to_ref());
    let result = compare(&index, result);
    seen.unchanged = result.unchanged;
    let ids = |l: &[ImpactPath]| -> Vec<PathId> {
        l.iter()
            .map(|p| (p.principal.clone(), p.bucket.clone(), p.object.clone()))
            .collect()
    };
    seen.broken = ids(&result.broken);
    seen.fixed = ids(&result.fixed);
    seen.opened = ids(&result.opened);

    if seen.first_sight {
        tracing::info!(
            event_id = change.event_id.as_deref(),
            account = %account,
            paths = verdicts.len(),
            "first sight of the account: state built from this change's scope, nothing published (nothing to compare with)"
        );
    } else {
        let change_ref = change.to_ref();
        // One message per group of paths the change moved the same way, at most
        // `MAX_GROUPS`, then one summary (`auditor::impact::group`); the log names every path.
        for m in impact_messages(&result, &after, &change_ref) {
            let id = publisher
                .publish(&m.notification)
                .await
                .map_err(LiveError::Publish)?;
            let impact = m.impact.map_or("summary", ImpactKind::as_str);
            tracing::info!(
                event_id = change.event_id.as_deref(),
                impact,
                paths = m.paths.len(),
                subject = %m.notification.subject,
                message_id = %id,
                "impact published"
            );
            for (principal, bucket, object) in &m.paths {
                tracing::info!(
                    event_id = change.event_id.as_deref(),
                    impact,
                    principal = %principal,
                    bucket = %bucket,
                    object = %object,
                    message_id = %id,
                    "impact path"
                );
            }
            seen.published.push(id);
        }
        if !result.undecided.is_empty() {
            tracing::info!(
                event_id = change.event_id.as_deref(),
                undecided = result.undecided.len(),
                "paths whose verdict became or stopped being unknown: not published"
            );
        }
        if seen.published.is_empty() {
            tracing::info!(
                event_id = change.event_id.as_deref(),
                unchanged = result.unchanged,
                probes = seen.probes,
                "change assessed: no read path changed verdict, nothing published"
            );
        }
    }

    // The change's account keeps every path; another account, the paths re-read for it.
    let probed: BTreeSet<Probe> = probes;
    let mut targets: BTreeMap<String, Vec<auditor::impact::state::PathVerdict>> = BTreeMap::new();
    // An organization policy change leaves the management account's state alone unless the
    // policy reaches it (its paths are then among those re-read).
    if reached.is_none() {
        targets.insert(account.clone(), verdicts.clone());
    }
    let reread: Vec<_> = verdicts
        .iter()
        .filter(|p| probed.contains(&Probe::of(p)))
        .cloned()
        .collect();
    for other in accounts_of(&reread) {
        if other != account {
            targets.insert(other, reread.clone());
        }
    }
    for (target, list) in &targets {
        let conflicts = state::update(
            store,
            target,
            Update {
                fresh: &fresh,
                forget: if target == &account {
                    deleted
                } else {
                    (None, None)
                },
                verdicts: list,
                gone: &gone,
                event_id: change.event_id.as_deref(),
            },
        )
        .await
        .map_err(LiveError::State)?;
        seen.conflicts += conflicts;
        seen.stored.push(target.clone());
    }
    Ok(seen)
}

/// The accounts an SCP or RCP change reaches, `None` for any other change (the decision is
/// `auditor::impact::scope::org_reach` and `reached_accounts`): the account an `AttachPolicy`
/// or `DetachPolicy` names; for an OU, the stored accounts under it, and for `UpdatePolicy`
/// those under the policy's targets, read through the organization reader
/// ([`Collector::org_scope`]); for the root, every stored account; for `DeletePolicy`, none
/// (AWS deletes only a detached policy). Without an organization reader, or when its reads
/// fail, an OU or an updated policy reaches every stored account, and the log says so.
async fn org_reach<A: Accounts, S: StateList>(
    collector: &Collector<A>,
    store: &S,
    change: &ChangeEvent,
) -> Result<Option<Vec<String>>, LiveError> {
    let Some(reach) = auditor::impact::scope::org_reach(change) else {
        return Ok(None);
    };
    let named = |reach: &auditor::impact::scope::OrgReach| -> BTreeSet<String> {
        reach
            .targets
            .iter()
            .filter_map(|t| match t {
                auditor::impact::scope::OrgTarget::Account(id) => Some(id.clone()),
                _ => None,
            })
            .collect()
    };
    if reach.is_accounts_only() {
        // No list needed: the accounts named (none for `DeletePolicy`).
        return Ok(Some(named(&reach).into_iter().collect()));
    }
    let all = store.list(state::ACCOUNTS_PREFIX).await.map_err(|source| {
        LiveError::State(state::StateFailure::Store {
            name: state::ACCOUNTS_PREFIX.to_owned(),
            source,
        })
    })?;
    let stored: BTreeSet<String> = all
        .iter()
        .filter_map(|n| state::account_of_snapshot_name(n))
        .collect();
    let org = if reach.has_root() {
        None
    } else {
        Some(collector.org_scope(&reach).await)
    };
    let read = match &org {
        Some(OrgScopeRead::Read { read, lists }) => {
            tracing::info!(
                event_id = change.event_id.as_deref(),
                lists,
                targets = ?read.policy_targets,
                accounts_under = read.accounts_under.len(),
                "organization policy change: scope narrowed through the organization reader"
            );
            Some(read)
        }
        Some(OrgScopeRead::NotConfigured) => {
            tracing::info!(
                event_id = change.event_id.as_deref(),
                stored = stored.len(),
                "organization policy change on an OU or a policy's targets: no organization reader (S3KA_ORG_ACCESS), every stored account is reassessed"
            );
            None
        }
        Some(OrgScopeRead::Failed { operation, error }) => {
            tracing::warn!(
                event_id = change.event_id.as_deref(),
                operation,
                error = %error,
                stored = stored.len(),
                "organization policy change: the organization could not be read, every stored account is reassessed"
            );
            None
        }
        None => None,
    };
    let reached = auditor::impact::scope::reached_accounts(&reach, read, &stored);
    Ok(Some(reached.into_iter().collect()))
}

/// Builds or refreshes the state of the accounts `probes` touch without a change: each probe
/// (a principal reading an object) is collected, the paths the collected snapshot intends
/// are evaluated, and each account's snapshot and path index are updated. A deployment
/// seeds the paths it cares about this way (an object named exactly, rather than the
/// representative key a bucket policy's prefix gives); a later change then has verdicts to
/// compare with. Returns the accounts written.
pub async fn seed<A: Accounts, S: StateStore>(
    collector: &Collector<A>,
    store: &S,
    probes: &BTreeSet<Probe>,
) -> Result<Vec<String>, LiveError> {
    let mut fresh = collect(collector, probes).await?;
    let discovered: BTreeSet<Probe> = evaluate(&fresh)
        .iter()
        .map(Probe::of)
        .filter(|p| !probes.contains(p))
        .collect();
    if !discovered.is_empty() {
        let more = collect(collector, &discovered).await?;
        auditor::impact::state::merge_snapshot(&mut fresh, &more);
    }
    let fresh = reread(&fresh)?;
    let verdicts = evaluate(&fresh);
    let gone = BTreeSet::new();
    let mut written = Vec::new();
    for account in accounts_of(&verdicts) {
        state::update(
            store,
            &account,
            Update {
                fresh: &fresh,
                forget: (None, None),
                verdicts: &verdicts,
                gone: &gone,
                event_id: None,
            },
        )
        .await
        .map_err(LiveError::State)?;
        written.push(account);
    }
    tracing::info!(accounts = ?written, paths = verdicts.len(), "state seeded");
    Ok(written)
}

/// The snapshot as read back from its document (its policies then carry their JSON
/// Pointers, which fix verification patches).
fn reread(s: &Snapshot) -> Result<Snapshot, LiveError> {
    Ok(Snapshot::from_value(&s.to_value())?)
}

/// Collects every probe (side by side) and lays the snapshots over one another.
async fn collect<A: Accounts>(
    collector: &Collector<A>,
    probes: &BTreeSet<Probe>,
) -> Result<Snapshot, LiveError> {
    let meter = Meter::new();
    let requests: Vec<_> = probes
        .iter()
        .filter_map(|p| {
            let mut req = adhoc_request(&p.principal, "s3:GetObject", &p.object_arn).ok()?;
            if req.resource_account.is_none() {
                req.resource_account.clone_from(&p.bucket_owner);
            }
            Some(req)
        })
        .collect();
    let got = join_all(
        requests
            .iter()
            .map(|r| Box::pin(collector.collect_snapshot(r, &meter))),
    )
    .await;
    let mut out = Snapshot::default();
    for s in got {
        auditor::impact::state::merge_snapshot(&mut out, &s?);
    }
    forget_absent_objects(&mut out);
    Ok(out)
}

/// Drops the `s3:HeadObject` answers "no such object" from a probe's collection errors.
/// A path on a prefix, or on every object of a bucket whose objects are not listed, is
/// probed on a representative key (`example` under `*`, `docs/impact-format.md`) that need
/// not exist: S3's `404` says so, and the diagnosis then assumes the bucket's default key and
/// states it as an assumption. Kept as a collection error it would be missing evidence, and
/// any collection error leaves every verdict of the account's stored state `unknown`, so no
/// change to that bucket could ever be reported as breaking or fixing its new objects.
fn forget_absent_objects(s: &mut Snapshot) {
    s.collection_errors
        .retain(|e| !(e.operation == "s3:HeadObject" && e.error == "NotFound"));
}

#[cfg(test)]
mod tests {
    use auditor::snapshot::{CollectionError, Snapshot};

    use super::forget_absent_objects;

    fn error(operation: &str, error: &str) -> CollectionError {
        CollectionError {
            account: Some("111122223333".into()),
            operation: operation.into(),
            resource: Some("arn:aws:s3:::doc-example-bucket/example".into()),
            error: error.into(),
            message: None,
        }
    }

    #[test]
    fn a_representative_key_that_does_not_exist_is_not_missing_evidence() {
        let mut s = Snapshot {
            collection_errors: vec![
                error("s3:HeadObject", "NotFound"),
                error("s3:HeadObject", "AccessDenied"),
                error("s3:GetBucketPolicy", "NotFound"),
            ],
            ..Snapshot::default()
        };
        forget_absent_objects(&mut s);
        let left: Vec<(&str, &str)> = s
            .collection_errors
            .iter()
            .map(|e| (e.operation.as_str(), e.error.as_str()))
            .collect();
        // A refused HeadObject, or another read's error, is still a gap.
        assert_eq!(
            left,
            [
                ("s3:HeadObject", "AccessDenied"),
                ("s3:GetBucketPolicy", "NotFound")
            ]
        );
    }
}
