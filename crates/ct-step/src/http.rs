//! HTTP client for REST steps: bearer/token auth re-read on 401, TLS with an extra CA bundle,
//! per-request timeout, keep-alive, and bounded jittered retries.
//!
//! Retry policy: a connect error is retried for every method (nothing reached the server);
//! a timeout, 429, 502, 503 or 504 only for requests marked idempotent. Other statuses are
//! returned to the caller; [`Response::error_for_status`] turns them into one-line errors
//! carrying the server's own message (KFP `googleRpcStatus`/`runtimeError`, Model Registry
//! `{code,message}`, Gitea/GitHub/GitLab JSON, or the plain-text/HTML page of an auth proxy).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
pub use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

use crate::cli::HttpArgs;
use crate::error::{Result, ResultExt, StepError};
use crate::incluster;
use crate::input::{MAX_CA_FILE, MAX_SECRET_FILE, read_bounded, read_text_bounded};
use crate::log::register_secret;

/// Environment variable holding a token when no token file is used.
pub const TOKEN_ENV: &str = "CT_TOKEN";

/// How the token goes on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthScheme {
    /// `Authorization: Bearer <token>` (Kubernetes, KFP, Model Registry, GitHub).
    Bearer,
    /// `Authorization: token <token>` (Gitea).
    Token,
    /// A header of its own, e.g. GitLab's `PRIVATE-TOKEN`.
    Header(&'static str),
}

/// Where the token comes from.
#[derive(Debug, Clone)]
pub enum TokenSource {
    None,
    /// Re-read on a 401: projected service-account tokens rotate.
    File(PathBuf),
    /// From the environment; fixed for the process.
    Value(String),
}

impl TokenSource {
    /// `--token-file` when given, else `CT_TOKEN`, else the pod's service-account token file.
    pub fn resolve(token_file: Option<&Path>) -> TokenSource {
        Self::explicit(token_file).unwrap_or_else(|| {
            match incluster::default_file(None, incluster::TOKEN_FILE) {
                Some(f) => TokenSource::File(f),
                None => TokenSource::None,
            }
        })
    }

    /// `--token-file` when given, else `CT_TOKEN` when set; never the service-account token
    /// (for APIs outside the cluster, such as a forge).
    pub fn explicit(token_file: Option<&Path>) -> Option<TokenSource> {
        if let Some(f) = token_file {
            return Some(TokenSource::File(f.to_path_buf()));
        }
        match std::env::var(TOKEN_ENV) {
            Ok(v) if !v.trim().is_empty() => Some(TokenSource::Value(v.trim().to_string())),
            _ => None,
        }
    }

    /// The current token, trimmed, registered for log redaction. A token file is read with the
    /// [`MAX_SECRET_FILE`] bound.
    pub fn read(&self) -> Result<Option<String>> {
        let token = match self {
            TokenSource::None => return Ok(None),
            TokenSource::Value(v) => v.clone(),
            TokenSource::File(f) => read_text_bounded(f, MAX_SECRET_FILE, "--token-file")?
                .trim()
                .to_string(),
        };
        if token.is_empty() {
            let src = match self {
                TokenSource::File(f) => format!("--token-file {}", f.display()),
                _ => TOKEN_ENV.to_string(),
            };
            return Err(StepError::usage(format!(
                "{src}: the token is empty; put the token in it"
            )));
        }
        if token.chars().any(|c| c.is_control() || c == ' ') {
            let src = match self {
                TokenSource::File(f) => format!("--token-file {}", f.display()),
                _ => TOKEN_ENV.to_string(),
            };
            return Err(StepError::usage(format!(
                "{src}: the token has a space or control character inside; put only the token in it"
            )));
        }
        register_secret(&token);
        Ok(Some(token))
    }
}

/// Everything needed to build an [`ApiClient`].
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub base_url: Url,
    pub token: TokenSource,
    pub auth: AuthScheme,
    pub ca_file: Option<PathBuf>,
    pub insecure: bool,
    pub timeout: Duration,
    pub max_retries: u32,
    /// First backoff step; doubles per attempt, capped at 8 s, full jitter.
    pub backoff: Duration,
}

impl ClientConfig {
    /// From the common HTTP flags. `flag` names the URL flag in error messages (e.g. `--kfp-url`).
    pub fn from_args(base_url: &str, flag: &str, http: &HttpArgs) -> Result<Self> {
        Ok(ClientConfig {
            base_url: parse_base_url(base_url, flag)?,
            token: TokenSource::resolve(http.token_file()),
            auth: AuthScheme::Bearer,
            ca_file: incluster::default_file(http.ca_file(), incluster::SERVICE_CA_FILE),
            insecure: http.insecure_skip_tls_verify,
            timeout: http.request_timeout,
            max_retries: http.max_retries,
            backoff: Duration::from_millis(250),
        })
    }
}

/// Validate an http(s) base URL with no credentials, query or fragment. Whitespace inside and
/// control characters are refused (a URL parser would silently drop a tab or newline).
pub fn parse_base_url(s: &str, flag: &str) -> Result<Url> {
    if s.trim()
        .chars()
        .any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(StepError::usage(format!(
            "{flag} {s:?}: a URL has no spaces or control characters; write e.g. https://host:8443"
        )));
    }
    let url = Url::parse(s.trim()).usage_err(format!(
        "{flag} `{s}` is not a URL; write e.g. https://host:8443"
    ))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(StepError::usage(format!(
            "{flag} `{s}`: only http:// and https:// URLs are supported"
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(StepError::usage(format!(
            "{flag}: credentials must not be in the URL; use --token-file or {TOKEN_ENV}"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(StepError::usage(format!(
            "{flag} `{s}`: remove the query/fragment part"
        )));
    }
    Ok(url)
}

/// The wait before retry `attempt` (0-based): `base` doubled per attempt, capped at 8 s, with
/// jitter (anywhere in the upper half), so concurrent clients do not retry in lockstep.
pub fn backoff_delay(base: Duration, attempt: u32) -> Duration {
    let exp = base
        .saturating_mul(1u32 << attempt.min(16))
        .min(Duration::from_secs(8));
    let half = exp / 2;
    half + Duration::from_millis(fastrand::u64(0..=half.as_millis() as u64))
}

/// Whether `path` has a segment a URL parser would resolve: `.` or `..`, also percent-encoded.
pub fn has_dot_segment(path: &str) -> bool {
    path.split(['/', '?'])
        .map(|seg| seg.to_ascii_lowercase().replace("%2e", "."))
        .any(|seg| seg == "." || seg == "..")
}

/// Percent-encode one path segment (`/` included).
pub fn segment(s: &str) -> String {
    const SEG: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, SEG).to_string()
}

/// Load a PEM bundle (at most [`MAX_CA_FILE`]) into reqwest certificates.
pub fn load_ca_bundle(path: &Path) -> Result<Vec<reqwest::Certificate>> {
    let pem = read_bounded(path, MAX_CA_FILE, "--ca-file")?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).usage_err(format!(
        "--ca-file {}: not a PEM certificate bundle",
        path.display()
    ))?;
    if certs.is_empty() {
        return Err(StepError::usage(format!(
            "--ca-file {}: holds no certificate",
            path.display()
        )));
    }
    Ok(certs)
}

/// A REST client bound to one base URL.
#[derive(Debug)]
pub struct ApiClient {
    http: reqwest::Client,
    base: Url,
    token_source: TokenSource,
    token: Mutex<Option<String>>,
    auth: AuthScheme,
    max_retries: u32,
    backoff: Duration,
}

impl ApiClient {
    pub fn new(cfg: ClientConfig) -> Result<Self> {
        let mut b = reqwest::Client::builder()
            .user_agent(concat!("ct-steps/", env!("CARGO_PKG_VERSION")))
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout.min(Duration::from_secs(10)))
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_keepalive(Duration::from_secs(30));
        if let Some(ca) = &cfg.ca_file {
            b = b.tls_certs_merge(load_ca_bundle(ca)?);
        }
        if cfg.insecure {
            tracing::warn!(
                "TLS VERIFICATION IS OFF (--insecure-skip-tls-verify): the token can be read by anyone on the path; never use this in a cluster"
            );
        }
        b = b.tls_danger_accept_invalid_certs(cfg.insecure);
        let http = b.build().remote_err("cannot build the HTTP client")?;
        let token = cfg.token.read()?;
        Ok(ApiClient {
            http,
            base: cfg.base_url,
            token_source: cfg.token,
            token: Mutex::new(token),
            auth: cfg.auth,
            max_retries: cfg.max_retries,
            backoff: cfg.backoff,
        })
    }

    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// `base` + `path` (path starts with `/`; the base may carry a prefix of its own).
    pub fn url(&self, path: &str) -> Url {
        let base = self.base.as_str().trim_end_matches('/');
        Url::parse(&format!("{base}{path}")).unwrap_or_else(|_| self.base.clone())
    }

    pub fn get(&self, path: &str) -> RequestBuilder<'_> {
        self.request(Method::GET, path).idempotent()
    }
    pub fn post(&self, path: &str) -> RequestBuilder<'_> {
        self.request(Method::POST, path)
    }
    pub fn patch(&self, path: &str) -> RequestBuilder<'_> {
        self.request(Method::PATCH, path)
    }
    pub fn put(&self, path: &str) -> RequestBuilder<'_> {
        self.request(Method::PUT, path).idempotent()
    }
    pub fn delete(&self, path: &str) -> RequestBuilder<'_> {
        self.request(Method::DELETE, path).idempotent()
    }
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder<'_> {
        RequestBuilder {
            client: self,
            method,
            path: path.to_string(),
            query: Vec::new(),
            body: None,
            idempotent: false,
            timeout: None,
        }
    }

    fn current_token(&self) -> Option<String> {
        self.token.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn reload_token(&self) -> Result<bool> {
        if !matches!(self.token_source, TokenSource::File(_)) {
            return Ok(false);
        }
        let fresh = self.token_source.read()?;
        *self.token.lock().unwrap_or_else(|p| p.into_inner()) = fresh;
        Ok(true)
    }

    fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        match retry_after {
            Some(ra) => ra.min(Duration::from_secs(30)),
            None => backoff_delay(self.backoff, attempt),
        }
    }

    async fn execute(&self, rb: &RequestBuilder<'_>) -> Result<Response> {
        if has_dot_segment(&rb.path) {
            // A URL parser resolves `.`/`..` (and `%2e`) segments: the request would go to
            // another resource than the one named. Names are checked before this; this is the
            // backstop.
            return Err(StepError::usage(format!(
                "{} {}: a path segment is `.` or `..`; refusing to send it (check the names given)",
                rb.method,
                rb.path.escape_debug()
            )));
        }
        let mut url = self.url(&rb.path);
        if !rb.query.is_empty() {
            let mut q = url.query_pairs_mut();
            for (k, v) in &rb.query {
                q.append_pair(k, v);
            }
        }
        let what = format!("{} {}", rb.method, url.path());
        let mut attempt = 0u32;
        let mut reloaded = false;
        loop {
            let mut req = self
                .http
                .request(rb.method.clone(), url.clone())
                .header(ACCEPT, HeaderValue::from_static("application/json"));
            if let Some(t) = rb.timeout {
                req = req.timeout(t);
            }
            if let Some(body) = &rb.body {
                req = req
                    .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                    .body(body.clone());
            } else if rb.method == Method::POST {
                req = req.header(
                    reqwest::header::CONTENT_LENGTH,
                    HeaderValue::from_static("0"),
                );
            }
            if let Some(tok) = self.current_token() {
                req = match &self.auth {
                    AuthScheme::Bearer => req.header(AUTHORIZATION, format!("Bearer {tok}")),
                    AuthScheme::Token => req.header(AUTHORIZATION, format!("token {tok}")),
                    AuthScheme::Header(h) => req.header(*h, tok),
                };
            }
            let may_retry = attempt < self.max_retries;
            match req.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let retry_after = resp
                        .headers()
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|s| s.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let content_type = resp
                        .headers()
                        .get(CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    let body = match resp.bytes().await {
                        Ok(b) => b.to_vec(),
                        Err(e) if rb.idempotent && may_retry => {
                            tracing::warn!("{what}: reading the answer failed ({e}); retrying");
                            tokio::time::sleep(self.delay(attempt, None)).await;
                            attempt += 1;
                            continue;
                        }
                        Err(e) => {
                            return Err(StepError::remote(format!(
                                "{what}: reading the answer failed: {e}"
                            )));
                        }
                    };
                    if status == StatusCode::UNAUTHORIZED && !reloaded && self.reload_token()? {
                        // A 401 is answered before the request is processed: safe to resend.
                        reloaded = true;
                        tracing::info!("{what}: 401, token file re-read; retrying once");
                        continue;
                    }
                    let retryable = matches!(status.as_u16(), 429 | 502 | 503 | 504);
                    if retryable && rb.idempotent && may_retry {
                        let d = self.delay(attempt, retry_after);
                        tracing::warn!(
                            "{what}: HTTP {status}; retry {}/{} in {d:?}",
                            attempt + 1,
                            self.max_retries
                        );
                        tokio::time::sleep(d).await;
                        attempt += 1;
                        continue;
                    }
                    return Ok(Response {
                        status,
                        body,
                        content_type,
                        what,
                    });
                }
                Err(e) => {
                    // A connect error means nothing reached the server: safe for any method.
                    let retryable =
                        e.is_connect() || (rb.idempotent && (e.is_timeout() || e.is_request()));
                    if retryable && may_retry {
                        let d = self.delay(attempt, None);
                        tracing::warn!(
                            "{what}: {}; retry {}/{} in {d:?}",
                            describe(&e),
                            attempt + 1,
                            self.max_retries
                        );
                        tokio::time::sleep(d).await;
                        attempt += 1;
                        continue;
                    }
                    return Err(StepError::remote(format!("{what}: {}", describe(&e))));
                }
            }
        }
    }
}

/// A reqwest error as one line, with its source chain (e.g. the TLS reason).
fn describe(e: &reqwest::Error) -> String {
    let mut msg = if e.is_timeout() {
        "request timed out".to_string()
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        "request failed".to_string()
    };
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(e);
    let mut last = String::new();
    while let Some(s) = src {
        let t = s.to_string();
        if t != last {
            msg.push_str(": ");
            msg.push_str(&t);
            last = t;
        }
        src = s.source();
    }
    if msg.contains("certificate") {
        msg.push_str(" (pass the server's CA with --ca-file)");
    }
    msg
}

/// A request being built; see [`ApiClient::get`] and friends.
#[derive(Debug)]
pub struct RequestBuilder<'a> {
    client: &'a ApiClient,
    method: Method,
    path: String,
    query: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    idempotent: bool,
    timeout: Option<Duration>,
}

impl RequestBuilder<'_> {
    pub fn query(mut self, key: &str, value: impl ToString) -> Self {
        self.query.push((key.to_string(), value.to_string()));
        self
    }
    pub fn json<T: Serialize + ?Sized>(mut self, body: &T) -> Self {
        self.body = Some(serde_json::to_vec(body).expect("serializing a request body cannot fail"));
        self
    }
    /// Safe to resend after a timeout or 5xx (GET, PUT, DELETE, and POSTs the server dedups).
    pub fn idempotent(mut self) -> Self {
        self.idempotent = true;
        self
    }
    /// Override the client timeout for this request.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
        self
    }
    /// Send; any HTTP status comes back as a [`Response`]. Errors are transport failures.
    pub async fn send(self) -> Result<Response> {
        self.client.execute(&self).await
    }
    /// Send and require a 2xx answer.
    pub async fn send_ok(self) -> Result<Response> {
        self.send().await?.error_for_status()
    }
    /// Send, require 2xx and decode the JSON answer.
    pub async fn send_json<T: DeserializeOwned>(self) -> Result<T> {
        self.send_ok().await?.json()
    }
}

/// An HTTP answer with its body read.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: StatusCode,
    pub body: Vec<u8>,
    pub content_type: String,
    /// `METHOD /path`, for messages.
    pub what: String,
}

impl Response {
    pub fn is_success(&self) -> bool {
        self.status.is_success()
    }

    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|e| {
            StepError::remote(format!(
                "{}: unexpected answer (HTTP {}): {e}: {}",
                self.what,
                self.status.as_u16(),
                snippet(&String::from_utf8_lossy(&self.body))
            ))
        })
    }

    /// The server's own explanation, from whatever error format it uses.
    pub fn server_message(&self) -> String {
        server_message(&self.body)
    }

    /// A one-line error for a non-2xx answer (exit 3), with a hint for 401/403.
    pub fn error(&self) -> StepError {
        let code = self.status.as_u16();
        let reason = self.status.canonical_reason().unwrap_or("");
        let msg = self.server_message();
        let hint = match code {
            401 => " (the token was rejected: check --token-file/CT_TOKEN)",
            403 => " (the token lacks permission: check the service account's RBAC)",
            _ => "",
        };
        let msg = if msg.is_empty() {
            String::new()
        } else {
            format!(": {msg}")
        };
        StepError::remote(format!("{}: HTTP {code} {reason}{msg}{hint}", self.what))
    }

    pub fn error_for_status(self) -> Result<Self> {
        if self.is_success() {
            Ok(self)
        } else {
            Err(self.error())
        }
    }
}

/// Extract a message from an error body: JSON `message` (+ GitHub's `errors[].message`),
/// `error`, `error_description`; else the text with HTML tags removed.
pub fn server_message(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    if let Ok(serde_json::Value::Object(o)) = serde_json::from_str::<serde_json::Value>(&text) {
        let mut parts: Vec<String> = Vec::new();
        for key in ["message", "error", "error_description"] {
            match o.get(key) {
                Some(serde_json::Value::String(s)) if !s.is_empty() && !parts.contains(s) => {
                    parts.push(s.clone())
                }
                Some(v @ (serde_json::Value::Array(_) | serde_json::Value::Object(_))) => {
                    parts.push(v.to_string())
                }
                _ => {}
            }
        }
        if let Some(serde_json::Value::Array(errs)) = o.get("errors") {
            for e in errs {
                if let Some(m) = e.get("message").and_then(|m| m.as_str()) {
                    parts.push(m.to_string());
                }
            }
        }
        return snippet(&parts.join(": "));
    }
    // Plain text or an HTML page from an auth proxy.
    let mut out = String::new();
    let mut in_tag = false;
    for c in text.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    snippet(&out)
}

fn snippet(s: &str) -> String {
    let one: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() > 300 {
        format!("{}…", one.chars().take(300).collect::<String>())
    } else {
        one
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments_are_found_also_encoded() {
        for p in [
            "/repos/user1/..",
            "/repos/../x",
            "/runs/.",
            "/a/%2e%2E/b",
            "/a/.%2e",
            "/a/%2E?x=1",
        ] {
            assert!(has_dot_segment(p), "{p}");
        }
        for p in ["/repos/a/b", "/a/..b", "/a/.github", "/a/b.c", "/a/%2e%2ex"] {
            assert!(!has_dot_segment(p), "{p}");
        }
    }

    #[tokio::test]
    async fn a_dot_segment_is_never_sent() {
        let cfg = ClientConfig::from_args(
            "http://127.0.0.1:9",
            "--x",
            &<crate::cli::HttpArgs as clap::FromArgMatches>::from_arg_matches(
                &<crate::cli::HttpArgs as clap::Args>::augment_args(clap::Command::new("t"))
                    .get_matches_from(["t"]),
            )
            .unwrap(),
        )
        .unwrap();
        let client = ApiClient::new(ClientConfig {
            token: TokenSource::None,
            ..cfg
        })
        .unwrap();
        let e = client.get("/repos/user1/..").send().await.unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("refusing to send"), "{e}");
    }
}
