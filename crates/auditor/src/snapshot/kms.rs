//! KMS keys: `DescribeKey` metadata, the key policy, `ListGrants` entries and aliases.

use iam_eval::{Grant, PolicyKind};
use serde_json::Value;

use super::policy::{key_policy_name, parse_policy, NamedPolicy};
use super::SnapshotError;
use crate::arn::{self, Arn};
use crate::limits::PolicyLimit;
use crate::reader::{Node, PathError};

/// One KMS key.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    /// `DescribeKey`'s `KeyMetadata`.
    pub metadata: KeyMetadata,
    /// The key policy (every key has exactly one; `None` when the snapshot lacks it).
    pub policy: Option<NamedPolicy>,
    /// Grants on the key (`ListGrants` entries).
    pub grants: Vec<KeyGrant>,
    /// Alias names (`alias/reports`).
    pub aliases: Vec<String>,
}

/// The facts of `DescribeKey` the diagnosis needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMetadata {
    /// `KeyId`.
    pub key_id: String,
    /// `Arn`.
    pub arn: String,
    /// `KeyManager`.
    pub key_manager: KeyManager,
    /// `KeyState`.
    pub key_state: KeyState,
    /// `MultiRegion`.
    pub multi_region: bool,
    /// The Region, from the ARN.
    pub region: String,
    /// The owning account, from the ARN.
    pub account: String,
}

/// Who manages a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyManager {
    /// An AWS managed key (`aws/s3`): its policy cannot be changed.
    Aws,
    /// A customer managed key.
    Customer,
}

/// The state of a key; only `Enabled` keys can be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyState {
    /// Usable.
    Enabled,
    /// `DisabledException`.
    Disabled,
    /// Scheduled for deletion.
    PendingDeletion,
    /// Waiting for imported key material.
    PendingImport,
    /// A multi-Region replica being deleted.
    PendingReplicaDeletion,
    /// Custom key store disconnected.
    Unavailable,
    /// Being created.
    Creating,
    /// A multi-Region key being updated.
    Updating,
    /// A state this version does not know, kept verbatim (AWS adds states over time).
    Other(String),
}

impl KeyManager {
    /// The manager named as AWS spells it (`AWS`, `CUSTOMER`), if it is one.
    pub fn from_aws(text: &str) -> Option<KeyManager> {
        match text {
            "AWS" => Some(KeyManager::Aws),
            "CUSTOMER" => Some(KeyManager::Customer),
            _ => None,
        }
    }

    /// The manager as AWS spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyManager::Aws => "AWS",
            KeyManager::Customer => "CUSTOMER",
        }
    }
}

impl KeyState {
    /// The state named as AWS spells it; a name this version does not know is kept as
    /// [`KeyState::Other`].
    pub fn parse(text: &str) -> KeyState {
        match text {
            "Enabled" => KeyState::Enabled,
            "Disabled" => KeyState::Disabled,
            "PendingDeletion" => KeyState::PendingDeletion,
            "PendingImport" => KeyState::PendingImport,
            "PendingReplicaDeletion" => KeyState::PendingReplicaDeletion,
            "Unavailable" => KeyState::Unavailable,
            "Creating" => KeyState::Creating,
            "Updating" => KeyState::Updating,
            other => KeyState::Other(other.to_owned()),
        }
    }

    /// The state as AWS spells it.
    pub fn as_str(&self) -> &str {
        match self {
            KeyState::Enabled => "Enabled",
            KeyState::Disabled => "Disabled",
            KeyState::PendingDeletion => "PendingDeletion",
            KeyState::PendingImport => "PendingImport",
            KeyState::PendingReplicaDeletion => "PendingReplicaDeletion",
            KeyState::Unavailable => "Unavailable",
            KeyState::Creating => "Creating",
            KeyState::Updating => "Updating",
            KeyState::Other(s) => s,
        }
    }
}

/// One grant: the engine's model and the entry as listed. Equality leaves `pointer` out, as
/// for [`NamedPolicy`].
#[derive(Debug, Clone)]
pub struct KeyGrant {
    /// The checked grant.
    pub grant: Grant,
    /// The `ListGrants` entry as given, for reports.
    pub raw: Value,
    /// RFC 6901 JSON Pointer of the entry inside the snapshot.
    pub pointer: String,
}

impl PartialEq for KeyGrant {
    fn eq(&self, other: &KeyGrant) -> bool {
        self.raw == other.raw && self.grant == other.grant
    }
}

impl KeyGrant {
    /// A grant that was not read from a snapshot document: a `ListGrants` entry as AWS
    /// returns it. `pointer` is empty until the snapshot is written and read back.
    pub fn new(raw: Value) -> Result<KeyGrant, SnapshotError> {
        parse_grant(&Node::root(&raw)).map_err(SnapshotError::from)
    }
}

const KEY_KEYS: &[&str] = &["metadata", "policy", "grants", "aliases"];

impl Key {
    /// Whether the key is AWS managed: `KeyManager` is `AWS`, or it carries an `aws/` alias
    /// (a snapshot may list the alias without the metadata being exact).
    pub fn is_aws_managed(&self) -> bool {
        self.metadata.key_manager == KeyManager::Aws
            || self.aliases.iter().any(|a| a.starts_with("alias/aws/"))
    }

    /// Whether the key can be used at all (state `Enabled`).
    pub fn is_usable(&self) -> bool {
        self.metadata.key_state == KeyState::Enabled
    }

    pub(crate) fn parse(node: &Node<'_>, map_key: &str, account: &str) -> Result<Key, PathError> {
        node.only_keys(KEY_KEYS)?;
        let Some((region, key_account, key_id)) = arn::kms_key_arn(map_key) else {
            return Err(node.err(format!(
                "`{map_key}` is not a key ARN; keys are listed by their key ARN, `arn:<partition>:kms:<region>:<account>:key/<key-id>`"
            )));
        };
        if key_account != account {
            return Err(node.err(format!(
                "key `{map_key}` belongs to account {key_account}, not {account}"
            )));
        }
        let metadata = parse_metadata(&node.req("metadata")?, map_key, region, account, key_id)?;
        let policy = match node.get("policy")? {
            Some(p) => Some(parse_policy(
                &p,
                PolicyKind::Resource,
                key_policy_name(map_key),
                Some(PolicyLimit::KeyPolicy),
            )?),
            None => None,
        };
        let grants = match node.get("grants")? {
            Some(g) => parse_grants(&g)?,
            None => Vec::new(),
        };
        let aliases = match node.get("aliases")? {
            Some(a) => parse_aliases(&a)?,
            None => Vec::new(),
        };
        Ok(Key {
            metadata,
            policy,
            grants,
            aliases,
        })
    }
}

fn parse_metadata(
    node: &Node<'_>,
    map_key: &str,
    region: &str,
    account: &str,
    key_id: &str,
) -> Result<KeyMetadata, PathError> {
    // `describe-key` prints `{"KeyMetadata": {...}}`; accept it pasted as is.
    let meta = node.get("KeyMetadata")?.unwrap_or_else(|| node.clone());
    let arn = meta.opt_str("Arn")?.unwrap_or_else(|| map_key.to_owned());
    if arn != map_key {
        return Err(meta.loc.key("Arn").err(format!(
            "`{arn}` differs from the key ARN `{map_key}` it is listed under"
        )));
    }
    let id = meta.opt_str("KeyId")?.unwrap_or_else(|| key_id.to_owned());
    if id != key_id {
        return Err(meta.loc.key("KeyId").err(format!(
            "`{id}` differs from the key id `{key_id}` of the key ARN"
        )));
    }
    let manager_node = meta.req("KeyManager")?;
    let manager = manager_node.str()?;
    let key_manager = KeyManager::from_aws(manager).ok_or_else(|| {
        manager_node.err(format!(
            "`{manager}` is not a key manager; expected `AWS` or `CUSTOMER`"
        ))
    })?;
    let key_state = KeyState::parse(meta.req("KeyState")?.str()?);
    Ok(KeyMetadata {
        key_id: id,
        arn,
        key_manager,
        key_state,
        multi_region: meta.bool_or("MultiRegion", false)?,
        region: region.to_owned(),
        account: account.to_owned(),
    })
}

fn parse_grants(node: &Node<'_>) -> Result<Vec<KeyGrant>, PathError> {
    // `list-grants` prints `{"Grants": [...]}`; accept that and the bare list.
    let list = if node.v.is_object() {
        node.req("Grants")?
    } else {
        node.clone()
    };
    list.arr()?.iter().map(parse_grant).collect()
}

fn parse_grant(item: &Node<'_>) -> Result<KeyGrant, PathError> {
    let grant = Grant::from_value(item.v).map_err(|e| {
        let message = e.to_string();
        let prefix = format!("{}: ", e.path());
        let message = message
            .strip_prefix(&prefix)
            .map(str::to_owned)
            .unwrap_or(message);
        item.loc.err_below(e.path(), message)
    })?;
    Ok(KeyGrant {
        grant,
        raw: item.v.clone(),
        pointer: item.loc.pointer(),
    })
}

fn parse_aliases(node: &Node<'_>) -> Result<Vec<String>, PathError> {
    // Strings, or `list-aliases` entries (`{"AliasName": "alias/x", ...}`).
    let list = if node.v.is_object() {
        node.req("Aliases")?
    } else {
        node.clone()
    };
    list.arr()?
        .iter()
        .map(|item| {
            let (name, at) = if item.v.is_object() {
                (item.req_str("AliasName")?, item.loc.key("AliasName"))
            } else {
                (item.str()?.to_owned(), item.loc.clone())
            };
            match name.strip_prefix("alias/") {
                Some(rest) if !rest.is_empty() => Ok(name),
                _ => Err(at.err(format!(
                    "`{name}` is not an alias name such as `alias/reports`"
                ))),
            }
        })
        .collect()
}

/// How a request or a configuration names a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyRef<'a> {
    /// `arn:<partition>:kms:region:account:key/id`
    KeyArn {
        region: &'a str,
        account: &'a str,
        key_id: &'a str,
    },
    /// `arn:<partition>:kms:region:account:alias/name`
    AliasArn {
        region: &'a str,
        account: &'a str,
        alias: &'a str,
    },
    /// `alias/name`, resolved in the caller's account and Region.
    Alias(&'a str),
    /// A bare key id, resolved in the caller's account and Region.
    KeyId(&'a str),
}

impl<'a> KeyRef<'a> {
    pub(crate) fn parse(text: &'a str) -> Option<KeyRef<'a>> {
        if let Some(a) = Arn::parse(text) {
            if a.service != "kms" {
                return None;
            }
            if let Some(key_id) = a.resource.strip_prefix("key/") {
                return Some(KeyRef::KeyArn {
                    region: a.region,
                    account: a.account,
                    key_id,
                });
            }
            if a.resource.starts_with("alias/") {
                return Some(KeyRef::AliasArn {
                    region: a.region,
                    account: a.account,
                    alias: a.resource,
                });
            }
            return None;
        }
        if text.starts_with("alias/") {
            Some(KeyRef::Alias(text))
        } else if !text.is_empty() && !text.contains(':') && !text.contains('/') {
            Some(KeyRef::KeyId(text))
        } else {
            None
        }
    }
}
