//! A real browser for the dashboard test: headless Chromium driven through
//! chromedriver's WebDriver HTTP API (plain JSON over HTTP/1.1, so no client
//! library is needed). `scripts/setup --tests` installs both.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::DEADLINE;

/// A chromedriver process with one headless Chromium session.
pub struct Browser {
    driver: Child,
    addr: SocketAddr,
    session: String,
    _profile: tempfile::TempDir,
}

/// Finds `name` on the PATH, or explains how to get it.
fn program(env: &str, name: &str) -> String {
    if let Ok(path) = std::env::var(env) {
        return path;
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    });
    match found {
        Some(path) => path.display().to_string(),
        None => panic!(
            "{name} not found: the dashboard test drives a real browser; \
             run scripts/setup --tests (Debian's chromium and chromium-driver) or set {env}"
        ),
    }
}

impl Browser {
    /// Starts chromedriver on a free loopback port and opens a session.
    pub fn start() -> Self {
        let chromium = program("CROWDPROVE_CHROMIUM", "chromium");
        let chromedriver = program("CROWDPROVE_CHROMEDRIVER", "chromedriver");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {chromedriver}: {e}"));
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let profile = tempfile::tempdir().unwrap();
        let mut browser = Self {
            driver,
            addr,
            session: String::new(),
            _profile: profile,
        };
        let started = Instant::now();
        while !browser
            .call("GET", "/status", None)
            .is_ok_and(|s| s["value"]["ready"] == true)
        {
            assert!(started.elapsed() < DEADLINE, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        // The flags keep a headless Chromium quiet on a machine without
        // internet: no sandbox (root in CI), no GPU, no background fetches.
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1400,1100",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([format!(
            "--user-data-dir={}",
            browser._profile.path().display()
        )])
        .collect::<Vec<_>>();
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": chromium, "args": args },
        }}});
        let answer = browser
            .call("POST", "/session", Some(&capabilities))
            .unwrap_or_else(|e| panic!("cannot open a browser session: {e}"));
        browser.session = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {answer}"))
            .to_string();
        browser
    }

    /// Loads `url` in the session's window.
    pub fn open(&self, url: &str) {
        self.session_call("POST", "url", &json!({ "url": url }));
    }

    /// Runs `script` (a function body) in the page; returns its value.
    pub fn eval(&self, script: &str) -> Value {
        self.session_call(
            "POST",
            "execute/sync",
            &json!({ "script": script, "args": [] }),
        )
    }

    /// Polls `script` until `done` holds for its value, failing after the deadline.
    pub fn wait_for(
        &self,
        what: &str,
        script: &str,
        mut done: impl FnMut(&Value) -> bool,
    ) -> Value {
        let started = Instant::now();
        loop {
            let value = self.eval(script);
            if done(&value) {
                return value;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "timed out waiting for the page to show {what}; last: {value}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Saves a PNG screenshot of the window to `path`.
    pub fn screenshot(&self, path: &Path) {
        let value = self.call(
            "GET",
            &format!("/session/{}/screenshot", self.session),
            None,
        );
        let value = value.unwrap_or_else(|e| panic!("screenshot failed: {e}"));
        let png = base64_decode(value["value"].as_str().expect("base64 PNG"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
    }

    fn session_call(&self, method: &str, command: &str, body: &Value) -> Value {
        let path = format!("/session/{}/{command}", self.session);
        let answer = self
            .call(method, &path, Some(body))
            .unwrap_or_else(|e| panic!("{command} failed: {e}"));
        answer["value"].clone()
    }

    /// One WebDriver request; an answer carrying `value.error` is an error.
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut stream = TcpStream::connect(self.addr).map_err(|e| e.to_string())?;
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            self.addr,
            body.len()
        );
        stream
            .write_all(head.as_bytes())
            .and_then(|_| stream.write_all(body.as_bytes()))
            .map_err(|e| e.to_string())?;
        let answer = read_response(&mut stream)?;
        let value: Value = serde_json::from_slice(&answer).map_err(|e| e.to_string())?;
        match value["value"]["error"].as_str() {
            Some(error) => Err(format!("{error}: {}", value["value"]["message"])),
            None => Ok(value),
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.call("DELETE", &format!("/session/{}", self.session), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Reads one HTTP response's body, by its Content-Length.
fn read_response(stream: &mut TcpStream) -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 64 << 10];
    let (head_end, length) = loop {
        let n = stream.read(&mut chunk).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed before the response head".into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            break (i + 4, length);
        }
    };
    let mut body = buf.split_off(head_end);
    match length {
        Some(length) => {
            while body.len() < length {
                let n = stream.read(&mut chunk).map_err(|e| e.to_string())?;
                if n == 0 {
                    return Err("connection closed mid-body".into());
                }
                body.extend_from_slice(&chunk[..n]);
            }
            body.truncate(length);
        }
        None => {
            stream.read_to_end(&mut body).map_err(|e| e.to_string())?;
        }
    }
    Ok(body)
}

/// Standard base64 (the screenshot's encoding).
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let digits: Vec<u8> = text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
        .map(value)
        .collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for group in digits.chunks(4) {
        let n = group
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, d)| n | u32::from(*d) << (18 - 6 * i));
        out.extend_from_slice(&n.to_be_bytes()[1..group.len()]);
    }
    out
}
