//! `ensure_pull_request` against the sandbox forge's Gitea, GitHub and GitLab APIs: create,
//! reuse (title/body/labels/assignees brought up to date), skip, the "already exists" race of
//! each forge, closed PRs, unknown labels and assignees, missing branches and bad tokens.

use std::time::Duration;

use ct_forge::{Action, Forge, PrSpec, RepoRef, ensure_pull_request};
use ct_forge_emulator::{Emulator, ForgeEmulator, Options};
use ct_step::ErrorKind;
use ct_step::http::{ApiClient, ClientConfig, TokenSource};
use ct_testkit::forge::{HEAD, OWNER, REPO, promotion};

const FORGES: [Forge; 3] = [Forge::Gitea, Forge::GitHub, Forge::GitLab];

struct Env {
    emu: ForgeEmulator,
    token: String,
}

/// The promotion repository, plus a branch `noop` at `main` and a second label `prod`.
async fn env() -> Env {
    let p = promotion(Options::default(), "config.yaml").await;
    p.emu.create_branch(OWNER, REPO, "noop", "main").unwrap();
    p.emu.create_label(OWNER, REPO, "prod", "aa0000").unwrap();
    Env {
        emu: p.emu,
        token: p.token,
    }
}

fn client(env: &Env, forge: Forge, token: &str) -> ApiClient {
    let url = match forge {
        Forge::Gitea => env.emu.api_url(),
        Forge::GitHub => env.emu.github_api_url(),
        Forge::GitLab => env.emu.gitlab_api_url(),
    };
    ApiClient::new(ClientConfig {
        base_url: url.parse().unwrap(),
        token: TokenSource::Value(token.to_string()),
        auth: forge.auth_scheme(),
        ca_file: None,
        insecure: false,
        timeout: Duration::from_secs(10),
        max_retries: 0,
        backoff: Duration::from_millis(1),
    })
    .unwrap()
}

fn spec(head: &str, title: &str) -> PrSpec {
    PrSpec {
        repo: RepoRef::parse(&format!("{OWNER}/{REPO}"), false).unwrap(),
        head: head.to_string(),
        base: "main".to_string(),
        title: title.to_string(),
        body: format!("body of {title}"),
        assignees: vec![],
        labels: vec![],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_then_reuse_and_update_on_every_forge() {
    for forge in FORGES {
        let env = env().await;
        let c = client(&env, forge, &env.token);
        let mut s = spec(HEAD, "Promote 1.0.1");
        s.labels = vec!["promote".into()];
        s.assignees = vec!["reviewer".into()];
        let first = ensure_pull_request(&c, forge, &s).await.unwrap();
        assert_eq!(first.action, Action::Created, "{forge}");
        assert_eq!(first.number, Some(1), "{forge}");
        assert!(
            first.url.as_deref().unwrap().starts_with(env.emu.url()),
            "{forge}"
        );

        let mut s2 = spec(HEAD, "Promote 1.0.1 (updated)");
        s2.labels = vec!["prod".into()];
        let again = ensure_pull_request(&c, forge, &s2).await.unwrap();
        assert_eq!(again.action, Action::Existing, "{forge}");
        assert_eq!(again.number, first.number, "{forge}");
        assert_eq!(again.url, first.url, "{forge}");

        let pulls = env.emu.pulls(OWNER, REPO).unwrap();
        assert_eq!(pulls.len(), 1, "{forge}");
        assert_eq!(pulls[0].title, "Promote 1.0.1 (updated)", "{forge}");
        assert_eq!(pulls[0].body, "body of Promote 1.0.1 (updated)", "{forge}");
        assert_eq!(
            pulls[0].labels,
            vec!["promote".to_string(), "prod".to_string()],
            "{forge}"
        );
        assert_eq!(pulls[0].assignees, vec!["reviewer".to_string()], "{forge}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn already_exists_race_is_reused_on_every_forge() {
    for forge in FORGES {
        let env = env().await;
        let c = client(&env, forge, &env.token);
        // Gitea 409, GitHub 422 "A pull request already exists", GitLab 409.
        env.emu.race_next_create(OWNER, REPO).unwrap();
        let out = ensure_pull_request(&c, forge, &spec(HEAD, "mine"))
            .await
            .unwrap();
        assert_eq!(out.action, Action::Existing, "{forge}");
        let pulls = env.emu.pulls(OWNER, REPO).unwrap();
        assert_eq!(pulls.len(), 1, "{forge}");
        assert_eq!(out.number, Some(pulls[0].number as u64), "{forge}");
        assert_eq!(
            pulls[0].body, "body of mine",
            "{forge}: reused PR brought up to date"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_pr_does_not_block_and_noop_head_is_skipped_on_every_forge() {
    for forge in FORGES {
        let env = env().await;
        let c = client(&env, forge, &env.token);
        let old = env
            .emu
            .create_pull(OWNER, REPO, HEAD, "main", "old")
            .unwrap();
        env.emu.close_pull(OWNER, REPO, old).unwrap();
        let out = ensure_pull_request(&c, forge, &spec(HEAD, "new"))
            .await
            .unwrap();
        assert_eq!(out.action, Action::Created, "{forge}");
        assert_ne!(out.number, Some(old as u64), "{forge}");

        let skipped = ensure_pull_request(&c, forge, &spec("noop", "nothing"))
            .await
            .unwrap();
        assert_eq!(skipped.action, Action::Skipped, "{forge}");
        assert_eq!((skipped.number, skipped.url), (None, None), "{forge}");
        assert_eq!(env.emu.pulls(OWNER, REPO).unwrap().len(), 2, "{forge}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_names_and_missing_branches_fail_before_any_write_on_every_forge() {
    for forge in FORGES {
        let env = env().await;
        let c = client(&env, forge, &env.token);
        let mut s = spec(HEAD, "t");
        s.labels = vec!["promote".into(), "nope".into()];
        let e = ensure_pull_request(&c, forge, &s).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Usage, "{forge}: {e}");
        assert!(e.to_string().contains("--label nope"), "{forge}: {e}");

        let mut s = spec(HEAD, "t");
        s.assignees = vec!["ghost".into()];
        let e = ensure_pull_request(&c, forge, &s).await.unwrap_err();
        assert!(e.to_string().contains("--assignee ghost"), "{forge}: {e}");

        let e = ensure_pull_request(&c, forge, &spec("gone", "t"))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Usage, "{forge}: {e}");
        assert!(
            e.to_string().contains("--head gone: branch does not exist"),
            "{forge}: {e}"
        );

        let mut s = spec(HEAD, "t");
        s.repo = RepoRef::parse("user1/missing", false).unwrap();
        let e = ensure_pull_request(&c, forge, &s).await.unwrap_err();
        assert!(
            e.to_string().contains("--repo user1/missing"),
            "{forge}: {e}"
        );

        assert!(env.emu.pulls(OWNER, REPO).unwrap().is_empty(), "{forge}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_token_is_a_remote_error_with_the_servers_message_on_every_forge() {
    for (forge, msg) in [
        (Forge::Gitea, "user does not exist"),
        (Forge::GitHub, "Bad credentials"),
        (Forge::GitLab, "401 Unauthorized"),
    ] {
        let env = env().await;
        let c = client(&env, forge, "wrong");
        let e = ensure_pull_request(&c, forge, &spec(HEAD, "t"))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Remote, "{forge}: {e}");
        assert!(e.to_string().contains("HTTP 401"), "{forge}: {e}");
        assert!(e.to_string().contains(msg), "{forge}: {e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_get_one_pr_on_every_forge() {
    for forge in FORGES {
        let env = env().await;
        let (c1, c2) = (
            client(&env, forge, &env.token),
            client(&env, forge, &env.token),
        );
        let s = spec(HEAD, "t");
        let (a, b) = tokio::join!(
            ensure_pull_request(&c1, forge, &s),
            ensure_pull_request(&c2, forge, &s)
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a.number, b.number, "{forge}");
        let mut actions = [a.action.as_str(), b.action.as_str()];
        actions.sort();
        assert_eq!(actions, ["created", "existing"], "{forge}");
        assert_eq!(env.emu.pulls(OWNER, REPO).unwrap().len(), 1, "{forge}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_gitea_without_compare_still_skips_heads_that_are_not_ahead() {
    let env = env().await;
    env.emu.set_version("1.21.11");
    env.emu
        .create_branch(OWNER, REPO, "behind", "main")
        .unwrap();
    env.emu
        .commit(OWNER, REPO, "main", None, "other.txt", "x", "main moves on")
        .unwrap();
    let c = client(&env, Forge::Gitea, &env.token);
    for head in ["noop", "behind"] {
        let out = ensure_pull_request(&c, Forge::Gitea, &spec(head, "t"))
            .await
            .unwrap();
        assert_eq!(out.action, Action::Skipped, "{head}");
    }
    let out = ensure_pull_request(&c, Forge::Gitea, &spec(HEAD, "t"))
        .await
        .unwrap();
    assert_eq!(out.action, Action::Created);
    assert_eq!(env.emu.pulls(OWNER, REPO).unwrap().len(), 1);
}
