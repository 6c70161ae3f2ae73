//! ApiClient behaviour against a local server: retries, 401 token re-read, error messages.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use ct_step::http::{ApiClient, AuthScheme, ClientConfig, TokenSource, server_message};

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn config(url: &str, token: TokenSource) -> ClientConfig {
    ClientConfig {
        base_url: url.parse().unwrap(),
        token,
        auth: AuthScheme::Bearer,
        ca_file: None,
        insecure: false,
        timeout: Duration::from_secs(5),
        max_retries: 3,
        backoff: Duration::from_millis(1),
    }
}

#[tokio::test]
async fn idempotent_get_is_retried_through_a_5xx_burst() {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let app = Router::new().route(
        "/x",
        get(move || {
            let n = h.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < 2 {
                    (StatusCode::SERVICE_UNAVAILABLE, "busy")
                } else {
                    (StatusCode::OK, "{\"ok\":1}")
                }
            }
        }),
    );
    let url = serve(app).await;
    let c = ApiClient::new(config(&url, TokenSource::None)).unwrap();
    let v: serde_json::Value = c.get("/x").send_json().await.unwrap();
    assert_eq!(v["ok"], 1);
    assert_eq!(hits.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn retries_are_bounded_and_the_last_answer_is_reported() {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let app = Router::new().route(
        "/x",
        get(move || {
            h.fetch_add(1, Ordering::SeqCst);
            async { (StatusCode::BAD_GATEWAY, "upstream down") }
        }),
    );
    let url = serve(app).await;
    let c = ApiClient::new(config(&url, TokenSource::None)).unwrap();
    let e = c.get("/x").send_ok().await.unwrap_err();
    assert_eq!(hits.load(Ordering::SeqCst), 4, "1 try + 3 retries");
    assert_eq!(e.exit_code(), 3);
    assert!(
        e.to_string().contains("HTTP 502") && e.to_string().contains("upstream down"),
        "{e}"
    );
}

#[tokio::test]
async fn non_idempotent_post_is_not_retried_on_5xx() {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let app = Router::new().route(
        "/x",
        post(move || {
            h.fetch_add(1, Ordering::SeqCst);
            async { (StatusCode::SERVICE_UNAVAILABLE, "busy") }
        }),
    );
    let url = serve(app).await;
    let c = ApiClient::new(config(&url, TokenSource::None)).unwrap();
    let r = c
        .post("/x")
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 503);
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn connect_errors_are_retried_then_reported() {
    // A port nobody listens on.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    let c = ApiClient::new(config(&url, TokenSource::None)).unwrap();
    let e = c.post("/x").send().await.unwrap_err();
    assert!(e.to_string().contains("cannot connect"), "{e}");
}

#[tokio::test]
async fn token_file_is_reread_once_on_401() {
    let dir = tempfile::tempdir().unwrap();
    let tf = dir.path().join("token");
    std::fs::write(&tf, "old-token\n").unwrap();
    let app = Router::new().route(
        "/x",
        get(|headers: HeaderMap| async move {
            match headers.get("authorization").and_then(|v| v.to_str().ok()) {
                Some("Bearer new-token") => (StatusCode::OK, "{}".to_string()),
                other => (
                    StatusCode::UNAUTHORIZED,
                    format!("Unauthorized: got {other:?}"),
                ),
            }
        }),
    );
    let url = serve(app).await;
    let c = ApiClient::new(config(&url, TokenSource::File(tf.clone()))).unwrap();
    // Token rotated after the client started.
    std::fs::write(&tf, "new-token").unwrap();
    c.get("/x").send_ok().await.unwrap();

    // Still wrong after the re-read: one clear 401 error, token not echoed in our message hint.
    std::fs::write(&tf, "bad-token").unwrap();
    let c = ApiClient::new(config(&url, TokenSource::File(tf.clone()))).unwrap();
    std::fs::write(&tf, "still-bad").unwrap();
    let e = c.get("/x").send_ok().await.unwrap_err();
    assert!(e.to_string().contains("HTTP 401"), "{e}");
    assert!(e.to_string().contains("--token-file"), "{e}");
}

#[test]
fn server_messages_from_every_format() {
    assert_eq!(
        server_message(br#"{"code":5,"message":"Run abc not found","details":[]}"#),
        "Run abc not found"
    );
    assert_eq!(
        server_message(br#"{"error":"legacy failure","code":3,"message":"legacy failure"}"#),
        "legacy failure"
    );
    assert_eq!(
        server_message(br#"{"message":"Validation Failed","errors":[{"message":"A pull request already exists for o:b."}]}"#),
        "Validation Failed: A pull request already exists for o:b."
    );
    assert_eq!(
        server_message(
            b"<html><head><title>403 Forbidden</title></head><body>Forbidden</body></html>"
        ),
        "403 Forbidden Forbidden"
    );
    assert_eq!(server_message(b"Unauthorized\n"), "Unauthorized");
}

#[test]
fn base_urls_are_validated() {
    use ct_step::http::parse_base_url;
    assert!(
        parse_base_url("https://u:p@host", "--kfp-url")
            .unwrap_err()
            .to_string()
            .contains("credentials")
    );
    assert!(parse_base_url("ftp://host", "--kfp-url").is_err());
    assert!(
        parse_base_url("not a url", "--kfp-url")
            .unwrap_err()
            .to_string()
            .starts_with("--kfp-url")
    );
    assert_eq!(
        parse_base_url("https://h:8443/prefix", "--x")
            .unwrap()
            .path(),
        "/prefix"
    );
}

#[test]
fn bad_ca_file_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("ca.crt");
    std::fs::write(&f, "not pem").unwrap();
    let mut cfg = config("http://127.0.0.1:1", TokenSource::None);
    cfg.ca_file = Some(f);
    let e = ApiClient::new(cfg).unwrap_err();
    assert_eq!(e.exit_code(), 2, "{e}");
}

#[test]
fn backoff_doubles_with_jitter_and_is_capped() {
    use ct_step::http::backoff_delay;
    let base = Duration::from_millis(100);
    for attempt in 0..6 {
        let exp = Duration::from_millis(100 << attempt);
        let d = backoff_delay(base, attempt);
        assert!(d >= exp / 2 && d <= exp, "attempt {attempt}: {d:?}");
    }
    assert!(backoff_delay(base, 30) <= Duration::from_secs(8));
    assert!(backoff_delay(base, 30) >= Duration::from_secs(4));
}
