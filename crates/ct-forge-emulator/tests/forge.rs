//! The forge emulator end to end: git CLI pushes over smart HTTP, signed push webhooks received
//! by a local endpoint, the shipped fixtures' signatures, and the Gitea API's status codes and
//! error bodies.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::post;
use base64::Engine;
use ct_forge_emulator::{Delivery, Emulator, ForgeEmulator, Options, Server, loopback};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::mpsc;

const SECRET: &str = "fixture-webhook-secret";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/gitea")
}

fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

async fn start(options: Options) -> ForgeEmulator {
    ct_forge_emulator::start(options).await.unwrap()
}

/// A webhook receiver: every POST's headers and body go to the channel.
async fn receiver() -> (Server, mpsc::UnboundedReceiver<(HeaderMap, Bytes)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = Router::new().route(
        "/hook",
        post(move |h: HeaderMap, b: Bytes| {
            let tx = tx.clone();
            async move {
                let _ = tx.send((h, b));
                "ok"
            }
        }),
    );
    (Server::start(loopback(0), app).await.unwrap(), rx)
}

/// Run git with Basic credentials in the environment (not in argv or the remote URL).
fn git(dir: &Path, user: &str, password: &str, args: &[&str]) -> String {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_COUNT", "1")
        .env("GIT_CONFIG_KEY_0", "http.extraHeader")
        .env(
            "GIT_CONFIG_VALUE_0",
            format!("Authorization: Basic {basic}"),
        )
        .env("GIT_AUTHOR_NAME", "MLOps Pipeline")
        .env("GIT_AUTHOR_EMAIL", "pipeline@example.com")
        .env("GIT_COMMITTER_NAME", "MLOps Pipeline")
        .env("GIT_COMMITTER_EMAIL", "pipeline@example.com")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Every key of `fixture` (recursively through objects and first array items) is in `ours`.
fn assert_shape(fixture: &Value, ours: &Value, path: &str) {
    match (fixture, ours) {
        (Value::Object(f), Value::Object(o)) => {
            for (k, fv) in f {
                let ov = o
                    .get(k)
                    .unwrap_or_else(|| panic!("payload lacks {path}.{k}"));
                assert_shape(fv, ov, &format!("{path}.{k}"));
            }
        }
        (Value::Array(f), Value::Array(o)) => {
            if let (Some(fv), Some(ov)) = (f.first(), o.first()) {
                assert_shape(fv, ov, &format!("{path}[0]"));
            }
        }
        (Value::Object(_), other) => panic!("{path} is {other}, the fixture has an object"),
        _ => {}
    }
}

/// The emulator records a delivery once the receiver has answered, which can be just after the
/// receiver handed the request to the test: wait (bounded) until `n` are recorded.
async fn deliveries(emu: &ForgeEmulator, n: usize) -> Vec<Delivery> {
    for _ in 0..500 {
        let d = emu.deliveries();
        if d.len() >= n {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "expected {n} recorded deliveries, have {}",
        emu.deliveries().len()
    );
}

fn seed_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("test/jukebox")).unwrap();
    std::fs::write(
        d.path().join("test/jukebox/config.yaml"),
        "version: 1.0.0\n",
    )
    .unwrap();
    d
}

#[test]
fn shipped_fixtures_verify_with_the_documented_secret() {
    for name in ["push-main", "push-feature"] {
        let body = std::fs::read(fixtures().join(format!("{name}.json"))).unwrap();
        let headers = std::fs::read_to_string(fixtures().join(format!("{name}.headers"))).unwrap();
        let header = |k: &str| {
            headers
                .lines()
                .find_map(|l| {
                    let (hk, v) = l.split_once(':')?;
                    hk.eq_ignore_ascii_case(k).then(|| v.trim().to_string())
                })
                .unwrap_or_else(|| panic!("{name}.headers lacks {k}"))
        };
        let expected = hmac_hex(SECRET, &body);
        assert_eq!(header("X-Hub-Signature-256"), format!("sha256={expected}"));
        assert_eq!(header("X-Gitea-Signature"), expected);
        assert_eq!(ct_forge_emulator::signature(SECRET, &body), expected);
        assert_eq!(
            header("X-Hub-Signature"),
            format!("sha1={}", ct_forge_emulator::signature_sha1(SECRET, &body))
        );
        assert_ne!(hmac_hex("wrong-secret", &body), expected);
        assert!(!body.ends_with(b"\n"), "Gitea sends no trailing newline");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_push_sends_signed_gitea_webhooks() {
    let emu = start(Options::default()).await;
    let (hook_server, mut rx) = receiver().await;
    emu.create_user("user1", "openshift").unwrap();
    let seed = seed_dir();
    let repo = emu
        .create_repo("user1", "mlops-gitops", Some(seed.path()))
        .unwrap();
    emu.add_hook(
        "user1",
        "mlops-gitops",
        &format!("{}/hook", hook_server.url),
        SECRET,
    )
    .unwrap();

    let work = tempfile::tempdir().unwrap();
    let clone = repo.clone_url.clone();
    let wd = work.path().to_path_buf();
    let (main_sha, branch_sha) = tokio::task::spawn_blocking(move || {
        git(&wd, "user1", "openshift", &["clone", "-q", &clone, "w"]);
        let w = wd.join("w");
        std::fs::write(w.join("test/jukebox/config.yaml"), "version: 1.0.1\n").unwrap();
        git(
            &w,
            "user1",
            "openshift",
            &["commit", "-qam", "jukebox: deploy version 1.0.1 to test"],
        );
        git(&w, "user1", "openshift", &["push", "-q", "origin", "main"]);
        let main_sha = git(&w, "user1", "openshift", &["rev-parse", "HEAD"]);
        git(
            &w,
            "user1",
            "openshift",
            &["checkout", "-qb", "jukebox-1.0.1"],
        );
        std::fs::create_dir_all(w.join("prod/jukebox")).unwrap();
        std::fs::write(w.join("prod/jukebox/config.yaml"), "version: 1.0.1\n").unwrap();
        git(&w, "user1", "openshift", &["add", "."]);
        git(
            &w,
            "user1",
            "openshift",
            &["commit", "-qm", "jukebox: promote version 1.0.1 to prod"],
        );
        git(
            &w,
            "user1",
            "openshift",
            &["push", "-q", "origin", "jukebox-1.0.1"],
        );
        let branch_sha = git(&w, "user1", "openshift", &["rev-parse", "HEAD"]);
        (main_sha, branch_sha)
    })
    .await
    .unwrap();

    let fixture_for = |name: &str| -> Value {
        serde_json::from_slice(&std::fs::read(fixtures().join(format!("{name}.json"))).unwrap())
            .unwrap()
    };
    let mut seen = Vec::new();
    for _ in 0..2 {
        let (h, body) = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("webhook delivered")
            .unwrap();
        let get = |k: &str| {
            h.get(k)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        let sig = hmac_hex(SECRET, &body);
        assert_eq!(get("x-hub-signature-256"), format!("sha256={sig}"));
        assert_eq!(get("x-gitea-signature"), sig);
        assert_eq!(get("x-gitea-event"), "push");
        assert_eq!(
            get("x-hub-signature"),
            format!("sha1={}", ct_forge_emulator::signature_sha1(SECRET, &body))
        );
        assert_eq!(get("x-github-event"), "push");
        assert_eq!(get("content-type"), "application/json");
        assert!(uuid::Uuid::parse_str(&get("x-gitea-delivery")).is_ok());
        assert_eq!(get("x-gitea-delivery"), get("x-github-delivery"));
        assert!(!body.ends_with(b"\n"));
        assert!(body.starts_with(b"{\n  \""), "two-space indented JSON");
        let v: Value = serde_json::from_slice(&body).unwrap();
        let r = v["ref"].as_str().unwrap().to_string();
        let fixture = if r == "refs/heads/main" {
            fixture_for("push-main")
        } else {
            fixture_for("push-feature")
        };
        assert_shape(&fixture, &v, "");
        assert_eq!(v["repository"]["name"], "mlops-gitops");
        assert_eq!(v["repository"]["full_name"], "user1/mlops-gitops");
        assert_eq!(v["repository"]["clone_url"], json!(repo.clone_url));
        assert_eq!(v["pusher"]["login"], "user1");
        assert_eq!(v["pusher"]["username"], "user1");
        assert_eq!(v["head_commit"]["id"], v["after"]);
        seen.push((r, v));
    }
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    let (feature, main) = (&seen[0].1, &seen[1].1);
    assert_eq!(main["ref"], "refs/heads/main");
    assert_eq!(main["after"], json!(main_sha));
    assert_eq!(main["total_commits"], 1);
    assert_eq!(
        main["head_commit"]["modified"],
        json!(["test/jukebox/config.yaml"])
    );
    assert_eq!(
        main["head_commit"]["message"],
        "jukebox: deploy version 1.0.1 to test\n"
    );
    assert_eq!(feature["ref"], "refs/heads/jukebox-1.0.1");
    assert_eq!(
        feature["before"],
        "0000000000000000000000000000000000000000"
    );
    assert_eq!(feature["after"], json!(branch_sha));
    assert_eq!(
        feature["commits"].as_array().unwrap().len(),
        1,
        "only the new commit"
    );
    assert_eq!(
        feature["head_commit"]["added"],
        json!(["prod/jukebox/config.yaml"])
    );

    let deliveries = deliveries(&emu, 2).await;
    assert!(deliveries.iter().all(|d| d.status == Some(200)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_rejects_bad_credentials_and_accepts_a_token_as_password() {
    let emu = start(Options::default()).await;
    emu.create_user("user1", "openshift").unwrap();
    let token = emu.create_token("user1").unwrap();
    let repo = emu
        .create_repo("user1", "r", Some(seed_dir().path()))
        .unwrap();
    let work = tempfile::tempdir().unwrap();
    let wd = work.path().to_path_buf();
    let url = repo.clone_url.clone();
    tokio::task::spawn_blocking(move || {
        git(&wd, "user1", &token, &["clone", "-q", &url, "a"]);
        git(&wd, &token, "x-oauth-basic", &["clone", "-q", &url, "b"]);
        let basic = base64::engine::general_purpose::STANDARD.encode("user1:wrong");
        let out = Command::new("git")
            .args(["clone", "-q", &url, "c"])
            .current_dir(&wd)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_CONFIG_COUNT", "1")
            .env("GIT_CONFIG_KEY_0", "http.extraHeader")
            .env(
                "GIT_CONFIG_VALUE_0",
                format!("Authorization: Basic {basic}"),
            )
            .output()
            .unwrap();
        assert!(!out.status.success());
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_speaks_gitea_status_codes_and_error_bodies() {
    let emu = start(Options {
        max_response_items: Some(2),
        ..Options::default()
    })
    .await;
    emu.create_user("user1", "openshift").unwrap();
    let token = emu.create_token("user1").unwrap();
    emu.create_repo("user1", "r", Some(seed_dir().path()))
        .unwrap();
    emu.commit("user1", "r", "feature", Some("main"), "a.txt", "a", "a")
        .unwrap();
    let api = format!("{}/api/v1", emu.url());
    let c = reqwest::Client::new();

    let v: Value = c
        .get(format!("{api}/version"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v, json!({"version": "1.25.3"}));

    let r = c
        .get(format!("{api}/version"))
        .header("Authorization", "token nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["message"], "user does not exist [uid: 0, name: ]");
    assert_eq!(v["url"], format!("{}/api/swagger", emu.url()));

    let r = c
        .post(format!("{api}/repos/user1/r/pulls"))
        .json(&json!({"head": "feature", "base": "main", "title": "t"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "writes need a token");

    let auth = format!("token {token}");
    let create = || {
        c.post(format!("{api}/repos/user1/r/pulls"))
            .header("Authorization", &auth)
            .json(&json!({"head": "feature", "base": "main", "title": "t"}))
    };
    let r = create().send().await.unwrap();
    assert_eq!(r.status(), 201);
    let pr: Value = r.json().await.unwrap();
    assert_eq!(pr["number"], 1);
    assert_eq!(pr["head"]["label"], "feature");
    assert_eq!(pr["state"], "open");
    let r = create().send().await.unwrap();
    assert_eq!(r.status(), 409);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .starts_with("pull request already exists for these targets [id: ")
    );
    assert!(v["message"].as_str().unwrap().contains("issue_id: 1,"));

    // Issues and PRs share the number sequence.
    assert_eq!(emu.create_issue("user1", "r").unwrap(), 2);

    let r = c
        .get(format!("{api}/repos/user1/r/pulls/main/feature"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    emu.set_version("1.21.11");
    let r = c
        .get(format!("{api}/repos/user1/r/pulls/main/feature"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "old servers have no base/head endpoint");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["message"], "The target couldn't be found.");

    // Paging: limit capped by MAX_RESPONSE_ITEMS (2 here), X-Total-Count and Link.
    for b in ["f2", "f3"] {
        emu.commit("user1", "r", b, Some("main"), "b.txt", b, b)
            .unwrap();
        emu.create_pull("user1", "r", b, "main", b).unwrap();
    }
    let r = c
        .get(format!("{api}/repos/user1/r/pulls?state=open&limit=50"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-total-count"], "3");
    assert!(
        r.headers()["link"]
            .to_str()
            .unwrap()
            .contains("rel=\"next\"")
    );
    let page: Vec<Value> = r.json().await.unwrap();
    assert_eq!(page.len(), 2);

    // PATCH answers 201; closing works; reopening a duplicate is refused.
    let r = c
        .patch(format!("{api}/repos/user1/r/pulls/1"))
        .header("Authorization", &auth)
        .json(&json!({"state": "closed", "title": "t2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (v["state"].as_str(), v["title"].as_str()),
        (Some("closed"), Some("t2"))
    );
    let r = create().send().await.unwrap();
    assert_eq!(r.status(), 201, "a closed PR does not block a new one");
    let r = c
        .patch(format!("{api}/repos/user1/r/pulls/1"))
        .header("Authorization", &auth)
        .json(&json!({"state": "open"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);

    // Deleted head branch: head.ref becomes refs/pull/N/head, the label keeps the name.
    emu.delete_branch("user1", "r", "f2").unwrap();
    let n2 = emu
        .pulls("user1", "r")
        .unwrap()
        .into_iter()
        .find(|p| p.head == "f2")
        .unwrap()
        .number;
    let f2: Value = c
        .get(format!("{api}/repos/user1/r/pulls/{n2}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(f2["head"]["label"], "f2");
    assert_eq!(f2["head"]["ref"], format!("refs/pull/{n2}/head"));
    assert_eq!(f2["head"]["repo_id"], -1);

    // Merge through the Rust API moves main.
    let n = emu
        .pulls("user1", "r")
        .unwrap()
        .into_iter()
        .find(|p| p.head == "f3")
        .unwrap()
        .number;
    let sha = emu.merge_pull("user1", "r", n).unwrap();
    assert_eq!(emu.branches("user1", "r")["main"], sha);
    let merged = emu
        .pulls("user1", "r")
        .unwrap()
        .into_iter()
        .find(|p| p.number == n)
        .unwrap();
    assert!(merged.merged && !merged.open);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_and_tokens_via_the_api() {
    let pw = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(pw.path(), "admin-pass\n").unwrap();
    let emu = start(Options {
        admin_password_file: Some(pw.path().to_path_buf()),
        ..Options::default()
    })
    .await;
    let api = format!("{}/api/v1", emu.url());
    let c = reqwest::Client::new();
    let r = c
        .post(format!("{api}/admin/users"))
        .basic_auth("gitea_admin", Some("admin-pass"))
        .json(&json!({"username": "user1", "email": "user1@example.com", "password": "openshift"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = c
        .post(format!("{api}/users/user1/tokens"))
        .basic_auth("user1", Some("openshift"))
        .json(&json!({"name": "ci", "scopes": ["write:repository"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let tok: Value = r.json().await.unwrap();
    let token = tok["sha1"].as_str().unwrap().to_string();
    let r = c
        .post(format!("{api}/user/repos"))
        .header("Authorization", format!("token {token}"))
        .json(&json!({"name": "mlops-gitops"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let repo: Value = r.json().await.unwrap();
    assert_eq!(
        repo["clone_url"],
        format!("{}/user1/mlops-gitops.git", emu.url())
    );
    assert_eq!(repo["empty"], true);
    let r = c
        .post(format!("{api}/repos/user1/mlops-gitops/hooks"))
        .header("Authorization", format!("token {token}"))
        .json(&json!({"type": "gitea", "config": {"url": "http://127.0.0.1:9/hook", "content_type": "json", "secret": SECRET}, "events": ["push"], "active": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let hook: Value = r.json().await.unwrap();
    assert_eq!(hook["config"]["url"], "http://127.0.0.1:9/hook");
    assert!(
        hook["config"].get("secret").is_none(),
        "the secret is never returned"
    );
    let r = c
        .post(format!("{api}/repos/user1/mlops-gitops/hooks"))
        .header("Authorization", format!("token {token}"))
        .json(&json!({"type": "gitea", "config": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let _ = emu;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_hooks_get_empty_signatures_and_branch_deletions_send_no_push() {
    let emu = start(Options::default()).await;
    let (hook_server, mut rx) = receiver().await;
    emu.create_user("user1", "openshift").unwrap();
    let repo = emu
        .create_repo("user1", "r", Some(seed_dir().path()))
        .unwrap();
    emu.create_branch("user1", "r", "doomed", "main").unwrap();
    emu.add_hook("user1", "r", &format!("{}/hook", hook_server.url), "")
        .unwrap();
    let work = tempfile::tempdir().unwrap();
    let wd = work.path().to_path_buf();
    let url = repo.clone_url.clone();
    tokio::task::spawn_blocking(move || {
        git(&wd, "user1", "openshift", &["clone", "-q", &url, "w"]);
        let w = wd.join("w");
        git(
            &w,
            "user1",
            "openshift",
            &["push", "-q", "origin", "--delete", "doomed"],
        );
        std::fs::write(w.join("new.txt"), "x").unwrap();
        git(&w, "user1", "openshift", &["add", "."]);
        git(&w, "user1", "openshift", &["commit", "-qm", "x"]);
        git(&w, "user1", "openshift", &["push", "-q", "origin", "main"]);
    })
    .await
    .unwrap();
    let (h, body) = tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("webhook delivered")
        .unwrap();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        v["ref"], "refs/heads/main",
        "the deletion sent no push event"
    );
    assert_eq!(h["x-hub-signature-256"], "sha256=");
    assert_eq!(h["x-gitea-signature"], "");
    assert_eq!(h["x-hub-signature"], "sha1=");
    assert!(!emu.branches("user1", "r").contains_key("doomed"));
    assert_eq!(deliveries(&emu, 1).await.len(), 1);
}
