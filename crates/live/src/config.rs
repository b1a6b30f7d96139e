//! The function's configuration, from environment variables, checked once at start so that a
//! typo fails the deployment's first invocation with a clear message instead of every event
//! with an obscure one.
//!
//! | variable | required | meaning |
//! | --- | --- | --- |
//! | `S3KA_TOPIC_ARN` | yes | the SNS topic diagnoses are published to |
//! | `S3KA_ROLE_NAME` | no | the read-only role assumed in other accounts (name, or `path/name`); without it every account is read with the function's own credentials |
//! | `S3KA_EXTERNAL_ID` | no | the ExternalId that role's trust policy requires |
//! | `S3KA_SESSION_NAME` | no | the role session name (default `s3-kms-auditor`) |
//! | `S3KA_CACHE_TTL_SECONDS` | no | how long a warm container reuses what it read (default 300; 0 disables) |
//! | `S3KA_HEAD_OBJECT` | no | `false` to skip `HeadObject` and `GetObjectAcl` (`HeadObject` needs `s3:GetObject`; default `true`) |
//! | `S3KA_ORG_ACCESS` | no | where the organization's SCPs and RCPs are read: `self` (the function runs in the management account or a delegated administrator account) or the ARN of a role there (`templates/org-reader.yaml`); unset, they stay a stated gap |
//! | `S3KA_ENDPOINT_URL` | no | one endpoint for every service (an AWS-compatible test server) |
//! | `S3KA_STATE_BUCKET` | no | the bucket the stack creates for the per-account state policy-change impact compares with; without it change events only drop cached state |
//! | `S3KA_MAX_ATTEMPTS` | no | attempts per AWS call, 1 to 10 (default 3; 1 disables retries) |
//! | `S3KA_SWEEP_QUEUE_URL` | no | the organization sweep's queue; without it (or without `S3KA_STATE_BUCKET`) schedule events are refused |
//! | `S3KA_SWEEP_ORGANIZATIONS` | no | `true`: the sweep lists the accounts with Organizations `ListAccounts` (management or delegated-administrator account) |
//! | `S3KA_SWEEP_ACCOUNTS` | no | otherwise, the accounts to sweep, comma-separated 12-digit ids |
//! | `S3KA_SWEEP_MAX_RECEIVE` | no | the queue's `maxReceiveCount` (default 3): a message failing on that receive marks its account failed |

use std::time::Duration;

use crate::aws::{OrgAccess, RoleSpec, SdkSettings};
use crate::collect::Options;
use crate::sweep::SweepConfig;

/// The function's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `S3KA_TOPIC_ARN`.
    pub topic_arn: String,
    /// `S3KA_ROLE_NAME`, `S3KA_EXTERNAL_ID`, `S3KA_SESSION_NAME`.
    pub role: Option<RoleSpec>,
    /// `S3KA_CACHE_TTL_SECONDS`.
    pub cache_ttl: Duration,
    /// `S3KA_HEAD_OBJECT`.
    pub options: Options,
    /// `S3KA_ORG_ACCESS`.
    pub org_access: Option<OrgAccess>,
    /// `S3KA_ENDPOINT_URL`, `S3KA_MAX_ATTEMPTS` (and the Region from `AWS_REGION`).
    pub sdk: SdkSettings,
    /// `S3KA_STATE_BUCKET`.
    pub state_bucket: Option<String>,
    /// `S3KA_SWEEP_*`.
    pub sweep: SweepConfig,
}

/// A setting that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("environment variable `{var}`: {message}")]
pub struct ConfigError {
    var: &'static str,
    message: String,
}

impl ConfigError {
    fn new(var: &'static str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            var,
            message: message.into(),
        }
    }

    /// The variable at fault.
    pub fn var(&self) -> &str {
        self.var
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads settings through `get` (the environment, or a map in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |k: &str| {
            get(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let topic_arn = get("S3KA_TOPIC_ARN").ok_or_else(|| {
            ConfigError::new(
                "S3KA_TOPIC_ARN",
                "missing: set it to the ARN of the SNS topic diagnoses go to",
            )
        })?;
        check_topic_arn(&topic_arn)?;
        let role = match get("S3KA_ROLE_NAME") {
            Some(name) => {
                check_role_name(&name)?;
                let external_id = get("S3KA_EXTERNAL_ID");
                if let Some(id) = &external_id {
                    check_external_id(id)?;
                }
                let session_name =
                    get("S3KA_SESSION_NAME").unwrap_or_else(|| "s3-kms-auditor".into());
                check_session_name(&session_name)?;
                Some(RoleSpec {
                    name,
                    external_id,
                    session_name,
                })
            }
            None if get("S3KA_EXTERNAL_ID").is_some() => return Err(ConfigError::new(
                "S3KA_EXTERNAL_ID",
                "set, but `S3KA_ROLE_NAME` is not: an ExternalId is only used when assuming a role",
            )),
            None => None,
        };
        let cache_ttl = match get("S3KA_CACHE_TTL_SECONDS") {
            Some(v) => Duration::from_secs(v.parse::<u64>().map_err(|_| {
                ConfigError::new(
                    "S3KA_CACHE_TTL_SECONDS",
                    format!("`{v}` is not a whole number of seconds"),
                )
            })?),
            None => Duration::from_secs(300),
        };
        let head_object = match get("S3KA_HEAD_OBJECT").as_deref() {
            None => true,
            Some("true" | "1" | "yes") => true,
            Some("false" | "0" | "no") => false,
            Some(other) => {
                return Err(ConfigError::new(
                    "S3KA_HEAD_OBJECT",
                    format!("`{other}` is not `true` or `false`"),
                ))
            }
        };
        let endpoint_url = get("S3KA_ENDPOINT_URL");
        if let Some(e) = &endpoint_url {
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                return Err(ConfigError::new(
                    "S3KA_ENDPOINT_URL",
                    format!("`{e}` is not an http:// or https:// URL"),
                ));
            }
        }
        let max_attempts = match get("S3KA_MAX_ATTEMPTS") {
            Some(v) => match v.parse::<u32>() {
                Ok(n @ 1..=10) => n,
                _ => {
                    return Err(ConfigError::new(
                        "S3KA_MAX_ATTEMPTS",
                        format!("`{v}` is not a number from 1 to 10"),
                    ))
                }
            },
            None => 3,
        };
        let state_bucket = get("S3KA_STATE_BUCKET");
        if let Some(b) = &state_bucket {
            // S3 bucket naming rules: 3 to 63 lowercase letters, digits, dots and hyphens.
            let ok = (3..=63).contains(&b.len())
                && b.bytes().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-'
                });
            if !ok {
                return Err(ConfigError::new(
                    "S3KA_STATE_BUCKET",
                    format!("`{b}` is not an S3 bucket name"),
                ));
            }
        }
        let flag = |var: &'static str| match get(var).as_deref() {
            None | Some("false" | "0" | "no") => Ok(false),
            Some("true" | "1" | "yes") => Ok(true),
            Some(other) => Err(ConfigError::new(
                var,
                format!("`{other}` is not `true` or `false`"),
            )),
        };
        let accounts: Vec<String> = get("S3KA_SWEEP_ACCOUNTS")
            .map(|v| {
                v.split(',')
                    .map(|a| a.trim().to_owned())
                    .filter(|a| !a.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        if let Some(bad) = accounts
            .iter()
            .find(|a| a.len() != 12 || !a.bytes().all(|c| c.is_ascii_digit()))
        {
            return Err(ConfigError::new(
                "S3KA_SWEEP_ACCOUNTS",
                format!("`{bad}` is not a 12-digit account id"),
            ));
        }
        let max_receive = match get("S3KA_SWEEP_MAX_RECEIVE") {
            Some(v) => match v.parse::<u32>() {
                Ok(n @ 1..=1000) => n,
                _ => {
                    return Err(ConfigError::new(
                        "S3KA_SWEEP_MAX_RECEIVE",
                        format!("`{v}` is not a number from 1 to 1000 (SQS maxReceiveCount)"),
                    ))
                }
            },
            None => 3,
        };
        let sweep = SweepConfig {
            queue_url: get("S3KA_SWEEP_QUEUE_URL"),
            accounts,
            organizations: flag("S3KA_SWEEP_ORGANIZATIONS")?,
            max_receive,
        };
        let org_access = match get("S3KA_ORG_ACCESS") {
            None => None,
            Some(v) => Some(OrgAccess::parse(&v).ok_or_else(|| ConfigError::new(
                "S3KA_ORG_ACCESS",
                format!("`{v}` is neither `self` nor a role ARN such as `arn:<partition>:iam::<management account>:role/<name>`"),
            ))?),
        };
        Ok(Config {
            sweep,
            state_bucket,
            topic_arn,
            role,
            cache_ttl,
            options: Options { head_object },
            org_access,
            sdk: SdkSettings {
                profile: None,
                region: get("AWS_REGION"),
                endpoint_url,
                max_attempts,
            },
        })
    }
}

fn check_topic_arn(arn: &str) -> Result<(), ConfigError> {
    let parts: Vec<&str> = arn.split(':').collect();
    let ok = matches!(
        parts.as_slice(),
        ["arn", partition, "sns", region, account, name]
            if partition.starts_with("aws") && !region.is_empty()
                && account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())
                && !name.is_empty()
    );
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new(
            "S3KA_TOPIC_ARN",
            format!("`{arn}` is not an SNS topic ARN such as `arn:<partition>:sns:<region>:<account>:<topic>`"),
        ))
    }
}

fn check_role_name(name: &str) -> Result<(), ConfigError> {
    let role = name.rsplit('/').next().unwrap_or(name);
    let ok = !role.is_empty()
        && role.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-/".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new(
            "S3KA_ROLE_NAME",
            format!("`{name}` is not a role name (letters, digits and `+=,.@_-`, at most 64, optionally after a `path/`)"),
        ))
    }
}

fn check_external_id(id: &str) -> Result<(), ConfigError> {
    let ok = (2..=1224).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@:/_-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new(
            "S3KA_EXTERNAL_ID",
            "an ExternalId has 2 to 1224 characters among letters, digits and `+=,.@:/_-`",
        ))
    }
}

fn check_session_name(name: &str) -> Result<(), ConfigError> {
    let ok = (2..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new(
            "S3KA_SESSION_NAME",
            format!("`{name}` is not a session name (2 to 64 of letters, digits and `+=,.@_-`)"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    const TOPIC: (&str, &str) = (
        "S3KA_TOPIC_ARN",
        "arn:aws:sns:us-west-2:111122223333:s3-kms-auditor",
    );

    #[test]
    fn defaults_with_only_the_topic() {
        let c = config(&[TOPIC]).unwrap();
        assert_eq!(c.role, None);
        assert_eq!(c.cache_ttl, Duration::from_secs(300));
        assert!(c.options.head_object);
        assert_eq!(c.sdk.max_attempts, 3);
        assert_eq!(c.org_access, None);
    }

    #[test]
    fn organization_access() {
        let c = config(&[TOPIC, ("S3KA_ORG_ACCESS", "self")]).unwrap();
        assert_eq!(c.org_access, Some(OrgAccess::Own));
        let arn = "arn:aws:iam::210987654321:role/s3-kms-auditor-org-reader";
        let c = config(&[TOPIC, ("S3KA_ORG_ACCESS", arn)]).unwrap();
        assert_eq!(c.org_access, Some(OrgAccess::Role(arn.into())));
        for bad in [
            "yes",
            "arn:aws:iam::210987654321:user/x",
            "arn:aws:s3:::bucket",
        ] {
            let e = config(&[TOPIC, ("S3KA_ORG_ACCESS", bad)]).unwrap_err();
            assert_eq!(e.var(), "S3KA_ORG_ACCESS", "{bad}");
        }
    }

    #[test]
    fn a_role_with_external_id() {
        let c = config(&[
            TOPIC,
            ("S3KA_ROLE_NAME", "audit/s3-kms-auditor-read"),
            ("S3KA_EXTERNAL_ID", "o-a1b2c3d4e5"),
            ("S3KA_HEAD_OBJECT", "false"),
            ("S3KA_CACHE_TTL_SECONDS", "0"),
            ("S3KA_MAX_ATTEMPTS", "1"),
            ("S3KA_ENDPOINT_URL", "http://127.0.0.1:5000"),
        ])
        .unwrap();
        assert_eq!(
            c.role,
            Some(RoleSpec {
                name: "audit/s3-kms-auditor-read".into(),
                external_id: Some("o-a1b2c3d4e5".into()),
                session_name: "s3-kms-auditor".into(),
            })
        );
        assert!(!c.options.head_object);
        assert_eq!(c.cache_ttl, Duration::ZERO);
        assert_eq!(c.sdk.endpoint_url.as_deref(), Some("http://127.0.0.1:5000"));
    }

    #[test]
    fn errors_name_the_variable() {
        let e = config(&[]).unwrap_err();
        assert_eq!(e.var(), "S3KA_TOPIC_ARN");
        assert!(e
            .to_string()
            .starts_with("environment variable `S3KA_TOPIC_ARN`: missing"));
        for (vars, var) in [
            (
                vec![("S3KA_TOPIC_ARN", "arn:aws:sqs:us-west-2:111122223333:q")],
                "S3KA_TOPIC_ARN",
            ),
            (
                vec![TOPIC, ("S3KA_ROLE_NAME", "bad name")],
                "S3KA_ROLE_NAME",
            ),
            (vec![TOPIC, ("S3KA_EXTERNAL_ID", "x1")], "S3KA_EXTERNAL_ID"),
            (
                vec![TOPIC, ("S3KA_CACHE_TTL_SECONDS", "5m")],
                "S3KA_CACHE_TTL_SECONDS",
            ),
            (
                vec![TOPIC, ("S3KA_HEAD_OBJECT", "maybe")],
                "S3KA_HEAD_OBJECT",
            ),
            (vec![TOPIC, ("S3KA_MAX_ATTEMPTS", "0")], "S3KA_MAX_ATTEMPTS"),
            (
                vec![TOPIC, ("S3KA_ENDPOINT_URL", "localhost:5000")],
                "S3KA_ENDPOINT_URL",
            ),
            (
                vec![TOPIC, ("S3KA_SWEEP_ACCOUNTS", "111122223333,4444")],
                "S3KA_SWEEP_ACCOUNTS",
            ),
            (
                vec![TOPIC, ("S3KA_SWEEP_ORGANIZATIONS", "all")],
                "S3KA_SWEEP_ORGANIZATIONS",
            ),
            (
                vec![TOPIC, ("S3KA_SWEEP_MAX_RECEIVE", "0")],
                "S3KA_SWEEP_MAX_RECEIVE",
            ),
        ] {
            assert_eq!(config(&vars).unwrap_err().var(), var);
        }
    }

    #[test]
    fn sweep_settings_are_read_with_their_defaults() {
        let c = config(&[TOPIC]).unwrap();
        assert_eq!(c.sweep.max_receive, 3);
        assert!(c.sweep.queue_url.is_none() && c.sweep.accounts.is_empty());
        let c = config(&[
            TOPIC,
            (
                "S3KA_SWEEP_QUEUE_URL",
                "https://sqs.us-west-2.amazonaws.com/1/q",
            ),
            ("S3KA_SWEEP_ACCOUNTS", " 111122223333, 444455556666 ,"),
            ("S3KA_SWEEP_ORGANIZATIONS", "false"),
            ("S3KA_SWEEP_MAX_RECEIVE", "5"),
        ])
        .unwrap();
        assert_eq!(c.sweep.accounts, ["111122223333", "444455556666"]);
        assert_eq!(c.sweep.max_receive, 5);
        assert!(!c.sweep.organizations);
    }
}
