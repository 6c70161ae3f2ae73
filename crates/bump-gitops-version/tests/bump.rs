//! bump-gitops-version against a real `git http-backend` with Basic auth.

mod common;

use common::*;

const CONFIG: &str = r#"# jukebox in test
# managed by the pipeline
---
app: jukebox
version: "1.2.3"    # bumped by CT

image_repository: quay.io/acme/jukebox
image_namespace: user1-dev   # namespace
model:
  name: 'jukebox'
  tag: v1
"#;

const CONFIG_PATH: &str = "model-deployments/test/jukebox/config.yaml";

fn repo_with_config(server: &GitServer) -> std::path::PathBuf {
    server.create_repo(
        "org/gitops",
        &[
            (CONFIG_PATH, CONFIG.as_bytes()),
            (
                "model-deployments/prod/jukebox/config.yaml",
                b"version: 1.0.0\n",
            ),
            ("README.md", b"gitops\n"),
        ],
    )
}

/// `--environment ENV --app jukebox` followed by `rest`.
fn jukebox<'a>(env: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["--environment", env, "--app", "jukebox"];
    args.extend_from_slice(rest);
    args
}

/// Install `script` as the bare repository's executable pre-receive hook.
fn pre_receive_hook(bare: &std::path::Path, script: &str) {
    use std::os::unix::fs::PermissionsExt;
    let hook = bare.join("hooks/pre-receive");
    std::fs::write(&hook, script).unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Install a pre-receive hook in which a concurrent writer (`other`) runs `body`, which sets
/// `$c` to a new commit, and moves `main` to it before git updates the ref for the push.
fn concurrent_writer_hook(bare: &std::path::Path, body: &str) {
    let script = format!(
        r#"#!/bin/sh
cat >/dev/null
unset GIT_QUARANTINE_PATH GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES
export GIT_AUTHOR_NAME=other GIT_AUTHOR_EMAIL=other@example.com GIT_COMMITTER_NAME=other GIT_COMMITTER_EMAIL=other@example.com
{body}git update-ref refs/heads/main "$c"
exit 0
"#
    );
    pre_receive_hook(bare, &script);
}

#[test]
fn bump_on_main_changes_only_the_values_and_a_rerun_is_a_noop() {
    let server = GitServer::start();
    let bare = repo_with_config(&server);
    let before = rev(&bare, "main");
    let args = jukebox(
        "test",
        &[
            "--set",
            "version=1.10",
            "--set",
            "image_namespace=user1-test",
            "--set",
            "model.tag=true",
        ],
    );
    let run = Step::new(&server.repo_url("org/gitops"))
        .args(&args)
        .run()
        .ok();
    assert_eq!(run.result("CHANGED"), "true");
    assert_eq!(run.result("BRANCH"), "main");
    let tip = rev(&bare, "main");
    assert_eq!(run.result("COMMIT_SHA"), tip);
    assert_eq!(
        rev(&bare, "main^"),
        before,
        "one commit on top of the old tip"
    );
    assert_eq!(
        show(&bare, &format!("main:{CONFIG_PATH}")),
        CONFIG
            .replace("\"1.2.3\"", "\"1.10\"")
            .replace("user1-dev", "user1-test")
            .replace("tag: v1", "tag: \"true\"")
    );
    let msg = git(&bare, &["log", "-1", "--format=%an <%ae>%n%s"]);
    assert_eq!(
        msg.trim(),
        "bump-gitops-version <bump-gitops-version@noreply.local>\n\
         Bump jukebox in test: version=1.10, image_namespace=user1-test, model.tag=true"
    );
    assert!(run.stdout().contains(&format!("COMMIT_SHA={tip}")));
    assert!(!run.stderr().contains(PASSWORD));
    assert_eq!(server.pushes(), 1);

    // Same values again: no commit, no push, CHANGED=false, the existing tip as COMMIT_SHA.
    let again = Step::new(&server.repo_url("org/gitops"))
        .args(&args)
        .run()
        .ok();
    assert_eq!(again.result("CHANGED"), "false");
    assert_eq!(again.result("COMMIT_SHA"), tip);
    assert_eq!(again.result("BRANCH"), "main");
    assert_eq!(rev(&bare, "main"), tip);
    assert_eq!(server.pushes(), 1, "a no-op must not push");
}

#[test]
fn wrong_or_missing_credentials_fail_clearly_without_hanging() {
    let server = GitServer::start();
    repo_with_config(&server);
    let run = Step::with_password(&server.repo_url("org/gitops"), "wrong-password-123")
        .args(&["--file", CONFIG_PATH, "--set", "version=2"])
        .run();
    assert_eq!(run.code(), 3, "{}", run.stderr());
    assert!(
        run.stderr()
            .contains("authentication as `pipeline-bot` failed"),
        "{}",
        run.stderr()
    );
    assert!(!run.stderr().contains("wrong-password-123"));

    let run = Step::anonymous(&server.repo_url("org/gitops"))
        .args(&["--file", CONFIG_PATH, "--set", "version=2"])
        .run();
    assert_eq!(run.code(), 3, "{}", run.stderr());
    assert!(
        run.stderr().contains("requires authentication"),
        "{}",
        run.stderr()
    );
    assert_eq!(server.pushes(), 0);
}

#[test]
fn a_push_rejected_by_a_server_hook_exits_non_zero() {
    let server = GitServer::start();
    let bare = repo_with_config(&server);
    pre_receive_hook(
        &bare,
        "#!/bin/sh\necho 'policy: main is frozen' >&2\nexit 1\n",
    );
    let before = rev(&bare, "main");
    let run = Step::new(&server.repo_url("org/gitops"))
        .args(&["--file", CONFIG_PATH, "--set", "version=2.0.0"])
        .run();
    assert_eq!(run.code(), 3, "{}", run.stderr());
    assert!(
        run.stderr()
            .contains("rejected the update of refs/heads/main")
            && run.stderr().contains("pre-receive hook declined"),
        "{}",
        run.stderr()
    );
    assert_eq!(rev(&bare, "main"), before);
    assert!(
        !run.results.path().join("COMMIT_SHA").exists(),
        "no results on failure"
    );
}

#[test]
fn path_traversal_and_symlinks_are_refused() {
    let server = GitServer::start();
    let seed = tempfile::tempdir().unwrap();
    git(seed.path(), &["init", "-q", "-b", "main"]);
    std::fs::create_dir_all(seed.path().join("model-deployments/test/app")).unwrap();
    std::fs::write(
        seed.path().join("model-deployments/test/app/config.yaml"),
        "v: 1\n",
    )
    .unwrap();
    std::os::unix::fs::symlink("/etc", seed.path().join("model-deployments/test/evil")).unwrap();
    std::os::unix::fs::symlink(
        "../app/config.yaml",
        seed.path().join("model-deployments/test/link.yaml"),
    )
    .unwrap();
    git(seed.path(), &["add", "-A"]);
    git(seed.path(), &["commit", "-q", "-m", "seed"]);
    let bare = server.bare("org/evil");
    std::fs::create_dir_all(bare.parent().unwrap()).unwrap();
    git(
        server.root.path(),
        &[
            "clone",
            "-q",
            "--bare",
            seed.path().to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    );
    let url = server.repo_url("org/evil");
    for (args, want) in [
        (vec!["--file", "../outside.yaml"], "contains `..`"),
        (vec!["--file", "/etc/passwd"], "is absolute"),
        (
            vec!["--file", "model-deployments/test/../../x"],
            "contains `..`",
        ),
        (vec!["--file", ".git/config"], "points into .git"),
        (
            vec!["--environment", "..", "--app", "x"],
            "--environment `..` is not a valid name",
        ),
        (
            vec!["--environment", "test", "--app", "../../etc"],
            "--app `../../etc` is not a valid name",
        ),
        (
            vec!["--file", "model-deployments/test/evil/passwd"],
            "is a symbolic link",
        ),
        (
            vec!["--file", "model-deployments/test/link.yaml"],
            "is a symbolic link",
        ),
    ] {
        let mut a = args.clone();
        a.extend(["--set", "v=2"]);
        let run = Step::new(&url).args(&a).run();
        assert_eq!(run.code(), 2, "{args:?}: {}", run.stderr());
        assert!(run.stderr().contains(want), "{args:?}: {}", run.stderr());
    }
    assert_eq!(server.pushes(), 0);
}

#[test]
fn missing_keys_fail_unless_create_missing_and_dry_run_pushes_nothing() {
    let server = GitServer::start();
    let bare = repo_with_config(&server);
    let url = server.repo_url("org/gitops");
    let run = Step::new(&url)
        .args(&jukebox("test", &["--set", "image_digest=sha256:abc"]))
        .run();
    assert_eq!(run.code(), 2, "{}", run.stderr());
    assert!(
        run.stderr().contains("pass --create-missing"),
        "{}",
        run.stderr()
    );

    let before = rev(&bare, "main");
    let dry = Step::new(&url)
        .args(&jukebox(
            "test",
            &[
                "--set",
                "image_digest=sha256:abc",
                "--create-missing",
                "--dry-run",
            ],
        ))
        .run()
        .ok();
    let diff = dry.stdout();
    assert!(
        diff.contains(&format!("+++ b/{CONFIG_PATH}\n"))
            && diff.contains("   tag: v1\n+image_digest: sha256:abc\n"),
        "{diff}"
    );
    assert_eq!(dry.result("CHANGED"), "true");
    assert_eq!(
        dry.result("COMMIT_SHA"),
        before,
        "dry-run reports the base tip"
    );
    assert_eq!(rev(&bare, "main"), before);
    assert_eq!(server.pushes(), 0);

    Step::new(&url)
        .args(&jukebox(
            "test",
            &["--set", "image_digest=sha256:abc", "--create-missing"],
        ))
        .run()
        .ok();
    assert_eq!(
        show(&bare, &format!("main:{CONFIG_PATH}")),
        format!("{CONFIG}image_digest: sha256:abc\n")
    );
}

#[test]
fn push_branch_is_created_from_base_reused_and_rebuilt_with_lease() {
    let server = GitServer::start();
    let bare = repo_with_config(&server);
    let url = server.repo_url("org/gitops");
    let args = jukebox(
        "prod",
        &["--set", "version=1.0.1", "--push-branch", "jukebox-1.0.1"],
    );
    let main0 = rev(&bare, "main");
    let run = Step::new(&url).args(&args).run().ok();
    assert_eq!(run.result("CHANGED"), "true");
    assert_eq!(run.result("BRANCH"), "jukebox-1.0.1");
    let b1 = rev(&bare, "jukebox-1.0.1");
    assert_eq!(run.result("COMMIT_SHA"), b1);
    assert_eq!(rev(&bare, "jukebox-1.0.1^"), main0);
    assert_eq!(rev(&bare, "main"), main0, "the base branch is untouched");
    assert_eq!(
        show(
            &bare,
            "jukebox-1.0.1:model-deployments/prod/jukebox/config.yaml"
        ),
        "version: 1.0.1\n"
    );

    // Re-run: the branch already holds exactly this: no push.
    let pushes = server.pushes();
    let again = Step::new(&url).args(&args).run().ok();
    assert_eq!(again.result("CHANGED"), "false");
    assert_eq!(again.result("COMMIT_SHA"), b1);
    assert_eq!(again.result("BRANCH"), "jukebox-1.0.1");
    assert_eq!(server.pushes(), pushes);

    // Base moves: the branch is rebuilt on the new base (forced, with lease).
    Step::new(&url)
        .args(&jukebox("test", &["--set", "version=9.9.9"]))
        .run()
        .ok();
    let main1 = rev(&bare, "main");
    let rebuilt = Step::new(&url).args(&args).run().ok();
    assert_eq!(rebuilt.result("CHANGED"), "true");
    let b2 = rev(&bare, "jukebox-1.0.1");
    assert_ne!(b2, b1);
    assert_eq!(rev(&bare, "jukebox-1.0.1^"), main1);
    assert_eq!(count(&bare, "jukebox-1.0.1"), count(&bare, "main") + 1);

    // The edit is already on the base: nothing to do, no branch push.
    let pushes = server.pushes();
    let noop = Step::new(&url)
        .args(&jukebox(
            "test",
            &["--set", "version=9.9.9", "--push-branch", "x-1"],
        ))
        .run()
        .ok();
    assert_eq!(noop.result("CHANGED"), "false");
    assert_eq!(noop.result("BRANCH"), "main");
    assert_eq!(noop.result("COMMIT_SHA"), main1);
    assert_eq!(server.pushes(), pushes);
}

#[test]
fn credentials_from_a_tekton_basic_auth_workspace() {
    let server = GitServer::start();
    let bare = repo_with_config(&server);
    let ws = tempfile::tempdir().unwrap();
    let host = server.url.trim_start_matches("http://");
    std::fs::write(
        ws.path().join(".git-credentials"),
        format!(
            "https://other:x@example.com\nhttp://{USER}:{}@{host}\n",
            PASSWORD.replace('-', "%2D")
        ),
    )
    .unwrap();
    std::fs::write(
        ws.path().join(".gitconfig"),
        "[credential]\n\thelper = store\n",
    )
    .unwrap();
    let results = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bump-gitops-version"))
        .args([
            "--repo-url",
            &server.repo_url("org/gitops"),
            "--git-credentials-file",
        ])
        .arg(ws.path())
        .args([
            "--file",
            CONFIG_PATH,
            "--set",
            "app=jukebox2",
            "--results-dir",
        ])
        .arg(results.path())
        .env_remove("CT_GIT_PASSWORD")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(show(&bare, &format!("main:{CONFIG_PATH}")).contains("app: jukebox2\n"));
}

#[test]
fn env_credentials_and_repo_dir_checkout() {
    let server = GitServer::start();
    let bare = repo_with_config(&server);
    let url = server.repo_url("org/gitops");
    // A checkout made by a previous Tekton task (no credentials in it).
    let ws = tempfile::tempdir().unwrap();
    let checkout = ws.path().join("src");
    git(
        ws.path(),
        &[
            "clone",
            "-q",
            bare.to_str().unwrap(),
            checkout.to_str().unwrap(),
        ],
    );
    git(&checkout, &["remote", "set-url", "origin", &url]);
    let results = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bump-gitops-version"))
        .arg("--repo-dir")
        .arg(&checkout)
        .args([
            "--environment",
            "test",
            "--app",
            "jukebox",
            "--set",
            "version=3.0.0",
            "--results-dir",
        ])
        .arg(results.path())
        .env("CT_GIT_USERNAME", USER)
        .env("CT_GIT_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tip = rev(&bare, "main");
    assert_eq!(
        std::fs::read_to_string(results.path().join("COMMIT_SHA")).unwrap(),
        tip
    );
    // The checkout followed: local main at the pushed commit, file updated.
    assert_eq!(rev(&checkout, "main"), tip);
    assert!(
        std::fs::read_to_string(checkout.join(CONFIG_PATH))
            .unwrap()
            .contains("version: \"3.0.0\"")
    );
    let config = std::fs::read_to_string(checkout.join(".git/config")).unwrap();
    assert!(!config.contains(PASSWORD));
}

#[test]
fn bad_inputs_fail_before_any_remote_call() {
    for (args, want) in [
        (vec!["--file", "a.yaml", "--set", "noequals"], "KEY=VALUE"),
        (
            vec![
                "--file",
                "a.yaml",
                "--set",
                "v=1",
                "--push-branch",
                "bad..name",
            ],
            "not a valid branch name",
        ),
        (
            vec!["--file", "a.yaml", "--set", "v=1", "--message", "{oops}"],
            "unknown placeholder",
        ),
        (
            vec!["--file", "a.yaml", "--set", "v=1", "--push-branch", "main"],
            "equals --base-branch",
        ),
    ] {
        let run = Step::new("http://127.0.0.1:9/none.git").args(&args).run();
        assert_eq!(run.code(), 2, "{args:?}: {}", run.stderr());
        assert!(run.stderr().contains(want), "{args:?}: {}", run.stderr());
    }
    // CT_SET holds several settings, one per line (how a Tekton step passes them).
    let mut step = Step::new("http://127.0.0.1:9/none.git").args(&["--file", "a.yaml"]);
    step.cmd.env("CT_SET", "version=1\nnoequals");
    let run = step.run();
    assert_eq!(run.code(), 2, "{}", run.stderr());
    assert!(
        run.stderr().contains("`noequals` has no `=`"),
        "{}",
        run.stderr()
    );
    let run = Step::new("https://u:pw@example.com/r.git")
        .args(&["--file", "a.yaml", "--set", "v=1"])
        .run();
    assert_eq!(run.code(), 2);
    assert!(
        run.stderr().contains("contains a password") && !run.stderr().contains("pw@"),
        "{}",
        run.stderr()
    );
}

/// A pre-receive hook that, once, moves `main` itself (a concurrent writer committing
/// `other.txt`) before git updates the ref: the step's push is refused with a stale old value
/// and must fetch, re-apply on the new tip and push again, keeping the other commit.
#[test]
fn a_lost_race_is_retried_on_the_new_tip_without_forcing() {
    let server = GitServer::start();
    let bare = repo_with_config(&server);
    concurrent_writer_hook(
        &bare,
        r#"[ -e "$GIT_DIR/raced" ] && exit 0
touch "$GIT_DIR/raced"
export GIT_INDEX_FILE="$GIT_DIR/race-index"
git read-tree refs/heads/main
blob=$(echo "other writer" | git hash-object -w --stdin)
git update-index --add --cacheinfo 100644,"$blob",other.txt
tree=$(git write-tree)
c=$(echo "concurrent writer" | git commit-tree "$tree" -p refs/heads/main)
"#,
    );
    let before = count(&bare, "main");
    let run = Step::new(&server.repo_url("org/gitops"))
        .args(&["--file", CONFIG_PATH, "--set", "version=4.0.0"])
        .run()
        .ok();
    assert!(
        run.stderr().contains("attempt 1/8") && run.stderr().contains("re-applying"),
        "{}",
        run.stderr()
    );
    let tip = rev(&bare, "main");
    assert_eq!(run.result("COMMIT_SHA"), tip);
    assert_eq!(
        count(&bare, "main"),
        before + 2,
        "the other writer's commit and ours"
    );
    assert_eq!(show(&bare, "main^:other.txt"), "other writer\n");
    assert_eq!(
        show(&bare, "main:other.txt"),
        "other writer\n",
        "re-applied on the new tip"
    );
    assert!(show(&bare, &format!("main:{CONFIG_PATH}")).contains("version: \"4.0.0\""));
}

#[test]
fn races_beyond_max_attempts_fail_without_forcing() {
    let server = GitServer::start();
    let bare = repo_with_config(&server);
    // Every push loses the race.
    concurrent_writer_hook(
        &bare,
        r#"c=$(echo "busy writer" | git commit-tree refs/heads/main^{tree} -p refs/heads/main)
"#,
    );
    let run = Step::new(&server.repo_url("org/gitops"))
        .args(&[
            "--file",
            CONFIG_PATH,
            "--set",
            "version=5.0.0",
            "--max-attempts",
            "3",
        ])
        .run();
    assert_eq!(run.code(), 3, "{}", run.stderr());
    assert!(
        run.stderr().contains("gave up after 3 attempts"),
        "{}",
        run.stderr()
    );
    // Three busy-writer commits, none of ours, nothing forced away.
    assert!(!show(&bare, &format!("main:{CONFIG_PATH}")).contains("5.0.0"));
    let log = git(&bare, &["log", "--format=%s", "main"]);
    assert_eq!(log.matches("busy writer").count(), 3, "{log}");
}

#[test]
fn sigterm_stops_between_attempts_with_143_and_no_results() {
    let server = GitServer::start();
    let bare = repo_with_config(&server);
    // Every push loses the race, so the step keeps fetching, re-applying and retrying.
    concurrent_writer_hook(
        &bare,
        r#"c=$(echo "busy writer" | git commit-tree refs/heads/main^{tree} -p refs/heads/main)
"#,
    );
    let mut step = Step::new(&server.repo_url("org/gitops")).args(&[
        "--file",
        CONFIG_PATH,
        "--set",
        "version=5.0.0",
        "--max-attempts",
        "100000",
    ]);
    let mut child = step
        .cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the step is inside its retry loop (at least one lost race).
    for _ in 0..600 {
        if server.pushes() >= 1 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(server.pushes() >= 1, "the step never pushed");
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    // Bounded wait: a step that ignored the signal would be killed by Tekton 30 s later.
    let mut status = None;
    for _ in 0..500 {
        if let Some(s) = child.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let Some(status) = status else {
        let _ = child.kill();
        panic!("the step did not stop within 25 s of SIGTERM");
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(143), "{stderr}");
    // Nothing half-done: our value never landed, nothing was forced, no result was written.
    assert!(!show(&bare, &format!("main:{CONFIG_PATH}")).contains("5.0.0"));
    assert!(
        std::fs::read_dir(step.results.path())
            .unwrap()
            .next()
            .is_none(),
        "no results after SIGTERM"
    );
}
