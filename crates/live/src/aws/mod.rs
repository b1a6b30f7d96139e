//! The ports implemented with the AWS SDK: the only code that names `aws_sdk_*`, and the one
//! place that speaks an AWS API without it (EC2's Query API, `ec2.rs`).
//!
//! [`AwsAccounts`] reaches each account with the function's own credentials, or with a
//! session of the configured read-only role (`sts:AssumeRole` with an ExternalId), cached
//! until five minutes before it expires. [`AwsReader`] makes the reads of one account;
//! [`SnsPublisher`] sends notifications. SDK errors become [`ReadError`]s here; "no such
//! configuration" answers become `Ok(None)`; IAM documents are percent-decoded.

mod dynamo;
mod ec2;
mod iam;
mod inventory;
mod kms;
mod org;
mod s3;
mod s3control;
mod sns;
mod sqs;
mod state;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::retry::RetryPartition;
use aws_sdk_s3::config::ConfigBag;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::{
    HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;

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

/// The retry policy of every AWS call: adaptive mode (standard retries with exponential
/// back-off, plus a client-side rate limiter that slows down when AWS throttles), up to
/// `max_attempts` attempts; 1 disables retries. Throttling, 5xx answers, timeouts and reset
/// connections are retried; what still fails is a failure of the read, never evidence
/// (<https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html>).
pub fn retry_config(max_attempts: u32) -> RetryConfig {
    if max_attempts <= 1 {
        RetryConfig::disabled()
    } else {
        RetryConfig::adaptive().with_max_attempts(max_attempts)
    }
}

/// The bounds on one AWS call: a read that hangs must fail the invocation (and be retried)
/// well before Lambda's own timeout (120 s in `template.yaml`) ends it without a word.
pub fn timeout_config() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(10))
        .operation_timeout(Duration::from_secs(25))
        .build()
}

/// The one HTTP client (TLS with rustls, one connection pool) every SDK client of the process
/// shares. Without it each service client builds its own default client with its own pool,
/// and every client built per read opened a new TCP (and TLS) connection.
pub fn shared_http_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .build_https()
}

/// The base SDK configuration: the standard credential chain (cached by the SDK until shortly
/// before expiry), Region, retries, timeouts and the shared HTTP client.
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
    loader
        .http_client(shared_http_client())
        .retry_config(retry_config(settings.max_attempts))
        .timeout_config(timeout_config())
        .load()
        .await
}

/// Counts every HTTP attempt of the clients it is installed in (first tries and retries).
#[derive(Debug, Clone, Default)]
struct CountAttempts(Arc<AtomicU64>);

impl Intercept for CountAttempts {
    fn name(&self) -> &'static str {
        "s3ka-count-attempts"
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// The EC2 connection pool of one [`AwsAccounts`], shared by the EC2 reads of every account
/// it reaches, built at the first of them (see [`Clients::ec2_connector`]).
type Ec2Connector = Arc<OnceLock<SharedHttpConnector>>;

/// The SDK clients of one account (one set of credentials), built once and reused by every
/// read and every warm invocation: S3 and KMS per Region, IAM and Organizations once.
#[derive(Debug)]
struct Clients {
    config: SdkConfig,
    path_style: bool,
    attempts: CountAttempts,
    /// The retry partition suffix of these accounts (see [`partition`]).
    partition: u64,
    /// The HTTP connector of the hand-written EC2 client (`ec2.rs`).
    ec2_http: Ec2Connector,
    /// The credentials the EC2 client signs with, until shortly before they expire.
    ec2_credentials: Mutex<Option<Credentials>>,
    s3: Mutex<HashMap<String, aws_sdk_s3::Client>>,
    kms: Mutex<HashMap<String, aws_sdk_kms::Client>>,
    s3control: Mutex<HashMap<String, aws_sdk_s3control::Client>>,
    iam: OnceLock<aws_sdk_iam::Client>,
    org: OnceLock<aws_sdk_organizations::Client>,
}

impl Clients {
    fn new(
        config: SdkConfig,
        path_style: bool,
        attempts: CountAttempts,
        partition: u64,
        ec2_http: Ec2Connector,
    ) -> Clients {
        Clients {
            config,
            path_style,
            attempts,
            partition,
            ec2_http,
            ec2_credentials: Mutex::new(None),
            s3: Mutex::new(HashMap::new()),
            kms: Mutex::new(HashMap::new()),
            s3control: Mutex::new(HashMap::new()),
            iam: OnceLock::new(),
            org: OnceLock::new(),
        }
    }

    /// The HTTP connector of the EC2 client: the SDK's own (`aws-smithy-http-client`, rustls,
    /// the same connect timeout), one pool per [`AwsAccounts`]. The SDK's shared client only
    /// hands out connectors to a full SDK runtime (`HttpClient::http_connector` takes its
    /// runtime components), so the EC2 client builds its connector from the same crate.
    fn ec2_connector(&self) -> SharedHttpConnector {
        self.ec2_http
            .get_or_init(|| {
                let mut settings = HttpConnectorSettings::builder();
                if let Some(t) = self.config.timeout_config() {
                    settings.set_connect_timeout(t.connect_timeout());
                    settings.set_read_timeout(t.read_timeout());
                }
                SharedHttpConnector::new(
                    aws_smithy_http_client::Connector::builder()
                        .connector_settings(settings.build())
                        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                            aws_smithy_http_client::tls::rustls_provider::CryptoMode::AwsLc,
                        ))
                        .build(),
                )
            })
            .clone()
    }
}

/// The retry partition of one service (and Region) for one [`AwsAccounts`]: the retry quota
/// and adaptive mode's rate limiter are kept per partition, and the SDK's default partition
/// (the service name) is process-wide. In the Lambda there is one `AwsAccounts` per
/// container, so this changes nothing there; two in one process (tests, the CLI) no longer
/// slow each other down.
fn partition(service: &str, region: Option<&str>, id: u64) -> RetryPartition {
    RetryPartition::new(match region {
        Some(r) => format!("{service}-{r}-s3ka-{id}"),
        None => format!("{service}-s3ka-{id}"),
    })
}

/// Numbers the [`AwsAccounts`] of the process, for [`partition`].
static PARTITIONS: AtomicU64 = AtomicU64::new(0);

/// The client of `region` in `map`, built by `build` the first time.
fn per_region<C: Clone>(
    map: &Mutex<HashMap<String, C>>,
    region: &str,
    build: impl FnOnce() -> C,
) -> C {
    match map.lock() {
        Ok(mut m) => m.entry(region.to_owned()).or_insert_with(build).clone(),
        // A poisoned lock only loses the reuse, not the read.
        Err(_) => build(),
    }
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
    clients: Arc<Clients>,
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
    /// The clients of the function's own credentials.
    own: Arc<Clients>,
    attempts: CountAttempts,
    path_style: bool,
    role: Option<RoleSpec>,
    org: Option<OrgAccess>,
    home: OnceLock<String>,
    /// The retry partition suffix (see [`partition`]).
    partition: u64,
    /// The EC2 connection pool every account's clients share.
    ec2_http: Ec2Connector,
    sessions: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Session>>>>>,
    sts: aws_sdk_sts::Client,
}

impl AwsAccounts {
    /// Accounts reached from `base`; with a `role`, every account other than the home account
    /// is read through a session of that role.
    pub fn new(base: SdkConfig, role: Option<RoleSpec>, path_style: bool) -> AwsAccounts {
        let attempts = CountAttempts::default();
        let id = PARTITIONS.fetch_add(1, Ordering::Relaxed);
        let sts = aws_sdk_sts::Client::from_conf(
            aws_sdk_sts::config::Builder::from(&base)
                .interceptor(attempts.clone())
                .retry_partition(partition("sts", None, id))
                .build(),
        );
        let ec2_http = Ec2Connector::default();
        let own = Arc::new(Clients::new(
            base.clone(),
            path_style,
            attempts.clone(),
            id,
            ec2_http.clone(),
        ));
        AwsAccounts {
            inner: Arc::new(Inner {
                base,
                own,
                attempts,
                partition: id,
                ec2_http,
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

    fn reader_for(&self, clients: &Arc<Clients>, account: &str) -> AwsReader {
        AwsReader {
            clients: clients.clone(),
            account: account.to_owned(),
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
        let clients = Arc::new(Clients::new(
            config,
            self.inner.path_style,
            self.inner.attempts.clone(),
            self.inner.partition,
            self.inner.ec2_http.clone(),
        ));
        Ok(Session { clients, expires })
    }
}

impl Accounts for AwsAccounts {
    type Reader = AwsReader;

    async fn org_reader(&self) -> Option<Read<Access<AwsReader>>> {
        let arn = match self.inner.org.as_ref()? {
            OrgAccess::Own => {
                let home = self.home_account().unwrap_or_default().to_owned();
                return Some(Ok(Access {
                    reader: self.reader_for(&self.inner.own, &home),
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
                    reader: self.reader_for(&s.clients, &account),
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
        let reader = self.reader_for(&session.clients, &account);
        *slot = Some(session);
        Some(Ok(Access {
            reader,
            assumed_role: true,
        }))
    }

    async fn reader(&self, account: &str) -> Read<Access<AwsReader>> {
        let own = Access {
            reader: self.reader_for(&self.inner.own, account),
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
                    reader: self.reader_for(&s.clients, account),
                    assumed_role: false,
                });
            }
        }
        let session = self.assume(role, account).await?;
        let reader = self.reader_for(&session.clients, account);
        *slot = Some(session);
        Ok(Access {
            reader,
            assumed_role: true,
        })
    }

    fn attempts(&self) -> u64 {
        self.inner.attempts.0.load(Ordering::Relaxed)
    }
}

/// The reads of one account, through that account's cached clients.
#[derive(Debug, Clone)]
pub struct AwsReader {
    clients: Arc<Clients>,
    account: String,
}

impl AwsReader {
    fn s3(&self, region: &str) -> aws_sdk_s3::Client {
        let c = &self.clients;
        per_region(&c.s3, region, || {
            aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(&c.config)
                    .region(Region::new(region.to_owned()))
                    .force_path_style(c.path_style)
                    .interceptor(c.attempts.clone())
                    .retry_partition(partition("s3", Some(region), c.partition))
                    .build(),
            )
        })
    }

    fn s3control(&self, region: &str) -> aws_sdk_s3control::Client {
        let c = &self.clients;
        per_region(&c.s3control, region, || {
            let mut conf = aws_sdk_s3control::config::Builder::from(&c.config)
                .region(Region::new(region.to_owned()))
                .interceptor(c.attempts.clone())
                .retry_partition(partition("s3control", Some(region), c.partition));
            // S3 Control puts the account id in the host (`<account>.<endpoint host>`), which
            // a test server on a loopback address cannot answer; it reads the account from the
            // `x-amz-account-id` header instead, so the configured endpoint is used as it is.
            if let (true, Some(url)) = (c.path_style, c.config.endpoint_url()) {
                conf = conf.endpoint_resolver(s3control::PlainEndpoint(url.to_owned()));
            }
            aws_sdk_s3control::Client::from_conf(conf.build())
        })
    }

    fn kms(&self, region: &str) -> aws_sdk_kms::Client {
        let c = &self.clients;
        per_region(&c.kms, region, || {
            aws_sdk_kms::Client::from_conf(
                aws_sdk_kms::config::Builder::from(&c.config)
                    .region(Region::new(region.to_owned()))
                    .interceptor(c.attempts.clone())
                    .retry_partition(partition("kms", Some(region), c.partition))
                    .build(),
            )
        })
    }

    fn iam(&self) -> &aws_sdk_iam::Client {
        let c = &self.clients;
        c.iam.get_or_init(|| {
            aws_sdk_iam::Client::from_conf(
                aws_sdk_iam::config::Builder::from(&c.config)
                    .interceptor(c.attempts.clone())
                    .retry_partition(partition("iam", None, c.partition))
                    .build(),
            )
        })
    }

    /// The EC2 client of `region` (a hand-written Query client: `ec2.rs`).
    fn ec2<'a>(&'a self, region: &'a str) -> ec2::Ec2<'a> {
        ec2::Ec2 {
            clients: &self.clients,
            region,
        }
    }

    fn org(&self) -> &aws_sdk_organizations::Client {
        let c = &self.clients;
        c.org.get_or_init(|| {
            aws_sdk_organizations::Client::from_conf(
                aws_sdk_organizations::config::Builder::from(&c.config)
                    .interceptor(c.attempts.clone())
                    .retry_partition(partition("organizations", None, c.partition))
                    .build(),
            )
        })
    }
}

/// An SDK error in the collector's terms.
pub(crate) fn read_error<E>(e: SdkError<E, HttpResponse>) -> ReadError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match &e {
        SdkError::ServiceError(se) => service_error(
            se.raw().status().as_u16(),
            se.err().code(),
            se.err().message().map(str::to_owned),
        ),
        _ => ReadError::Transport {
            message: error_chain(&e),
        },
    }
}

/// An error answer of AWS (HTTP `status`, the error `code` if the body names one), in the
/// collector's terms: refused, come back later, or another answer. The SDK reads and the
/// hand-written EC2 client share it.
pub(crate) fn service_error(status: u16, code: Option<&str>, message: Option<String>) -> ReadError {
    let code = code.map(str::to_owned).unwrap_or_else(|| match status {
        403 => "AccessDenied".to_owned(),
        404 => "NotFound".to_owned(),
        s => format!("HTTP{s}"),
    });
    if status == 403 || is_denied(&code) {
        ReadError::Denied { code, message }
    } else if status == 429 || status >= 500 || is_transient(&code) {
        ReadError::Transient { code, message }
    } else {
        ReadError::Service { code, message }
    }
}

fn is_denied(code: &str) -> bool {
    code.contains("AccessDenied")
        || matches!(
            code,
            "Forbidden" | "UnauthorizedOperation" | "AuthorizationError" | "InvalidClientTokenId"
        )
}

/// Error codes that mean "come back later", whatever the HTTP status: throttling and
/// server-side failures, as the SDKs' retry behaviour lists them
/// (<https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html>), and the
/// services' own (S3 `SlowDown`, KMS `KMSInternalException`, IAM `ServiceFailure`).
fn is_transient(code: &str) -> bool {
    code.contains("Throttl")
        || matches!(
            code,
            "TooManyRequestsException"
                | "RequestLimitExceeded"
                | "BandwidthLimitExceeded"
                | "SlowDown"
                | "PriorRequestNotComplete"
                | "RequestTimeout"
                | "RequestTimeoutException"
                | "InternalError"
                | "InternalFailure"
                | "ServiceUnavailable"
                | "ServiceUnavailableException"
                | "ServiceFailure"
                | "ServiceException"
                | "KMSInternalException"
                | "DependencyTimeoutException"
                | "TransactionInProgressException"
                | "ConcurrentModificationException"
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
        for code in [
            "Throttling",
            "ThrottlingException",
            "SlowDown",
            "InternalError",
        ] {
            assert!(is_transient(code), "{code}");
        }
        assert!(!is_transient("NoSuchEntity"));
        assert!(!is_transient("AccessDenied"));
    }
}
