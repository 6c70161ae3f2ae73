//! 20 pipelines bump 20 different apps of one GitOps repository at the same time: every
//! commit lands (non-fast-forward pushes are re-applied on the new tip), none is lost.

mod common;

use common::*;

#[test]
fn twenty_concurrent_bumps_all_land() {
    const N: usize = 20;
    let server = GitServer::start();
    let files: Vec<(String, String)> = (0..N)
        .map(|i| {
            (
                format!("model-deployments/test/app{i:02}/config.yaml"),
                format!("# app {i}\nversion: \"0.0.0\"   # bumped by CT\nreplicas: 1\n"),
            )
        })
        .collect();
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_bytes()))
        .collect();
    let bare = server.create_repo("org/gitops", &refs);
    let before = count(&bare, "main");
    let url = server.repo_url("org/gitops");
    let children: Vec<_> = (0..N)
        .map(|i| {
            let app = format!("app{i:02}");
            let version = format!("1.{i}.0");
            let step = Step::new(&url).args(&[
                "--environment",
                "test",
                "--app",
                &app,
                "--set",
                &format!("version={version}"),
                "--max-attempts",
                "60",
            ]);
            std::thread::spawn(move || step.run())
        })
        .collect();
    let runs: Vec<Run> = children.into_iter().map(|c| c.join().unwrap()).collect();
    for (i, run) in runs.iter().enumerate() {
        assert_eq!(run.code(), 0, "app{i:02}: {}", run.stderr());
        assert_eq!(run.result("CHANGED"), "true");
    }
    assert_eq!(
        count(&bare, "main"),
        before + N,
        "every bump is one commit on main"
    );
    for (i, (path, content)) in files.iter().enumerate() {
        assert_eq!(
            show(&bare, &format!("main:{path}")),
            content.replace("0.0.0", &format!("1.{i}.0")),
            "app{i:02}"
        );
    }
    // Every reported commit is on main's first-parent history.
    let history = git(&bare, &["rev-list", "--first-parent", "main"]);
    for run in &runs {
        assert!(history.contains(&run.result("COMMIT_SHA")));
    }
    let retried = runs
        .iter()
        .filter(|r| r.stderr().contains("re-applying"))
        .count();
    eprintln!("{retried} of {N} steps re-applied their edit after a race");
}
