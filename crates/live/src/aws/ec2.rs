//! EC2 reads: the VPC endpoint a request came through, with its policy
//! (`ec2:DescribeVpcEndpoints`).
//!
//! EC2 is called through a small client of its Query protocol, written here for this one
//! action, rather than the EC2 SDK crate: that crate has thousands of operations and its build
//! alone took longer than every other SDK crate of the collector together (docs/live.md, "VPC
//! endpoints"). The request is the one the SDK sends: a form-encoded `POST` of `Action`,
//! `Version` and `VpcEndpointId.1` to the Regional endpoint (`auditor::refs::ec2_endpoint`, or
//! the configured test endpoint), signed with Signature Version 4 by `aws-sigv4` (the SDK's
//! own signer) with the account's credentials, and sent over the SDK's HTTP stack
//! (`aws-smithy-http-client`, rustls). The answer is XML, read with `aws-smithy-xml`
//! (<https://docs.aws.amazon.com/AWSEC2/latest/APIReference/Query-Requests.html>,
//! <https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeVpcEndpoints.html>).
//!
//! Errors are classified as the SDK reads' are ([`super::service_error`]); throttling, 5xx
//! answers and transport failures are retried with the SDK's policy: up to the configured
//! attempts, with full-jitter exponential back-off, within the configured timeouts.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use aws_config::retry::RetryConfig;
use aws_credential_types::provider::ProvideCredentials;
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::http::HttpConnector;
use aws_smithy_runtime_api::client::identity::Identity;
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use aws_smithy_xml::decode::{try_data, Document, ScopedDecoder};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{Map, Value};

use super::{error_chain, none_if, service_error, AwsReader, Clients, RENEW_BEFORE};
use crate::ports::{NetworkReads, Read, ReadError};

/// The EC2 API version every Query request names.
const VERSION: &str = "2016-11-15";

/// The body's media type, as the SDK sends it for the Query protocol.
const FORM: &str = "application/x-www-form-urlencoded";

/// What form encoding leaves as it is: the unreserved characters of RFC 3986.
const FORM_KEEP: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The fields of an endpoint the snapshot keeps: the element of the Query answer
/// (<https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_VpcEndpoint.html>) and the key
/// `aws ec2 describe-vpc-endpoints` prints it under (docs/snapshot-format.md, `vpc_endpoints`).
const FIELDS: [(&str, &str); 6] = [
    ("vpcEndpointId", "VpcEndpointId"),
    ("vpcId", "VpcId"),
    ("ownerId", "OwnerId"),
    ("serviceName", "ServiceName"),
    ("vpcEndpointType", "VpcEndpointType"),
    ("policyDocument", "PolicyDocument"),
];

impl NetworkReads for AwsReader {
    async fn vpc_endpoint(&self, region: &str, id: &str) -> Read<Option<Value>> {
        self.ec2(region).describe_vpc_endpoints(id).await
    }
}

/// The EC2 client of one account in one Region.
#[derive(Debug)]
pub(super) struct Ec2<'a> {
    pub(super) clients: &'a Clients,
    pub(super) region: &'a str,
}

impl Ec2<'_> {
    /// `DescribeVpcEndpoints` of one endpoint: its entry in `describe-vpc-endpoints` shape, or
    /// `None` when the account has no endpoint with that id.
    pub(super) async fn describe_vpc_endpoints(&self, id: &str) -> Read<Option<Value>> {
        let body = form(&[
            ("Action", "DescribeVpcEndpoints"),
            ("Version", VERSION),
            ("VpcEndpointId.1", id),
        ]);
        // EC2 answers an id the account does not have with this error rather than an empty
        // list (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html).
        let Some(xml) = none_if(self.call(&body).await, &["InvalidVpcEndpointId.NotFound"])? else {
            return Ok(None);
        };
        endpoint_of(&xml, id).map_err(|e| ReadError::Transport {
            message: format!("unreadable DescribeVpcEndpoints answer: {e}"),
        })
    }

    /// One Query call, retried, within the operation timeout: the answer's body.
    async fn call(&self, body: &str) -> Read<String> {
        let op = self
            .clients
            .config
            .timeout_config()
            .and_then(|t| t.operation_timeout());
        match op {
            Some(limit) => tokio::time::timeout(limit, self.attempts(body))
                .await
                .unwrap_or_else(|_| {
                    Err(ReadError::Transport {
                        message: format!("EC2 did not answer within {limit:?}"),
                    })
                }),
            None => self.attempts(body).await,
        }
    }

    /// Attempts until an answer that is not a failure, or the configured attempts are spent.
    async fn attempts(&self, body: &str) -> Read<String> {
        let retry = self.clients.config.retry_config();
        let max = retry.map_or(1, RetryConfig::max_attempts).max(1);
        let mut attempt = 1;
        loop {
            self.clients.attempts.0.fetch_add(1, Ordering::Relaxed);
            match self.attempt(body).await {
                Err(e) if e.is_failure() && attempt < max => {
                    tracing::debug!(attempt, error = %e, "EC2 call retried");
                    tokio::time::sleep(backoff(retry, attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// One HTTP exchange, within the attempt timeout.
    async fn attempt(&self, body: &str) -> Read<String> {
        let c = self.clients;
        let credentials = self.credentials().await?;
        let url = match c.config.endpoint_url() {
            Some(u) => format!("{}/", u.trim_end_matches('/')),
            None => auditor::refs::ec2_endpoint(self.region),
        };
        let now = c
            .config
            .time_source()
            .map_or_else(SystemTime::now, |t| t.now());
        let request = signed_request(&url, self.region, body, &credentials, now)
            .map_err(|message| ReadError::Transport { message })?;
        let connector = c.ec2_connector();
        let exchange = async {
            let response = connector
                .call(request)
                .await
                .map_err(|e| ReadError::Transport {
                    message: error_chain(&e),
                })?;
            let status = response.status().as_u16();
            let bytes = ByteStream::new(response.into_body())
                .collect()
                .await
                .map_err(|e| ReadError::Transport {
                    message: error_chain(&e),
                })?
                .into_bytes();
            Ok::<_, ReadError>((status, bytes))
        };
        let limit = c
            .config
            .timeout_config()
            .and_then(|t| t.operation_attempt_timeout());
        let (status, bytes) = match limit {
            Some(limit) => tokio::time::timeout(limit, exchange).await.map_err(|_| {
                ReadError::Transport {
                    message: format!("EC2 did not answer within {limit:?} (one attempt)"),
                }
            })??,
            None => exchange.await?,
        };
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if (200..300).contains(&status) {
            Ok(text)
        } else {
            Err(error_of(status, &text))
        }
    }

    /// The account's credentials, kept until five minutes before they expire (the SDK clients
    /// keep theirs in the SDK's identity cache, which a hand-written call cannot reach).
    async fn credentials(&self) -> Read<Credentials> {
        let c = self.clients;
        let fresh = |k: &Credentials| {
            k.expiry()
                .is_none_or(|e| e > SystemTime::now() + RENEW_BEFORE)
        };
        if let Ok(cached) = c.ec2_credentials.lock() {
            if let Some(k) = cached.as_ref().filter(|k| fresh(k)) {
                return Ok(k.clone());
            }
        }
        let Some(provider) = c.config.credentials_provider() else {
            return Err(ReadError::Transport {
                message: "no credentials provider for EC2".into(),
            });
        };
        let k = provider
            .provide_credentials()
            .await
            .map_err(|e| ReadError::Transport {
                message: format!("no credentials for EC2: {}", error_chain(&e)),
            })?;
        if let Ok(mut cached) = c.ec2_credentials.lock() {
            *cached = Some(k.clone());
        }
        Ok(k)
    }
}

/// A form body (`k=v&k=v`), each part percent-encoded.
fn form(params: &[(&str, &str)]) -> String {
    params
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                utf8_percent_encode(k, FORM_KEEP),
                utf8_percent_encode(v, FORM_KEEP)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The `POST` of `body` to `url`, signed for EC2 in `region` at `time`: `Authorization`,
/// `X-Amz-Date`, and `X-Amz-Security-Token` for session credentials.
fn signed_request(
    url: &str,
    region: &str,
    body: &str,
    credentials: &Credentials,
    time: SystemTime,
) -> Result<HttpRequest, String> {
    let identity = Identity::from(credentials.clone());
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(auditor::refs::EC2_SIGNING_NAME)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| format!("signing parameters: {e}"))?
        .into();
    let headers = [("content-type", FORM)];
    let signable = SignableRequest::new(
        "POST",
        url,
        headers.iter().copied(),
        SignableBody::Bytes(body.as_bytes()),
    )
    .map_err(|e| format!("request to sign ({url}): {e}"))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| format!("signing: {e}"))?
        .into_parts();
    let mut request = HttpRequest::new(SdkBody::from(body.to_owned()));
    request
        .set_method("POST")
        .map_err(|e| format!("method: {e}"))?;
    request
        .set_uri(url)
        .map_err(|e| format!("endpoint `{url}`: {e}"))?;
    let (signing_headers, _params) = instructions.into_parts();
    let headers = request.headers_mut();
    headers
        .try_insert("content-type", FORM)
        .map_err(|e| format!("header: {e}"))?;
    for h in signing_headers {
        headers
            .try_insert(h.name(), h.value().to_owned())
            .map_err(|e| format!("header {}: {e}", h.name()))?;
    }
    Ok(request)
}

/// The wait before attempt `attempt + 1`: full jitter over the exponential back-off the SDK's
/// standard retry uses (initial back-off doubled per attempt, capped), so that callers
/// throttled together do not come back together
/// (<https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html>).
fn backoff(retry: Option<&RetryConfig>, attempt: u32) -> Duration {
    let (initial, cap) = retry.map_or((Duration::from_secs(1), Duration::from_secs(20)), |r| {
        (r.initial_backoff(), r.max_backoff())
    });
    let exponential = initial
        .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
        .min(cap);
    exponential.mul_f64(jitter())
}

/// A number in `[0, 1)`, different on every call: std's per-instance random hash keys
/// (enough for spreading retries; no random-number crate is needed for that).
fn jitter() -> f64 {
    let mut h = RandomState::new().build_hasher();
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    h.write_u128(nanos);
    // The top 53 bits, exactly representable in an f64, over 2^53.
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// The first `item` of `vpcEndpointSet` whose `vpcEndpointId` is `id`, in
/// `describe-vpc-endpoints` shape; `None` when the set does not list it.
fn endpoint_of(xml: &str, id: &str) -> Result<Option<Value>, String> {
    let mut doc = Document::new(xml);
    let mut root = doc.root_element().map_err(|e| e.to_string())?;
    if !root.start_el().matches("DescribeVpcEndpointsResponse") {
        return Err(format!(
            "expected DescribeVpcEndpointsResponse, found `{}`",
            root.start_el().local()
        ));
    }
    while let Some(mut set) = root.next_tag() {
        if !set.start_el().matches("vpcEndpointSet") {
            continue;
        }
        while let Some(mut item) = set.next_tag() {
            if !item.start_el().matches("item") {
                continue;
            }
            let entry = endpoint_entry(&mut item)?;
            if entry.get("VpcEndpointId").and_then(Value::as_str) == Some(id) {
                return Ok(Some(Value::Object(entry)));
            }
        }
    }
    Ok(None)
}

/// One `item` of `vpcEndpointSet`: the [`FIELDS`] among its direct children (the lists inside
/// it, `routeTableIdSet`, `tagSet`..., have `item`s of their own and are skipped whole).
fn endpoint_entry(item: &mut ScopedDecoder<'_, '_>) -> Result<Map<String, Value>, String> {
    let mut entry = Map::new();
    while let Some(mut field) = item.next_tag() {
        let Some(key) = FIELDS
            .iter()
            .find(|(element, _)| field.start_el().matches(element))
            .map(|(_, key)| *key)
        else {
            continue;
        };
        let text = try_data(&mut field).map_err(|e| format!("{key}: {e}"))?;
        if !text.is_empty() {
            entry.insert(key.to_owned(), Value::String(text.into_owned()));
        }
    }
    Ok(entry)
}

/// An EC2 error answer (`<Response><Errors><Error><Code>…`), in the collector's terms; a body
/// that is not one still gets its status's meaning.
fn error_of(status: u16, xml: &str) -> ReadError {
    let (code, message) = error_fields(xml).unwrap_or_default();
    service_error(status, code.as_deref(), message)
}

fn error_fields(xml: &str) -> Option<(Option<String>, Option<String>)> {
    let mut doc = Document::new(xml);
    let mut root = doc.root_element().ok()?;
    let (mut code, mut message) = (None, None);
    while let Some(mut errors) = root.next_tag() {
        if !errors.start_el().matches("Errors") {
            continue;
        }
        while let Some(mut error) = errors.next_tag() {
            if !error.start_el().matches("Error") {
                continue;
            }
            while let Some(mut field) = error.next_tag() {
                if field.start_el().matches("Code") {
                    code = try_data(&mut field).ok().map(|t| t.into_owned());
                } else if field.start_el().matches("Message") {
                    message = try_data(&mut field).ok().map(|t| t.into_owned());
                }
            }
            return Some((code, message));
        }
    }
    Some((code, message))
}

#[cfg(test)]
mod tests;
