//! The node's HTTP API: `GET /` (the live dashboard, a read-only page that
//! polls the JSON below; its files are embedded in the binary), `GET /status`
//! (JSON), `GET /metrics` (Prometheus text), and on a distributor
//! `GET /attempts[?last=N]` (the newest hand-outs and their fates, at most
//! [`MAX_ATTEMPTS`]), `GET
//! /proofs/b<batch>/j<index>` (a job's accepted proof in snarkjs JSON), `POST
//! /batch` (a batch of transfers) and `POST /batch/witnesses` (a batch of
//! circom witness files). A deliberately small HTTP/1.1 server: one request
//! per connection, bounded header and body sizes, a deadline per connection,
//! a cap on connections at once.
//!
//! The API is for the operator, and a web page the operator visits must not
//! be able to use it: every `POST` needs the bearer [`Token`], a request
//! whose `Host` is not an address of this node (DNS rebinding) is refused,
//! and so is a cross-origin `Origin` on a mutating call.
//!
//! `/status` comes from a [`StatusSource`] the role keeps current, read
//! without asking the role; the other endpoints are asked of the role
//! through [`ApiRequest`]s.

pub mod token;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use protocol::JobId;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tracing::{debug, info, warn};

pub use self::token::Token;
use crate::metrics::Metrics;

/// Largest request head (request line and headers).
const MAX_HEAD: usize = 16 << 10;
/// Largest request body (a batch of transactions as JSON).
pub const MAX_BODY: usize = 8 << 20;
/// Largest body of `POST /batch/witnesses`: witness files, eight of a
/// 2^20-constraint circuit (32 MiB each).
pub const MAX_WITNESS_BODY: usize = 256 << 20;
/// How long one connection may take.
const CONNECTION_DEADLINE: Duration = Duration::from_secs(10);
/// How long a caller may take to send the request head.
const HEAD_DEADLINE: Duration = Duration::from_secs(5);
/// Connections served at once; more are answered 503 and closed.
const MAX_CONNECTIONS: usize = 64;

/// The dashboard's files: path, content type, body.
const DASHBOARD: [(&str, &str, &str); 3] = [
    (
        "/",
        "text/html; charset=utf-8",
        include_str!("../../dashboard/index.html"),
    ),
    (
        "/dashboard.js",
        "text/javascript; charset=utf-8",
        include_str!("../../dashboard/dashboard.js"),
    ),
    (
        "/dashboard.css",
        "text/css; charset=utf-8",
        include_str!("../../dashboard/dashboard.css"),
    ),
];

/// The dashboard runs only its own script and talks only to this API: what
/// it shows comes from strangers on the network (node ids, error texts).
const DASHBOARD_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

/// Where `/status` comes from: the role's latest document, read at once.
pub type StatusSource = Arc<dyn Fn() -> Value + Send + Sync>;

/// A request the API or the role refuses: the HTTP status and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The HTTP status (4xx: the caller's fault; 503: try again).
    pub status: u16,
    /// What is wrong, for the caller.
    pub message: String,
}

impl Rejection {
    /// A refusal with `status`.
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

/// Who may call the API, beyond reading it.
#[derive(Debug, Clone)]
pub struct Access {
    /// The bearer token mutating calls must carry.
    pub token: Token,
    /// Host names the API answers to besides IP addresses and `localhost`.
    pub hosts: Vec<String>,
}

/// The most attempts one `GET /attempts` lists, and how many it lists
/// without `?last=`: the role answers on its run loop, so a request costs it
/// at most this many rows (whoever asks: reading needs no token).
pub const MAX_ATTEMPTS: usize = 1_000;

/// What the API asks of the role.
#[derive(Debug)]
pub enum ApiRequest {
    /// The `/attempts` document (distributor): the `last` newest hand-outs
    /// and their fates.
    Attempts {
        /// How many of the newest attempts: at most [`MAX_ATTEMPTS`].
        last: usize,
        /// Where the document goes.
        reply: oneshot::Sender<Value>,
    },
    /// `POST /batch`: the body (empty: let the generator make one). The reply
    /// is the JSON answer or a refusal for the caller.
    SubmitBatch(Vec<u8>, oneshot::Sender<Result<Value, Rejection>>),
    /// `POST /batch/witnesses`: circom `.wtns` files, concatenated; each is
    /// one job.
    SubmitWitnesses(Vec<u8>, oneshot::Sender<Result<Value, Rejection>>),
    /// `GET /proofs/<job>`: the job's accepted proof with its public signals
    /// and the circuit's verification key, in snarkjs JSON.
    Proof(JobId, oneshot::Sender<Result<Value, Rejection>>),
}

impl ApiRequest {
    /// Answers a request for the distributor on another role's node.
    pub fn not_served(self, role: &str) {
        let why = format!("a {role} serves only /status and /metrics; ask the distributor");
        match self {
            Self::Attempts { reply, .. } => {
                let _ = reply.send(json!({ "error": why }));
            }
            Self::SubmitBatch(_, reply)
            | Self::SubmitWitnesses(_, reply)
            | Self::Proof(_, reply) => {
                let _ = reply.send(Err(Rejection::new(404, why)));
            }
        }
    }
}

/// Binds the API on `addr` and serves it until `shutdown` fires. Returns the
/// bound address (port 0 picks one) and the server task.
pub async fn serve(
    addr: SocketAddr,
    access: Access,
    metrics: Arc<Metrics>,
    status: StatusSource,
    role: mpsc::Sender<ApiRequest>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot bind the HTTP API on {addr}"))?;
    let bound = listener.local_addr()?;
    info!(target: "api", %bound, "HTTP API listening");
    let server = Arc::new(Server {
        access,
        metrics,
        status,
        role,
    });
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(accepted) => accepted,
                        Err(e) => {
                            // Out of file descriptors, say: wait rather than spin.
                            warn!(target: "api", error = %e, "cannot accept a connection");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    };
                    let Ok(slot) = slots.clone().try_acquire_owned() else {
                        debug!(target: "api", %peer, "too many connections; refused");
                        let _ = stream.try_write(BUSY_REPLY);
                        continue;
                    };
                    let server = server.clone();
                    tokio::spawn(async move {
                        let served =
                            tokio::time::timeout(CONNECTION_DEADLINE, server.handle(stream)).await;
                        if !matches!(served, Ok(Ok(()))) {
                            debug!(target: "api", %peer, "connection dropped");
                        }
                        drop(slot);
                    });
                }
                _ = shutdown.changed() => break,
            }
        }
    });
    Ok((bound, task))
}

/// The whole answer to a connection over the cap.
const BUSY_REPLY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nRetry-After: 1\r\nConnection: close\r\n\r\n";

/// What every connection's handler shares.
struct Server {
    access: Access,
    metrics: Arc<Metrics>,
    status: StatusSource,
    role: mpsc::Sender<ApiRequest>,
}

struct Reply {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
    /// Extra header lines, each ending in CRLF.
    headers: String,
}

impl Reply {
    fn json(status: u16, value: &Value) -> Self {
        let mut body = serde_json::to_vec_pretty(value).expect("JSON values serialize");
        body.push(b'\n');
        Self {
            status,
            content_type: "application/json",
            body,
            headers: "Cache-Control: no-store\r\n".into(),
        }
    }

    fn page(content_type: &'static str, body: &str) -> Self {
        Self {
            status: 200,
            content_type,
            body: body.as_bytes().to_vec(),
            headers: format!(
                "Content-Security-Policy: {DASHBOARD_POLICY}\r\nX-Frame-Options: DENY\r\n\
                 Referrer-Policy: no-referrer\r\nCache-Control: no-cache\r\n"
            ),
        }
    }

    fn error(status: u16, message: &str) -> Self {
        let mut reply = Self::json(status, &serde_json::json!({ "error": message }));
        if status == 401 {
            reply.headers.push_str("WWW-Authenticate: Bearer\r\n");
        }
        reply
    }

    fn refused(refusal: &Rejection) -> Self {
        Self::error(refusal.status, &refusal.message)
    }
}

impl Server {
    async fn handle(&self, mut stream: TcpStream) -> anyhow::Result<()> {
        let reply = match tokio::time::timeout(HEAD_DEADLINE, read_head(&mut stream)).await {
            Err(_) => Reply::error(408, "the request head took too long"),
            Ok(Err(refusal)) => Reply::refused(&refusal),
            Ok(Ok((head, rest))) => match self.admit(&head) {
                Err(refusal) => Reply::refused(&refusal),
                Ok(()) => match read_body(&mut stream, &head, rest).await {
                    Err(refusal) => Reply::refused(&refusal),
                    Ok(body) => self.route(&head.method, &head.path, body).await,
                },
            },
        };
        let head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n\
             X-Content-Type-Options: nosniff\r\n{}Connection: close\r\n\r\n",
            reply.status,
            reason_phrase(reply.status),
            reply.content_type,
            reply.body.len(),
            reply.headers,
        );
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(&reply.body).await?;
        stream.shutdown().await?;
        Ok(())
    }

    /// The checks before a body is read: the Host, and for a mutating call
    /// the Origin and the token.
    fn admit(&self, head: &Head) -> Result<(), Rejection> {
        let host = head.header("host").unwrap_or_default();
        if !host_allowed(host, &self.access.hosts) {
            return Err(Rejection::new(
                403,
                format!(
                    "Host {host:?} is not an address of this node; add it to api_hosts to reach the API by that name"
                ),
            ));
        }
        if head.method == "GET" {
            return Ok(());
        }
        if let Some(origin) = head.header("origin")
            && origin != format!("http://{host}")
        {
            return Err(Rejection::new(
                403,
                format!("cross-origin request from {origin:?} refused"),
            ));
        }
        if !self.access.token.admits(head.header("authorization")) {
            return Err(Rejection::new(
                401,
                "this call needs the API token: send `Authorization: Bearer <token>`; \
                 the token is in <data dir>/api-token and in `crowdprove status`",
            ));
        }
        Ok(())
    }

    /// Asks the role and turns its answer into the reply.
    async fn ask(
        &self,
        request: impl FnOnce(oneshot::Sender<Result<Value, Rejection>>) -> ApiRequest,
    ) -> Reply {
        let gone = || Reply::error(503, "the node is shutting down");
        let (tx, rx) = oneshot::channel();
        if self.role.send(request(tx)).await.is_err() {
            return gone();
        }
        match rx.await {
            Ok(Ok(answer)) => Reply::json(200, &answer),
            Ok(Err(refusal)) => Reply::refused(&refusal),
            Err(_) => gone(),
        }
    }

    async fn route(&self, method: &str, path: &str, body: Vec<u8>) -> Reply {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        if let Some((_, content_type, body)) = DASHBOARD.iter().find(|(p, ..)| *p == path) {
            return match method {
                "GET" => Reply::page(content_type, body),
                _ => Reply::error(405, "method not allowed"),
            };
        }
        let gone = || Reply::error(503, "the node is shutting down");
        match (method, path) {
            ("GET", "/metrics") => Reply {
                status: 200,
                content_type: "text/plain; version=0.0.4",
                body: self.metrics.render().into_bytes(),
                headers: String::new(),
            },
            ("GET", "/status") => match (self.status)() {
                // The role publishes its first document a moment after the
                // API starts: until then there is no status to give.
                Value::Null => Reply::error(503, "the node is starting; try again in a moment"),
                doc => Reply::json(200, &doc),
            },
            ("GET", "/attempts") => {
                let (tx, rx) = oneshot::channel();
                let request = match query_number(query, "last") {
                    Ok(last) => ApiRequest::Attempts {
                        last: last.map_or(MAX_ATTEMPTS, |n| n.min(MAX_ATTEMPTS)),
                        reply: tx,
                    },
                    Err(message) => return Reply::error(400, &message),
                };
                if self.role.send(request).await.is_err() {
                    return gone();
                }
                match rx.await {
                    Ok(status) => Reply::json(200, &status),
                    Err(_) => gone(),
                }
            }
            ("POST", "/batch") => self.ask(|tx| ApiRequest::SubmitBatch(body, tx)).await,
            ("POST", "/batch/witnesses") => {
                self.ask(|tx| ApiRequest::SubmitWitnesses(body, tx)).await
            }
            ("GET", _) if path.starts_with("/proofs/") => {
                match path["/proofs/".len()..].parse::<JobId>() {
                    Ok(job) => self.ask(|tx| ApiRequest::Proof(job, tx)).await,
                    Err(e) => Reply::error(400, &e.to_string()),
                }
            }
            (_, "/metrics" | "/status" | "/attempts" | "/batch" | "/batch/witnesses") => {
                Reply::error(405, "method not allowed")
            }
            (_, _) if path.starts_with("/proofs/") => Reply::error(405, "method not allowed"),
            _ => Reply::error(
                404,
                "no such endpoint; try / (the dashboard), /status, /metrics, /attempts, \
                 /proofs/<job>, POST /batch or POST /batch/witnesses",
            ),
        }
    }
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        422 => "Unprocessable Content",
        431 => "Request Header Fields Too Large",
        _ => "Service Unavailable",
    }
}

/// Whether the API answers to `host` (a `Host` header: name or address,
/// with or without a port): IP addresses and `localhost` always, other
/// names only if configured. A page on an attacker's domain that rebinds
/// its name to this node's address arrives with its own name, and is
/// refused.
fn host_allowed(host: &str, names: &[String]) -> bool {
    let name = match host.strip_prefix('[') {
        // [v6]:port
        Some(rest) => {
            return rest
                .split(']')
                .next()
                .is_some_and(|a| a.parse::<std::net::Ipv6Addr>().is_ok());
        }
        None => host.rsplit_once(':').map_or(host, |(name, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                name
            } else {
                host
            }
        }),
    };
    !name.is_empty()
        && (name.parse::<std::net::IpAddr>().is_ok()
            || name.eq_ignore_ascii_case("localhost")
            || names.iter().any(|n| n.eq_ignore_ascii_case(name)))
}

/// The number `name=N` in a query string, if present.
fn query_number(query: &str, name: &str) -> Result<Option<usize>, String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| {
            value
                .parse()
                .map_err(|_| format!("{name} must be a whole number, not {value:?}"))
        })
        .transpose()
}

/// A request's line and headers.
struct Head {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
}

impl Head {
    /// The first header called `name` (lower case).
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads the request head; returns it and what came after it.
async fn read_head(stream: &mut TcpStream) -> Result<(Head, Vec<u8>), Rejection> {
    let bad = |message: &str| Rejection::new(400, message);
    let mut buf = Vec::with_capacity(1024);
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_HEAD {
            return Err(Rejection::new(
                431,
                format!("request head over {MAX_HEAD} bytes"),
            ));
        }
        let mut chunk = [0u8; 4096];
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| bad(&format!("cannot read the request: {e}")))?;
        if n == 0 {
            return Err(bad("connection closed mid-request"));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let text =
        std::str::from_utf8(&buf[..head_end]).map_err(|_| bad("request head is not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split_whitespace();
    let (Some(method), Some(path)) = (first.next(), first.next()) else {
        return Err(bad("malformed request line"));
    };
    let mut headers = Vec::new();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(bad(&format!("malformed header line {line:?}")));
        };
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let head = Head {
        method: method.to_string(),
        path: path.to_string(),
        headers,
    };
    Ok((head, buf[head_end + 4..].to_vec()))
}

/// The largest body a request to `path` may carry.
fn body_limit(path: &str) -> usize {
    if path == "/batch/witnesses" {
        MAX_WITNESS_BODY
    } else {
        MAX_BODY
    }
}

/// Reads the body `head` announces: a `Content-Length` one only.
async fn read_body(
    stream: &mut TcpStream,
    head: &Head,
    mut body: Vec<u8>,
) -> Result<Vec<u8>, Rejection> {
    let max = body_limit(&head.path);
    if head.header("transfer-encoding").is_some() {
        return Err(Rejection::new(
            411,
            "Transfer-Encoding is not accepted; send the body with a Content-Length",
        ));
    }
    let lengths: Vec<&str> = head
        .headers
        .iter()
        .filter(|(n, _)| n == "content-length")
        .map(|(_, v)| v.as_str())
        .collect();
    let length = match lengths.as_slice() {
        [] if head.method == "GET" => 0,
        [] => return Err(Rejection::new(411, "send a Content-Length (0 for no body)")),
        [one] if !one.is_empty() && one.bytes().all(|b| b.is_ascii_digit()) => one
            .parse::<usize>()
            .map_err(|_| Rejection::new(413, format!("body over the {max}-byte limit")))?,
        [_] => return Err(Rejection::new(400, "Content-Length is not a number")),
        _ => return Err(Rejection::new(400, "more than one Content-Length")),
    };
    // Reading needs no token: nobody may make the API take in megabytes
    // without one.
    if head.method == "GET" && length > 0 {
        return Err(Rejection::new(400, "a GET carries no body"));
    }
    if length > max {
        return Err(Rejection::new(
            413,
            format!("body of {length} bytes is over the {max}-byte limit"),
        ));
    }
    if body.len() > length {
        return Err(Rejection::new(400, "more bytes than the Content-Length"));
    }
    while body.len() < length {
        let mut chunk = vec![0u8; (length - body.len()).min(64 << 10)];
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| Rejection::new(400, format!("cannot read the body: {e}")))?;
        if n == 0 {
            return Err(Rejection::new(400, "connection closed mid-body"));
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Ok(body)
}

/// A refusal's reason in one line: the `error` of its JSON body, or the body.
pub fn error_text(body: &[u8]) -> String {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(doc)) if doc.get("error").is_some_and(Value::is_string) => {
            doc["error"].as_str().unwrap_or_default().to_string()
        }
        _ => String::from_utf8_lossy(body)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// A minimal client for the API (the `status` command, tests, the testnet):
/// sends one request and returns the status code and body.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
) -> anyhow::Result<(u16, Vec<u8>)> {
    request_with(addr, method, path, body, None).await
}

/// [`request`] carrying the API token, for mutating calls.
pub async fn request_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
    token: Option<&Token>,
) -> anyhow::Result<(u16, Vec<u8>)> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("cannot reach the node's API at {addr}; is it running?"))?;
        let authorization = token
            .map(|t| format!("Authorization: Bearer {}\r\n", t.as_str()))
            .unwrap_or_default();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{authorization}Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        let split = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .context("malformed HTTP response")?;
        let status_line = std::str::from_utf8(&response[..split])?
            .lines()
            .next()
            .unwrap_or_default()
            .to_string();
        let code = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .context("malformed HTTP status line")?;
        Ok::<_, anyhow::Error>((code, response[split + 4..].to_vec()))
    };
    tokio::time::timeout(CONNECTION_DEADLINE, exchange)
        .await
        .with_context(|| format!("the node's API at {addr} did not answer in time"))?
}

/// `GET path` as JSON, failing on a non-200 answer.
pub async fn get_json(addr: SocketAddr, path: &str) -> anyhow::Result<Value> {
    let (code, body) = request(addr, "GET", path, &[]).await?;
    if code != 200 {
        bail!("{path} answered {code}: {}", error_text(&body));
    }
    serde_json::from_slice(&body).with_context(|| format!("{path} did not answer JSON"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An API served on a free port for a test, with what must outlive it.
    struct TestApi {
        addr: SocketAddr,
        token: Token,
        _dir: tempfile::TempDir,
        _stop: tokio::sync::watch::Sender<bool>,
    }

    /// Serves the API with `metrics`, `hosts` and `status`; the role's end
    /// of its channel comes back beside it.
    async fn start(
        metrics: Arc<Metrics>,
        hosts: Vec<String>,
        status: StatusSource,
    ) -> (TestApi, mpsc::Receiver<ApiRequest>) {
        let (role_tx, role_rx) = mpsc::channel(4);
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let dir = tempfile::tempdir().unwrap();
        let token = Token::load_or_create(dir.path()).unwrap();
        let access = Access {
            token: token.clone(),
            hosts,
        };
        let (addr, _task) = serve(
            "127.0.0.1:0".parse().unwrap(),
            access,
            metrics,
            status,
            role_tx,
            stop_rx,
        )
        .await
        .unwrap();
        let api = TestApi {
            addr,
            token,
            _dir: dir,
            _stop: stop_tx,
        };
        (api, role_rx)
    }

    /// An API for host `node.example` whose role refuses batches (422),
    /// echoes `/attempts`' `last` and answers any proof.
    async fn start_with_role() -> TestApi {
        let metrics = Arc::new(Metrics::new());
        metrics.reject("bad-signature");
        let status: StatusSource = Arc::new(|| serde_json::json!({"role": "test"}));
        let (api, mut role_rx) = start(metrics, vec!["node.example".into()], status).await;
        tokio::spawn(async move {
            while let Some(request) = role_rx.recv().await {
                match request {
                    ApiRequest::Attempts { last, reply } => {
                        let _ = reply.send(serde_json::json!({ "last": last }));
                    }
                    ApiRequest::SubmitBatch(body, reply)
                    | ApiRequest::SubmitWitnesses(body, reply) => {
                        let _ = reply.send(Err(Rejection::new(
                            422,
                            format!("{} bytes refused", body.len()),
                        )));
                    }
                    ApiRequest::Proof(job, reply) => {
                        let _ = reply.send(Ok(serde_json::json!({ "job": job.to_string() })));
                    }
                }
            }
        });
        api
    }

    #[tokio::test]
    async fn serves_status_metrics_and_the_roles_answers() {
        let api = start_with_role().await;
        let (addr, token) = (api.addr, &api.token);
        let status = get_json(addr, "/status").await.unwrap();
        assert_eq!(status["role"], "test");
        let (code, body) = request(addr, "GET", "/metrics", &[]).await.unwrap();
        assert_eq!(code, 200);
        assert!(String::from_utf8(body).unwrap().contains("bad-signature"));
        let (code, body) = request_with(addr, "POST", "/batch", b"[1,2]", Some(token))
            .await
            .unwrap();
        assert_eq!(code, 422);
        assert!(String::from_utf8(body).unwrap().contains("5 bytes refused"));
        assert_eq!(request(addr, "GET", "/nope", &[]).await.unwrap().0, 404);
        assert_eq!(get_json(addr, "/attempts?last=7").await.unwrap()["last"], 7);
        let (code, _) = request_with(addr, "POST", "/batch/witnesses", b"abc", Some(token))
            .await
            .unwrap();
        assert_eq!(code, 422, "witness batches reach the role");
    }

    #[tokio::test]
    async fn serves_proofs_and_refuses_malformed_queries() {
        let api = start_with_role().await;
        let addr = api.addr;
        assert_eq!(
            get_json(addr, "/proofs/b3/j1").await.unwrap()["job"],
            "b3/j1"
        );
        let (code, body) = request(addr, "GET", "/proofs/b3", &[]).await.unwrap();
        assert_eq!(code, 400, "a malformed job id");
        assert!(String::from_utf8(body).unwrap().contains("not a job id"));
        assert_eq!(
            request(addr, "POST", "/proofs/b3/j1", &[]).await.unwrap().0,
            401
        );
        // Without `last`, and over the cap: the newest MAX_ATTEMPTS.
        assert_eq!(
            get_json(addr, "/attempts").await.unwrap()["last"],
            MAX_ATTEMPTS
        );
        assert_eq!(
            get_json(addr, "/attempts?last=200000").await.unwrap()["last"],
            MAX_ATTEMPTS
        );
        assert_eq!(
            request(addr, "GET", "/attempts?last=x", &[])
                .await
                .unwrap()
                .0,
            400
        );
    }

    #[tokio::test]
    async fn serves_the_dashboard_under_a_strict_policy() {
        let api = start_with_role().await;
        // The dashboard: its page and assets, under a policy that lets it run
        // only its own script and reach only this API.
        for (path, kind) in [
            ("/", "text/html"),
            ("/dashboard.js", "text/javascript"),
            ("/dashboard.css", "text/css"),
        ] {
            let mut raw = TcpStream::connect(api.addr).await.unwrap();
            let head = format!("GET {path} HTTP/1.1\r\nHost: node.example\r\n\r\n");
            raw.write_all(head.as_bytes()).await.unwrap();
            let mut answer = Vec::new();
            raw.read_to_end(&mut answer).await.unwrap();
            let answer = String::from_utf8(answer).unwrap();
            assert!(answer.starts_with("HTTP/1.1 200"), "{path}: {answer:.200}");
            assert!(answer.contains(&format!("Content-Type: {kind}")), "{path}");
            assert!(
                answer.contains("Content-Security-Policy: default-src 'none'; script-src 'self'")
            );
            assert!(answer.contains("X-Content-Type-Options: nosniff"));
        }
    }

    #[tokio::test]
    async fn refuses_wrong_methods_missing_tokens_and_garbage() {
        let api = start_with_role().await;
        let (addr, token) = (api.addr, &api.token);
        assert_eq!(
            request_with(addr, "POST", "/", &[], Some(token))
                .await
                .unwrap()
                .0,
            405
        );
        assert_eq!(
            request_with(addr, "DELETE", "/status", &[], Some(token))
                .await
                .unwrap()
                .0,
            405
        );
        // Without the token, any call but a GET is refused first.
        assert_eq!(
            request(addr, "DELETE", "/status", &[]).await.unwrap().0,
            401
        );
        // A garbage request gets a 400, not a hang or a crash.
        let mut raw = TcpStream::connect(addr).await.unwrap();
        raw.write_all(b"\xff\xfe\r\n\r\n").await.unwrap();
        let mut answer = Vec::new();
        raw.read_to_end(&mut answer).await.unwrap();
        assert!(answer.starts_with(b"HTTP/1.1 400"));
    }

    /// Sends `raw` as the whole request; returns the status code and body.
    async fn raw(addr: SocketAddr, raw: &[u8]) -> (u16, String) {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(raw).await.unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.unwrap();
        let answer = String::from_utf8(answer).unwrap();
        let code = answer[9..12].parse().unwrap();
        (code, answer)
    }

    /// Requests a web page could send, each with the status it must get and
    /// a phrase of the answer; `bearer` is the token's header line.
    fn web_page_requests(bearer: &str) -> Vec<(String, u16, &'static str)> {
        vec![
            (
                "POST /batch HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n".into(),
                401,
                "needs the API token",
            ),
            (
                format!("POST /batch HTTP/1.1\r\nHost: 127.0.0.1\r\n{bearer}Authorization: Bearer x\r\nContent-Length: 0\r\n\r\n").replace(bearer, "Authorization: Bearer 00\r\n"),
                401,
                "needs the API token",
            ),
            (
                format!("POST /batch HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://evil.example\r\n{bearer}Content-Length: 0\r\n\r\n"),
                403,
                "cross-origin",
            ),
            (
                "GET /status HTTP/1.1\r\nHost: evil.example:8100\r\n\r\n".to_string(),
                403,
                "not an address of this node",
            ),
            (
                format!("POST /batch HTTP/1.1\r\nHost: 127.0.0.1\r\n{bearer}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
                411,
                "Transfer-Encoding",
            ),
            (
                format!("POST /batch HTTP/1.1\r\nHost: 127.0.0.1\r\n{bearer}\r\n"),
                411,
                "Content-Length",
            ),
            (
                format!("POST /batch HTTP/1.1\r\nHost: 127.0.0.1\r\n{bearer}Content-Length: 9000000\r\n\r\n"),
                413,
                "over the 8388608-byte limit",
            ),
            (
                // Witness files may be longer, to a limit of their own.
                format!("POST /batch/witnesses HTTP/1.1\r\nHost: 127.0.0.1\r\n{bearer}Content-Length: 268435457\r\n\r\n"),
                413,
                "over the 268435456-byte limit",
            ),
            (
                format!("POST /batch HTTP/1.1\r\nHost: 127.0.0.1\r\n{bearer}Content-Length: 1\r\nContent-Length: 2\r\n\r\nab"),
                400,
                "more than one",
            ),
            (
                format!("POST /batch HTTP/1.1\r\nHost: 127.0.0.1\r\n{bearer}Content-Length: -1\r\n\r\n"),
                400,
                "not a number",
            ),
            (
                "GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 9000000\r\n\r\n".into(),
                400,
                "a GET carries no body",
            ),
        ]
    }

    #[tokio::test]
    async fn refuses_callers_a_web_page_could_be_and_creates_nothing() {
        let status: StatusSource = Arc::new(|| serde_json::json!({}));
        let (api, mut role_rx) = start(Arc::new(Metrics::new()), Vec::new(), status).await;
        let addr = api.addr;
        let bearer = format!("Authorization: Bearer {}\r\n", api.token.as_str());
        for (request, code, says) in &web_page_requests(&bearer) {
            let (got, answer) = raw(addr, request.as_bytes()).await;
            assert_eq!(got, *code, "{request:?} → {answer}");
            assert!(answer.contains(says), "{request:?} → {answer}");
        }
        // None of them reached the role: nothing was created.
        assert!(role_rx.try_recv().is_err());
        // The same-origin call with the token does reach it.
        let call = format!(
            "POST /batch HTTP/1.1\r\nHost: localhost:{}\r\nOrigin: http://localhost:{}\r\n{bearer}Content-Length: 0\r\n\r\n",
            addr.port(),
            addr.port()
        );
        let answering = tokio::spawn(async move {
            let Some(ApiRequest::SubmitBatch(body, reply)) = role_rx.recv().await else {
                panic!("expected a batch");
            };
            assert!(body.is_empty());
            let _ = reply.send(Ok(serde_json::json!({"batch": 1})));
        });
        let (got, answer) = raw(addr, call.as_bytes()).await;
        assert_eq!(got, 200, "{answer}");
        answering.await.unwrap();
    }

    #[test]
    fn host_names_allowed() {
        let names = vec!["prover.example.org".to_string()];
        for ok in [
            "127.0.0.1",
            "127.0.0.1:8100",
            "[::1]:8100",
            "localhost:9",
            "LOCALHOST",
            "10.1.2.3",
            "prover.example.org:8100",
        ] {
            assert!(host_allowed(ok, &names), "{ok}");
        }
        for refused in [
            "",
            "evil.example",
            "evil.example:8100",
            "127.0.0.1.evil.example",
            "[evil]:1",
        ] {
            assert!(!host_allowed(refused, &names), "{refused}");
        }
    }
}
