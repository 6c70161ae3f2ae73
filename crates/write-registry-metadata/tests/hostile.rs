//! Hostile input against the real `write-registry-metadata` binary and the Model Registry
//! emulator (issue 9): one --property per command-line value; free-text flags with newlines,
//! carriage returns, tabs and non-ASCII text; path-like names; devices as input files; results
//! that cannot be written; zero and negative durations; SIGTERM before the first write. Every
//! case checks the exit code, the one-line message, that no request was sent (the emulator's
//! request log) or what changed, and that the token appears in no output.

use ct_registry_emulator::{Emulator, Fault, FaultAction, Options, RegistryEmulator};
use ct_testkit::hostile::{Out, left_files, terminate_when};
use serde_json::{Value, json};

const TOKEN: &str = "hostile-registry-token-27b4f1";

struct Env {
    emu: RegistryEmulator,
    url: String,
    results: tempfile::TempDir,
    version_id: String,
}

async fn start() -> Env {
    let emu = ct_registry_emulator::start(Options::default())
        .await
        .unwrap();
    let url = emu.url().to_string();
    emu.front().set_tokens(Some(TOKEN), None);
    let m = emu
        .create_model(json!({"name": "jukebox", "state": "LIVE"}))
        .unwrap();
    let v = emu
        .create_version(json!({"name": "2", "state": "LIVE", "registeredModelId": m["id"]}))
        .unwrap();
    let version_id = v["id"].as_str().unwrap().to_string();
    emu.create_version_artifact(
        &version_id,
        json!({"name": "jukebox", "uri": "s3://b/jukebox/2", "artifactType": "model-artifact"}),
    )
    .unwrap();
    Env {
        emu,
        url,
        results: tempfile::tempdir().unwrap(),
        version_id,
    }
}

impl Env {
    /// The binary with a deploy's flags; `over` replaces or adds flags (an empty value drops one).
    fn command(&self, over: &[(&str, &str)], env: &[(&str, &str)]) -> tokio::process::Command {
        let results = self.results.path().display().to_string();
        let mut flags: Vec<(&str, &str)> = vec![
            ("--registry-url", &self.url),
            ("--model", "jukebox"),
            ("--version", "2"),
            ("--environment", "test"),
            ("--kfp-run-id", "run-2"),
            ("--author", "Bob <bob@example.com>"),
            ("--artifact-uri", "oci://r/ns/jukebox:2"),
            ("--results-dir", &results),
            ("--max-retries", "0"),
        ];
        for (k, v) in over {
            match flags.iter_mut().find(|(f, _)| f == k) {
                Some(slot) => slot.1 = v,
                None => flags.push((k, v)),
            }
        }
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_write-registry-metadata"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("CT_TOKEN", TOKEN)
            .envs(env.iter().copied());
        for (k, v) in flags {
            cmd.arg(format!("{k}={v}"));
        }
        cmd
    }

    async fn run(&self, over: &[(&str, &str)], env: &[(&str, &str)]) -> Out {
        self.command(over, env).output().await.unwrap().into()
    }

    fn version(&self) -> Value {
        self.emu.version(&self.version_id).unwrap()
    }

    /// Exit 2 naming `needle`, no request, the version unchanged, no result file.
    async fn refused(&self, over: &[(&str, &str)], needle: &str) {
        self.emu.front().clear_requests();
        let before = self.version();
        let out = self.run(over, &[]).await;
        assert_eq!(out.code, Some(2), "{over:?}: {}", out.stderr);
        assert!(
            out.message().contains(needle),
            "{over:?}: {:?}",
            out.message()
        );
        out.no_secret(TOKEN);
        assert!(
            self.emu.requests().is_empty(),
            "{over:?}: a request was sent"
        );
        assert_eq!(self.version(), before);
        assert_eq!(
            left_files(self.results.path()),
            Vec::<String>::new(),
            "{over:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_characters_devices_results_and_durations_send_nothing() {
    let env = start().await;
    for flag in [
        "--model",
        "--version",
        "--kfp-run-id",
        "--author",
        "--artifact-name",
        "--environment",
        "--artifact-uri",
        "--registry-url",
    ] {
        for bad in ["a\nb", "a\rb", "a\tb"] {
            let value = if flag.ends_with("-uri") || flag.ends_with("-url") {
                format!("http://x/{bad}")
            } else {
                bad.to_string()
            };
            env.refused(&[(flag, &value)], flag).await;
        }
    }
    for bad in ["../x", ".", "te st", "a/b"] {
        env.refused(&[("--environment", bad)], "--environment")
            .await;
    }
    // One --property is one property: a newline in it is refused, not split into two.
    env.refused(&[("--property", "team=ml\nstage=evil")], "--property")
        .await;
    env.refused(&[("--property", "te\nam=ml")], "--property")
        .await;

    env.refused(&[("--token-file", "/dev/zero")], "1 MiB limit")
        .await;
    env.refused(&[("--ca-file", "/dev/zero")], "4 MiB limit")
        .await;
    for d in ["0", "0s", "-1s"] {
        env.refused(&[("--request-timeout", d)], "--request-timeout")
            .await;
    }
    env.refused(&[("--page-size", "0")], "--page-size").await;
    env.refused(&[("--log-level", "debug=[")], "--log-level")
        .await;

    let file = tempfile::NamedTempFile::new().unwrap();
    env.refused(
        &[("--results-dir", "/sys")],
        "cannot write result MODEL_VERSION_ID",
    )
    .await;
    env.refused(
        &[("--results-dir", file.path().to_str().unwrap())],
        "not a directory",
    )
    .await;
    std::fs::create_dir(env.results.path().join("MODEL_VERSION_ID")).unwrap();
    env.emu.front().clear_requests();
    let out = env.run(&[], &[]).await;
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.message().contains("is a directory"),
        "{}",
        out.message()
    );
    assert!(env.emu.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_only_from_the_environment_and_text_is_text() {
    let env = start().await;
    // CT_PROPERTY is the documented list: one property per line (CRLF too).
    let out = env
        .run(
            &[("--author", "Jürgen Ölß <j@example.com>")],
            &[("CT_PROPERTY", "team=ml\r\nnote=café 🎵\n")],
        )
        .await;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    out.no_secret(TOKEN);
    let v = env.version();
    assert_eq!(v["author"], "Jürgen Ölß <j@example.com>");
    assert_eq!(v["customProperties"]["team"]["string_value"], "ml");
    assert_eq!(v["customProperties"]["note"]["string_value"], "café 🎵");

    // A path-like model name is a name (a query value), never a path: nothing is written.
    env.emu.front().clear_requests();
    let out = env.run(&[("--model", "../../jukebox")], &[]).await;
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.message().contains("no registered model"),
        "{}",
        out.message()
    );
    let reqs = env.emu.requests();
    assert!(reqs.iter().all(|r| r.method == "GET"), "{reqs:?}");
    let names: Vec<String> = reqs
        .iter()
        .filter(|r| r.path.ends_with("/registered_model"))
        .flat_map(|r| {
            url::form_urlencoded::parse(r.query.as_bytes())
                .filter(|(k, _)| k == "name")
                .map(|(_, v)| v.into_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(names, ["../../jukebox"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_before_the_first_write_changes_nothing() {
    let env = start().await;
    env.emu.front().push(Fault::new(
        Some("GET"),
        Some("*/registered_model"),
        1,
        FaultAction::DelayMs(60_000),
    ));
    let before = env.version();
    let out = terminate_when(env.command(&[], &[]), || {
        env.emu
            .requests()
            .iter()
            .any(|r| r.path.ends_with("/registered_model"))
    })
    .await;
    assert_eq!(out.code, Some(143));
    assert!(
        out.last().contains("terminated by signal"),
        "{}",
        out.stderr
    );
    out.no_secret(TOKEN);
    assert_eq!(env.emu.count("PATCH"), 0);
    assert_eq!(env.version(), before);
    assert_eq!(left_files(env.results.path()), Vec::<String>::new());
}
