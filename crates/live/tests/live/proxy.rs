//! A fault-injecting HTTP/1.1 proxy on loopback, in front of the test server.
//!
//! The SDK clients under test are pointed at it instead of the server. It keeps client
//! connections alive (so connection reuse shows), forwards each request to the server on a
//! fresh connection, and can, per request: add a fixed latency, or answer in place of the
//! server with a fault (`400 Throttling`, `503 SlowDown`, `500 InternalError`, a dropped
//! connection, or extra latency), for a configurable fraction of requests or for named
//! operations. A faulted request never reaches the server, so it never changes state there.
//!
//! What it saw is its own record, independent of the function's meter: every request with
//! its operation (`service:Operation`, the service as the request was signed for), start and
//! end, the connection it came on, and the fault it got; and the number of TCP connections it
//! accepted. [`by_service`] counts a log per service, which is how the sweep's measurement
//! (`sweep_scale.rs`) counts calls from outside the code it measures.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy does instead of (or before) forwarding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `400` with the protocol's throttling error (`503 SlowDown` for S3, as S3 throttles).
    Throttle,
    /// `503` `SlowDown` / `ServiceUnavailable`.
    Unavailable,
    /// `500` `InternalError` / `InternalFailure`.
    Internal,
    /// The connection is closed after the request, without an answer.
    Drop,
    /// 200 ms more latency, then the server's answer.
    Slow,
}

impl Fault {
    const ALL: [Fault; 5] = [
        Fault::Throttle,
        Fault::Unavailable,
        Fault::Internal,
        Fault::Drop,
        Fault::Slow,
    ];
}

/// The fault plan.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// The fraction of requests that get a fault (chosen evenly among [`Fault::ALL`]).
    pub rate: f64,
    /// Latency added to every request before it is forwarded.
    pub latency: Duration,
    /// Operations (a substring of the request's label) faulted every time.
    pub always: Vec<(String, Fault)>,
    /// Operations faulted the next time only (each entry is used once).
    pub once: Vec<(String, Fault)>,
}

/// One request as the proxy saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// `iam:GetPolicyVersion`, `kms:DescribeKey`, `sqs:SendMessageBatch`,
    /// `s3:GET /bucket?policy`...: the service before the colon.
    pub op: String,
    /// When the request was read.
    pub start: Instant,
    /// When its answer was written (or the connection dropped).
    pub end: Instant,
    /// The number of the connection it came on.
    pub conn: u64,
    /// The fault it got.
    pub fault: Option<Fault>,
}

struct State {
    upstream: String,
    plan: Mutex<Plan>,
    rng: Mutex<u64>,
    log: Mutex<Vec<Seen>>,
    keep_log: bool,
    connections: AtomicU64,
    requests: AtomicU64,
    faults: AtomicU64,
}

/// The running proxy.
#[derive(Clone)]
pub struct Proxy {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    state: Arc<State>,
}

impl Proxy {
    /// A proxy in front of `upstream` (`http://host:port`), with `seed` for the fault choice;
    /// `keep_log` keeps every request (off for long runs, where only counts are kept).
    pub async fn start(upstream: &str, plan: Plan, seed: u64, keep_log: bool) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let state = Arc::new(State {
            upstream: upstream
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .to_owned(),
            plan: Mutex::new(plan),
            rng: Mutex::new(seed | 1),
            log: Mutex::new(Vec::new()),
            keep_log,
            connections: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            faults: AtomicU64::new(0),
        });
        let s = state.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                // Whole answers are written at once; Nagle's algorithm would only add delay.
                let _ = sock.set_nodelay(true);
                let conn = s.connections.fetch_add(1, Ordering::SeqCst) + 1;
                let s = s.clone();
                tokio::spawn(async move {
                    let _ = serve(s, sock, conn).await;
                });
            }
        });
        Proxy {
            endpoint: format!("http://{addr}"),
            state,
        }
    }

    /// Replaces the fault plan.
    pub fn set_plan(&self, plan: Plan) {
        *self.state.plan.lock().unwrap() = plan;
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// Requests received so far (faulted ones included).
    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// Requests answered with a fault so far.
    pub fn faults(&self) -> u64 {
        self.state.faults.load(Ordering::SeqCst)
    }

    /// Takes the log of requests seen since the last call.
    pub fn take_log(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.state.log.lock().unwrap())
    }
}

/// The longest chain of requests each of which started after the previous one ended: the
/// number of sequential round trips, as seen from outside.
pub fn depth(log: &[Seen]) -> usize {
    let mut by_start: Vec<&Seen> = log.iter().collect();
    by_start.sort_by_key(|s| s.start);
    let mut chain = vec![0usize; by_start.len()];
    for i in 0..by_start.len() {
        let before = (0..i)
            .filter(|&j| by_start[j].end <= by_start[i].start)
            .map(|j| chain[j])
            .max()
            .unwrap_or(0);
        chain[i] = before + 1;
    }
    chain.into_iter().max().unwrap_or(0)
}

/// Requests per service (`s3` requests whose path starts with `/<state_bucket>` counted as
/// `state`), with the operations seen in each.
pub fn by_service(
    log: &[Seen],
    state_bucket: &str,
) -> std::collections::BTreeMap<String, (usize, std::collections::BTreeMap<String, usize>)> {
    let mut out: std::collections::BTreeMap<
        String,
        (usize, std::collections::BTreeMap<String, usize>),
    > = std::collections::BTreeMap::new();
    for s in log {
        let (service, op) = s.op.split_once(':').unwrap_or(("?", s.op.as_str()));
        let (service, op) = if service == "s3" {
            let (method, target) = op.split_once(' ').unwrap_or((op, ""));
            let ours = target.starts_with(&format!("/{state_bucket}"));
            // S3 operations by method and subresource (`GET ?policy`), objects by method.
            let sub = target
                .split_once('?')
                .map(|(_, q)| q.split(['=', '&']).next().unwrap_or(""))
                .filter(|q| !q.is_empty() && *q != "x-id");
            let what = match (ours, sub) {
                (true, Some("list-type")) => format!("{method} (list)"),
                (true, _) => method.to_owned(),
                (false, Some(q)) => format!("{method} ?{q}"),
                (false, None) if target == "/" || target.starts_with("/?") => {
                    format!("{method} (list buckets)")
                }
                (false, None) => method.to_owned(),
            };
            (if ours { "state" } else { "s3" }, what)
        } else {
            (service, op.to_owned())
        };
        let entry = out.entry(service.to_owned()).or_default();
        entry.0 += 1;
        *entry.1.entry(op).or_default() += 1;
    }
    out
}

/// The most requests in flight at once.
pub fn peak_overlap(log: &[Seen]) -> usize {
    log.iter()
        .map(|a| {
            log.iter()
                .filter(|b| b.start <= a.start && a.start < b.end)
                .count()
        })
        .max()
        .unwrap_or(0)
}

struct Request {
    head: Vec<u8>,
    body: Vec<u8>,
    method: String,
    target: String,
    headers: Vec<(String, String)>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The service the request was signed for: the service of the SigV4 credential scope
    /// (`Credential=AKID/20261203/us-west-2/sqs/aws4_request`), as the server reads it.
    fn signed_service(&self) -> Option<String> {
        let auth = self.header("authorization")?;
        let scope = auth.split("Credential=").nth(1)?.split(',').next()?;
        let mut parts = scope.split('/');
        let service = parts.nth(3)?;
        (!service.is_empty()).then(|| service.to_owned())
    }

    /// The operation, `service:Operation`: the service of the signature (else guessed from
    /// the request), and `X-Amz-Target` (JSON protocols), `Action=` (query protocols), or the
    /// S3 method and path.
    fn label(&self) -> String {
        let signed = self.signed_service();
        if let Some(t) = self.header("x-amz-target") {
            let service = signed.unwrap_or_else(|| {
                if t.starts_with("TrentService") {
                    "kms"
                } else if t.starts_with("AWSOrganizations") {
                    "organizations"
                } else {
                    "json"
                }
                .to_owned()
            });
            return format!("{service}:{}", t.rsplit('.').next().unwrap_or(t));
        }
        let body = String::from_utf8_lossy(&self.body);
        if let Some(action) = body.split('&').find_map(|kv| kv.strip_prefix("Action=")) {
            let service = signed.unwrap_or_else(|| {
                if body.contains("TopicArn") || action == "Publish" {
                    "sns"
                } else if action.contains("Role") && action.starts_with("Assume") {
                    "sts"
                } else {
                    "iam"
                }
                .to_owned()
            });
            return format!("{service}:{action}");
        }
        format!("s3:{} {}", self.method, self.target)
    }

    fn protocol(&self) -> Protocol {
        if self.header("x-amz-target").is_some() {
            Protocol::Json
        } else if self
            .header("content-type")
            .is_some_and(|c| c.contains("x-www-form-urlencoded"))
        {
            Protocol::Query
        } else {
            Protocol::RestXml
        }
    }
}

#[derive(Clone, Copy)]
enum Protocol {
    Json,
    Query,
    RestXml,
}

async fn read_request(sock: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Request> {
    let end = loop {
        if let Some(p) = find(buf, b"\r\n\r\n") {
            break p + 4;
        }
        let mut chunk = [0u8; 8192];
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head: Vec<u8> = buf.drain(..end).collect();
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let target = first.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < len {
        let mut chunk = [0u8; 8192];
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body: Vec<u8> = buf.drain(..len).collect();
    Some(Request {
        head,
        body,
        method,
        target,
        headers,
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn choose(state: &State, label: &str) -> (Option<Fault>, Duration) {
    let mut plan = state.plan.lock().unwrap();
    let latency = plan.latency;
    if let Some(i) = plan
        .once
        .iter()
        .position(|(op, _)| label.contains(op.as_str()))
    {
        let (_, f) = plan.once.remove(i);
        return (Some(f), latency);
    }
    if let Some((_, f)) = plan
        .always
        .iter()
        .find(|(op, _)| label.contains(op.as_str()))
    {
        return (Some(*f), latency);
    }
    if plan.rate <= 0.0 {
        return (None, latency);
    }
    let mut x = state.rng.lock().unwrap();
    // xorshift64: reproducible from the seed.
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    let r = (*x >> 11) as f64 / (1u64 << 53) as f64;
    if r < plan.rate {
        let i = (*x % Fault::ALL.len() as u64) as usize;
        (Some(Fault::ALL[i]), latency)
    } else {
        (None, latency)
    }
}

async fn serve(state: Arc<State>, mut sock: TcpStream, conn: u64) -> std::io::Result<()> {
    let mut buf = Vec::new();
    loop {
        let Some(req) = read_request(&mut sock, &mut buf).await else {
            return Ok(());
        };
        let start = Instant::now();
        state.requests.fetch_add(1, Ordering::SeqCst);
        let label = req.label();
        let (fault, latency) = choose(&state, &label);
        if fault.is_some_and(|f| f != Fault::Slow) {
            state.faults.fetch_add(1, Ordering::SeqCst);
        }
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let answer = match fault {
            Some(Fault::Drop) => None,
            Some(f @ (Fault::Throttle | Fault::Unavailable | Fault::Internal)) => {
                Some(fault_response(f, req.protocol(), req.method == "HEAD"))
            }
            other => {
                if other == Some(Fault::Slow) {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Some(forward(&state.upstream, &req).await?)
            }
        };
        let written = match &answer {
            Some(bytes) => sock.write_all(bytes).await,
            None => Ok(()),
        };
        if state.keep_log {
            state.log.lock().unwrap().push(Seen {
                op: label,
                start,
                end: Instant::now(),
                conn,
                fault,
            });
        }
        if answer.is_none() || written.is_err() {
            // Dropped: close without a word.
            let _ = sock.shutdown().await;
            return Ok(());
        }
    }
}

fn fault_response(f: Fault, protocol: Protocol, head: bool) -> Vec<u8> {
    let (status, reason, code) = match (f, protocol) {
        (Fault::Throttle, Protocol::RestXml) | (Fault::Unavailable, Protocol::RestXml) => {
            (503, "Slow Down", "SlowDown")
        }
        (Fault::Throttle, Protocol::Query) => (400, "Bad Request", "Throttling"),
        (Fault::Throttle, Protocol::Json) => (400, "Bad Request", "ThrottlingException"),
        (Fault::Unavailable, Protocol::Query) => (503, "Service Unavailable", "ServiceUnavailable"),
        (Fault::Unavailable, Protocol::Json) => {
            (503, "Service Unavailable", "ServiceUnavailableException")
        }
        (_, Protocol::RestXml) => (500, "Internal Server Error", "InternalError"),
        (_, Protocol::Query) => (500, "Internal Server Error", "ServiceFailure"),
        (_, Protocol::Json) => (500, "Internal Server Error", "InternalFailure"),
    };
    let (ctype, body) = match protocol {
        Protocol::Json => (
            "application/x-amz-json-1.1",
            format!(r#"{{"__type":"{code}","message":"injected by the test proxy"}}"#),
        ),
        Protocol::Query => (
            "text/xml",
            format!("<ErrorResponse><Error><Type>Receiver</Type><Code>{code}</Code><Message>injected by the test proxy</Message></Error><RequestId>proxy</RequestId></ErrorResponse>"),
        ),
        Protocol::RestXml => (
            "application/xml",
            format!("<Error><Code>{code}</Code><Message>injected by the test proxy</Message><RequestId>proxy</RequestId></Error>"),
        ),
    };
    let body = if head { String::new() } else { body };
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\n",
        body.len()
    );
    if let Protocol::Json = protocol {
        out.push_str(&format!("x-amzn-errortype: {code}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(&body);
    out.into_bytes()
}

/// Sends the request to the server on a fresh connection (`Connection: close`) and returns
/// the answer re-framed for a kept-alive client connection.
async fn forward(upstream: &str, req: &Request) -> std::io::Result<Vec<u8>> {
    let mut up = TcpStream::connect(upstream).await?;
    up.set_nodelay(true)?;
    let head = String::from_utf8_lossy(&req.head);
    let mut out = String::new();
    for (i, line) in head.split("\r\n").enumerate() {
        if line.is_empty() {
            continue;
        }
        if i > 0 {
            let name = line.split(':').next().unwrap_or_default().trim();
            if name.eq_ignore_ascii_case("connection") || name.eq_ignore_ascii_case("keep-alive") {
                continue;
            }
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&req.body);
    up.write_all(&bytes).await?;
    let mut raw = Vec::new();
    up.read_to_end(&mut raw).await?;
    let end = find(&raw, b"\r\n\r\n")
        .map(|p| p + 4)
        .ok_or_else(|| std::io::Error::other("no response head from the server"))?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut body = raw[end..].to_vec();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line.split_once(' ').map_or("200 OK", |(_, s)| s);
    let mut headers = String::new();
    let mut chunked = false;
    let mut length: Option<String> = None;
    for line in lines.filter(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        let name_l = name.trim().to_ascii_lowercase();
        match name_l.as_str() {
            "connection" | "keep-alive" => {}
            "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
            "content-length" => length = Some(value.trim().to_owned()),
            _ => {
                headers.push_str(line);
                headers.push_str("\r\n");
            }
        }
    }
    if chunked {
        body = dechunk(&body);
    }
    let length = if req.method == "HEAD" {
        body.clear();
        length.unwrap_or_else(|| "0".into())
    } else {
        body.len().to_string()
    };
    let mut out =
        format!("HTTP/1.1 {status}\r\n{headers}content-length: {length}\r\n\r\n").into_bytes();
    out.extend_from_slice(&body);
    Ok(out)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(p) = find(data, b"\r\n") {
        let size_text = String::from_utf8_lossy(&data[..p]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16)
            .unwrap_or(0);
        data = &data[p + 2..];
        if size == 0 || data.len() < size {
            break;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[(size + 2).min(data.len())..];
    }
    out
}
