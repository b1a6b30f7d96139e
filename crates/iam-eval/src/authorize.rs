//! The evaluation: which statements apply, and how AWS combines the policy layers.
//!
//! Order and rules follow the IAM evaluation logic
//! (<https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html>),
//! its cross-account variant (`..._evaluation-logic-cross-account.html`), and the KMS key
//! policy rules (<https://docs.aws.amazon.com/kms/latest/developerguide/key-policies.html>):
//! "Unless the key policy explicitly allows it, you cannot use IAM policies to allow access to
//! a KMS key", while an IAM policy can always deny. Unlike AWS, which stops at the first wall,
//! the evaluation reports every layer that blocks, so that fixing one never hides the next.

use serde::Serialize;

use crate::grant::{Grant, GrantCheck};
use crate::policy::{Effect, Policy, ResourceEntry, Statement};
use crate::principal::{not_principal_exempts, CallerKind, MatchKind, PolicyPrincipal};
use crate::request::Request;

/// A policy with the name it is reported under.
#[derive(Debug, Clone, Copy)]
pub struct Named<'a> {
    /// Display name (`identity[0]`, `inline policy ReadReports of role reader`, an ARN).
    pub name: &'a str,
    /// The document.
    pub policy: &'a Policy,
}

/// Every policy that applies to a request. Missing layers are empty: no `scp` means the
/// principal's account is not under SCPs.
#[derive(Debug, Clone, Default)]
pub struct PolicySet<'a> {
    /// Identity-based policies of the principal (user, its groups, or role).
    pub identity: Vec<Named<'a>>,
    /// The resource-based policy (bucket policy, key policy, trust policy).
    pub resource: Option<Named<'a>>,
    /// The permissions boundary of the user or role.
    pub permissions_boundary: Option<Named<'a>>,
    /// The session policy passed when the session was created.
    pub session: Option<Named<'a>>,
    /// SCPs of the principal's account, one list per level from the root to the account.
    pub scp: Vec<Vec<Named<'a>>>,
    /// The policy of the VPC endpoint the request travelled through; `None` when it did not
    /// come through an endpoint (or the endpoint has no policy, which allows everything).
    pub vpc_endpoint: Option<Named<'a>>,
    /// RCPs of the resource's account, one list per level from the root to the account.
    pub rcp: Vec<Vec<Named<'a>>>,
    /// KMS grants on the key.
    pub grants: Vec<&'a Grant>,
}

/// The decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Decision {
    /// Every required layer allows and nothing denies.
    Allowed,
    /// No explicit deny, but some required allow is missing.
    ImplicitlyDenied,
    /// An applicable `Deny` statement.
    ExplicitlyDenied,
}

/// A policy layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    /// Resource control policies (resource owner's organization).
    Rcp,
    /// Service control policies (principal's organization).
    Scp,
    /// The policy of the VPC endpoint the request came through (the VPC owner's account).
    VpcEndpoint,
    /// The resource-based policy (and, for KMS, grants).
    Resource,
    /// Identity-based policies.
    Identity,
    /// The permissions boundary.
    PermissionsBoundary,
    /// The session policy.
    Session,
}

impl Layer {
    /// The name used in output (`permissions_boundary`).
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Rcp => "rcp",
            Layer::Scp => "scp",
            Layer::VpcEndpoint => "vpc_endpoint",
            Layer::Resource => "resource",
            Layer::Identity => "identity",
            Layer::PermissionsBoundary => "permissions_boundary",
            Layer::Session => "session",
        }
    }
}

/// A set of layers, built without allocating; turned into the public sorted `Vec` once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct LayerSet(u8);

impl LayerSet {
    /// Every layer, in `Layer`'s order (AWS's evaluation order).
    const ALL: [Layer; 7] = [
        Layer::Rcp,
        Layer::Scp,
        Layer::VpcEndpoint,
        Layer::Resource,
        Layer::Identity,
        Layer::PermissionsBoundary,
        Layer::Session,
    ];

    fn bit(layer: Layer) -> u8 {
        1 << (layer as u8)
    }

    fn insert(&mut self, layer: Layer) {
        self.0 |= LayerSet::bit(layer);
    }

    fn is_empty(self) -> bool {
        self.0 == 0
    }

    fn union(self, other: LayerSet) -> LayerSet {
        LayerSet(self.0 | other.0)
    }

    /// The layers, sorted and without duplicates (empty without allocating).
    fn to_vec(self) -> Vec<Layer> {
        if self.is_empty() {
            return Vec::new();
        }
        LayerSet::ALL
            .into_iter()
            .filter(|l| self.0 & LayerSet::bit(*l) != 0)
            .collect()
    }
}

/// A statement (or grant) that decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatementRef<'a> {
    /// Its layer.
    pub layer: Layer,
    /// The policy's name (or `grant <id>`).
    pub policy: &'a str,
    /// Index of the statement in the policy (of the grant in the list).
    pub index: usize,
    /// `Sid` (grant name for grants).
    pub sid: Option<&'a str>,
    /// Effect.
    pub effect: Effect,
}

/// Why a statement whose action matched did not apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Miss<'a> {
    /// The resource did not match.
    Resource,
    /// The statement names a KMS key by alias ARN, which never matches the key itself.
    AliasArn,
    /// The principal did not match.
    Principal,
    /// A condition did not hold.
    Condition {
        /// Operator as written.
        operator: &'a str,
        /// Key as written.
        key: &'a str,
        /// Whether the key was absent from the request context.
        key_absent: bool,
    },
}

/// A statement whose action matched but which did not apply, with the first reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NearMiss<'a> {
    /// The statement.
    #[serde(flatten)]
    pub statement: StatementRef<'a>,
    /// Why it did not apply.
    pub miss: Miss<'a>,
}

/// Something the caller should know about the answer: an undocumented rule it depends on, or
/// a policy element that can never match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "code", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Note {
    /// A policy names a unique id left by a deleted principal; it matches nothing.
    OrphanedPrincipalId {
        /// The policy.
        policy: String,
        /// Statement index.
        index: usize,
        /// The id.
        id: String,
    },
    /// A `NotPrincipal` deny lists some but not all identities of the caller's chain; AWS
    /// documents that it "might" then deny.
    NotPrincipalIncomplete {
        /// The policy.
        policy: String,
        /// Statement index.
        index: usize,
    },
    /// The resource account was not given and could not be read from the ARN; the request was
    /// evaluated as same-account.
    ResourceAccountAssumed,
    /// Access rests on a same-account `Principal: "*"` grant overriding a boundary or session
    /// policy, which AWS documents only for the `aws:PrincipalArn` form.
    EveryoneGrantSkipsCeiling,
}

/// A rule of the service itself, outside every policy, that blocks the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "code", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServiceRule {
    /// KMS accepts only the cryptographic operations and a few read and grant operations on a
    /// key from another account; any other operation (`PutKeyPolicy`, `ScheduleKeyDeletion`,
    /// `DisableKey`, `TagResource`, ...) is denied whatever the key policy and IAM policies
    /// say. Reported with the resource layer.
    KmsOperationNotCrossAccount {
        /// The action as requested.
        action: String,
    },
}

/// Something in a policy that does not do what it looks like it does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "code", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Warning {
    /// A `Resource` / `NotResource` entry has `${...}` before the fifth colon, where AWS does
    /// not substitute variables: the entry is literal text and matches no real resource.
    VariableOutsideResourcePart {
        /// The policy.
        policy: String,
        /// Statement index.
        index: usize,
        /// The entry as written.
        entry: String,
    },
}

/// Whether KMS allows the operation (lowercase, like [`Request::action_name`]) on a key from
/// another account
/// (<https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html>):
/// the cryptographic operations plus `CreateGrant`, `DescribeKey`, `GetKeyRotationStatus`,
/// `GetPublicKey`, `ListGrants`, `RetireGrant` and `RevokeGrant`. A `match` rather than a
/// list search: it runs on every cross-account KMS request.
fn kms_allows_cross_account(operation: &str) -> bool {
    matches!(
        operation,
        "creategrant"
            | "decrypt"
            | "derivesharedsecret"
            | "describekey"
            | "encrypt"
            | "generatedatakey"
            | "generatedatakeypair"
            | "generatedatakeypairwithoutplaintext"
            | "generatedatakeywithoutplaintext"
            | "generatemac"
            | "getkeyrotationstatus"
            | "getpublickey"
            | "listgrants"
            | "reencryptfrom"
            | "reencryptto"
            | "retiregrant"
            | "revokegrant"
            | "sign"
            | "verify"
            | "verifymac"
    )
}

/// The answer: decision, every blocking layer, the deciding statements, and what was unknown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evaluation<'a> {
    /// The decision.
    pub decision: Decision,
    /// Every layer that blocks (explicitly or implicitly), in AWS's evaluation order.
    pub denied_by: Vec<Layer>,
    /// Layers that block with an explicit deny (a subset of `denied_by`).
    pub explicit_denies: Vec<Layer>,
    /// Layers that block because a required allow is missing (a subset of `denied_by`; a
    /// layer can be in both lists: removing its deny alone would not be enough).
    pub missing_allows: Vec<Layer>,
    /// The statements that decided: matching denies for an explicit deny, otherwise the
    /// allows that matched.
    pub statements: Vec<StatementRef<'a>>,
    /// Statements whose action matched but that did not apply.
    pub near_misses: Vec<NearMiss<'a>>,
    /// Condition keys that statements consulted but the request did not supply.
    pub unknown_context_keys: Vec<String>,
    /// How access was granted, when it was.
    pub granted_by: Option<GrantPath>,
    /// Caveats.
    pub notes: Vec<Note>,
    /// Rules of the service, outside the policies, that block the request (each also puts its
    /// layer in `denied_by`). Omitted from JSON when empty, so that output without them keeps
    /// the shape documented in docs/explain-format.md.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub service_rules: Vec<ServiceRule>,
    /// Policy elements that cannot do what they look like they do (omitted from JSON when
    /// empty, like `service_rules`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Warning>,
}

/// Which rule granted access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantPath {
    /// A same-account resource policy naming the session, user or everyone.
    ResourcePolicyDirect,
    /// A same-account resource policy naming the role (boundary and session still apply).
    ResourcePolicyRole,
    /// Identity policies (with a resource policy or key policy where required).
    IdentityPolicy,
    /// A KMS grant.
    Grant,
    /// The root user of the resource account.
    RootUser,
    /// A resource policy (bucket or key policy) naming the caller's account, for the account's
    /// root user, which needs no identity-based policy: the key account's root user through
    /// the key policy's account statement, or another account's root user named by account.
    ResourcePolicyAccount,
}

/// What one policy contributes.
#[derive(Debug, Default)]
struct PolicyResult {
    /// Strongest principal match among applicable Allow statements (`None` if no allow).
    allow: Option<MatchKind>,
    /// Whether some applicable Allow names the caller's account.
    allow_account: bool,
    deny: bool,
}

struct Evaluator<'r, 'a> {
    req: &'r Request,
    has_boundary: bool,
    statements: Vec<StatementRef<'a>>,
    denies: Vec<StatementRef<'a>>,
    near_misses: Vec<NearMiss<'a>>,
    unknown: Vec<String>,
    notes: Vec<Note>,
    warnings: Vec<Warning>,
}

impl<'r, 'a> Evaluator<'r, 'a> {
    fn policy(&mut self, layer: Layer, named: &Named<'a>) -> PolicyResult {
        let mut out = PolicyResult::default();
        for st in &named.policy.statements {
            let Some(kind) = self.statement(layer, named, st) else {
                continue;
            };
            let sref = StatementRef {
                layer,
                policy: named.name,
                index: st.index,
                sid: st.sid.as_deref(),
                effect: st.effect,
            };
            match st.effect {
                Effect::Deny => {
                    out.deny = true;
                    push_small(&mut self.denies, sref);
                }
                Effect::Allow => {
                    out.allow = out.allow.max(Some(kind));
                    out.allow_account |= kind == MatchKind::Account;
                    push_small(&mut self.statements, sref);
                }
            }
        }
        out
    }

    /// Whether the statement applies, and with which principal match (identity-style
    /// statements, which name no principal, count as `Direct`).
    fn statement(
        &mut self,
        layer: Layer,
        named: &Named<'a>,
        st: &'a Statement,
    ) -> Option<MatchKind> {
        let req = self.req;
        let action_hit = st
            .action
            .entries
            .iter()
            .any(|a| a.is_match_lower(req.service(), req.action_name()));
        if action_hit == st.action.not {
            return None;
        }
        for entry in &st.misplaced_variables {
            let w = Warning::VariableOutsideResourcePart {
                policy: named.name.to_owned(),
                index: st.index,
                entry: entry.clone(),
            };
            if !self.warnings.contains(&w) {
                self.warnings.push(w);
            }
        }
        let miss = |miss: Miss<'a>| NearMiss {
            statement: StatementRef {
                layer,
                policy: named.name,
                index: st.index,
                sid: st.sid.as_deref(),
                effect: st.effect,
            },
            miss,
        };
        if let Some(spec) = &st.resource {
            let mut unknown = Vec::new();
            let hit = spec.entries.iter().any(|e| match e {
                ResourceEntry::Any => true,
                ResourceEntry::Arn(p) => req.resource_matches(p),
                ResourceEntry::Template(t) => t
                    .resolve_glob(&req.context, &mut unknown)
                    .and_then(crate::arn::ArnPattern::from_elems_resource)
                    .is_some_and(|p| p.is_match(&req.resource)),
                ResourceEntry::Unmatchable(_) => false,
            });
            if !unknown.is_empty() {
                self.unknown.append(&mut unknown);
            }
            if hit == spec.not {
                let alias = !spec.not
                    && req.is_kms_key()
                    && spec
                        .entries
                        .iter()
                        .any(|e| matches!(e, ResourceEntry::Arn(p) if p.is_kms_alias()));
                push_small(
                    &mut self.near_misses,
                    miss(if alias {
                        Miss::AliasArn
                    } else {
                        Miss::Resource
                    }),
                );
                return None;
            }
        }
        let kind = match &st.principal {
            None => MatchKind::Direct,
            Some(spec) => {
                for p in &spec.entries {
                    if let PolicyPrincipal::Orphaned(id) = p {
                        let note = Note::OrphanedPrincipalId {
                            policy: named.name.to_owned(),
                            index: st.index,
                            id: id.clone(),
                        };
                        if !self.notes.contains(&note) {
                            self.notes.push(note);
                        }
                    }
                }
                if spec.not {
                    let (exempt, partial) = not_principal_exempts(&spec.entries, &req.caller);
                    // A NotPrincipal deny always applies to a principal with a boundary.
                    let applies = !exempt || (st.effect == Effect::Deny && self.has_boundary);
                    if !applies {
                        push_small(&mut self.near_misses, miss(Miss::Principal));
                        return None;
                    }
                    if partial && st.effect == Effect::Deny {
                        self.notes.push(Note::NotPrincipalIncomplete {
                            policy: named.name.to_owned(),
                            index: st.index,
                        });
                    }
                    MatchKind::Direct
                } else {
                    match spec
                        .entries
                        .iter()
                        .filter_map(|p| p.matches(&req.caller))
                        .max()
                    {
                        Some(k) => k,
                        None => {
                            push_small(&mut self.near_misses, miss(Miss::Principal));
                            return None;
                        }
                    }
                }
            }
        };
        // Every condition is evaluated (no short circuit) so that all unknown keys are seen.
        let mut first_failure = None;
        for c in &st.conditions {
            let out = c.evaluate(&req.context, &mut self.unknown);
            if !out.holds && first_failure.is_none() {
                first_failure = Some(Miss::Condition {
                    operator: &c.operator_text,
                    key: &c.key,
                    key_absent: out.key_absent,
                });
            }
        }
        match first_failure {
            Some(m) => {
                push_small(&mut self.near_misses, miss(m));
                None
            }
            None => Some(kind),
        }
    }

    /// A multi-level organization policy: (any deny, some level without an allow).
    fn levels(&mut self, layer: Layer, levels: &[Vec<Named<'a>>]) -> (bool, bool) {
        let mut deny = false;
        let mut missing = false;
        for level in levels {
            let mut level_allows = false;
            for named in level {
                let r = self.policy(layer, named);
                deny |= r.deny;
                level_allows |= r.allow.is_some();
            }
            missing |= !level_allows;
        }
        (deny, missing)
    }
}

/// Pushes onto a list that usually stays short: the first push allocates room for four
/// directly (cheaper than the general growth path), and nothing is allocated for a list that
/// stays empty.
fn push_small<T>(v: &mut Vec<T>, x: T) {
    if v.capacity() == 0 {
        *v = Vec::with_capacity(4);
    }
    v.push(x);
}

/// Evaluates `req` against `policies`.
pub fn authorize<'a>(req: &Request, policies: &PolicySet<'a>) -> Evaluation<'a> {
    let caller = &req.caller;
    let mut ev = Evaluator {
        req,
        has_boundary: policies.permissions_boundary.is_some(),
        statements: Vec::new(),
        denies: Vec::new(),
        near_misses: Vec::new(),
        unknown: Vec::new(),
        notes: Vec::new(),
        warnings: Vec::new(),
    };

    // Organization policies do not apply to service-linked roles, nor SCPs to service
    // principals or anonymous callers (they belong to no member account).
    let (rcp_deny, rcp_missing) = if caller.service_linked {
        (false, false)
    } else {
        ev.levels(Layer::Rcp, &policies.rcp)
    };
    let (scp_deny, scp_missing) = if caller.service_linked || !caller.has_identity() {
        (false, false)
    } else {
        ev.levels(Layer::Scp, &policies.scp)
    };
    // The endpoint policy filters every request that travels through the endpoint, whoever
    // makes it (service-linked roles and the root user included): it must allow the
    // principal, action and resource, and a Deny in it denies
    // (<https://docs.aws.amazon.com/vpc/latest/privatelink/vpc-endpoints-access.html>).
    let vpce = policies
        .vpc_endpoint
        .map(|n| ev.policy(Layer::VpcEndpoint, &n));
    let resource = policies
        .resource
        .map(|n| ev.policy(Layer::Resource, &n))
        .unwrap_or_default();
    let mut identity = PolicyResult::default();
    if caller.has_identity() {
        for named in &policies.identity {
            let r = ev.policy(Layer::Identity, named);
            identity.deny |= r.deny;
            identity.allow = identity.allow.max(r.allow);
        }
    }
    let boundary = policies
        .permissions_boundary
        .map(|n| ev.policy(Layer::PermissionsBoundary, &n));
    let session = policies.session.map(|n| ev.policy(Layer::Session, &n));

    let is_kms = req.is_kms_key();
    let grant_allows = is_kms && {
        let op = req.action_name_as_given();
        let mut any = false;
        for (i, g) in policies.grants.iter().enumerate() {
            if g.check(caller, op, &req.context) == GrantCheck::Allows {
                any = true;
                ev.statements.push(StatementRef {
                    layer: Layer::Resource,
                    policy: g.grant_id.as_deref().unwrap_or("grant"),
                    index: i,
                    sid: g.name.as_deref(),
                    effect: Effect::Allow,
                });
            }
        }
        any
    };

    let same_account = match (&req.resource_account, &caller.account) {
        (Some(r), Some(c)) => r == c,
        (None, Some(_)) => {
            ev.notes.push(Note::ResourceAccountAssumed);
            true
        }
        _ => false,
    };
    // The root user needs no identity policy in its own account; services and anonymous
    // callers have no identity policies at all.
    let identity_allows = match caller.kind {
        CallerKind::Root => true,
        CallerKind::Service | CallerKind::Anonymous => false,
        _ => identity.allow.is_some(),
    };
    let boundary_ok = boundary.as_ref().is_none_or(|b| b.allow.is_some());
    // A federated user without a session policy has no identity-sourced permissions.
    let session_ok = match &session {
        Some(s) => s.allow.is_some(),
        None => caller.kind != CallerKind::FederatedUser,
    };
    // The resource policy's strongest grant to this caller; the KMS "enable IAM" statement
    // is an Allow that names the caller's account.
    let rbp = resource.allow;
    let key_enables_iam = resource.allow_account;

    let mut blocks = LayerSet::default();
    let mut service_rules: Vec<ServiceRule> = Vec::new();
    // Ceilings on identity-sourced permissions: boundary and session policy.
    let ceilings = |blocks: &mut LayerSet| {
        if !boundary_ok {
            blocks.insert(Layer::PermissionsBoundary);
        }
        if !session_ok {
            blocks.insert(Layer::Session);
        }
    };
    if rcp_missing {
        blocks.insert(Layer::Rcp);
    }
    if scp_missing {
        blocks.insert(Layer::Scp);
    }
    if vpce.as_ref().is_some_and(|v| v.allow.is_none()) {
        blocks.insert(Layer::VpcEndpoint);
    }

    // The decision table. Each arm: (KMS key?, same account?, caller kind, resource-policy
    // grant kind) → what else must hold.
    let granted_by = match (is_kms, same_account) {
        // S3 and other services, same account, root user: implicit full access; only explicit
        // denies, SCPs and RCPs apply.
        (false, true) if caller.kind == CallerKind::Root => Some(GrantPath::RootUser),
        // Same account, resource policy names the session, user or everyone: the grant stands
        // on its own; implicit denies in identity, boundary and session policy are ignored.
        (false, true) if rbp.is_some_and(MatchKind::is_direct) => {
            if rbp == Some(MatchKind::Everyone) && (!boundary_ok || !session_ok) {
                ev.notes.push(Note::EveryoneGrantSkipsCeiling);
            }
            Some(GrantPath::ResourcePolicyDirect)
        }
        // Same account, resource policy names the role: it stands in for the identity policy,
        // but the boundary and the session policy still cap it.
        (false, true) if rbp == Some(MatchKind::Role) => {
            ceilings(&mut blocks);
            Some(GrantPath::ResourcePolicyRole)
        }
        // Same account otherwise (no grant, or the account named = delegation): an identity
        // policy must allow, within boundary and session policy. Every missing piece is
        // reported, so that fixing the identity policy alone does not meet a boundary next.
        (false, true) => {
            if !identity_allows {
                blocks.insert(Layer::Identity);
            }
            ceilings(&mut blocks);
            identity_allows.then_some(GrantPath::IdentityPolicy)
        }
        // Cross account: the resource policy must name the caller (account, role, session,
        // user or everyone) AND an identity policy in the caller's account must allow.
        (false, false) => {
            if rbp.is_none() {
                blocks.insert(Layer::Resource);
            }
            if caller.kind == CallerKind::Root {
                // The root user needs no identity policy in its own account: the resource
                // policy naming it (by account or as everyone) is the whole grant.
                Some(if rbp.is_some_and(MatchKind::is_direct) {
                    GrantPath::ResourcePolicyDirect
                } else {
                    GrantPath::ResourcePolicyAccount
                })
            } else if caller.has_identity() {
                if !identity_allows {
                    blocks.insert(Layer::Identity);
                }
                ceilings(&mut blocks);
                Some(GrantPath::IdentityPolicy)
            } else {
                // Services and anonymous callers have no identity policies: the resource
                // policy alone decides.
                Some(GrantPath::ResourcePolicyDirect)
            }
        }
        // KMS, same account: a grant suffices on its own.
        (true, true) if grant_allows => Some(GrantPath::Grant),
        // KMS, same account, key policy names the session or user: like any resource policy.
        (true, true) if rbp.is_some_and(MatchKind::is_direct) => {
            if rbp == Some(MatchKind::Everyone) && (!boundary_ok || !session_ok) {
                ev.notes.push(Note::EveryoneGrantSkipsCeiling);
            }
            Some(GrantPath::ResourcePolicyDirect)
        }
        // KMS, same account, key policy names the role: boundary and session still apply.
        (true, true) if rbp == Some(MatchKind::Role) => {
            ceilings(&mut blocks);
            Some(GrantPath::ResourcePolicyRole)
        }
        // KMS, same account, root user: the key policy's account statement is the whole grant
        // (the root user has no identity policies).
        (true, true) if key_enables_iam && caller.kind == CallerKind::Root => {
            Some(GrantPath::ResourcePolicyAccount)
        }
        // KMS, same account, the key policy enables IAM for the account: IAM must allow.
        (true, true) if key_enables_iam => {
            if !identity_allows {
                blocks.insert(Layer::Identity);
            }
            ceilings(&mut blocks);
            identity_allows.then_some(GrantPath::IdentityPolicy)
        }
        // KMS, same account, nothing in the key policy for this caller: an IAM allow has no
        // effect without it.
        (true, true) => {
            blocks.insert(Layer::Resource);
            None
        }
        // KMS, cross account: the key side (key policy naming the caller or its account, or a
        // grant) and the caller side (an IAM allow on the key ARN, or a grant) must both hold.
        (true, false) => {
            if rbp.is_none() && !grant_allows {
                blocks.insert(Layer::Resource);
            }
            // KMS refuses other operations from another account whatever the policies say.
            // (A service principal or anonymous caller belongs to no account: not "another
            // account", so the rule is not applied to it.)
            if caller.account.is_some() && !kms_allows_cross_account(req.action_name()) {
                blocks.insert(Layer::Resource);
                service_rules.push(ServiceRule::KmsOperationNotCrossAccount {
                    action: req.action.clone(),
                });
            }
            if grant_allows {
                Some(GrantPath::Grant)
            } else if caller.kind == CallerKind::Root {
                Some(if rbp.is_some_and(MatchKind::is_direct) {
                    GrantPath::ResourcePolicyDirect
                } else {
                    GrantPath::ResourcePolicyAccount
                })
            } else if caller.has_identity() {
                if !identity_allows {
                    blocks.insert(Layer::Identity);
                }
                ceilings(&mut blocks);
                identity_allows.then_some(GrantPath::IdentityPolicy)
            } else {
                // Services and anonymous callers have no identity policies: the key policy
                // alone decides.
                Some(GrantPath::ResourcePolicyDirect)
            }
        }
    };

    let mut explicit = LayerSet::default();
    for (deny, layer) in [
        (rcp_deny, Layer::Rcp),
        (scp_deny, Layer::Scp),
        (vpce.as_ref().is_some_and(|v| v.deny), Layer::VpcEndpoint),
        (resource.deny, Layer::Resource),
        (identity.deny, Layer::Identity),
        (
            boundary.as_ref().is_some_and(|b| b.deny),
            Layer::PermissionsBoundary,
        ),
        (session.as_ref().is_some_and(|s| s.deny), Layer::Session),
    ] {
        if deny {
            explicit.insert(layer);
        }
    }
    let denied_by = explicit.union(blocks);

    let decision = if !explicit.is_empty() {
        Decision::ExplicitlyDenied
    } else if !denied_by.is_empty() {
        Decision::ImplicitlyDenied
    } else {
        Decision::Allowed
    };
    let statements = if decision == Decision::ExplicitlyDenied {
        std::mem::take(&mut ev.denies)
    } else {
        ev.statements
    };
    let mut unknown = ev.unknown;
    if unknown.len() > 1 {
        unknown.sort_by_key(|k| k.to_lowercase());
        unknown.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
    }
    Evaluation {
        decision,
        denied_by: denied_by.to_vec(),
        explicit_denies: explicit.to_vec(),
        missing_allows: blocks.to_vec(),
        statements,
        near_misses: ev.near_misses,
        unknown_context_keys: unknown,
        granted_by: if decision == Decision::Allowed {
            granted_by
        } else {
            None
        },
        notes: ev.notes,
        service_rules,
        warnings: ev.warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::kms_allows_cross_account;

    #[test]
    fn kms_cross_account_operations() {
        for op in [
            "decrypt",
            "generatedatakey",
            "reencryptto",
            "describekey",
            "creategrant",
        ] {
            assert!(kms_allows_cross_account(op), "{op}");
        }
        for op in [
            "putkeypolicy",
            "schedulekeydeletion",
            "disablekey",
            "tagresource",
            "Decrypt",
        ] {
            assert!(!kms_allows_cross_account(op), "{op}");
        }
    }
}
