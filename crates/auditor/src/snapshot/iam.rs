//! IAM as printed by `aws iam get-account-authorization-details`: roles, users, groups and
//! customer (and attached AWS) managed policies with their default version.

use std::collections::BTreeMap;

use iam_eval::PolicyKind;

use super::policy::{inline_limit, inline_name, parse_policy, trust_policy_name, NamedPolicy};
use crate::arn::Arn;
use crate::limits::PolicyLimit;
use crate::reader::{Node, PathError};

/// The IAM picture of one account.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Iam {
    /// `RoleDetailList`.
    pub roles: Vec<Role>,
    /// `UserDetailList`.
    pub users: Vec<User>,
    /// `GroupDetailList`.
    pub groups: Vec<Group>,
    /// `Policies`, by policy ARN.
    pub managed_policies: BTreeMap<String, ManagedPolicy>,
}

/// An IAM role.
#[derive(Debug, Clone, PartialEq)]
pub struct Role {
    /// `Path`, `/` when absent.
    pub path: String,
    /// `RoleName`.
    pub name: String,
    /// `RoleId` (`AROA…`), the id that `aws:userid` and orphaned policy principals show.
    pub id: Option<String>,
    /// `Arn`, with the path.
    pub arn: String,
    /// `RolePolicyList`.
    pub inline_policies: Vec<NamedPolicy>,
    /// `AttachedManagedPolicies[].PolicyArn`.
    pub attached_policies: Vec<String>,
    /// `PermissionsBoundary.PermissionsBoundaryArn`.
    pub permissions_boundary: Option<String>,
    /// `Tags`, the `aws:PrincipalTag/*` values of its sessions (before session tags).
    pub tags: BTreeMap<String, String>,
    /// `AssumeRolePolicyDocument`.
    pub trust_policy: Option<NamedPolicy>,
}

/// An IAM user.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    /// `Path`, `/` when absent.
    pub path: String,
    /// `UserName`.
    pub name: String,
    /// `UserId` (`AIDA…`).
    pub id: Option<String>,
    /// `Arn`, with the path.
    pub arn: String,
    /// `UserPolicyList`.
    pub inline_policies: Vec<NamedPolicy>,
    /// `AttachedManagedPolicies[].PolicyArn`.
    pub attached_policies: Vec<String>,
    /// `PermissionsBoundary.PermissionsBoundaryArn`.
    pub permissions_boundary: Option<String>,
    /// `Tags`.
    pub tags: BTreeMap<String, String>,
    /// `GroupList`: names of the groups the user belongs to.
    pub groups: Vec<String>,
}

/// An IAM group.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// `Path`, `/` when absent.
    pub path: String,
    /// `GroupName`.
    pub name: String,
    /// `GroupId`.
    pub id: Option<String>,
    /// `Arn`.
    pub arn: Option<String>,
    /// `GroupPolicyList`.
    pub inline_policies: Vec<NamedPolicy>,
    /// `AttachedManagedPolicies[].PolicyArn`.
    pub attached_policies: Vec<String>,
}

/// A managed policy and the document of its default version.
#[derive(Debug, Clone, PartialEq)]
pub struct ManagedPolicy {
    /// `Arn`.
    pub arn: String,
    /// `PolicyName`.
    pub name: Option<String>,
    /// `DefaultVersionId`, or the `VersionId` of the version marked default.
    pub default_version_id: Option<String>,
    /// The default version's document, named by the policy ARN; `None` when the snapshot
    /// lists the policy without versions.
    pub document: Option<NamedPolicy>,
}

/// Whether a principal is a role (session) or a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityKind {
    /// A role, for a role session or the role ARN itself.
    Role,
    /// An IAM user.
    User,
}

/// Everything IAM attaches to one principal, resolved to documents.
#[derive(Debug, Clone)]
pub struct PrincipalPolicies<'a> {
    /// Role or user.
    pub kind: IdentityKind,
    /// The role or user ARN with its path: the value of `aws:PrincipalArn`.
    pub arn: &'a str,
    /// The role or user unique id (`AROA…` / `AIDA…`) when the snapshot has it.
    pub unique_id: Option<&'a str>,
    /// Identity-based policies: inline, attached managed, and for users those of their groups.
    pub identity: Vec<&'a NamedPolicy>,
    /// The permissions boundary document, when set and present in the snapshot.
    pub boundary: Option<&'a NamedPolicy>,
    /// The permissions boundary ARN, set even when its document is missing: a boundary that
    /// exists but cannot be read must not be mistaken for no boundary.
    pub boundary_arn: Option<&'a str>,
    /// The principal's tags.
    pub tags: &'a BTreeMap<String, String>,
    /// Policies that apply but whose documents are not in the snapshot (managed policy ARNs,
    /// typically AWS managed ones, and `group <name>` for groups not listed).
    pub missing: Vec<String>,
}

impl Iam {
    pub(crate) fn parse(node: &Node<'_>, account: &str) -> Result<Iam, PathError> {
        node.obj()?;
        let mut iam = Iam::default();
        if let Some(list) = node.get("Policies")? {
            for item in list.arr()? {
                let policy = ManagedPolicy::parse(&item)?;
                if iam.managed_policies.contains_key(&policy.arn) {
                    return Err(item
                        .loc
                        .key("Arn")
                        .err(format!("managed policy `{}` is listed twice", policy.arn)));
                }
                iam.managed_policies.insert(policy.arn.clone(), policy);
            }
        }
        if let Some(list) = node.get("RoleDetailList")? {
            for item in list.arr()? {
                iam.roles.push(Role::parse(&item, account)?);
            }
        }
        if let Some(list) = node.get("UserDetailList")? {
            for item in list.arr()? {
                iam.users.push(User::parse(&item, account)?);
            }
        }
        if let Some(list) = node.get("GroupDetailList")? {
            for item in list.arr()? {
                iam.groups.push(Group::parse(&item)?);
            }
        }
        Ok(iam)
    }

    /// The role a principal ARN refers to: a role session
    /// (`arn:<partition>:sts::ACCT:assumed-role/NAME/SESSION`, matched by role name because session
    /// ARNs carry no path) or a role ARN.
    pub fn role_for(&self, principal_arn: &str) -> Option<&Role> {
        let arn = Arn::parse(principal_arn)?;
        let name = match (arn.service, arn.resource.split_once('/')) {
            ("sts", Some(("assumed-role", rest))) => rest.split('/').next()?,
            ("iam", Some(("role", rest))) => rest.rsplit('/').next()?,
            _ => return None,
        };
        self.roles
            .iter()
            .find(|r| r.name == name && Arn::parse(&r.arn).map(|a| a.account) == Some(arn.account))
    }

    /// The user a user ARN (`arn:<partition>:iam::ACCT:user/path/NAME`) refers to.
    pub fn user_for(&self, principal_arn: &str) -> Option<&User> {
        let arn = Arn::parse(principal_arn)?;
        let name = match (arn.service, arn.resource.split_once('/')) {
            ("iam", Some(("user", rest))) => rest.rsplit('/').next()?,
            _ => return None,
        };
        self.users
            .iter()
            .find(|u| u.name == name && Arn::parse(&u.arn).map(|a| a.account) == Some(arn.account))
    }

    /// The role or user whose unique id starts `principal_id`: `AROA…:session` (a role
    /// session, as the resource owner's copy of a cross-account record shows it), `AROA…`
    /// or `AIDA…`. Returns its kind and ARN (with path).
    pub fn identity_by_unique_id(&self, principal_id: &str) -> Option<(IdentityKind, &str)> {
        let id = principal_id.split(':').next().filter(|id| !id.is_empty())?;
        if let Some(role) = self.roles.iter().find(|r| r.id.as_deref() == Some(id)) {
            return Some((IdentityKind::Role, &role.arn));
        }
        self.users
            .iter()
            .find(|u| u.id.as_deref() == Some(id))
            .map(|u| (IdentityKind::User, u.arn.as_str()))
    }

    /// A group by name.
    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// The identity policies, boundary and tags of a role session, role or user. `None` when
    /// the principal is not in this account's IAM data or is of another kind (root,
    /// federated user, service).
    pub fn principal_policies(&self, principal_arn: &str) -> Option<PrincipalPolicies<'_>> {
        if let Some(role) = self.role_for(principal_arn) {
            let mut out = self.start(
                IdentityKind::Role,
                &role.arn,
                role.id.as_deref(),
                &role.tags,
            );
            out.identity.extend(&role.inline_policies);
            self.add_managed(&mut out, &role.attached_policies);
            self.set_boundary(&mut out, role.permissions_boundary.as_deref());
            return Some(out);
        }
        let user = self.user_for(principal_arn)?;
        let mut out = self.start(
            IdentityKind::User,
            &user.arn,
            user.id.as_deref(),
            &user.tags,
        );
        out.identity.extend(&user.inline_policies);
        self.add_managed(&mut out, &user.attached_policies);
        for name in &user.groups {
            match self.group(name) {
                Some(group) => {
                    out.identity.extend(&group.inline_policies);
                    self.add_managed(&mut out, &group.attached_policies);
                }
                None => out.missing.push(format!("group {name}")),
            }
        }
        self.set_boundary(&mut out, user.permissions_boundary.as_deref());
        Some(out)
    }

    fn start<'a>(
        &'a self,
        kind: IdentityKind,
        arn: &'a str,
        unique_id: Option<&'a str>,
        tags: &'a BTreeMap<String, String>,
    ) -> PrincipalPolicies<'a> {
        PrincipalPolicies {
            kind,
            arn,
            unique_id,
            identity: Vec::new(),
            boundary: None,
            boundary_arn: None,
            tags,
            missing: Vec::new(),
        }
    }

    fn add_managed<'a>(&'a self, out: &mut PrincipalPolicies<'a>, arns: &'a [String]) {
        for arn in arns {
            match self
                .managed_policies
                .get(arn)
                .and_then(|p| p.document.as_ref())
            {
                // A policy attached both to the user and to one of its groups counts once.
                Some(doc) if out.identity.iter().any(|p| std::ptr::eq(*p, doc)) => {}
                Some(doc) => out.identity.push(doc),
                None if out.missing.contains(arn) => {}
                None => out.missing.push(arn.clone()),
            }
        }
    }

    fn set_boundary<'a>(&'a self, out: &mut PrincipalPolicies<'a>, arn: Option<&'a str>) {
        let Some(arn) = arn else { return };
        out.boundary_arn = Some(arn);
        match self
            .managed_policies
            .get(arn)
            .and_then(|p| p.document.as_ref())
        {
            Some(doc) => out.boundary = Some(doc),
            None => out.missing.push(arn.to_owned()),
        }
    }
}

impl ManagedPolicy {
    fn parse(node: &Node<'_>) -> Result<ManagedPolicy, PathError> {
        let arn = node.req_str("Arn")?;
        let name = node.opt_str("PolicyName")?;
        let declared_default = node.opt_str("DefaultVersionId")?;
        let mut default_version_id = declared_default.clone();
        let mut document = None;
        if let Some(list) = node.get("PolicyVersionList")? {
            let versions = list.arr()?;
            let mut chosen = None;
            for version in &versions {
                let version_id = version.opt_str("VersionId")?;
                let is_default = version.bool_or("IsDefaultVersion", false)?
                    || (declared_default.is_some() && version_id == declared_default);
                if is_default {
                    if chosen.is_some() {
                        return Err(version.err("a second version is marked as the default"));
                    }
                    chosen = Some((version.clone(), version_id));
                }
            }
            // A hand-assembled snapshot may list a single version without flags; it can only
            // be the default.
            if chosen.is_none() {
                if let [only] = versions.as_slice() {
                    chosen = Some((only.clone(), only.opt_str("VersionId")?));
                }
            }
            match chosen {
                Some((version, version_id)) => {
                    default_version_id = default_version_id.or(version_id);
                    document = Some(parse_policy(
                        &version.req("Document")?,
                        PolicyKind::Identity,
                        arn.clone(),
                        Some(PolicyLimit::ManagedPolicy),
                    )?);
                }
                None if versions.is_empty() => {}
                None => {
                    return Err(list.err(
                        "no version is the default: set `IsDefaultVersion` on one or `DefaultVersionId` on the policy",
                    ))
                }
            }
        }
        Ok(ManagedPolicy {
            arn,
            name,
            default_version_id,
            document,
        })
    }
}

/// Fields shared by roles and users.
struct Common {
    path: String,
    name: String,
    id: Option<String>,
    arn: String,
    inline_policies: Vec<NamedPolicy>,
    attached_policies: Vec<String>,
    permissions_boundary: Option<String>,
    tags: BTreeMap<String, String>,
}

fn parse_common(
    node: &Node<'_>,
    account: &str,
    kind: &str,
    name_key: &str,
    id_key: &str,
    inline_key: &str,
) -> Result<Common, PathError> {
    let name = node.req_str(name_key)?;
    let arn = node.req_str("Arn")?;
    if Arn::parse(&arn).map(|a| a.account) != Some(account) {
        return Err(node
            .loc
            .key("Arn")
            .err(format!("`{arn}` is not an ARN of account {account}")));
    }
    let inline_policies = parse_inline(node, inline_key, kind, &name)?;
    let permissions_boundary = match node.get("PermissionsBoundary")? {
        Some(b) => Some(b.req_str("PermissionsBoundaryArn")?),
        None => None,
    };
    Ok(Common {
        path: node.opt_str("Path")?.unwrap_or_else(|| "/".to_owned()),
        id: node.opt_str(id_key)?,
        arn,
        inline_policies,
        attached_policies: parse_attached(node)?,
        permissions_boundary,
        tags: parse_tags(node)?,
        name,
    })
}

impl Role {
    fn parse(node: &Node<'_>, account: &str) -> Result<Role, PathError> {
        let c = parse_common(
            node,
            account,
            "role",
            "RoleName",
            "RoleId",
            "RolePolicyList",
        )?;
        let trust_policy = match node.get("AssumeRolePolicyDocument")? {
            Some(doc) => Some(parse_policy(
                &doc,
                PolicyKind::Resource,
                trust_policy_name(&c.name),
                Some(PolicyLimit::TrustPolicy),
            )?),
            None => None,
        };
        Ok(Role {
            path: c.path,
            name: c.name,
            id: c.id,
            arn: c.arn,
            inline_policies: c.inline_policies,
            attached_policies: c.attached_policies,
            permissions_boundary: c.permissions_boundary,
            tags: c.tags,
            trust_policy,
        })
    }
}

impl User {
    fn parse(node: &Node<'_>, account: &str) -> Result<User, PathError> {
        let c = parse_common(
            node,
            account,
            "user",
            "UserName",
            "UserId",
            "UserPolicyList",
        )?;
        Ok(User {
            path: c.path,
            name: c.name,
            id: c.id,
            arn: c.arn,
            inline_policies: c.inline_policies,
            attached_policies: c.attached_policies,
            permissions_boundary: c.permissions_boundary,
            tags: c.tags,
            groups: node.str_list("GroupList")?,
        })
    }
}

impl Group {
    fn parse(node: &Node<'_>) -> Result<Group, PathError> {
        let name = node.req_str("GroupName")?;
        Ok(Group {
            path: node.opt_str("Path")?.unwrap_or_else(|| "/".to_owned()),
            id: node.opt_str("GroupId")?,
            arn: node.opt_str("Arn")?,
            inline_policies: parse_inline(node, "GroupPolicyList", "group", &name)?,
            attached_policies: parse_attached(node)?,
            name,
        })
    }
}

fn parse_inline(
    node: &Node<'_>,
    key: &str,
    kind: &str,
    owner: &str,
) -> Result<Vec<NamedPolicy>, PathError> {
    let Some(list) = node.get(key)? else {
        return Ok(Vec::new());
    };
    let limit = inline_limit(kind);
    let policies = list
        .arr()?
        .iter()
        .map(|item| {
            let name = item.req_str("PolicyName")?;
            let mut named = parse_policy(
                &item.req("PolicyDocument")?,
                PolicyKind::Identity,
                inline_name(kind, owner, &name),
                Some(limit),
            )?;
            named.policy_name = Some(name);
            Ok(named)
        })
        .collect::<Result<Vec<_>, PathError>>()?;
    // The limit is on all inline policies of the owner together (IAM quotas page).
    let total = policies
        .iter()
        .map(|p| limit.measure(&p.document))
        .fold(0, usize::saturating_add);
    limit.check_size(total).map_err(|e| {
        list.err(format!(
            "the inline policies of {kind} {owner} are {e}; AWS would have refused to store them, so this is not a copy of a real account"
        ))
    })?;
    Ok(policies)
}

fn parse_attached(node: &Node<'_>) -> Result<Vec<String>, PathError> {
    let Some(list) = node.get("AttachedManagedPolicies")? else {
        return Ok(Vec::new());
    };
    list.arr()?
        .iter()
        .map(|item| item.req_str("PolicyArn"))
        .collect()
}

/// `Tags: [{"Key": .., "Value": ..}]` as a map.
pub(crate) fn parse_tags(node: &Node<'_>) -> Result<BTreeMap<String, String>, PathError> {
    let Some(list) = node.get("Tags")? else {
        return Ok(BTreeMap::new());
    };
    list.arr()?
        .iter()
        .map(|tag| {
            Ok((
                tag.req_str("Key")?,
                tag.opt_str("Value")?.unwrap_or_default(),
            ))
        })
        .collect()
}
