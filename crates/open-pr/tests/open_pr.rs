//! `open-pr` as a process against the sandbox forge (Gitea API): idempotency, races, closed
//! PRs, deleted branches, old servers, auth errors, unknown labels and no-op heads.

use std::collections::BTreeMap;

use ct_forge_emulator::{Emulator, Options};
use ct_testkit::forge::{HEAD, OWNER, Promotion as Forge, REPO, promotion};

async fn forge(options: Options) -> Forge {
    promotion(options, "prod/jukebox/config.yaml").await
}

struct Run {
    code: i32,
    stderr: String,
    stdout: String,
    results: BTreeMap<String, String>,
}

async fn open_pr(f: &Forge, token: &str, extra: &[&str]) -> Run {
    let results = tempfile::tempdir().unwrap();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_open-pr"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .args(["--forge", "gitea", "--api-url", &f.emu.api_url()])
        .args([
            "--repo",
            &format!("{OWNER}/{REPO}"),
            "--head",
            HEAD,
            "--base",
            "main",
        ])
        .arg("--results-dir")
        .arg(results.path())
        .args(["--max-retries", "0"]);
    if !token.is_empty() {
        cmd.env("CT_TOKEN", token);
    }
    let mut has_title = false;
    for a in extra {
        has_title |= *a == "--title";
    }
    if !has_title {
        cmd.args(["--title", "Promote jukebox 1.0.1 to prod"]);
    }
    cmd.args(extra);
    let out = cmd.output().await.unwrap();
    let mut map = BTreeMap::new();
    for e in std::fs::read_dir(results.path()).unwrap() {
        let e = e.unwrap();
        map.insert(
            e.file_name().to_string_lossy().to_string(),
            std::fs::read_to_string(e.path()).unwrap(),
        );
    }
    Run {
        code: out.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
        stdout: String::from_utf8_lossy(&out.stdout).to_string(),
        results: map,
    }
}

fn ok(r: &Run) -> &Run {
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_twice_leaves_one_pr_brought_up_to_date() {
    let f = forge(Options::default()).await;
    let first = open_pr(
        &f,
        &f.token,
        &[
            "--body",
            "first",
            "--label",
            "promote",
            "--assignee",
            "reviewer",
        ],
    )
    .await;
    ok(&first);
    assert_eq!(first.results["PR_ACTION"], "created");
    assert_eq!(first.results["PR_NUMBER"], "1");
    assert_eq!(
        first.results["PR_URL"],
        format!("{}/{OWNER}/{REPO}/pulls/1", f.emu.url())
    );
    assert!(first.stdout.contains("PR_ACTION=created"));

    let body = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(body.path(), "second body\n").unwrap();
    let second = open_pr(
        &f,
        &f.token,
        &[
            "--title",
            "Promote jukebox 1.0.1",
            "--body-file",
            body.path().to_str().unwrap(),
            "--label",
            "promote",
        ],
    )
    .await;
    ok(&second);
    assert_eq!(second.results["PR_ACTION"], "existing");
    assert_eq!(second.results["PR_NUMBER"], "1");
    assert_eq!(second.results["PR_URL"], first.results["PR_URL"]);

    let pulls = f.emu.pulls(OWNER, REPO).unwrap();
    assert_eq!(pulls.len(), 1);
    assert_eq!(pulls[0].title, "Promote jukebox 1.0.1");
    assert_eq!(pulls[0].body, "second body\n");
    assert_eq!(pulls[0].labels, vec!["promote".to_string()]);
    assert_eq!(pulls[0].assignees, vec!["reviewer".to_string()]);
    assert!(
        !second.stderr.contains(&f.token),
        "the token is never logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_runs_leave_one_pr() {
    let f = forge(Options::default()).await;
    let (a, b) = tokio::join!(open_pr(&f, &f.token, &[]), open_pr(&f, &f.token, &[]));
    let mut actions = vec![
        ok(&a).results["PR_ACTION"].clone(),
        ok(&b).results["PR_ACTION"].clone(),
    ];
    actions.sort();
    assert_eq!(actions, vec!["created", "existing"]);
    assert_eq!(a.results["PR_NUMBER"], b.results["PR_NUMBER"]);
    assert_eq!(f.emu.pulls(OWNER, REPO).unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_race_409_is_reused() {
    let f = forge(Options::default()).await;
    // Another client creates the same PR right before our POST: the server answers 409.
    f.emu.race_next_create(OWNER, REPO).unwrap();
    let r = open_pr(&f, &f.token, &["--body", "mine"]).await;
    ok(&r);
    assert_eq!(r.results["PR_ACTION"], "existing");
    let pulls = f.emu.pulls(OWNER, REPO).unwrap();
    assert_eq!(pulls.len(), 1);
    assert_eq!(r.results["PR_NUMBER"], pulls[0].number.to_string());
    assert_eq!(pulls[0].body, "mine", "the reused PR is brought up to date");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_or_merged_prs_with_the_same_branch_do_not_count() {
    let f = forge(Options::default()).await;
    let closed = f.emu.create_pull(OWNER, REPO, HEAD, "main", "old").unwrap();
    f.emu.close_pull(OWNER, REPO, closed).unwrap();
    let r = open_pr(&f, &f.token, &[]).await;
    ok(&r);
    assert_eq!(r.results["PR_ACTION"], "created");
    let created: i64 = r.results["PR_NUMBER"].parse().unwrap();
    assert_ne!(created, closed);

    // Merged, then the branch name is reused for new work: a new PR again.
    f.emu.merge_pull(OWNER, REPO, created).unwrap();
    f.emu
        .commit(
            OWNER,
            REPO,
            HEAD,
            None,
            "prod/jukebox/config.yaml",
            "version: 1.0.2\n",
            "again",
        )
        .unwrap();
    let r = open_pr(&f, &f.token, &[]).await;
    ok(&r);
    assert_eq!(r.results["PR_ACTION"], "created");
    assert!(r.results["PR_NUMBER"].parse::<i64>().unwrap() > created);
    assert_eq!(
        f.emu
            .pulls(OWNER, REPO)
            .unwrap()
            .iter()
            .filter(|p| p.open)
            .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_head_branch_is_a_clear_error() {
    let f = forge(Options::default()).await;
    f.emu.delete_branch(OWNER, REPO, HEAD).unwrap();
    let r = open_pr(&f, &f.token, &[]).await;
    assert_eq!(r.code, 2, "stderr: {}", r.stderr);
    assert!(
        r.stderr
            .contains("--head jukebox-1.0.1: branch does not exist in user1/mlops-gitops"),
        "{}",
        r.stderr
    );
    assert!(f.emu.pulls(OWNER, REPO).unwrap().is_empty());
    assert!(r.results.is_empty(), "no results on failure");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_gitea_without_base_head_endpoint_pages_through_open_prs() {
    let f = forge(Options {
        version: Some("1.21.11".into()),
        max_response_items: Some(2),
        ..Options::default()
    })
    .await;
    // Our PR is the oldest; five newer open PRs push it to the third page (newest first).
    let ours = f
        .emu
        .create_pull(OWNER, REPO, HEAD, "main", "ours")
        .unwrap();
    for i in 0..5 {
        let b = format!("other-{i}");
        f.emu
            .commit(OWNER, REPO, &b, Some("main"), "x", &b, &b)
            .unwrap();
        f.emu.create_pull(OWNER, REPO, &b, "main", &b).unwrap();
    }
    let r = open_pr(&f, &f.token, &["--log-level", "debug"]).await;
    ok(&r);
    assert_eq!(r.results["PR_ACTION"], "existing");
    assert_eq!(r.results["PR_NUMBER"], ours.to_string());
    assert!(
        r.stderr.contains("base/head lookup unavailable"),
        "{}",
        r.stderr
    );
    assert_eq!(f.emu.pulls(OWNER, REPO).unwrap().len(), 6);

    // Once ours is closed, the listing finds nothing and a new PR is created.
    f.emu.close_pull(OWNER, REPO, ours).unwrap();
    let r = open_pr(&f, &f.token, &[]).await;
    ok(&r);
    assert_eq!(r.results["PR_ACTION"], "created");
    assert_eq!(r.results["PR_NUMBER"], "7");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modern_gitea_falls_back_to_listing_when_base_head_returns_a_closed_pr() {
    let f = forge(Options::default()).await;
    // pulls/{base}/{head} has no state filter: it returns this old closed PR first.
    let old = f.emu.create_pull(OWNER, REPO, HEAD, "main", "old").unwrap();
    f.emu.close_pull(OWNER, REPO, old).unwrap();
    let open = f
        .emu
        .create_pull(OWNER, REPO, HEAD, "main", "open")
        .unwrap();
    let r = open_pr(&f, &f.token, &[]).await;
    ok(&r);
    assert_eq!(r.results["PR_ACTION"], "existing");
    assert_eq!(r.results["PR_NUMBER"], open.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_token_exits_3_with_the_servers_message() {
    let f = forge(Options::default()).await;
    let r = open_pr(&f, "not-a-valid-token-4242", &[]).await;
    assert_eq!(r.code, 3, "stderr: {}", r.stderr);
    assert!(r.stderr.contains("HTTP 401"), "{}", r.stderr);
    assert!(
        r.stderr.contains("user does not exist [uid: 0, name: ]"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("not-a-valid-token-4242"));
    assert!(f.emu.pulls(OWNER, REPO).unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_token_is_a_usage_error() {
    let f = forge(Options::default()).await;
    let r = open_pr(&f, "", &[]).await;
    assert_eq!(r.code, 2, "stderr: {}", r.stderr);
    assert!(r.stderr.contains("--token-file"), "{}", r.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_file_is_read() {
    let f = forge(Options::default()).await;
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), format!("{}\n", f.token)).unwrap();
    let r = open_pr(&f, "", &["--token-file", file.path().to_str().unwrap()]).await;
    ok(&r);
    assert_eq!(r.results["PR_ACTION"], "created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_label_or_assignee_is_an_error_and_no_pr() {
    let f = forge(Options::default()).await;
    let r = open_pr(&f, &f.token, &["--label", "promote", "--label", "nope"]).await;
    assert_eq!(r.code, 2, "stderr: {}", r.stderr);
    assert!(
        r.stderr
            .contains("--label nope: no such label in user1/mlops-gitops (known: promote)"),
        "{}",
        r.stderr
    );
    let r = open_pr(&f, &f.token, &["--assignee", "ghost"]).await;
    assert_eq!(r.code, 2, "stderr: {}", r.stderr);
    assert!(r.stderr.contains("--assignee ghost"), "{}", r.stderr);
    assert!(f.emu.pulls(OWNER, REPO).unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_without_new_commits_is_skipped() {
    let f = forge(Options::default()).await;
    // Same tip as main.
    f.emu.create_branch(OWNER, REPO, "same", "main").unwrap();
    // Behind main: main moved on, the branch has nothing of its own.
    f.emu.create_branch(OWNER, REPO, "behind", "main").unwrap();
    f.emu
        .commit(OWNER, REPO, "main", None, "other", "x", "main moves")
        .unwrap();
    for head in ["same", "behind"] {
        let results = tempfile::tempdir().unwrap();
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_open-pr"))
            .env_clear()
            .env("CT_TOKEN", &f.token)
            .args([
                "--api-url",
                &f.emu.api_url(),
                "--repo",
                "user1/mlops-gitops",
            ])
            .args(["--head", head, "--title", "t", "--results-dir"])
            .arg(results.path())
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let read = |n: &str| std::fs::read_to_string(results.path().join(n)).unwrap();
        assert_eq!(read("PR_ACTION"), "skipped");
        assert_eq!(read("PR_NUMBER"), "");
        assert_eq!(read("PR_URL"), "");
    }
    assert!(f.emu.pulls(OWNER, REPO).unwrap().is_empty());
}

#[test]
fn bad_flags_are_usage_errors() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_open-pr"))
        .env_clear()
        .env("CT_TOKEN", "t")
        .args([
            "--api-url",
            "http://127.0.0.1:9/api/v1",
            "--repo",
            "no-slash",
        ])
        .args(["--head", "a", "--title", "t"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--repo `no-slash`"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_open-pr"))
        .env_clear()
        .env("CT_TOKEN", "t")
        .args(["--api-url", "http://127.0.0.1:9/api/v1", "--repo", "a/b"])
        .args(["--head", "main", "--title", "t"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--head and --base are both `main`"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_and_gitlab_flags_reach_their_apis() {
    let f = forge(Options::default()).await;
    for (forge, api, number, url) in [
        (
            "github",
            f.emu.github_api_url(),
            1,
            format!("{}/{OWNER}/{REPO}/pull/1", f.emu.url()),
        ),
        (
            "gitlab",
            f.emu.gitlab_api_url(),
            2,
            format!("{}/{OWNER}/{REPO}/-/merge_requests/2", f.emu.url()),
        ),
    ] {
        let results = tempfile::tempdir().unwrap();
        let run = || {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_open-pr"))
                .env_clear()
                .env("CT_TOKEN", &f.token)
                .args(["--forge", forge, "--api-url", &api])
                .args([
                    "--repo",
                    "user1/mlops-gitops",
                    "--head",
                    HEAD,
                    "--title",
                    "t",
                ])
                .args([
                    "--label",
                    "promote",
                    "--assignee",
                    "reviewer",
                    "--results-dir",
                ])
                .arg(results.path())
                .output()
        };
        let read = |n: &str| std::fs::read_to_string(results.path().join(n)).unwrap();
        for action in ["created", "existing"] {
            let out = run().await.unwrap();
            assert!(
                out.status.success(),
                "{forge}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(read("PR_ACTION"), action, "{forge}");
            assert_eq!(read("PR_NUMBER"), number.to_string(), "{forge}");
            assert_eq!(read("PR_URL"), url, "{forge}");
        }
        let pulls = f.emu.pulls(OWNER, REPO).unwrap();
        assert_eq!(pulls.len(), number as usize, "{forge}: one PR per forge");
        let pr = pulls.iter().find(|p| p.number == number).unwrap();
        assert_eq!(pr.labels, vec!["promote".to_string()], "{forge}");
        assert_eq!(pr.assignees, vec!["reviewer".to_string()], "{forge}");
        // Close it so the next forge starts from a clean slate (closed PRs do not count).
        f.emu.close_pull(OWNER, REPO, number).unwrap();
    }
}
