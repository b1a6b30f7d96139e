//! The ports implemented with the AWS SDK: the only code that names `aws_sdk_*`.
//!
//! [`AwsAccounts`] reaches each account with the function's own credentials, or with a
//! session of the configured read-only role (`sts:AssumeRole` with an ExternalId), cached
//! until five minutes before it expires. [`AwsReader`] makes the reads of one account;
//! [`SnsPublisher`] sends notifications. SDK errors become [`ReadError`]s here; "no such
//! configuration" answers become `Ok(None)`; IAM documents are percent-decoded.

mod dynamo;
mod iam;
mod inventory;
mod kms;
mod org;
mod s3;
mod sns;
mod sqs;
mod state;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

pub use self::dynamo::DynamoStore;
pub use self::sns::SnsPublisher;
pub use self::sqs::SqsQueue;
pub use self::state::S3StateStore;
use crate::ports::{Access, Accounts, Read, ReadError};

/// How long before expiry a cached session is renewed.
const RENEW_BEFORE: Duration = Duration::from_secs(300);

/// What the SDK clients are built from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SdkSettings {
    /// A named profile of the shared config files (CLI only).
    pub profile: Option<String>,
    /// The Region of the function (or the CLI's default Region).
    pub region: Option<String>,
    /// An endpoint for every service (an AWS-compatible test server); S3 then uses
    /// path-style addressing.
    pub endpoint_url: Option<String>,
    /// Attempts per call; 1 disables retries.
    pub max_attempts: u32,
}

/// The base SDK configuration: the standard credential chain, Region and retries.
pub async fn load_sdk_config(settings: &SdkSettings) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(p) = &settings.profile {
        loader = loader.profile_name(p);
    }
    if let Some(r) = &settings.region {
        loader = loader.region(Region::new(r.clone()));
    }
    if let Some(e) = &settings.endpoint_url {
        loader = loader.endpoint_url(e);
    }
    // Adaptive: standard retries plus a client-side rate limiter that slows down after
    // throttling, so an organization sweep's workers back off together instead of retrying
    // into IAM's and Organizations' per-account limits
    // (https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html).
    let retry = if settings.max_attempts <= 1 {
        RetryConfig::disabled()
    } else {
        RetryConfig::adaptive().with_max_attempts(settings.max_attempts)
    };
    // A read that hangs must fail the invocation (and be retried) well before Lambda's own
    // timeout ends it without a word.
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(10))
        .operation_timeout(Duration::from_secs(25))
        .build();
    loader
        .retry_config(retry)
        .timeout_config(timeouts)
        .load()
        .await
}

/// The role the auditor assumes in other accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleSpec {
    /// The role name (with its path, if any), as in `arn:<partition>:iam::<account>:role/<name>`.
    pub name: String,
    /// The ExternalId the role's trust policy requires.
    pub external_id: Option<String>,
    /// The session name, which shows in the member account's CloudTrail.
    pub session_name: String,
}

/// Where the organization's SCPs and RCPs are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrgAccess {
    /// With the function's own credentials: it runs in the management account or in a
    /// delegated administrator account of Organizations.
    Own,
    /// Through a session of this role (its full ARN), in the management account or a
    /// delegated administrator account (`templates/org-reader.yaml`). The member role's
    /// ExternalId and session name are presented, if configured.
    Role(String),
}

impl OrgAccess {
    /// `self`, or an IAM role ARN (`arn:<partition>:iam::<account>:role/<name>`); `None` for
    /// anything else.
    pub fn parse(text: &str) -> Option<OrgAccess> {
        if text == "self" {
            return Some(OrgAccess::Own);
        }
        let arn = iam_eval::arn::Arn::parse(text)?;
        let ok = arn.service == "iam"
            && arn.account.len() == 12
            && arn.account.bytes().all(|b| b.is_ascii_digit())
            && arn
                .resource
                .strip_prefix("role/")
                .is_some_and(|r| !r.is_empty());
        ok.then(|| OrgAccess::Role(text.to_owned()))
    }
}

#[derive(Debug, Clone)]
struct Session {
    config: SdkConfig,
    expires: Option<SystemTime>,
}

/// Every account, reached through the function's credentials or a role session.
#[derive(Debug, Clone)]
pub struct AwsAccounts {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    base: SdkConfig,
    path_style: bool,
    role: Option<RoleSpec>,
    org: Option<OrgAccess>,
    home: OnceLock<String>,
    sessions: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Session>>>>>,
    sts: aws_sdk_sts::Client,
}

impl AwsAccounts {
    /// Accounts reached from `base`; with a `role`, every account other than the home account
    /// is read through a session of that role.
    pub fn new(base: SdkConfig, role: Option<RoleSpec>, path_style: bool) -> AwsAccounts {
        let sts = aws_sdk_sts::Client::new(&base);
        AwsAccounts {
            inner: Arc::new(Inner {
                base,
                path_style,
                role,
                org: None,
                home: OnceLock::new(),
                sessions: Mutex::new(HashMap::new()),
                sts,
            }),
        }
    }

    /// Reads the organization's SCPs and RCPs through `org` (before the accounts are shared).
    pub fn with_org_access(mut self, org: Option<OrgAccess>) -> AwsAccounts {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.org = org;
        }
        self
    }

    /// Where the organization's policies are read, if anywhere.
    pub fn org_access(&self) -> Option<&OrgAccess> {
        self.inner.org.as_ref()
    }

    /// The account the credentials belong to, read without a call where the platform says
    /// it (the Lambda function ARN). Set once; later calls are ignored.
    pub fn set_home_account(&self, account: &str) {
        let _ = self.inner.home.set(account.to_owned());
    }

    /// The home account, if known.
    pub fn home_account(&self) -> Option<&str> {
        self.inner.home.get().map(String::as_str)
    }

    /// Asks STS which account the credentials belong to (`GetCallerIdentity`), and keeps it.
    pub async fn discover_home_account(&self) -> Read<String> {
        if let Some(h) = self.home_account() {
            return Ok(h.to_owned());
        }
        let out = self
            .inner
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(read_error)?;
        let account = out.account().unwrap_or_default().to_owned();
        self.set_home_account(&account);
        Ok(account)
    }

    /// The base SDK configuration (the function's own credentials).
    pub fn base_config(&self) -> &SdkConfig {
        &self.inner.base
    }

    fn reader_for(&self, config: SdkConfig, account: &str) -> AwsReader {
        AwsReader {
            config,
            account: account.to_owned(),
            path_style: self.inner.path_style,
        }
    }

    async fn assume(&self, role: &RoleSpec, account: &str) -> Read<Session> {
        // The member role lives in the function's own partition.
        let partition = auditor::refs::Partition::of_region(
            self.inner
                .base
                .region()
                .map(|r| r.as_ref())
                .unwrap_or_default(),
        );
        let arn = auditor::refs::role_arn(partition, account, &role.name);
        self.assume_arn(&arn, role.external_id.as_deref(), &role.session_name)
            .await
    }

    async fn assume_arn(
        &self,
        arn: &str,
        external_id: Option<&str>,
        session_name: &str,
    ) -> Read<Session> {
        let mut req = self
            .inner
            .sts
            .assume_role()
            .role_arn(arn)
            .role_session_name(session_name);
        if let Some(id) = external_id {
            req = req.external_id(id);
        }
        let out = req.send().await.map_err(read_error)?;
        let Some(c) = out.credentials() else {
            return Err(ReadError::Service {
                code: "NoCredentials".into(),
                message: Some(format!("AssumeRole into `{arn}` returned no credentials")),
            });
        };
        let expires = SystemTime::try_from(*c.expiration()).ok();
        let creds = Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_owned()),
            expires,
            "s3-kms-auditor-assume-role",
        );
        let config = self
            .inner
            .base
            .to_builder()
            .credentials_provider(SharedCredentialsProvider::new(creds))
            .build();
        Ok(Session { config, expires })
    }
}

impl Accounts for AwsAccounts {
    type Reader = AwsReader;

    async fn org_reader(&self) -> Option<Read<Access<AwsReader>>> {
        let arn = match self.inner.org.as_ref()? {
            OrgAccess::Own => {
                let home = self.home_account().unwrap_or_default().to_owned();
                return Some(Ok(Access {
                    reader: self.reader_for(self.inner.base.clone(), &home),
                    assumed_role: false,
                }));
            }
            OrgAccess::Role(arn) => arn.clone(),
        };
        let account = iam_eval::arn::Arn::parse(&arn)
            .map(|a| a.account.to_owned())
            .unwrap_or_default();
        let slot = {
            let Ok(mut sessions) = self.inner.sessions.lock() else {
                return Some(Err(ReadError::Transport {
                    message: "the session cache is poisoned".into(),
                }));
            };
            // Keyed by ARN: the member role's sessions are keyed by account id.
            sessions.entry(arn.clone()).or_default().clone()
        };
        let mut slot = slot.lock().await;
        if let Some(s) = slot.as_ref() {
            if s.expires
                .is_none_or(|e| e > SystemTime::now() + RENEW_BEFORE)
            {
                return Some(Ok(Access {
                    reader: self.reader_for(s.config.clone(), &account),
                    assumed_role: false,
                }));
            }
        }
        let (external_id, session_name) = match &self.inner.role {
            Some(r) => (r.external_id.clone(), r.session_name.clone()),
            None => (None, "s3-kms-auditor".to_owned()),
        };
        let session = match self
            .assume_arn(&arn, external_id.as_deref(), &session_name)
            .await
        {
            Ok(s) => s,
            Err(e) => return Some(Err(e)),
        };
        let reader = self.reader_for(session.config.clone(), &account);
        *slot = Some(session);
        Some(Ok(Access {
            reader,
            assumed_role: true,
        }))
    }

    async fn reader(&self, account: &str) -> Read<Access<AwsReader>> {
        let own = Access {
            reader: self.reader_for(self.inner.base.clone(), account),
            assumed_role: false,
        };
        let Some(role) = &self.inner.role else {
            return Ok(own);
        };
        if self.home_account() == Some(account) {
            return Ok(own);
        }
        // One lock per account: two accounts are assumed into side by side, while two reads
        // of the same account wait for one AssumeRole.
        let slot = {
            let Ok(mut sessions) = self.inner.sessions.lock() else {
                return Err(ReadError::Transport {
                    message: "the session cache is poisoned".into(),
                });
            };
            sessions.entry(account.to_owned()).or_default().clone()
        };
        let mut slot = slot.lock().await;
        if let Some(s) = slot.as_ref() {
            let fresh = s
                .expires
                .is_none_or(|e| e > SystemTime::now() + RENEW_BEFORE);
            if fresh {
                return Ok(Access {
                    reader: self.reader_for(s.config.clone(), account),
                    assumed_role: false,
                });
            }
        }
        let session = self.assume(role, account).await?;
        let reader = self.reader_for(session.config.clone(), account);
        *slot = Some(session);
        Ok(Access {
            reader,
            assumed_role: true,
        })
    }
}

/// The reads of one account.
#[derive(Debug, Clone)]
pub struct AwsReader {
    config: SdkConfig,
    account: String,
    path_style: bool,
}

impl AwsReader {
    fn s3(&self, region: &str) -> aws_sdk_s3::Client {
        let conf = aws_sdk_s3::config::Builder::from(&self.config)
            .region(Region::new(region.to_owned()))
            .force_path_style(self.path_style)
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    fn kms(&self, region: &str) -> aws_sdk_kms::Client {
        let conf = aws_sdk_kms::config::Builder::from(&self.config)
            .region(Region::new(region.to_owned()))
            .build();
        aws_sdk_kms::Client::from_conf(conf)
    }

    fn iam(&self) -> aws_sdk_iam::Client {
        aws_sdk_iam::Client::new(&self.config)
    }

    fn org(&self) -> aws_sdk_organizations::Client {
        aws_sdk_organizations::Client::new(&self.config)
    }
}

/// An SDK error in the collector's terms.
pub(crate) fn read_error<E>(e: SdkError<E, HttpResponse>) -> ReadError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match &e {
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            let code = se
                .err()
                .code()
                .map(str::to_owned)
                .unwrap_or_else(|| match status {
                    403 => "AccessDenied".to_owned(),
                    404 => "NotFound".to_owned(),
                    s => format!("HTTP{s}"),
                });
            let message = se.err().message().map(str::to_owned);
            if status == 403 || is_denied(&code) {
                ReadError::Denied { code, message }
            } else {
                ReadError::Service { code, message }
            }
        }
        _ => ReadError::Transport {
            message: error_chain(&e),
        },
    }
}

fn is_denied(code: &str) -> bool {
    code.contains("AccessDenied")
        || matches!(
            code,
            "Forbidden" | "UnauthorizedOperation" | "AuthorizationError" | "InvalidClientTokenId"
        )
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

/// `Ok(None)` for the error codes that mean "nothing there".
pub(crate) fn none_if<T>(r: Read<T>, codes: &[&str]) -> Read<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(ReadError::Service { code, .. }) if codes.contains(&code.as_str()) => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_configurations_are_values() {
        let missing: Read<u8> = Err(ReadError::Service {
            code: "NoSuchBucketPolicy".into(),
            message: None,
        });
        assert_eq!(none_if(missing, &["NoSuchBucketPolicy"]), Ok(None));
        let denied: Read<u8> = Err(ReadError::Denied {
            code: "AccessDenied".into(),
            message: None,
        });
        assert!(none_if(denied, &["NoSuchBucketPolicy"]).is_err());
        assert!(is_denied("AccessDeniedException"));
        assert!(!is_denied("NoSuchEntity"));
    }
}
