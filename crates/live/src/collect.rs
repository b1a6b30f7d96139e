//! The collector: from a denied request to the snapshot the offline diagnosis reads.
//!
//! It reads exactly what the diagnosis of that request needs, concurrently where the reads
//! do not depend on one another:
//!
//! ```text
//! depth 1  sts:AssumeRole into each other account (skipped when the session is cached)
//! depth 2  bucket: location, policy, encryption, ownership, public access block, ACL;
//!          object: HeadObject and GetObjectAcl (both behind `Options::head_object`)
//!          caller:  Get{Role,User}, List{Role,User}Policies, ListAttached…, ListPolicies
//!          both:    DescribeOrganization; a key the event names: its reads
//!          an access point the request names by ARN: GetAccessPoint, GetAccessPointPolicy
//!          (then the bucket behind it, one level deeper, when the request named no bucket)
//! depth 3  the object's key (and the bucket's default key): DescribeKey, GetKeyPolicy,
//!          ListGrants, ListAliases; the caller's inline and managed policy documents
//! ```
//!
//! When the snapshot holds an object another account owns (ACLs enabled), the caller's
//! canonical id follows (`ListBuckets` in the caller's account, `collect/acl.rs`).
//!
//! With a reader in the organization's management or delegated administrator account
//! ([`Accounts::org_reader`]), a member account's SCPs and RCPs follow its
//! `DescribeOrganization`: one round trip per level from the account up to the root, then
//! `DescribePolicy` (`collect/org.rs`); all cached, so a warm container reads none of them.
//!
//! then the publish makes 4. A read AWS refused (the auditor's own `AccessDenied`, or another
//! answer that is not the data) becomes an entry of `collection_errors`, and whatever that
//! read would have filled in is left out, so that "could not read" is never mistaken for
//! "nothing there". A read that got no answer (throttling, a 5xx, a timeout, a reset
//! connection, still failing after the SDK's retries) is not evidence of anything: the
//! collection fails with a [`CollectError`] naming it, and no verdict is drawn.
//!
//! Every read becomes a typed value of the snapshot model (`auditor::snapshot`); the
//! snapshot's one writer, [`Snapshot::to_value`], turns them into the document
//! (`docs/snapshot-format.md`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use auditor::event::{AccessPointUse, ChangeEvent, Principal, Request, Touched};
use auditor::refs::{self, AccessPointRef, BucketRef, Partition};
use auditor::snapshot::{
    AccessPoint, Bucket, CollectionError, DefaultEncryption, Group, Iam, Key, KeyGrant, KeyManager,
    KeyMetadata, KeyState, ManagedPolicy, NamedPolicy, NetworkOrigin, Object, ObjectOwnership,
    Organization, PublicAccessBlock, Role, Snapshot, User, VpcEndpoint,
};
use futures_util::future::join_all;
use serde_json::Value;

use crate::cache::Cache;
use crate::handler::PublishedLedger;
use crate::keys;
use crate::meter::{Meter, Stats};
use crate::ports::{
    Access, AccessPointReads, Accounts, BucketReads, IdentityKind, IdentityReads, KeyInfo,
    KeyReads, NetworkReads, OrgInfo, OrgReads, Read, ReadError,
};

/// What to read beyond the minimum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Read object metadata with `HeadObject` (it needs `s3:GetObject` on the object; without
    /// it the diagnosis assumes the bucket's default key and says so).
    pub head_object: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options { head_object: true }
    }
}

/// The collector, generic over how accounts are reached.
#[derive(Debug)]
pub struct Collector<A> {
    accounts: A,
    cache: Cache,
    options: Options,
    published: PublishedLedger,
    /// One lock per key being read: buckets read side by side that use one key wait for the
    /// first read and take it from the cache, instead of each reading the key (measured: four
    /// KMS calls per bucket in flight; docs/scaling.md, "The live sweep").
    key_reads: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// The result of one collection.
#[derive(Debug, Clone)]
pub struct Collected {
    /// The snapshot document (the format `s3-kms-auditor diagnose --snapshot` reads).
    pub snapshot: Value,
    /// The calls it took.
    pub stats: Stats,
}

/// What the collection could not survive: AWS did not answer at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("while reading `{operation}` in account {account}: {source}")]
pub struct CollectError {
    /// The read that failed.
    pub operation: String,
    /// Its account.
    pub account: String,
    /// Why.
    #[source]
    pub source: ReadError,
}

/// One piece of the snapshot, as a chain of reads returns it.
#[derive(Debug)]
enum Fragment {
    Org {
        account: String,
        org: Organization,
    },
    Iam {
        account: String,
        iam: Iam,
    },
    Bucket {
        account: String,
        name: String,
        bucket: Box<Bucket>,
    },
    Key {
        account: String,
        arn: String,
        key: Box<Key>,
    },
    /// The account's VPC endpoints were read for the endpoint a request came through: the
    /// endpoint, or `None` when the account has no such endpoint.
    VpcEndpoint {
        account: String,
        endpoint: Option<Box<VpcEndpoint>>,
    },
    AccessPoint {
        account: String,
        name: String,
        access_point: Box<AccessPoint>,
    },
    /// An account's canonical user id (`ListBuckets` or `GetBucketAcl` `Owner.ID`).
    Canonical {
        account: String,
        id: String,
    },
    Gap(CollectionError),
}

type Chain = Result<Vec<Fragment>, CollectError>;

/// The principal whose IAM policies are read.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Identity {
    partition: Partition,
    account: String,
    kind: IdentityKind,
    name: String,
}

/// What the request names.
#[derive(Debug, Default)]
struct Plan {
    caller: Option<Identity>,
    caller_account: Option<String>,
    /// Buckets to read with their objects: (bucket, object key, version).
    objects: Vec<(String, Option<String>, Option<String>)>,
    bucket_account: Option<String>,
    region: Option<String>,
    /// A key the event names by key ARN.
    event_key: Option<String>,
    /// The VPC endpoint the request came through and the account that owns it (the record's
    /// `vpcEndpointAccountId`, else the caller's account, where endpoints usually live).
    vpc_endpoint: Option<(String, String)>,
    /// The access point the request went through, named by ARN.
    access_point: Option<AccessPointRef>,
}

impl Plan {
    fn of(req: &Request) -> Plan {
        let mut plan = Plan {
            caller_account: req.principal_account.clone(),
            bucket_account: req.resource_account.clone(),
            region: req.event.as_ref().and_then(|e| e.aws_region.clone()),
            ..Plan::default()
        };
        let arn = req
            .role_arn
            .as_deref()
            .or(req.principal.arn())
            .unwrap_or_default();
        plan.caller = identity_of(arn);
        if plan.caller_account.is_none() {
            plan.caller_account = plan.caller.as_ref().map(|c| c.account.clone());
        }
        if let Some(src) = &req.copy_source {
            plan.objects.push((
                src.bucket.clone(),
                Some(src.key.clone()),
                src.version_id.clone(),
            ));
        }
        if let Some(b) = &req.bucket {
            plan.objects
                .push((b.clone(), req.object_key.clone(), req.version_id.clone()));
        }
        if let Some(k) = req
            .kms_key_arn
            .as_deref()
            .filter(|k| key_arn_parts(k).is_some())
        {
            plan.event_key = Some(k.to_owned());
            if plan.region.is_none() {
                plan.region = key_arn_parts(k).map(|(r, _)| r.to_owned());
            }
        }
        if let Some(AccessPointUse::Arn(ap)) = &req.access_point {
            if plan.region.is_none() {
                plan.region = Some(ap.region.clone());
            }
            plan.access_point = Some(ap.clone());
        }
        if matches!(req.principal, Principal::Unknown) {
            plan.caller = None;
        }
        plan.vpc_endpoint = req.vpc_endpoint.as_ref().and_then(|e| {
            e.account
                .clone()
                .or_else(|| plan.caller_account.clone())
                .map(|a| (e.id.clone(), a))
        });
        plan
    }
}

/// Whether `change` may alter what the diagnosis of `req` reads, so that a problem `req`
/// exposed is worth re-diagnosing (docs/live.md, "Noise control"). The entries the request
/// names (its buckets, its caller's IAM, the key it names, its accounts' organization) are
/// asked [`keys::touched_by`]; a key or alias change is in doubt, since the object's key is not
/// in the record: it counts when made in one of the request's accounts or in one of `accounts`
/// (those the problem's blocking causes name).
pub fn may_alter(change: &ChangeEvent, req: &Request, accounts: &[&str]) -> bool {
    let plan = Plan::of(req);
    let mut named: Vec<String> = Vec::new();
    if let Some(id) = &plan.caller {
        let kind = match id.kind {
            IdentityKind::Role => "role",
            IdentityKind::User => "user",
            IdentityKind::Group => "group",
        };
        named.push(keys::iam(&id.account, kind, &id.name));
    }
    let bucket_account = plan.bucket_account.as_deref().unwrap_or_default();
    for (bucket, _, _) in &plan.objects {
        named.push(keys::bucket(bucket_account, bucket));
    }
    named.extend(plan.event_key.as_deref().map(keys::key));
    let mine: Vec<&str> = [
        plan.caller_account.as_deref(),
        plan.bucket_account.as_deref(),
    ]
    .into_iter()
    .flatten()
    .chain(accounts.iter().copied())
    .collect();
    named.extend(mine.iter().map(|a| keys::org(a)));
    if named.iter().any(|k| keys::touched_by(change, k)) {
        return true;
    }
    let kms = change
        .touches
        .iter()
        .any(|t| matches!(t, Touched::Key { .. } | Touched::Aliases));
    kms && change.account.as_deref().is_none_or(|a| mine.contains(&a))
}

/// The IAM identity behind a principal ARN: a role (for a session or a role ARN) or a user.
fn identity_of(arn: &str) -> Option<Identity> {
    let iam_eval::arn::Arn {
        partition,
        service,
        account,
        resource,
        ..
    } = iam_eval::arn::Arn::parse(arn)?;
    let partition = Partition::parse(partition)?;
    let (kind, name) = match (service, resource.split_once('/')) {
        ("sts", Some(("assumed-role", rest))) => (IdentityKind::Role, rest.split('/').next()?),
        ("iam", Some(("role", rest))) => (IdentityKind::Role, rest.rsplit('/').next()?),
        ("iam", Some(("user", rest))) => (IdentityKind::User, rest.rsplit('/').next()?),
        _ => return None,
    };
    Some(Identity {
        partition,
        account: account.to_owned(),
        kind,
        name: name.to_owned(),
    })
}

/// A key ARN → (region, account).
fn key_arn_parts(arn: &str) -> Option<(&str, &str)> {
    let parsed = iam_eval::arn::Arn::parse(arn)?;
    (parsed.service == "kms" && parsed.resource.starts_with("key/"))
        .then_some((parsed.region, parsed.account))
}

fn gap(account: &str, operation: &str, resource: Option<&str>, e: &ReadError) -> Fragment {
    let (error, message) = match e {
        ReadError::Denied { code, message }
        | ReadError::Service { code, message }
        | ReadError::Transient { code, message } => (code.clone(), message.clone()),
        ReadError::Transport { message } => ("Transport".to_owned(), Some(message.clone())),
    };
    Fragment::Gap(CollectionError {
        account: Some(account.to_owned()),
        operation: operation.to_owned(),
        resource: resource.map(str::to_owned),
        error,
        message,
    })
}

/// What AWS returned but the snapshot model rejects (a policy that is not valid policy JSON,
/// a setting this version does not know): a gap like a refused read, so that the rest of the
/// snapshot is still diagnosed.
fn invalid(e: impl std::fmt::Display) -> ReadError {
    ReadError::Service {
        code: "InvalidDocument".into(),
        message: Some(format!(
            "AWS returned a value the snapshot cannot hold: {e}"
        )),
    }
}

/// A read's answer, with failures to get one (throttling, 5xx, timeouts, resets: what the
/// SDK's retries did not overcome) turned into the collection's failure. Only answers go on:
/// a value, or a refusal that the snapshot records as a gap.
fn answer<T>(r: Read<T>, account: &str, operation: &str) -> Result<Read<T>, CollectError> {
    match r {
        Err(source) if source.is_failure() => Err(CollectError {
            operation: operation.to_owned(),
            account: account.to_owned(),
            source,
        }),
        other => Ok(other),
    }
}

struct Reader<'a, R> {
    reader: &'a R,
    account: &'a str,
    /// The depth at which the reader became usable.
    depth: u32,
}

impl<R> Clone for Reader<'_, R> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<R> Copy for Reader<'_, R> {}

fn reader_of<'a, R>(
    readers: &'a BTreeMap<String, (R, u32)>,
    account: Option<&str>,
) -> Option<Reader<'a, R>> {
    let (k, (r, d)) = readers.get_key_value(account?)?;
    Some(Reader {
        reader: r,
        account: k.as_str(),
        depth: *d,
    })
}

impl<A: Accounts> Collector<A> {
    /// A collector over `accounts`, caching fragments in `cache`.
    pub fn new(accounts: A, cache: Cache, options: Options) -> Collector<A> {
        Collector {
            accounts,
            cache,
            options,
            published: PublishedLedger::default(),
            key_reads: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The records this container published in invocations that then failed.
    pub fn published(&self) -> &PublishedLedger {
        &self.published
    }

    /// How accounts are reached.
    pub fn accounts(&self) -> &A {
        &self.accounts
    }

    /// The per-container cache.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// Drops the cached entries `change` may have altered, so that the next diagnosis in this
    /// container reads their new state; returns their keys.
    pub fn invalidate(&self, change: &ChangeEvent) -> Vec<String> {
        self.cache.invalidate_where(|k| keys::touched_by(change, k))
    }

    /// Reads what the diagnosis of `req` needs, as the snapshot document (written by the
    /// snapshot's one writer); `meter` counts the calls.
    pub async fn collect(&self, req: &Request, meter: &Meter) -> Result<Value, CollectError> {
        Ok(self.collect_snapshot(req, meter).await?.to_value())
    }

    /// Reads what the diagnosis of `req` needs, as the typed snapshot. Its policies carry no
    /// JSON Pointer (they were not read from a document); read [`Snapshot::to_value`] back
    /// where pointers matter.
    pub async fn collect_snapshot(
        &self,
        req: &Request,
        meter: &Meter,
    ) -> Result<Snapshot, CollectError> {
        let attempts_before = self.accounts.attempts();
        // Boxed: the collection's future is large, and deeply nested types slow the build.
        let got = Box::pin(self.collect_inner(req, meter)).await;
        meter.attempts(self.accounts.attempts().saturating_sub(attempts_before));
        got
    }

    async fn collect_inner(&self, req: &Request, meter: &Meter) -> Result<Snapshot, CollectError> {
        let plan = Plan::of(req);
        // Depth 1: a session in every account the event names.
        let mut names: BTreeSet<String> = BTreeSet::new();
        names.extend(plan.caller_account.clone());
        names.extend(plan.bucket_account.clone());
        if let Some((_, a)) = plan.event_key.as_deref().and_then(key_arn_parts) {
            names.insert(a.to_owned());
        }
        if let Some((_, a)) = &plan.vpc_endpoint {
            names.insert(a.clone());
        }
        names.extend(plan.access_point.as_ref().map(|ap| ap.account.clone()));
        let (accesses, ()) = tokio::join!(
            join_all(names.iter().map(|a| self.access(a, meter))),
            self.warm_org_reader(meter),
        );
        let mut readers: BTreeMap<String, (A::Reader, u32)> = BTreeMap::new();
        let mut fragments = Vec::new();
        for (name, got) in names.iter().zip(accesses) {
            match got? {
                Ok(r) => {
                    readers.insert(name.clone(), r);
                }
                Err(g) => fragments.push(g),
            }
        }
        let readers = &readers;
        // Depth 2 and on: the chains that do not wait for one another.
        let region = plan
            .region
            .clone()
            .unwrap_or_else(|| "us-east-1".to_owned());
        let event_key_account = plan
            .event_key
            .as_deref()
            .and_then(key_arn_parts)
            .map(|(_, a)| a.to_owned());
        let orgs = join_all(readers.iter().map(|(a, (r, d))| {
            self.organization(
                Reader {
                    reader: r,
                    account: a,
                    depth: *d,
                },
                meter,
            )
        }));
        let caller = async {
            match (
                &plan.caller,
                reader_of(readers, plan.caller_account.as_deref()),
            ) {
                (Some(id), Some(r)) if id.account == r.account => {
                    self.principal(r, id, meter).await
                }
                _ => Ok(Vec::new()),
            }
        };
        let resources = join_all(plan.objects.iter().map(|(bucket, key, version)| {
            let r = reader_of(readers, plan.bucket_account.as_deref());
            let region = region.clone();
            let skip = plan.event_key.clone();
            async move {
                match r {
                    Some(r) => {
                        self.bucket_and_object(
                            r,
                            &region,
                            bucket,
                            key.as_deref(),
                            version.as_deref(),
                            skip.as_deref(),
                            meter,
                        )
                        .await
                    }
                    None => Ok(Vec::new()),
                }
            }
        }));
        let event_key = async {
            match (
                &plan.event_key,
                reader_of(readers, event_key_account.as_deref()),
            ) {
                (Some(k), Some(r)) => self.key(r, k, meter).await,
                _ => Ok(Vec::new()),
            }
        };
        let endpoint = async {
            match &plan.vpc_endpoint {
                Some((id, account)) => match reader_of(readers, Some(account)) {
                    Some(r) => self.vpc_endpoint(r, &region, id, meter).await,
                    None => Ok(Vec::new()),
                },
                None => Ok(Vec::new()),
            }
        };
        let access_point = async {
            match (
                &plan.access_point,
                reader_of(
                    readers,
                    plan.access_point.as_ref().map(|ap| ap.account.as_str()),
                ),
            ) {
                (Some(ap), Some(r)) => {
                    // Without a bucket in the request, the one behind the access point.
                    let object = plan
                        .objects
                        .is_empty()
                        .then_some((req.object_key.as_deref(), req.version_id.as_deref()));
                    self.access_point(r, ap, object, readers, meter).await
                }
                _ => Ok(Vec::new()),
            }
        };
        let (orgs, caller, resources, event_key, endpoint, access_point) =
            tokio::join!(orgs, caller, resources, event_key, endpoint, access_point);
        for chain in orgs.into_iter().chain(resources) {
            fragments.extend(chain?);
        }
        fragments.extend(access_point?);
        fragments.extend(caller?);
        fragments.extend(event_key?);
        fragments.extend(endpoint?);
        let caller_reader = reader_of(readers, plan.caller_account.as_deref());
        let canonical = self.canonical_ids(caller_reader, &fragments, meter).await?;
        fragments.extend(canonical);
        let description = match req.event.as_ref().and_then(|e| e.event_id.as_deref()) {
            Some(id) => format!("Collected live by s3-kms-auditor for event {id}"),
            None => "Collected live by s3-kms-auditor".to_owned(),
        };
        Ok(assemble(description, fragments))
    }

    /// The access point the request went through (`GetAccessPoint`, `GetAccessPointPolicy`
    /// in its owner's account), and, when the request named no bucket, the bucket behind it.
    /// Not cached: a change to an access point emits no event the warm cache listens to.
    async fn access_point(
        &self,
        r: Reader<'_, A::Reader>,
        ap: &AccessPointRef,
        object: Option<(Option<&str>, Option<&str>)>,
        readers: &BTreeMap<String, (A::Reader, u32)>,
        meter: &Meter,
    ) -> Chain {
        let account = r.account;
        let d = r.depth + 1;
        let arn = ap.arn();
        meter.call("s3:GetAccessPoint", d);
        meter.call("s3:GetAccessPointPolicy", d);
        let (info, policy) = tokio::join!(
            r.reader.access_point(&ap.region, &ap.name),
            r.reader.access_point_policy(&ap.region, &ap.name),
        );
        let info = answer(info, account, "s3:GetAccessPoint")?;
        let policy = answer(policy, account, "s3:GetAccessPointPolicy")?;
        let mut out = Vec::new();
        let info = match info {
            Ok(Some(info)) => info,
            Ok(None) => {
                out.push(gap(
                    account,
                    "s3:GetAccessPoint",
                    Some(&arn),
                    &ReadError::Service {
                        code: "NoSuchAccessPoint".into(),
                        message: Some("the access point does not exist".into()),
                    },
                ));
                return Ok(out);
            }
            Err(e) => {
                out.push(gap(account, "s3:GetAccessPoint", Some(&arn), &e));
                return Ok(out);
            }
        };
        let policy = policy.and_then(|p| {
            p.map(|text| NamedPolicy::access_point_policy(&ap.name, Value::String(text)))
                .transpose()
                .map_err(invalid)
        });
        let policy = match policy {
            Ok(p) => p,
            Err(e) => {
                // Without it the access point would read as "no policy": leave it out.
                out.push(gap(account, "s3:GetAccessPointPolicy", Some(&arn), &e));
                return Ok(out);
            }
        };
        let network_origin = if info.network_origin.eq_ignore_ascii_case("VPC") {
            NetworkOrigin::Vpc
        } else {
            NetworkOrigin::Internet
        };
        let bucket_owner = info
            .bucket_account_id
            .clone()
            .unwrap_or_else(|| account.to_owned());
        let bucket = info.bucket.clone();
        let doc = AccessPoint {
            name: ap.name.clone(),
            bucket: info.bucket,
            bucket_account_id: info.bucket_account_id,
            network_origin,
            vpc_id: info.vpc_id,
            public_access_block: info.public_access_block.map(|p| PublicAccessBlock {
                block_public_acls: p.block_public_acls,
                ignore_public_acls: p.ignore_public_acls,
                block_public_policy: p.block_public_policy,
                restrict_public_buckets: p.restrict_public_buckets,
            }),
            alias: info.alias,
            // Only an ARN that names this access point (an emulator may print another Region).
            arn: info
                .arn
                .filter(|a| AccessPointRef::parse(a).is_some_and(|(p, _)| p == *ap)),
            policy,
        };
        out.push(Fragment::AccessPoint {
            account: account.to_owned(),
            name: ap.name.clone(),
            access_point: Box::new(doc),
        });
        if let Some((key, version)) = object.filter(|_| !bucket.is_empty()) {
            match reader_of(readers, Some(&bucket_owner)) {
                Some(owner) => {
                    let owner = Reader {
                        depth: owner.depth.max(d),
                        ..owner
                    };
                    out.extend(
                        self.bucket_and_object(owner, &ap.region, &bucket, key, version, None, meter)
                            .await?,
                    );
                }
                None => out.push(gap(
                    &bucket_owner,
                    "s3:GetBucketPolicy",
                    Some(&BucketRef::new(ap.partition, &bucket).arn()),
                    &ReadError::Service {
                        code: "NotCollected".into(),
                        message: Some(format!(
                            "bucket `{bucket}` behind access point `{arn}` belongs to account {bucket_owner}, which the request did not name"
                        )),
                    },
                )),
            }
        }
        Ok(out)
    }

    /// A reader for `account`, with the depth at which it became usable.
    async fn access(
        &self,
        account: &str,
        meter: &Meter,
    ) -> Result<Result<(A::Reader, u32), Fragment>, CollectError> {
        let got = answer(
            self.accounts.reader(account).await,
            account,
            "sts:AssumeRole",
        )?;
        Ok(match got {
            Ok(Access {
                reader,
                assumed_role,
            }) => {
                let depth = if assumed_role {
                    meter.call("sts:AssumeRole", 1)
                } else {
                    0
                };
                Ok((reader, depth))
            }
            Err(e) => {
                meter.call("sts:AssumeRole", 1);
                Err(gap(account, "sts:AssumeRole", None, &e))
            }
        })
    }

    async fn organization(&self, r: Reader<'_, A::Reader>, meter: &Meter) -> Chain {
        let cache_key = keys::org(r.account);
        if let Some(org) = self.cached(&cache_key, meter) {
            return Ok(vec![Fragment::Org {
                account: r.account.to_owned(),
                org,
            }]);
        }
        meter.call("organizations:DescribeOrganization", r.depth + 1);
        let got = answer(
            r.reader.organization().await,
            r.account,
            "organizations:DescribeOrganization",
        )?;
        let mut out = Vec::new();
        let org = match got {
            // Not in an organization: no SCP or RCP applies.
            Ok(None) => Organization::default(),
            Ok(Some(OrgInfo {
                id,
                management_account,
            })) => {
                let management = management_account == r.account;
                let mut org = Organization {
                    id: Some(id.clone()),
                    is_management_account: management,
                    management_account: Some(management_account.clone())
                        .filter(|m| iam_eval::principal::is_account_id(m)),
                    ..Organization::default()
                };
                // SCPs and RCPs never restrict the management account: nothing to read.
                if !management {
                    match self.org_levels(&id, r.account, r.depth + 1, meter).await? {
                        org::OrgLevels::Read { scp, rcp } => {
                            org.scp = scp;
                            org.rcp = rcp;
                        }
                        // A member account cannot read the SCPs and RCPs that apply to it;
                        // only the management account (or a delegated administrator) can.
                        org::OrgLevels::NotConfigured => out.push(gap(
                            r.account,
                            "organizations:ListPoliciesForTarget",
                            None,
                            &ReadError::Service {
                                code: "NotCollected".into(),
                                message: Some(format!(
                                    "the SCPs and RCPs of organization {id} are readable only from its management account {management_account} or a delegated administrator, and no reader there is configured (S3KA_ORG_ACCESS); they were not evaluated"
                                )),
                            },
                        )),
                        org::OrgLevels::Gaps(g) => out.extend(g),
                    }
                }
                org
            }
            Err(e) => {
                out.push(gap(
                    r.account,
                    "organizations:DescribeOrganization",
                    None,
                    &e,
                ));
                return Ok(out);
            }
        };
        if out.is_empty() {
            self.cache.put(cache_key, org.clone());
        }
        out.push(Fragment::Org {
            account: r.account.to_owned(),
            org,
        });
        Ok(out)
    }

    /// The VPC endpoint a request came through (`ec2:DescribeVpcEndpoints` in the account
    /// that owns it), in the Region of the request: an S3 endpoint serves its own Region.
    async fn vpc_endpoint(
        &self,
        r: Reader<'_, A::Reader>,
        region: &str,
        id: &str,
        meter: &Meter,
    ) -> Chain {
        meter.call("ec2:DescribeVpcEndpoints", r.depth + 1);
        let got = answer(
            r.reader.vpc_endpoint(region, id).await,
            r.account,
            "ec2:DescribeVpcEndpoints",
        )?;
        let endpoint = match got {
            Ok(Some(v)) => match VpcEndpoint::from_value(&v) {
                Ok(e) => Some(Box::new(e)),
                Err(e) => {
                    return Ok(vec![gap(
                        r.account,
                        "ec2:DescribeVpcEndpoints",
                        Some(id),
                        &invalid(e),
                    )])
                }
            },
            Ok(None) => None,
            Err(e) => {
                return Ok(vec![gap(
                    r.account,
                    "ec2:DescribeVpcEndpoints",
                    Some(id),
                    &e,
                )])
            }
        };
        Ok(vec![Fragment::VpcEndpoint {
            account: r.account.to_owned(),
            endpoint,
        }])
    }

    fn cached<T: std::any::Any + Clone>(&self, key: &str, meter: &Meter) -> Option<T> {
        let v = self.cache.get::<T>(key)?;
        meter.hit();
        Some(v)
    }

    /// The bucket's configuration and the object's metadata, then the keys they name.
    #[expect(
        clippy::too_many_arguments,
        reason = "one bucket read: the reader, the event Region and the object it names"
    )]
    async fn bucket_and_object(
        &self,
        r: Reader<'_, A::Reader>,
        event_region: &str,
        bucket: &str,
        key: Option<&str>,
        version: Option<&str>,
        already_read_key: Option<&str>,
        meter: &Meter,
    ) -> Chain {
        let account = r.account;
        let d = r.depth + 1;
        let bucket_arn = BucketRef::new(Partition::of_region(event_region), bucket).arn();
        let bucket_key = keys::bucket(account, bucket);
        let object_key = key.map(|k| keys::object(account, bucket, k, version));
        let cached_bucket = self.cached::<Bucket>(&bucket_key, meter);
        let cached_object = match &object_key {
            Some(k) if self.options.head_object => self.cached::<Object>(k, meter),
            _ => None,
        };
        let read_bucket = async {
            if cached_bucket.is_some() {
                return Ok(None);
            }
            let region = event_region;
            let ops = [
                "s3:GetBucketLocation",
                "s3:GetBucketPolicy",
                "s3:GetBucketEncryption",
                "s3:GetBucketOwnershipControls",
                "s3:GetPublicAccessBlock",
                "s3:GetBucketAcl",
            ];
            for op in ops {
                meter.call(op, d);
            }
            let (loc, pol, enc, own, pab, acl) = tokio::join!(
                r.reader.bucket_region(region, bucket),
                r.reader.bucket_policy(region, bucket),
                r.reader.bucket_encryption(region, bucket),
                r.reader.ownership_controls(region, bucket),
                r.reader.public_access_block(region, bucket),
                r.reader.bucket_acl(region, bucket),
            );
            Ok::<_, CollectError>(Some((
                answer(loc, account, ops[0])?,
                answer(pol, account, ops[1])?,
                answer(enc, account, ops[2])?,
                answer(own, account, ops[3])?,
                answer(pab, account, ops[4])?,
                answer(acl, account, ops[5])?,
            )))
        };
        // The object's metadata and, under the same switch, its ACL and owner (which the
        // object-ownership check needs; GetObjectAcl reads no content).
        let read_object = async {
            match (key, self.options.head_object, cached_object.is_some()) {
                (Some(k), true, false) => {
                    meter.call("s3:HeadObject", d);
                    meter.call("s3:GetObjectAcl", d);
                    let (head, acl) = tokio::join!(
                        r.reader.head_object(event_region, bucket, k, version),
                        r.reader.object_acl(event_region, bucket, k, version),
                    );
                    Ok(Some((
                        answer(head, account, "s3:HeadObject")?,
                        answer(acl, account, "s3:GetObjectAcl")?,
                    )))
                }
                _ => Ok::<_, CollectError>(None),
            }
        };
        let (bucket_reads, object_read) = tokio::join!(read_bucket, read_object);
        let mut out = Vec::new();
        let mut depth = r.depth;
        // The bucket, from the cache or from the reads.
        let mut bucket_doc = match (cached_bucket, bucket_reads?) {
            (Some(v), _) => v,
            (None, Some((Err(ReadError::Service { code, message }), ..)))
                if code == "NoSuchBucket" =>
            {
                // One gap, not five: the bucket is gone (or the name is wrong).
                out.push(gap(
                    account,
                    "s3:GetBucketLocation",
                    Some(&bucket_arn),
                    &ReadError::Service {
                        code,
                        message: message.or(Some("the bucket does not exist".into())),
                    },
                ));
                return Ok(out);
            }
            (None, Some((loc, pol, enc, own, pab, acl))) => {
                depth = d;
                let mut complete = true;
                let region = match loc {
                    Ok(region) => region,
                    Err(e) => {
                        out.push(gap(account, "s3:GetBucketLocation", Some(&bucket_arn), &e));
                        event_region.to_owned()
                    }
                };
                let mut doc = Bucket {
                    region,
                    policy: None,
                    encryption: None,
                    ownership: None,
                    public_access_block: None,
                    acl_owner_id: None,
                    acl_grants: Vec::new(),
                    objects: BTreeMap::new(),
                    request_payment: None,
                };
                let pol = pol.and_then(|p| {
                    p.map(|text| NamedPolicy::bucket_policy(bucket, Value::String(text)))
                        .transpose()
                        .map_err(invalid)
                });
                match pol {
                    Ok(p) => doc.policy = p,
                    Err(e) => {
                        // Without it the bucket would read as "no bucket policy": leave the
                        // bucket out rather than invent a cause.
                        complete = false;
                        out.push(gap(account, "s3:GetBucketPolicy", Some(&bucket_arn), &e));
                    }
                }
                match enc {
                    Ok(Some(rule)) => {
                        doc.encryption = Some(DefaultEncryption {
                            algorithm: rule.algorithm,
                            kms_key_id: rule.kms_key_id,
                            bucket_key_enabled: rule.bucket_key_enabled,
                        });
                    }
                    // Since January 2023 S3 applies SSE-S3 to every bucket without a
                    // configuration; "absent" reads the same way in the diagnosis.
                    Ok(None) => {}
                    Err(e) => out.push(gap(
                        account,
                        "s3:GetBucketEncryption",
                        Some(&bucket_arn),
                        &e,
                    )),
                }
                let own = own.and_then(|o| {
                    o.map(|text| {
                        ObjectOwnership::from_aws(&text)
                            .ok_or_else(|| invalid(format!("Object Ownership `{text}`")))
                    })
                    .transpose()
                });
                match own {
                    Ok(Some(o)) => doc.ownership = Some(o),
                    Ok(None) => {}
                    Err(e) => out.push(gap(
                        account,
                        "s3:GetBucketOwnershipControls",
                        Some(&bucket_arn),
                        &e,
                    )),
                }
                match pab {
                    Ok(Some(p)) => {
                        doc.public_access_block = Some(PublicAccessBlock {
                            block_public_acls: p.block_public_acls,
                            ignore_public_acls: p.ignore_public_acls,
                            block_public_policy: p.block_public_policy,
                            restrict_public_buckets: p.restrict_public_buckets,
                        });
                    }
                    Ok(None) => {}
                    Err(e) => out.push(gap(
                        account,
                        "s3:GetPublicAccessBlock",
                        Some(&bucket_arn),
                        &e,
                    )),
                }
                match acl {
                    Ok(a) => {
                        doc.acl_owner_id = a.owner_id;
                        doc.acl_grants = a.grants;
                    }
                    // Without it the owner's canonical id may still come from the account.
                    Err(e) => out.push(gap(account, "s3:GetBucketAcl", Some(&bucket_arn), &e)),
                }
                if !complete {
                    return Ok(out);
                }
                if out.is_empty() {
                    self.cache.put(bucket_key, doc.clone());
                }
                doc
            }
            (None, None) => return Ok(out),
        };
        // The object's metadata.
        let head = match (cached_object, object_read?) {
            (Some(v), _) => Some(v),
            (None, Some((got, acl))) => {
                depth = depth.max(d);
                let object_arn = key.map(|k| format!("{bucket_arn}/{k}"));
                let acl = match acl {
                    Ok(a) => a,
                    Err(e) => {
                        out.push(gap(account, "s3:GetObjectAcl", object_arn.as_deref(), &e));
                        None
                    }
                };
                let acl_read = acl.is_some();
                let with_acl = |mut v: Object| {
                    if let Some(a) = &acl {
                        v.owner_id = a.owner_id.clone();
                        v.grants = a.grants.clone();
                    }
                    v
                };
                match got {
                    Ok(Some(h)) => {
                        let v = with_acl(Object {
                            sse: h.sse,
                            kms_key_id: h.kms_key_id,
                            bucket_key_enabled: h.bucket_key_enabled,
                            version_id: h.version_id,
                            ..Object::default()
                        });
                        if let (Some(k), true) = (&object_key, acl_read) {
                            self.cache.put(k.clone(), v.clone());
                        }
                        Some(v)
                    }
                    // HeadObject refused but the ACL read (an object ACL can grant READ_ACP
                    // without READ): the object exists, its encryption stays unknown.
                    Err(e) if acl_read => {
                        out.push(gap(account, "s3:HeadObject", object_arn.as_deref(), &e));
                        Some(with_acl(Object::default()))
                    }
                    Ok(None) => {
                        out.push(gap(
                            account,
                            "s3:HeadObject",
                            key.map(|k| format!("{bucket_arn}/{k}")).as_deref(),
                            &ReadError::Service {
                                code: "NotFound".into(),
                                message: Some(
                                    "no such object (deleted, or the key is misspelt)".into(),
                                ),
                            },
                        ));
                        None
                    }
                    Err(e) => {
                        out.push(gap(
                            account,
                            "s3:HeadObject",
                            key.map(|k| format!("{bucket_arn}/{k}")).as_deref(),
                            &e,
                        ));
                        None
                    }
                }
            }
            (None, None) => None,
        };
        // The keys: the object's (by ARN, from HeadObject) and the bucket default.
        let object_kms = head
            .as_ref()
            .filter(|h| h.sse.as_deref().is_some_and(|s| s.starts_with("aws:kms")))
            .and_then(|h| h.kms_key_id.clone());
        if let (Some(k), Some(h)) = (key, head) {
            bucket_doc.objects = BTreeMap::from([(k.to_owned(), h)]);
        }
        let region = bucket_doc.region.clone();
        let default_kms = default_key(&bucket_doc);
        out.push(Fragment::Bucket {
            account: account.to_owned(),
            name: bucket.to_owned(),
            bucket: Box::new(bucket_doc),
        });
        let mut full: Vec<String> = Vec::new();
        let mut by_alias: Vec<String> = Vec::new();
        for k in object_kms.iter().chain(default_kms.iter()) {
            let is_object_key = Some(k) == object_kms.as_ref();
            if key_arn_parts(k).is_some() {
                if Some(k.as_str()) != already_read_key && !full.contains(k) {
                    full.push(k.clone());
                }
            } else if !by_alias.contains(k) {
                // An alias (or bare key id) must be resolved first. For the object's key, or
                // the default assumed in its place, that costs a round trip more.
                by_alias.push(k.clone());
                let _ = is_object_key;
            }
        }
        let needs_full_default = object_kms.is_none();
        let key_reads = full.iter().map(|k| {
            let r = Reader {
                reader: r.reader,
                account,
                depth,
            };
            async move { self.key_in_account(r, k, meter).await }
        });
        let alias_reads = by_alias.iter().map(|alias| {
            let r = Reader {
                reader: r.reader,
                account,
                depth,
            };
            let region = region.clone();
            async move {
                self.key_by_alias(r, &region, alias, needs_full_default, meter)
                    .await
            }
        });
        let (keys, aliases) = tokio::join!(join_all(key_reads), join_all(alias_reads));
        for chain in keys.into_iter().chain(aliases) {
            out.extend(chain?);
        }
        Ok(out)
    }

    /// A key named by key ARN, read in its own account (another session if needed).
    async fn key_in_account(&self, r: Reader<'_, A::Reader>, arn: &str, meter: &Meter) -> Chain {
        let Some((_, key_account)) = key_arn_parts(arn) else {
            return Ok(Vec::new());
        };
        if key_account == r.account {
            return self.key(r, arn, meter).await;
        }
        match self.access(key_account, meter).await? {
            Ok((reader, d)) => {
                self.key(
                    Reader {
                        reader: &reader,
                        account: key_account,
                        depth: r.depth.max(d) + u32::from(d > 0),
                    },
                    arn,
                    meter,
                )
                .await
            }
            Err(g) => Ok(vec![g]),
        }
    }

    /// Everything about one key named by key ARN: metadata, policy, grants, aliases.
    async fn key(&self, r: Reader<'_, A::Reader>, arn: &str, meter: &Meter) -> Chain {
        let Some((region, _)) = key_arn_parts(arn) else {
            return Ok(Vec::new());
        };
        let cache_key = keys::key(arn);
        // Only when the cache keeps what the first read finds is waiting for it worth it.
        let lock = self.cache.keeps().then(|| {
            self.key_reads
                .lock()
                .map(|mut m| m.entry(cache_key.clone()).or_default().clone())
                .ok()
        });
        let _reading = match lock.flatten() {
            Some(l) => Some(l.lock_owned().await),
            None => None,
        };
        if let Some(key) = self.cached::<Key>(&cache_key, meter) {
            return Ok(vec![Fragment::Key {
                account: r.account.to_owned(),
                arn: arn.to_owned(),
                key: Box::new(key),
            }]);
        }
        let d = r.depth + 1;
        let ops = [
            "kms:DescribeKey",
            "kms:GetKeyPolicy",
            "kms:ListGrants",
            "kms:ListAliases",
        ];
        for op in ops {
            meter.call(op, d);
        }
        let (meta, policy, grants, aliases) = tokio::join!(
            r.reader.describe_key(region, arn),
            r.reader.key_policy(region, arn),
            r.reader.grants(region, arn),
            r.reader.aliases(region, arn),
        );
        let account = r.account;
        let (meta, policy, grants, aliases) = (
            answer(meta, account, ops[0])?,
            answer(policy, account, ops[1])?,
            answer(grants, account, ops[2])?,
            answer(aliases, account, ops[3])?,
        );
        let mut out = Vec::new();
        let metadata = match meta.and_then(|m| m.map(|info| key_metadata(&info)).transpose()) {
            Ok(Some(metadata)) => metadata,
            Ok(None) => {
                out.push(gap(
                    account,
                    "kms:DescribeKey",
                    Some(arn),
                    &ReadError::Service {
                        code: "NotFoundException".into(),
                        message: Some(
                            "the key does not exist (deleted, or in another Region)".into(),
                        ),
                    },
                ));
                return Ok(out);
            }
            Err(e) => {
                out.push(gap(account, "kms:DescribeKey", Some(arn), &e));
                return Ok(out);
            }
        };
        let key_arn = metadata.arn.clone();
        let mut key = Key {
            metadata,
            policy: None,
            grants: Vec::new(),
            aliases: Vec::new(),
        };
        match policy
            .and_then(|p| NamedPolicy::key_policy(&key_arn, Value::String(p)).map_err(invalid))
        {
            Ok(p) => key.policy = Some(p),
            // Absent key policy = "not collected" in the snapshot, as it must be.
            Err(e) => out.push(gap(account, "kms:GetKeyPolicy", Some(arn), &e)),
        }
        let grants = grants.and_then(|g| {
            g.into_iter()
                .map(KeyGrant::new)
                .collect::<Result<Vec<_>, _>>()
                .map_err(invalid)
        });
        match grants {
            Ok(g) => key.grants = g,
            Err(e) => out.push(gap(account, "kms:ListGrants", Some(arn), &e)),
        }
        match aliases {
            Ok(a) => key.aliases = a,
            Err(e) => out.push(gap(account, "kms:ListAliases", Some(arn), &e)),
        }
        if out.is_empty() {
            self.cache.put(cache_key, key.clone());
        }
        out.push(Fragment::Key {
            account: account.to_owned(),
            arn: key_arn,
            key: Box::new(key),
        });
        Ok(out)
    }

    /// A key the bucket's default encryption names by alias (or bare id), resolved in the
    /// bucket owner's account. Its metadata is enough for the advisories; when the object's
    /// own key is unknown the diagnosis assumes this one, and then it is read in full.
    async fn key_by_alias(
        &self,
        r: Reader<'_, A::Reader>,
        region: &str,
        reference: &str,
        full: bool,
        meter: &Meter,
    ) -> Chain {
        let cache_key = keys::alias(r.account, region, reference);
        let account = r.account;
        let info = match self.cached::<KeyInfo>(&cache_key, meter) {
            Some(info) => Some(info),
            None => {
                meter.call("kms:DescribeKey", r.depth + 1);
                match answer(
                    r.reader.describe_key(region, reference).await,
                    account,
                    "kms:DescribeKey",
                )? {
                    Ok(Some(info)) => {
                        self.cache.put(cache_key, info.clone());
                        Some(info)
                    }
                    Ok(None) => None,
                    Err(e) => {
                        return Ok(vec![gap(account, "kms:DescribeKey", Some(reference), &e)])
                    }
                }
            }
        };
        let Some(info) = info else {
            return Ok(Vec::new());
        };
        let alias = reference
            .split_once(":alias/")
            .map(|(_, a)| format!("alias/{a}"))
            .unwrap_or_else(|| reference.to_owned());
        if full {
            let depth = r.depth + 1;
            let mut out = self
                .key(
                    Reader {
                        reader: r.reader,
                        account,
                        depth,
                    },
                    &info.arn,
                    meter,
                )
                .await?;
            for f in out.iter_mut() {
                if let Fragment::Key { key, .. } = f {
                    add_alias(key, &alias);
                }
            }
            return Ok(out);
        }
        let metadata = match key_metadata(&info) {
            Ok(m) => m,
            Err(e) => return Ok(vec![gap(account, "kms:DescribeKey", Some(reference), &e)]),
        };
        let mut key = Key {
            metadata,
            policy: None,
            grants: Vec::new(),
            aliases: Vec::new(),
        };
        add_alias(&mut key, &alias);
        Ok(vec![Fragment::Key {
            account: account.to_owned(),
            arn: info.arn,
            key: Box::new(key),
        }])
    }

    /// The caller's IAM policies: the role or user, its inline and attached managed policies
    /// (and, for users, those of their groups), and its permissions boundary.
    async fn principal(&self, r: Reader<'_, A::Reader>, id: &Identity, meter: &Meter) -> Chain {
        let kind_name = match id.kind {
            IdentityKind::Role => "role",
            IdentityKind::User => "user",
            IdentityKind::Group => "group",
        };
        let cache_key = keys::iam(&id.account, kind_name, &id.name);
        if let Some(iam) = self.cached::<Iam>(&cache_key, meter) {
            return Ok(vec![Fragment::Iam {
                account: id.account.clone(),
                iam,
            }]);
        }
        let account = r.account;
        let d = r.depth + 1;
        let (get_op, list_op, attached_op) = match id.kind {
            IdentityKind::Role => (
                "iam:GetRole",
                "iam:ListRolePolicies",
                "iam:ListAttachedRolePolicies",
            ),
            _ => (
                "iam:GetUser",
                "iam:ListUserPolicies",
                "iam:ListAttachedUserPolicies",
            ),
        };
        for op in [get_op, list_op, attached_op] {
            meter.call(op, d);
        }
        let attached_versions = async {
            let key = keys::attached(account);
            if let Some(map) =
                self.cached::<BTreeMap<String, (Option<String>, String)>>(&key, meter)
            {
                return Ok(map);
            }
            meter.call("iam:ListPolicies", d);
            let got = answer(
                r.reader.attached_policy_versions().await,
                account,
                "iam:ListPolicies",
            )?;
            Ok::<_, CollectError>(match got {
                Ok(list) => {
                    let map: BTreeMap<String, (Option<String>, String)> = list
                        .by_arn
                        .into_iter()
                        .map(|(arn, v)| (arn, (v.name, v.default_version)))
                        .collect();
                    if list.complete {
                        self.cache.put(key, map.clone());
                    }
                    map
                }
                // Not fatal: each policy is then looked up with GetPolicy.
                Err(_) => BTreeMap::new(),
            })
        };
        let groups = async {
            if id.kind != IdentityKind::User {
                return Ok(Ok(Vec::new()));
            }
            meter.call("iam:ListGroupsForUser", d);
            answer(
                r.reader.groups_for_user(&id.name).await,
                account,
                "iam:ListGroupsForUser",
            )
        };
        let (info, names, attached, versions, groups) = tokio::join!(
            r.reader.identity(id.kind, &id.name),
            r.reader.inline_policy_names(id.kind, &id.name),
            r.reader.attached_policies(id.kind, &id.name),
            attached_versions,
            groups,
        );
        let (info, names, attached, versions, groups) = (
            answer(info, account, get_op)?,
            answer(names, account, list_op)?,
            answer(attached, account, attached_op)?,
            versions?,
            groups?,
        );
        let arn_hint = refs::iam_arn(id.partition, account, kind_name, &id.name);
        let mut out = Vec::new();
        let info = match info {
            Ok(Some(info)) => info,
            Ok(None) => {
                // Deleted (or never existed): a value. IAM data without it says so.
                out.push(Fragment::Iam {
                    account: account.to_owned(),
                    iam: Iam::default(),
                });
                return Ok(out);
            }
            Err(e) => {
                out.push(gap(account, get_op, Some(&arn_hint), &e));
                return Ok(out);
            }
        };
        let (names, attached, groups) = match (names, attached, groups) {
            (Ok(n), Ok(a), Ok(g)) => (n, a, g),
            (n, a, g) => {
                for (op, e) in [
                    (list_op, n.err()),
                    (attached_op, a.err()),
                    ("iam:ListGroupsForUser", g.err()),
                ] {
                    if let Some(e) = e {
                        out.push(gap(account, op, Some(&info.arn), &e));
                    }
                }
                return Ok(out);
            }
        };
        // Depth 3: documents, and the groups' own lists.
        let d3 = d + 1;
        let inline_op = match id.kind {
            IdentityKind::Role => "iam:GetRolePolicy",
            _ => "iam:GetUserPolicy",
        };
        let inline = join_all(names.iter().map(|p| {
            let op = inline_op;
            meter.call(op, d3);
            async move {
                (
                    p.clone(),
                    answer(
                        r.reader.inline_policy(id.kind, &id.name, p).await,
                        account,
                        op,
                    ),
                )
            }
        }));
        let mut managed_arns: Vec<String> = attached.clone();
        if let Some(b) = &info.permissions_boundary {
            if !managed_arns.contains(b) {
                managed_arns.push(b.clone());
            }
        }
        let group_reads = join_all(groups.iter().map(|g| {
            meter.call("iam:ListGroupPolicies", d3);
            meter.call("iam:ListAttachedGroupPolicies", d3);
            async move {
                let (n, a) = tokio::join!(
                    r.reader.inline_policy_names(IdentityKind::Group, g),
                    r.reader.attached_policies(IdentityKind::Group, g),
                );
                (
                    g.clone(),
                    answer(n, account, "iam:ListGroupPolicies"),
                    answer(a, account, "iam:ListAttachedGroupPolicies"),
                )
            }
        }));
        // The managed documents the role or user names itself start now, beside the inline
        // documents: they need only the lists of depth 2 (joining them after the inline reads
        // made them a round trip deeper than the meter said).
        let direct_arns = managed_arns.clone();
        let direct_policies = join_all(direct_arns.iter().map(|arn| {
            let known = versions.get(arn).cloned();
            async move {
                self.managed_policy(r.reader, account, arn, known, d, meter)
                    .await
            }
        }));
        let (inline, group_lists, direct_policies) =
            tokio::join!(inline, group_reads, direct_policies);
        let mut inline_docs = Vec::new();
        for (name, got) in inline {
            let got = got?.and_then(|doc| {
                NamedPolicy::inline(kind_name, &id.name, &name, decode(&doc)).map_err(invalid)
            });
            match got {
                Ok(doc) => inline_docs.push(doc),
                Err(e) => {
                    out.push(gap(account, inline_op, Some(&info.arn), &e));
                    return Ok(out);
                }
            }
        }
        // Depth 4 for users' groups only: their documents.
        let mut group_docs = Vec::new();
        let mut group_fetches = Vec::new();
        for (g, n, a) in group_lists {
            match (n?, a?) {
                (Ok(n), Ok(a)) => {
                    for arn in &a {
                        if !managed_arns.contains(arn) {
                            managed_arns.push(arn.clone());
                        }
                    }
                    group_fetches.push((g, n, a));
                }
                (n, a) => {
                    for e in [n.err(), a.err()].into_iter().flatten() {
                        out.push(gap(account, "iam:ListGroupPolicies", Some(&info.arn), &e));
                    }
                    return Ok(out);
                }
            }
        }
        let group_inline = join_all(group_fetches.iter().map(|(g, names, _)| {
            for _ in names {
                meter.call("iam:GetGroupPolicy", d3 + 1);
            }
            async move {
                let docs = join_all(names.iter().map(|p| async move {
                    (
                        p.clone(),
                        answer(
                            r.reader.inline_policy(IdentityKind::Group, g, p).await,
                            account,
                            "iam:GetGroupPolicy",
                        ),
                    )
                }))
                .await;
                (g.clone(), docs)
            }
        }));
        // Policies attached only to the user's groups: known once the groups' lists are in.
        let group_arns: Vec<String> = managed_arns
            .iter()
            .filter(|a| !direct_arns.contains(a))
            .cloned()
            .collect();
        let group_policies = join_all(group_arns.iter().map(|arn| {
            let known = versions.get(arn).cloned();
            async move {
                self.managed_policy(r.reader, account, arn, known, d3, meter)
                    .await
            }
        }));
        let (group_inline, group_policies) = tokio::join!(group_inline, group_policies);
        for (g, docs) in group_inline {
            let mut list = Vec::new();
            for (name, got) in docs {
                let got = got?.and_then(|doc| {
                    NamedPolicy::inline("group", &g, &name, decode(&doc)).map_err(invalid)
                });
                match got {
                    Ok(doc) => list.push(doc),
                    Err(e) => {
                        out.push(gap(account, "iam:GetGroupPolicy", Some(&info.arn), &e));
                        return Ok(out);
                    }
                }
            }
            let attached = group_fetches
                .iter()
                .find(|(n, _, _)| *n == g)
                .map(|(_, _, a)| a.clone())
                .unwrap_or_default();
            group_docs.push(Group {
                path: "/".to_owned(),
                name: g,
                id: None,
                arn: None,
                inline_policies: list,
                attached_policies: attached,
            });
        }
        let mut policy_docs = BTreeMap::new();
        let mut complete = true;
        let arns = direct_arns.iter().chain(&group_arns);
        for (arn, got) in arns.zip(direct_policies.into_iter().chain(group_policies)) {
            match got? {
                Ok(p) => {
                    policy_docs.insert(p.arn.clone(), p);
                }
                // The role stays, naming a policy the snapshot lacks: the diagnosis reports
                // that policy as not evaluated.
                Err(e) => {
                    complete = false;
                    out.push(gap(account, "iam:GetPolicyVersion", Some(arn), &e));
                }
            }
        }
        let tags: BTreeMap<String, String> = info.tags.iter().cloned().collect();
        let mut iam = Iam {
            managed_policies: policy_docs,
            ..Iam::default()
        };
        match id.kind {
            IdentityKind::Role => {
                let trust_policy = match info
                    .trust_policy
                    .as_deref()
                    .map(|t| NamedPolicy::trust_policy(&id.name, decode(t)))
                    .transpose()
                {
                    Ok(t) => t,
                    // Not needed for the S3 and KMS hops: note it, keep the role.
                    Err(e) => {
                        out.push(gap(account, get_op, Some(&info.arn), &invalid(e)));
                        None
                    }
                };
                iam.roles.push(Role {
                    path: info.path,
                    name: id.name.clone(),
                    id: info.id,
                    arn: info.arn,
                    inline_policies: inline_docs,
                    attached_policies: attached,
                    permissions_boundary: info.permissions_boundary,
                    tags,
                    trust_policy,
                });
            }
            _ => {
                iam.users.push(User {
                    path: info.path,
                    name: id.name.clone(),
                    id: info.id,
                    arn: info.arn,
                    inline_policies: inline_docs,
                    attached_policies: attached,
                    permissions_boundary: info.permissions_boundary,
                    tags,
                    groups,
                });
                iam.groups = group_docs;
            }
        }
        if complete && out.is_empty() {
            self.cache.put(cache_key, iam.clone());
        }
        out.push(Fragment::Iam {
            account: account.to_owned(),
            iam,
        });
        Ok(out)
    }

    /// One managed policy's default document: one `GetPolicyVersion` when `ListPolicies`
    /// gave the default version, `GetPolicy` first otherwise.
    async fn managed_policy(
        &self,
        reader: &A::Reader,
        account: &str,
        arn: &str,
        known: Option<(Option<String>, String)>,
        depth: u32,
        meter: &Meter,
    ) -> Result<Read<ManagedPolicy>, CollectError> {
        let (name, version, depth) = match known {
            Some((name, version)) => (name, version, depth + 1),
            None => {
                meter.call("iam:GetPolicy", depth + 1);
                match answer(reader.policy(arn).await, account, "iam:GetPolicy")? {
                    Ok(p) => (p.name, p.default_version, depth + 2),
                    Err(e) => return Ok(Err(e)),
                }
            }
        };
        let cache_key = keys::policy(arn, &version);
        let doc = match self.cached::<NamedPolicy>(&cache_key, meter) {
            Some(doc) => doc,
            None => {
                meter.call("iam:GetPolicyVersion", depth);
                match answer(
                    reader.policy_version(arn, &version).await,
                    account,
                    "iam:GetPolicyVersion",
                )? {
                    Ok(text) => match NamedPolicy::managed(arn, decode(&text)) {
                        Ok(doc) => {
                            // A version's document never changes.
                            self.cache.put(cache_key, doc.clone());
                            doc
                        }
                        Err(e) => return Ok(Err(invalid(e))),
                    },
                    Err(e) => return Ok(Err(e)),
                }
            }
        };
        Ok(Ok(ManagedPolicy {
            arn: arn.to_owned(),
            name,
            default_version_id: Some(version),
            document: Some(doc),
        }))
    }
}

/// A policy document as IAM returns it (URL-encoded, or plain JSON) as a JSON object; kept
/// as text when it is neither, for the snapshot parser to report.
pub fn decode(text: &str) -> Value {
    if let Ok(v @ Value::Object(_)) = serde_json::from_str::<Value>(text) {
        return v;
    }
    let decoded = percent_encoding::percent_decode_str(text).decode_utf8_lossy();
    match serde_json::from_str::<Value>(&decoded) {
        Ok(v @ Value::Object(_)) => v,
        _ => Value::String(text.to_owned()),
    }
}

/// `DescribeKey`'s metadata as the snapshot model holds it; a key manager this version does
/// not know is a value the model cannot hold.
fn key_metadata(k: &KeyInfo) -> Result<KeyMetadata, ReadError> {
    let (region, account) =
        key_arn_parts(&k.arn).ok_or_else(|| invalid(format!("`{}` is not a key ARN", k.arn)))?;
    let key_manager = KeyManager::from_aws(&k.key_manager)
        .ok_or_else(|| invalid(format!("key manager `{}`", k.key_manager)))?;
    Ok(KeyMetadata {
        key_id: k.key_id.clone(),
        arn: k.arn.clone(),
        key_manager,
        key_state: KeyState::parse(&k.key_state),
        multi_region: k.multi_region,
        region: region.to_owned(),
        account: account.to_owned(),
    })
}

fn add_alias(key: &mut Key, alias: &str) {
    if alias.starts_with("alias/") && !key.aliases.iter().any(|a| a == alias) {
        key.aliases.push(alias.to_owned());
    }
}

/// The key the bucket's default encryption names (`alias/aws/s3` for SSE-KMS without one).
fn default_key(bucket: &Bucket) -> Option<String> {
    let rule = bucket.encryption.as_ref()?;
    if !rule.algorithm.starts_with("aws:kms") {
        return None;
    }
    Some(
        rule.kms_key_id
            .clone()
            .unwrap_or_else(|| "alias/aws/s3".to_owned()),
    )
}

/// The snapshot from the fragments the chains returned.
fn assemble(description: String, fragments: Vec<Fragment>) -> Snapshot {
    let mut snapshot = Snapshot {
        description: Some(description),
        ..Snapshot::default()
    };
    for f in fragments {
        match f {
            Fragment::Org { account, org } => {
                snapshot.accounts.entry(account).or_default().organization = Some(org);
            }
            Fragment::Iam { account, iam } => {
                snapshot.accounts.entry(account).or_default().iam = Some(iam);
            }
            Fragment::Bucket {
                account,
                name,
                bucket,
            } => {
                snapshot
                    .accounts
                    .entry(account)
                    .or_default()
                    .s3
                    .insert(name, *bucket);
            }
            Fragment::Key { account, arn, key } => {
                let kms = &mut snapshot.accounts.entry(account).or_default().kms;
                match kms.get_mut(&arn) {
                    // The same key read twice (fully, and as a default named by alias):
                    // keep the fuller entry and every alias.
                    Some(existing) => merge_key(existing, *key),
                    None => {
                        kms.insert(arn, *key);
                    }
                }
            }
            Fragment::VpcEndpoint { account, endpoint } => {
                let list = snapshot
                    .accounts
                    .entry(account)
                    .or_default()
                    .vpc_endpoints
                    .get_or_insert_with(Vec::new);
                if let Some(e) = endpoint {
                    if !list.iter().any(|x| x.id == e.id) {
                        list.push(*e);
                    }
                }
            }
            Fragment::AccessPoint {
                account,
                name,
                access_point,
            } => {
                snapshot
                    .accounts
                    .entry(account)
                    .or_default()
                    .access_points
                    .insert(name, *access_point);
            }
            Fragment::Canonical { account, id } => {
                snapshot.accounts.entry(account).or_default().canonical_id = Some(id);
            }
            Fragment::Gap(e) => {
                if !snapshot.collection_errors.contains(&e) {
                    snapshot.collection_errors.push(e);
                }
            }
        }
    }
    snapshot
}

fn merge_key(existing: &mut Key, other: Key) {
    let other_aliases = other.aliases.clone();
    if existing.policy.is_none() && other.policy.is_some() {
        *existing = other;
    }
    for a in other_aliases {
        add_alias(existing, &a);
    }
}

mod account;
mod acl;
mod org;
pub use org::OrgScopeRead;
#[cfg(test)]
mod tests;
