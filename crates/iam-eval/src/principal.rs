//! Principals: who is calling (the request side) and whom a policy names (the policy side).
//!
//! Matching follows the IAM `Principal` element
//! (<https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html>):
//! an account id or `:root` ARN names the *account* (delegation), a user ARN that user (path
//! included), a role ARN every session of the role, a session ARN one session,
//! `{"Service": ...}` only that service calling as itself, and an orphaned unique id (`AROA…`,
//! left behind when a named principal was deleted) matches nothing.
//!
//! Partitions are compared exactly: `arn:aws-cn:iam::B:root` never names B's principals in the
//! `aws` partition. A bare 12-digit id carries no partition; AWS stores it as the root ARN of
//! the policy's own partition, which is the caller's whenever the request can reach the
//! resource at all, so it matches the account in any partition. Role paths are the one
//! relaxation: a session ARN never carries its role's path, so a role principal matches by
//! partition, account and name. Both choices are recorded in docs/design.md ("The engine's
//! decision table").

use std::fmt;

use serde::Serialize;

use crate::arn::Arn;

/// What kind of caller made the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CallerKind {
    /// The account's root user.
    Root,
    /// An IAM user.
    User,
    /// A session of an IAM role (including a bare role ARN read as "some session").
    AssumedRole,
    /// An STS federated user (`GetFederationToken`).
    FederatedUser,
    /// An AWS service principal calling as itself.
    Service,
    /// An unsigned request.
    Anonymous,
}

impl CallerKind {
    /// The `aws:PrincipalType` value.
    pub fn principal_type(self) -> &'static str {
        match self {
            CallerKind::Root => "Account",
            CallerKind::User => "User",
            CallerKind::AssumedRole => "AssumedRole",
            CallerKind::FederatedUser => "FederatedUser",
            CallerKind::Service => "Service",
            CallerKind::Anonymous => "Anonymous",
        }
    }
}

/// The caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Kind of caller.
    pub kind: CallerKind,
    /// The ARN as given (session ARN, user ARN, ...), the service name, or `anonymous`.
    pub arn: String,
    /// The partition of the ARN (`aws`, `aws-cn`, ...); empty for services and anonymous
    /// callers.
    pub partition: String,
    /// The caller's account (absent for services and anonymous callers).
    pub account: Option<String>,
    /// For role sessions: the role name.
    pub role_name: Option<String>,
    /// For role sessions: the role ARN (`aws:PrincipalArn`), with a path when known.
    pub role_arn: Option<String>,
    /// For role sessions: the session name, when known (a bare role ARN has none).
    pub session_name: Option<String>,
    /// For IAM users and federated users: the name.
    pub name: Option<String>,
    /// Whether this is a service-linked role (exempt from SCPs and RCPs).
    pub service_linked: bool,
    /// The S3 canonical user id of the caller's account, when known: a bucket policy may name
    /// the account that way (`{"CanonicalUser": "…"}`).
    pub canonical_id: Option<String>,
}

/// Why a principal string could not be read as a caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadPrincipal(pub String);

impl fmt::Display for BadPrincipal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not a principal: expected a role session, role, user, root, federated-user ARN, a service principal, or `anonymous`",
            self.0
        )
    }
}

impl Caller {
    /// Reads a principal string: a role session ARN, a bare role ARN (a session of that role),
    /// a user ARN, an account root ARN, a federated-user ARN, a service principal
    /// (`s3.amazonaws.com`) or `anonymous`.
    pub fn parse(text: &str) -> Result<Caller, BadPrincipal> {
        let bad = || BadPrincipal(text.to_owned());
        let mut caller = Caller {
            kind: CallerKind::Anonymous,
            arn: text.to_owned(),
            partition: String::new(),
            account: None,
            role_name: None,
            role_arn: None,
            session_name: None,
            name: None,
            service_linked: false,
            canonical_id: None,
        };
        if text == "anonymous" || text == "*" {
            return Ok(caller);
        }
        if !text.starts_with("arn:") {
            if text.ends_with(".amazonaws.com") || text.ends_with(".amazonaws.com.cn") {
                caller.kind = CallerKind::Service;
                return Ok(caller);
            }
            return Err(bad());
        }
        let arn = Arn::parse(text).ok_or_else(bad)?;
        if !is_account_id(arn.account) {
            return Err(bad());
        }
        caller.account = Some(arn.account.to_owned());
        caller.partition = arn.partition.to_owned();
        match (arn.service, arn.resource.split_once('/')) {
            ("iam", None) if arn.resource == "root" => caller.kind = CallerKind::Root,
            ("iam", Some(("user", rest))) if !rest.is_empty() => {
                caller.kind = CallerKind::User;
                caller.name = rest.rsplit('/').next().map(str::to_owned);
            }
            ("iam", Some(("role", rest))) if !rest.is_empty() => {
                caller.kind = CallerKind::AssumedRole;
                caller.role_name = rest.rsplit('/').next().map(str::to_owned);
                caller.role_arn = Some(text.to_owned());
                caller.service_linked = rest.starts_with("aws-service-role/");
            }
            ("sts", Some(("assumed-role", rest))) => {
                let (role, session) = rest.split_once('/').ok_or_else(bad)?;
                if role.is_empty() || session.is_empty() {
                    return Err(bad());
                }
                caller.kind = CallerKind::AssumedRole;
                caller.role_name = Some(role.to_owned());
                caller.session_name = Some(session.to_owned());
                caller.role_arn = Some(format!(
                    "arn:{}:iam::{}:role/{}",
                    arn.partition, arn.account, role
                ));
            }
            ("sts", Some(("federated-user", name))) if !name.is_empty() => {
                caller.kind = CallerKind::FederatedUser;
                caller.name = Some(name.to_owned());
            }
            _ => return Err(bad()),
        }
        Ok(caller)
    }

    /// Uses the role ARN known from the context (`aws:PrincipalArn`, which carries the role
    /// path) for a session whose ARN cannot carry it.
    pub fn set_role_arn(&mut self, role_arn: &str) {
        if self.kind == CallerKind::AssumedRole {
            if let Some(a) = Arn::parse(role_arn) {
                if a.resource.starts_with("role/") {
                    self.service_linked = a.resource.starts_with("role/aws-service-role/");
                    self.role_arn = Some(role_arn.to_owned());
                }
            }
        }
    }

    /// The `aws:PrincipalArn` value: the role ARN for sessions, otherwise the ARN itself.
    pub fn principal_arn(&self) -> Option<&str> {
        match self.kind {
            CallerKind::AssumedRole => self.role_arn.as_deref(),
            CallerKind::Service | CallerKind::Anonymous => None,
            _ => Some(&self.arn),
        }
    }

    /// Whether the caller is subject to identity-based policies at all.
    pub fn has_identity(&self) -> bool {
        matches!(
            self.kind,
            CallerKind::User
                | CallerKind::AssumedRole
                | CallerKind::FederatedUser
                | CallerKind::Root
        )
    }
}

/// Whether `s` is a 12-digit account id.
pub fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// One principal named in a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyPrincipal {
    /// `"*"` or `{"AWS": "*"}`: everyone.
    Everyone,
    /// `arn:aws:iam::ACCT:root`: the account, in the `aws` partition.
    Account(String),
    /// An account named by a bare 12-digit id (`partition: None`: AWS stores it as the root ARN
    /// of the policy's own partition) or by the root ARN of a partition other than `aws`.
    AccountIn {
        /// The partition of a root ARN; `None` for a bare id.
        partition: Option<String>,
        /// Account.
        account: String,
    },
    /// An IAM user ARN: exactly that user, path included.
    User {
        /// Partition.
        partition: String,
        /// Account.
        account: String,
        /// User name (case-sensitive).
        name: String,
        /// The ARN as written.
        arn: String,
    },
    /// An IAM role ARN (matches its sessions).
    Role {
        /// Partition.
        partition: String,
        /// Account.
        account: String,
        /// Role name.
        name: String,
        /// The ARN as written.
        arn: String,
    },
    /// A role session or federated-user ARN: exactly that session.
    Session(String),
    /// A service principal.
    Service(String),
    /// A `Federated` identity provider (trust policies only).
    Federated(String),
    /// An S3 canonical user id.
    CanonicalUser(String),
    /// A unique id left behind by a deleted principal (`AROA…`, `AIDA…`): matches nothing.
    Orphaned(String),
    /// Anything else (kept so that it can be reported): matches nothing.
    Unrecognized(String),
}

/// How a policy principal matched the caller; same-account semantics depend on it (docs/design.md, "The engine's decision table").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum MatchKind {
    /// The account (delegation only).
    Account,
    /// The role of the calling session, or the IAM user who created a federated session.
    Role,
    /// `"*"`: everyone. Acts like a direct grant, but whether it also overrides a boundary or a
    /// session policy is documented only for the `aws:PrincipalArn` form (IAM User Guide, "Policy evaluation logic", same-account requests).
    Everyone,
    /// The calling session, user, federated session or service, by name.
    Direct,
}

impl MatchKind {
    /// Whether the grant names the caller itself (by name or as everyone).
    pub fn is_direct(self) -> bool {
        matches!(self, MatchKind::Direct | MatchKind::Everyone)
    }
}

impl PolicyPrincipal {
    /// Reads one `AWS` principal value.
    pub fn aws(value: &str) -> PolicyPrincipal {
        if value == "*" {
            return PolicyPrincipal::Everyone;
        }
        if is_account_id(value) {
            return PolicyPrincipal::AccountIn {
                partition: None,
                account: value.to_owned(),
            };
        }
        if let Some(arn) = Arn::parse(value) {
            let acct = arn.account.to_owned();
            let partition = arn.partition.to_owned();
            match (arn.service, arn.resource.split_once('/')) {
                ("iam", None) if arn.resource == "root" && arn.partition == "aws" => {
                    return PolicyPrincipal::Account(acct)
                }
                ("iam", None) if arn.resource == "root" => {
                    return PolicyPrincipal::AccountIn {
                        partition: Some(partition),
                        account: acct,
                    }
                }
                ("iam", Some(("user", rest))) => {
                    return PolicyPrincipal::User {
                        partition,
                        account: acct,
                        name: rest.rsplit('/').next().unwrap_or(rest).to_owned(),
                        arn: value.to_owned(),
                    };
                }
                ("iam", Some(("role", rest))) => {
                    return PolicyPrincipal::Role {
                        partition,
                        account: acct,
                        name: rest.rsplit('/').next().unwrap_or(rest).to_owned(),
                        arn: value.to_owned(),
                    };
                }
                ("sts", Some(("assumed-role" | "federated-user", _))) => {
                    return PolicyPrincipal::Session(value.to_owned());
                }
                _ => {}
            }
        }
        if is_unique_id(value) {
            return PolicyPrincipal::Orphaned(value.to_owned());
        }
        PolicyPrincipal::Unrecognized(value.to_owned())
    }

    /// Whether this principal matches `caller`, and how.
    pub fn matches(&self, caller: &Caller) -> Option<MatchKind> {
        match self {
            PolicyPrincipal::Everyone => Some(MatchKind::Everyone),
            PolicyPrincipal::Account(_) | PolicyPrincipal::AccountIn { .. } => (caller.kind
                != CallerKind::Service
                && caller.kind != CallerKind::Anonymous
                && self.names_account_of(caller))
            .then_some(MatchKind::Account),
            // The whole ARN, path included: `user/alice` is not `user/division/alice` (IAM user
            // names are unique per account, and the path is part of the user's ARN).
            PolicyPrincipal::User { arn, .. } => {
                (caller.kind == CallerKind::User && caller.arn == *arn).then_some(MatchKind::Direct)
            }
            PolicyPrincipal::Role {
                partition,
                account,
                name,
                ..
            } => (caller.kind == CallerKind::AssumedRole
                && caller.partition == *partition
                && caller.account.as_deref() == Some(account)
                && caller.role_name.as_deref() == Some(name))
            .then_some(MatchKind::Role),
            PolicyPrincipal::Session(arn) => {
                let is_session = match caller.kind {
                    CallerKind::AssumedRole => caller.session_name.is_some(),
                    CallerKind::FederatedUser => true,
                    _ => false,
                };
                (is_session && caller.arn == *arn).then_some(MatchKind::Direct)
            }
            PolicyPrincipal::Service(s) => (caller.kind == CallerKind::Service && caller.arn == *s)
                .then_some(MatchKind::Direct),
            // A canonical user id names the account, like an account id does.
            PolicyPrincipal::CanonicalUser(id) => (caller.kind != CallerKind::Service
                && caller.kind != CallerKind::Anonymous
                && caller.canonical_id.as_deref() == Some(id))
            .then_some(MatchKind::Account),
            PolicyPrincipal::Federated(_)
            | PolicyPrincipal::Orphaned(_)
            | PolicyPrincipal::Unrecognized(_) => None,
        }
    }

    /// Whether an account entry names the caller's account, partitions compared exactly
    /// (a bare id matches in any partition, see the module docs).
    fn names_account_of(&self, caller: &Caller) -> bool {
        match self {
            PolicyPrincipal::Account(a) => {
                caller.partition == "aws" && caller.account.as_deref() == Some(a)
            }
            PolicyPrincipal::AccountIn { partition, account } => {
                partition.as_deref().is_none_or(|p| caller.partition == p)
                    && caller.account.as_deref() == Some(account)
            }
            _ => false,
        }
    }

    /// The account an account, user or role entry names.
    pub fn account(&self) -> Option<&str> {
        match self {
            PolicyPrincipal::Account(account)
            | PolicyPrincipal::AccountIn { account, .. }
            | PolicyPrincipal::User { account, .. }
            | PolicyPrincipal::Role { account, .. } => Some(account),
            _ => None,
        }
    }

    /// Whether the entry covers the caller's *account* identity (for NotPrincipal exemptions).
    fn covers_account(&self, caller: &Caller) -> bool {
        self.names_account_of(caller) || matches!(self, PolicyPrincipal::Everyone)
    }
}

/// Whether `s` looks like an IAM unique id (`AIDA…`, `AROA…`, `AGPA…`, `ANPA…`, …).
pub fn is_unique_id(s: &str) -> bool {
    s.len() >= 16
        && s.starts_with('A')
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// Whether a `NotPrincipal` list exempts the caller (IAM User Guide, "NotPrincipal"): a role session is exempt
/// only when the account, the role and the session are all listed; a user when the user and
/// the account are listed; a root user when the account is listed. Returns
/// `(exempt, partially_listed)`.
pub fn not_principal_exempts(list: &[PolicyPrincipal], caller: &Caller) -> (bool, bool) {
    let account = list.iter().any(|p| p.covers_account(caller));
    let any_direct = list
        .iter()
        .any(|p| p.matches(caller).is_some_and(MatchKind::is_direct));
    let role = list
        .iter()
        .any(|p| matches!(p.matches(caller), Some(MatchKind::Role)));
    let session = list.iter().any(|p| match p {
        PolicyPrincipal::Session(arn) => *arn == caller.arn,
        PolicyPrincipal::Everyone => true,
        _ => false,
    });
    let exempt = match caller.kind {
        CallerKind::AssumedRole => account && role && session,
        CallerKind::User | CallerKind::FederatedUser => account && any_direct,
        CallerKind::Root => account,
        CallerKind::Service | CallerKind::Anonymous => any_direct,
    };
    let partial = !exempt && (account || role || session || any_direct);
    (exempt, partial)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(s: &str) -> Caller {
        Caller::parse(s).unwrap()
    }

    #[test]
    fn session_parsing() {
        let c = caller("arn:aws:sts::444455556666:assumed-role/reader/s1");
        assert_eq!(c.kind, CallerKind::AssumedRole);
        assert_eq!(
            c.role_arn.as_deref(),
            Some("arn:aws:iam::444455556666:role/reader")
        );
        assert_eq!(c.session_name.as_deref(), Some("s1"));
    }

    #[test]
    fn role_arn_matches_sessions_across_paths() {
        let p = PolicyPrincipal::aws("arn:aws:iam::444455556666:role/team/reader");
        assert_eq!(
            p.matches(&caller("arn:aws:sts::444455556666:assumed-role/reader/s1")),
            Some(MatchKind::Role)
        );
    }

    #[test]
    fn bare_role_is_not_a_named_session() {
        let p = PolicyPrincipal::aws("arn:aws:sts::444455556666:assumed-role/reader/s1");
        assert_eq!(
            p.matches(&caller("arn:aws:iam::444455556666:role/reader")),
            None
        );
        assert_eq!(
            p.matches(&caller("arn:aws:sts::444455556666:assumed-role/reader/s1")),
            Some(MatchKind::Direct)
        );
    }

    #[test]
    fn account_forms_are_equivalent() {
        let c = caller("arn:aws:iam::444455556666:user/alice");
        assert_eq!(
            PolicyPrincipal::aws("444455556666").matches(&c),
            Some(MatchKind::Account)
        );
        assert_eq!(
            PolicyPrincipal::aws("arn:aws:iam::444455556666:root").matches(&c),
            Some(MatchKind::Account)
        );
    }

    #[test]
    fn orphaned_ids_match_nothing() {
        let p = PolicyPrincipal::aws("AROA4444EXAMPLEREADER");
        assert!(matches!(p, PolicyPrincipal::Orphaned(_)));
        assert_eq!(
            p.matches(&caller("arn:aws:sts::444455556666:assumed-role/reader/s1")),
            None
        );
    }

    #[test]
    fn not_principal_needs_all_three() {
        let c = caller("arn:aws:sts::444455556666:assumed-role/reader/s1");
        let all = [
            PolicyPrincipal::aws("arn:aws:iam::444455556666:root"),
            PolicyPrincipal::aws("arn:aws:iam::444455556666:role/reader"),
            PolicyPrincipal::aws("arn:aws:sts::444455556666:assumed-role/reader/s1"),
        ];
        assert_eq!(not_principal_exempts(&all, &c), (true, false));
        assert_eq!(not_principal_exempts(&all[2..], &c), (false, true));
    }
}
