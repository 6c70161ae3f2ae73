//! The git smart-HTTP server with the real git CLI: Basic auth, clone, push, on_push events,
//! bad paths.

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use ct_forge_emulator::git_http::{GitHttp, PushEvent, ZERO_SHA};
use ct_forge_emulator::{Server, loopback};

fn git(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clone_and_push_with_basic_auth_report_ref_updates() {
    let root = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let w = work.path().to_path_buf();
    assert!(
        git(
            root.path(),
            &["init", "-q", "--bare", "-b", "main", "alice/repo.git"]
        )
        .status
        .success()
    );
    let events: Arc<Mutex<Vec<PushEvent>>> = Arc::default();
    let e = events.clone();
    let server = Server::start(
        loopback(0),
        GitHttp::with_user(root.path(), "alice", "pw-123456")
            .on_push(Arc::new(move |ev| e.lock().unwrap().push(ev)))
            .router(),
    )
    .await
    .unwrap();
    let base = server.url.clone();
    let url = format!(
        "http://alice:pw-123456@{}/alice/repo.git",
        server.url.trim_start_matches("http://")
    );

    // Plain HTTP checks: 401 with a Basic challenge, 404, 400 for `..`.
    let http = reqwest::Client::new();
    let r = http
        .get(format!(
            "{base}/alice/repo.git/info/refs?service=git-upload-pack"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Basic realm=\"git\"");
    let r = http
        .get(format!(
            "{base}/alice/repo.git/info/refs?service=git-upload-pack"
        ))
        .basic_auth("alice", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .get(format!(
            "{base}/alice/nope.git/info/refs?service=git-upload-pack"
        ))
        .basic_auth("alice", Some("pw-123456"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = http
        .get(format!(
            "{base}/alice/%2E%2E/x.git/info/refs?service=git-upload-pack"
        ))
        .basic_auth("alice", Some("pw-123456"))
        .send()
        .await
        .unwrap();
    assert!(r.status() == 400 || r.status() == 404, "{}", r.status());

    // The git CLI: clone the empty repo, commit, push a branch; on_push sees the update.
    let out = tokio::task::spawn_blocking(move || {
        let o = git(&w, &["clone", "-q", &url, "c"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let c = w.join("c");
        std::fs::write(c.join("a.txt"), "hello\n").unwrap();
        assert!(git(&c, &["add", "a.txt"]).status.success());
        assert!(git(&c, &["commit", "-q", "-m", "one"]).status.success());
        let o = git(&c, &["push", "-q", "origin", "HEAD:refs/heads/main"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(git(&c, &["rev-parse", "HEAD"]).stdout).unwrap()
    })
    .await
    .unwrap();
    let head = out.trim().to_string();
    let events = events.lock().unwrap().clone();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].repo, "alice/repo.git");
    assert_eq!(events[0].user, "alice");
    assert_eq!(events[0].updates.len(), 1);
    assert_eq!(events[0].updates[0].refname, "refs/heads/main");
    assert_eq!(events[0].updates[0].old, ZERO_SHA);
    assert_eq!(events[0].updates[0].new, head);
}
