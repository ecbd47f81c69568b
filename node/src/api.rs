//! The node's HTTP API: `GET /` (the live dashboard, a read-only page that
//! polls the JSON below; its files are embedded in the binary), `GET /status`
//! (JSON), `GET /metrics` (Prometheus text), and on a distributor
//! `GET /attempts[?last=N]` (every hand-out and its fate) and `POST /batch`
//! (a batch from outside). A deliberately small HTTP/1.1 server: one request
//! per connection, bounded header and body sizes, a deadline per connection.
//!
//! `/status` comes from a [`StatusSource`] the role keeps current, read
//! without asking the role; `/attempts` and `POST /batch` are asked of the
//! role through [`ApiRequest`]s.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info};

use crate::metrics::Metrics;

/// Largest request head (request line and headers).
const MAX_HEAD: usize = 16 << 10;
/// Largest request body (a batch of transactions as JSON).
pub const MAX_BODY: usize = 8 << 20;
/// How long one connection may take.
const CONNECTION_DEADLINE: Duration = Duration::from_secs(10);

/// The dashboard's files: path, content type, body.
const DASHBOARD: [(&str, &str, &str); 3] = [
    (
        "/",
        "text/html; charset=utf-8",
        include_str!("../dashboard/index.html"),
    ),
    (
        "/dashboard.js",
        "text/javascript; charset=utf-8",
        include_str!("../dashboard/dashboard.js"),
    ),
    (
        "/dashboard.css",
        "text/css; charset=utf-8",
        include_str!("../dashboard/dashboard.css"),
    ),
];

/// The dashboard runs only its own script and talks only to this API: what
/// it shows comes from strangers on the network (node ids, error texts).
const DASHBOARD_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

/// Where `/status` comes from: the role's latest document, read at once.
pub type StatusSource = Arc<dyn Fn() -> Value + Send + Sync>;

/// What the API asks of the role.
#[derive(Debug)]
pub enum ApiRequest {
    /// The `/attempts` document (distributor): every hand-out and its fate,
    /// or only the `last` newest.
    Attempts {
        /// How many of the newest attempts; `None`: all that are kept.
        last: Option<usize>,
        /// Where the document goes.
        reply: oneshot::Sender<Value>,
    },
    /// `POST /batch`: the body (empty: let the generator make one). The reply
    /// is the JSON answer or an error for the caller.
    SubmitBatch(Vec<u8>, oneshot::Sender<Result<Value, String>>),
}

/// Binds the API on `addr` and serves it until `shutdown` fires. Returns the
/// bound address (port 0 picks one) and the server task.
pub async fn serve(
    addr: SocketAddr,
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
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, peer)) = accepted else { continue };
                    let metrics = metrics.clone();
                    let role = role.clone();
                    let status = status.clone();
                    tokio::spawn(async move {
                        let served = tokio::time::timeout(
                            CONNECTION_DEADLINE,
                            handle(stream, &metrics, &status, &role),
                        )
                        .await;
                        if !matches!(served, Ok(Ok(()))) {
                            debug!(target: "api", %peer, "connection dropped");
                        }
                    });
                }
                _ = shutdown.changed() => break,
            }
        }
    });
    Ok((bound, task))
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
        Self::json(status, &serde_json::json!({ "error": message }))
    }
}

async fn handle(
    mut stream: TcpStream,
    metrics: &Metrics,
    status: &StatusSource,
    role: &mpsc::Sender<ApiRequest>,
) -> anyhow::Result<()> {
    let reply = match read_request(&mut stream).await {
        Ok((method, path, body)) => route(&method, &path, body, metrics, status, role).await,
        Err(e) => Reply::error(400, &format!("{e:#}")),
    };
    let reason = match reply.status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        _ => "Service Unavailable",
    };
    let head = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\n\
         X-Content-Type-Options: nosniff\r\n{}Connection: close\r\n\r\n",
        reply.status,
        reply.content_type,
        reply.body.len(),
        reply.headers,
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(&reply.body).await?;
    stream.shutdown().await?;
    Ok(())
}

async fn route(
    method: &str,
    path: &str,
    body: Vec<u8>,
    metrics: &Metrics,
    status: &StatusSource,
    role: &mpsc::Sender<ApiRequest>,
) -> Reply {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    if let Some((_, content_type, body)) = DASHBOARD.iter().find(|(p, ..)| *p == path) {
        return match method {
            "GET" => Reply::page(content_type, body),
            _ => Reply::error(405, "method not allowed"),
        };
    }
    match (method, path) {
        ("GET", "/metrics") => Reply {
            status: 200,
            content_type: "text/plain; version=0.0.4",
            body: metrics.render().into_bytes(),
            headers: String::new(),
        },
        ("GET", "/status") => Reply::json(200, &status()),
        ("GET", "/attempts") => {
            let (tx, rx) = oneshot::channel();
            let request = match query_number(query, "last") {
                Ok(last) => ApiRequest::Attempts { last, reply: tx },
                Err(message) => return Reply::error(400, &message),
            };
            if role.send(request).await.is_err() {
                return Reply::error(503, "the node is shutting down");
            }
            match rx.await {
                Ok(status) => Reply::json(200, &status),
                Err(_) => Reply::error(503, "the node is shutting down"),
            }
        }
        ("POST", "/batch") => {
            let (tx, rx) = oneshot::channel();
            if role.send(ApiRequest::SubmitBatch(body, tx)).await.is_err() {
                return Reply::error(503, "the node is shutting down");
            }
            match rx.await {
                Ok(Ok(answer)) => Reply::json(200, &answer),
                Ok(Err(message)) => Reply::error(400, &message),
                Err(_) => Reply::error(503, "the node is shutting down"),
            }
        }
        (_, "/metrics" | "/status" | "/attempts" | "/batch") => {
            Reply::error(405, "method not allowed")
        }
        _ => Reply::error(
            404,
            "no such endpoint; try / (the dashboard), /status, /metrics, /attempts or POST /batch",
        ),
    }
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

async fn read_request(stream: &mut TcpStream) -> anyhow::Result<(String, String, Vec<u8>)> {
    let mut buf = Vec::with_capacity(1024);
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_HEAD {
            bail!("request head over {MAX_HEAD} bytes");
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("connection closed mid-request");
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_end]).context("request head is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split_whitespace();
    let (Some(method), Some(path)) = (first.next(), first.next()) else {
        bail!("malformed request line");
    };
    let mut length = 0usize;
    for line in lines {
        if let Some((name, value)) = line.split_once(':')
            && name.trim().eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().context("bad Content-Length")?;
        }
    }
    if length > MAX_BODY {
        bail!("body of {length} bytes is over the {MAX_BODY}-byte limit");
    }
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let mut chunk = vec![0u8; (length - body.len()).min(64 << 10)];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("connection closed mid-body");
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Ok((method.to_string(), path.to_string(), body))
}

/// A minimal client for the API (the `status` command, tests, the testnet):
/// sends one request and returns the status code and body.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
) -> anyhow::Result<(u16, Vec<u8>)> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("cannot reach the node's API at {addr}; is it running?"))?;
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
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
        bail!("{path} answered {code}: {}", String::from_utf8_lossy(&body));
    }
    serde_json::from_slice(&body).with_context(|| format!("{path} did not answer JSON"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn serves_status_metrics_and_refuses_nonsense() {
        let metrics = Arc::new(Metrics::new());
        metrics.reject("bad-signature");
        let (role_tx, mut role_rx) = mpsc::channel(4);
        let (_stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let status: StatusSource = Arc::new(|| serde_json::json!({"role": "test"}));
        let (addr, _task) = serve(
            "127.0.0.1:0".parse().unwrap(),
            metrics,
            status,
            role_tx,
            stop_rx,
        )
        .await
        .unwrap();
        tokio::spawn(async move {
            while let Some(request) = role_rx.recv().await {
                match request {
                    ApiRequest::Attempts { last, reply } => {
                        let _ = reply.send(serde_json::json!({ "last": last }));
                    }
                    ApiRequest::SubmitBatch(body, reply) => {
                        let _ = reply.send(Err(format!("{} bytes refused", body.len())));
                    }
                }
            }
        });
        let status = get_json(addr, "/status").await.unwrap();
        assert_eq!(status["role"], "test");
        let (code, body) = request(addr, "GET", "/metrics", &[]).await.unwrap();
        assert_eq!(code, 200);
        assert!(String::from_utf8(body).unwrap().contains("bad-signature"));
        let (code, body) = request(addr, "POST", "/batch", b"[1,2]").await.unwrap();
        assert_eq!(code, 400);
        assert!(String::from_utf8(body).unwrap().contains("5 bytes refused"));
        assert_eq!(request(addr, "GET", "/nope", &[]).await.unwrap().0, 404);
        assert_eq!(get_json(addr, "/attempts?last=7").await.unwrap()["last"], 7);
        assert!(get_json(addr, "/attempts").await.unwrap()["last"].is_null());
        assert_eq!(
            request(addr, "GET", "/attempts?last=x", &[])
                .await
                .unwrap()
                .0,
            400
        );
        // The dashboard: its page and assets, under a policy that lets it run
        // only its own script and reach only this API.
        for (path, kind) in [
            ("/", "text/html"),
            ("/dashboard.js", "text/javascript"),
            ("/dashboard.css", "text/css"),
        ] {
            let mut raw = TcpStream::connect(addr).await.unwrap();
            let head = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
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
        assert_eq!(request(addr, "POST", "/", &[]).await.unwrap().0, 405);
        assert_eq!(
            request(addr, "DELETE", "/status", &[]).await.unwrap().0,
            405
        );
        // A garbage request gets a 400, not a hang or a crash.
        let mut raw = TcpStream::connect(addr).await.unwrap();
        raw.write_all(b"\xff\xfe\r\n\r\n").await.unwrap();
        let mut answer = Vec::new();
        raw.read_to_end(&mut answer).await.unwrap();
        assert!(answer.starts_with(b"HTTP/1.1 400"));
    }
}
