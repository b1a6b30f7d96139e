//! The test server, accounts on it, and the topic-to-queue plumbing that reads published
//! messages back.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use serde_json::Value;

pub const REGION: &str = "us-west-2";
/// The account moto gives requests signed with plain test credentials: the auditor's own.
pub const HOME: &str = "123456789012";
pub const ROLE: &str = "s3-kms-auditor-read";
pub const EXTERNAL_ID: &str = "s3ka-test-external-id";

/// The server's endpoint. Without it the test fails: these tests never pass by skipping
/// (`scripts/test` starts the server and sets `S3KA_TEST_ENDPOINT`).
pub fn endpoint(test: &str) -> String {
    match std::env::var("S3KA_TEST_ENDPOINT") {
        Ok(e) if !e.is_empty() => e,
        _ => panic!("{test}: S3KA_TEST_ENDPOINT is not set: run the tests through scripts/test, which starts the AWS-compatible server"),
    }
}

/// An AWS-compatible server with plain credentials (the home account).
pub struct Moto {
    pub endpoint: String,
    pub base: SdkConfig,
}

impl Moto {
    pub async fn connect(test: &str) -> Moto {
        let endpoint = endpoint(test);
        let base = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(&endpoint)
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "testing", "testing", None, None, "test",
            )))
            // Unimplemented calls must fail at once, not after back-off.
            .retry_config(RetryConfig::disabled())
            .load()
            .await;
        Moto { endpoint, base }
    }

    /// Credentials in `account`, the way production gets them: AssumeRole.
    pub async fn account(&self, account: &str) -> SdkConfig {
        let sts = aws_sdk_sts::Client::new(&self.base);
        let out = sts
            .assume_role()
            .role_arn(format!("arn:aws:iam::{account}:role/test-admin"))
            .role_session_name("setup")
            .send()
            .await
            .expect("assume role on the test server");
        let c = out.credentials().expect("credentials");
        self.base
            .to_builder()
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                c.access_key_id(),
                c.secret_access_key(),
                Some(c.session_token().to_owned()),
                None,
                "test",
            )))
            .build()
    }

    /// [`Moto::connect`], under the name the SNS tests use.
    pub async fn require(test: &str) -> Moto {
        Moto::connect(test).await
    }

    pub fn s3(cfg: &SdkConfig) -> aws_sdk_s3::Client {
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(cfg)
                .force_path_style(true)
                .build(),
        )
    }
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A number no other test of any run on this server has used (state is never reset).
fn serial() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = u128::from(COUNTER.fetch_add(1, Ordering::SeqCst));
    ((nanos / 1000 + n * 7919 + u128::from(std::process::id())) % 1_000_000_000) as u64
}

/// A fresh 12-digit account id.
pub fn account_id() -> String {
    format!(
        "{:012}",
        100_000_000_000u64 + serial() * 97 % 800_000_000_000
    )
}

/// A fresh bucket-safe name.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", serial())
}

/// An SNS topic in the home account with an SQS queue subscribed to it.
pub struct Inbox {
    pub topic_arn: String,
    queue_url: String,
    sqs: aws_sdk_sqs::Client,
}

impl Inbox {
    pub async fn new(m: &Moto) -> Inbox {
        Inbox::subscribed(m, None, &[]).await
    }

    /// A fresh queue subscribed to `topic_arn` (a fresh topic when `None`) with the given
    /// subscription attributes (`FilterPolicy`, `FilterPolicyScope`, ...). On AWS the queue
    /// would also need a policy letting the topic send to it; moto does not check one.
    pub async fn subscribed(
        m: &Moto,
        topic_arn: Option<&str>,
        attributes: &[(&str, &str)],
    ) -> Inbox {
        let sns = aws_sdk_sns::Client::new(&m.base);
        let sqs = aws_sdk_sqs::Client::new(&m.base);
        let name = unique("s3ka-inbox");
        let topic_arn = match topic_arn {
            Some(t) => t.to_owned(),
            None => sns
                .create_topic()
                .name(&name)
                .send()
                .await
                .expect("create topic")
                .topic_arn()
                .expect("topic arn")
                .to_owned(),
        };
        let queue_url = sqs
            .create_queue()
            .queue_name(&name)
            .send()
            .await
            .expect("create queue")
            .queue_url()
            .expect("queue url")
            .to_owned();
        let queue_arn = format!("arn:aws:sqs:{REGION}:{HOME}:{name}");
        let mut subscribe = sns
            .subscribe()
            .topic_arn(&topic_arn)
            .protocol("sqs")
            .endpoint(&queue_arn);
        for (k, v) in attributes {
            subscribe = subscribe.attributes(*k, *v);
        }
        subscribe.send().await.expect("subscribe");
        Inbox {
            topic_arn,
            queue_url,
            sqs,
        }
    }

    /// The next published message, as the SNS envelope SQS subscribers receive.
    pub async fn next(&self) -> Value {
        match self.try_next(20).await {
            Some(v) => v,
            None => panic!("no message reached the queue"),
        }
    }

    /// The next published message within `attempts` polls of about a second, or `None`.
    pub async fn try_next(&self, attempts: u32) -> Option<Value> {
        for _ in 0..attempts {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(1)
                .wait_time_seconds(1)
                .send()
                .await
                .expect("receive");
            if let Some(m) = out.messages().first() {
                if let Some(h) = m.receipt_handle() {
                    let _ = self
                        .sqs
                        .delete_message()
                        .queue_url(&self.queue_url)
                        .receipt_handle(h)
                        .send()
                        .await;
                }
                return Some(serde_json::from_str(m.body().unwrap_or("{}")).expect("SNS envelope"));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        None
    }
}
