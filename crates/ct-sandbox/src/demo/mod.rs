//! `ct-sandbox demo`: the whole CT flow on this machine, with one command.
//!
//! 1. starts the KFP, Model Registry and forge emulators on loopback ([`Sandbox`]);
//! 2. seeds them through their handles ([`seed`]): the forge with a user, an API token, the
//!    `jukebox` model repository (compiled KFP pipeline, `default_parameters.json`, modelcar
//!    Containerfile) and the `mlops-gitops` repository
//!    (`model-deployments/{test,prod}/jukebox/config.yaml`), and the registry with the `jukebox`
//!    model: the version the training of the pushed commit produces (in the real flow the KFP
//!    pipeline registers it) and an older version holding the `test` and `prod` labels;
//! 3. pushes commits through the signed webhook and the Triggers ([`push`]) of an EventListener
//!    stand-in ([`listener`]) installed for the sandbox's forge;
//! 4. runs `pipeline/ct-pipeline.yaml` with `tasks/*.yaml` through the local Tekton interpreter:
//!    the real step binaries against the emulators, stand-ins for the catalog git-clone and
//!    buildah Tasks; the training run registers the version it trained ([`training`]);
//! 5. prints a summary ([`summary`]): the KFP run and its state, the registry version with its
//!    labels and properties, the GitOps test commit and the prod pull request;
//! 6. with `--alert`, posts a firing Alertmanager notification for the app ([`alert`]) and runs
//!    the retraining the alert Trigger asks for.
//!
//! The Pipeline, Tasks and Triggers come from `--manifests` (default: the checkout's `tasks/`
//! and `pipeline/`), e.g. the Helm chart rendered by `.ci/chart.py render`.
//!
//! The same [`Demo`] is what the end-to-end tests drive.

pub mod alert;
mod listener;
mod push;
pub mod seed;
pub mod summary;
mod training;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use clap::Args;
use ct_emulator::Emulator as _;
use ct_forge_emulator::Repo;
use ct_kfp_emulator::RunEnd;
use ct_tekton_interpreter::trigger::Decision;
use ct_tekton_interpreter::{
    Binding, Bundle, Error, Observer, ParamValue, PipelineRunReport, RunOptions,
};

use crate::binaries::{bin_dir, ensure_binaries, manifests_dir, repo_root};
use crate::console::{ConsoleObserver, cancel_on_ctrl_c};
use crate::serve::{Sandbox, ServeArgs};
pub use summary::{Summary, VersionSummary};

/// The forge user who owns both repositories and pushes.
pub const USER: &str = "user1";
/// The application / model name.
pub const APP: &str = "jukebox";
/// The GitOps repository name.
pub const GITOPS_REPO: &str = "mlops-gitops";

/// First 7 characters of a SHA (the model version).
pub fn short(sha: &str) -> &str {
    &sha[..sha.len().min(7)]
}

/// Flags of `ct-sandbox demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Directory for the run (checkouts, TaskRun results and logs, secrets). Default: a temporary
    /// directory, removed at the end unless --keep.
    #[arg(long, env = "CT_DEMO_WORK_DIR", value_name = "DIR")]
    pub work_dir: Option<PathBuf>,

    /// Keep the temporary work directory (its path is printed).
    #[arg(long)]
    pub keep: bool,

    /// Directory with the step binaries. Default: the directory of the ct-sandbox binary.
    #[arg(long, env = "CT_BIN_DIR", value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,

    /// Repository root holding pipeline/ct-pipeline.yaml and tasks/. Default: found from the
    /// current directory, else the checkout ct-sandbox was built from.
    #[arg(long, value_name = "DIR")]
    pub repo_root: Option<PathBuf>,

    /// Where the Pipeline, the Tasks and the Triggers come from: a directory with
    /// pipeline/ct-pipeline.yaml, tasks/ and pipeline/triggers/, e.g. the Helm chart rendered by
    /// `.ci/chart.py render -f VALUES -n NS --out DIR`. Default: the repository root.
    #[arg(long, env = "CT_DEMO_MANIFESTS", value_name = "DIR")]
    pub manifests: Option<PathBuf>,

    /// After the push run, post a firing Alertmanager notification for the app to the
    /// EventListener stand-in and run the retraining it triggers (a new version derived from
    /// the commit and the PipelineRun). Needs an EventListener that lists the alert Trigger: a
    /// chart rendered with alertTrigger.enabled, passed with --manifests.
    #[arg(long)]
    pub alert: bool,

    /// Do not run `cargo build` for the step binaries first (it runs only when the binaries sit
    /// in this checkout's target directory).
    #[arg(long)]
    pub no_build: bool,

    /// How the KFP training run ends: SUCCEEDED, FAILED, CANCELED, SKIPPED.
    #[arg(long, value_enum, default_value_t = RunEnd::Succeeded)]
    pub training_outcome: RunEnd,

    /// How long the emulated training run stays RUNNING.
    #[arg(long, default_value = "3s", value_parser = ct_step::cli::parse_duration, value_name = "DURATION")]
    pub training_time: Duration,

    /// Run the pipeline for the seeded commit directly, without pushing a change through the
    /// webhook and the Trigger.
    #[arg(long)]
    pub no_webhook: bool,

    /// Print every step's log lines (default: only task progress and the summary).
    #[arg(long, short)]
    pub verbose: bool,
}

/// Everything [`Demo::start`] needs.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// The checkout (step binaries are built from it).
    pub repo_root: PathBuf,
    /// Holds pipeline/ct-pipeline.yaml, tasks/ and pipeline/triggers/: the checkout, or a
    /// rendered chart.
    pub manifests: PathBuf,
    pub bin_dir: PathBuf,
    /// None: a temporary directory owned by the [`Demo`].
    pub work_dir: Option<PathBuf>,
    pub training_outcome: RunEnd,
    pub training_pending: Duration,
    pub training_time: Duration,
    /// `kfp-poll-interval` of the pipeline (e.g. `200ms`).
    pub poll_interval: String,
    /// The bearer credentials the demo's Alertmanager sends, and the alert Trigger's Secret
    /// holds.
    pub alertmanager_credentials: String,
}

impl DemoConfig {
    /// Fast settings for tests: instant training, 50 ms polls.
    pub fn fast(repo_root: PathBuf, bin_dir: PathBuf) -> Self {
        DemoConfig {
            manifests: repo_root.clone(),
            repo_root,
            bin_dir,
            work_dir: None,
            training_outcome: RunEnd::Succeeded,
            training_pending: Duration::ZERO,
            training_time: Duration::from_millis(100),
            poll_interval: "50ms".into(),
            alertmanager_credentials: seed::random_hex(),
        }
    }
}

/// A seeded sandbox ready to run the pipeline (several times).
pub struct Demo {
    pub sandbox: Arc<Sandbox>,
    pub bundle: Bundle,
    pub config: DemoConfig,
    /// Work directory (runs go to `runs/<n>`).
    pub work: PathBuf,
    tmp: Option<tempfile::TempDir>,
    pub model_repo: Repo,
    pub gitops_repo: Repo,
    /// Full SHA of the model repository's `main` (the "pushed" commit).
    pub revision: String,
    /// Registry id of the `jukebox` registered model.
    pub registry_model_id: String,
    /// Directory bound as the `git-credentials` workspace (a basic-auth Secret's files).
    pub credentials_dir: PathBuf,
    /// Directory bound as the `forge-token` workspace (the Secret's `token` key).
    pub token_dir: PathBuf,
    /// PipelineRun params the last webhook produced through the Trigger (they override the
    /// push-derived params of [`Demo::params`]).
    pub trigger_params: Option<BTreeMap<String, String>>,
    listener: Option<listener::Listener>,
    /// Set it to cancel the running pipeline (see [`RunOptions::cancel`]).
    pub cancel: Arc<AtomicBool>,
    runs: AtomicUsize,
}

impl Demo {
    /// Start the emulators and seed them. Must run inside a multi-threaded tokio runtime, which
    /// keeps serving while [`Demo::run`] blocks.
    pub async fn start(config: DemoConfig) -> Result<Demo, String> {
        let bundle = ct_tekton_interpreter::load(
            &config.manifests.join("pipeline/ct-pipeline.yaml"),
            &config.manifests.join("tasks"),
        )
        .map_err(|e| e.to_string())?;
        let (work, tmp) = match &config.work_dir {
            Some(d) => {
                std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
                (d.clone(), None)
            }
            None => {
                let t = tempfile::Builder::new()
                    .prefix("ct-demo-")
                    .tempdir()
                    .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        let kfp = ct_kfp_emulator::Options {
            kfp_pending: config.training_pending,
            kfp_running: config.training_time,
            kfp_outcome: config.training_outcome,
            ..Default::default()
        };
        let forge = ct_forge_emulator::Options {
            root: Some(work.join("forge")),
            ..Default::default()
        };
        let serve = ServeArgs::loopback(kfp, ct_registry_emulator::Options::default(), forge);
        let sandbox = Arc::new(
            Sandbox::start(serve)
                .await
                .map_err(|e| format!("cannot start the emulators: {e}"))?,
        );
        let f = seed::forge(&sandbox.forge, &work)?;
        let (registry_model_id, _) = seed::registry(&sandbox.registry, &f.revision)?;
        Ok(Demo {
            sandbox,
            bundle,
            config,
            work,
            tmp,
            model_repo: f.model_repo,
            gitops_repo: f.gitops_repo,
            revision: f.revision,
            registry_model_id,
            credentials_dir: f.credentials_dir,
            token_dir: f.token_dir,
            trigger_params: None,
            listener: None,
            cancel: Arc::new(AtomicBool::new(false)),
            runs: AtomicUsize::new(0),
        })
    }

    /// The PipelineRun params a push of `revision` produces (what the TriggerBinding yields),
    /// with every endpoint pointing at the sandbox.
    pub fn params(&self) -> BTreeMap<String, ParamValue> {
        let s = |v: &str| ParamValue::Str(v.to_string());
        let mut p = BTreeMap::new();
        p.insert("git-url".into(), s(&self.model_repo.clone_url));
        p.insert("git-revision".into(), s(&self.revision));
        p.insert("version".into(), s(short(&self.revision)));
        p.insert("app-name".into(), s(APP));
        p.insert("git-author".into(), s(USER));
        p.insert("kfp-url".into(), s(self.sandbox.kfp.url()));
        p.insert("registry-url".into(), s(self.sandbox.registry.url()));
        p.insert("gitops-repo-url".into(), s(&self.gitops_repo.clone_url));
        p.insert("gitops-repo".into(), s(&format!("{USER}/{GITOPS_REPO}")));
        p.insert("forge".into(), s("gitea"));
        p.insert("forge-api-url".into(), s(self.sandbox.forge.url()));
        p.insert(
            "modelcar-repository".into(),
            s("image-registry.openshift-image-registry.svc:5000/user1-mlops/jukebox"),
        );
        p.insert("kfp-poll-interval".into(), s(&self.config.poll_interval));
        for (k, v) in self.trigger_params.iter().flatten() {
            p.insert(k.clone(), s(v));
        }
        p
    }

    /// Run options for the next run (fresh `source` workspace, its own run directory).
    pub fn run_options(&self, observer: Arc<dyn Observer>) -> RunOptions {
        let n = self.runs.fetch_add(1, Ordering::SeqCst) + 1;
        let mut o = RunOptions::new(
            self.config.bin_dir.clone(),
            self.work.join("runs").join(n.to_string()),
        );
        o.params = self.params();
        o.pipeline_run_name = Some(format!("ct-pipeline-run-{n}"));
        o.workspaces.insert("source".into(), Binding::Fresh);
        o.workspaces.insert(
            "git-credentials".into(),
            Binding::Dir(self.credentials_dir.clone()),
        );
        o.workspaces
            .insert("forge-token".into(), Binding::Dir(self.token_dir.clone()));
        o.observer = observer;
        o.cancel = self.cancel.clone();
        o
    }

    /// Run the pipeline once (blocking; the emulators keep serving on the runtime's threads).
    /// When `train` succeeds, the version its KFP run trained is registered ([`training`]).
    pub fn run(&self, observer: Arc<dyn Observer>) -> Result<PipelineRunReport, Error> {
        let observer = Arc::new(training::TrainingRegistersVersion {
            inner: observer,
            sandbox: self.sandbox.clone(),
            model_id: self.registry_model_id.clone(),
        });
        ct_tekton_interpreter::run(&self.bundle, &self.run_options(observer))
    }

    /// Keep the temporary work directory; its path (None when the work directory was given).
    pub fn keep_work_dir(&mut self) -> Option<PathBuf> {
        self.tmp.take().map(tempfile::TempDir::keep)
    }
}

/// `ct-sandbox demo`.
pub fn main(args: DemoArgs, rt: &tokio::runtime::Runtime) -> ExitCode {
    match demo(args, rt) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn demo(args: DemoArgs, rt: &tokio::runtime::Runtime) -> Result<ExitCode, String> {
    let root = repo_root(args.repo_root.as_deref())?;
    let manifests = manifests_dir(args.manifests.as_deref(), &root)?;
    let bins = bin_dir(args.bin_dir.as_deref())?;
    let config = DemoConfig {
        repo_root: root.clone(),
        manifests: manifests.clone(),
        bin_dir: bins.clone(),
        work_dir: args.work_dir.clone(),
        training_outcome: args.training_outcome,
        training_pending: Duration::from_millis(300),
        training_time: args.training_time,
        poll_interval: "500ms".into(),
        alertmanager_credentials: seed::random_hex(),
    };
    let mut demo = rt.block_on(Demo::start(config))?;
    ensure_binaries(&bins, &root, &demo.bundle.binaries(), !args.no_build)?;
    let s = &demo.sandbox;
    eprintln!(
        "sandbox: kfp {}  registry {}  forge {}",
        s.kfp.url(),
        s.registry.url(),
        s.forge.url()
    );
    if manifests != root {
        eprintln!("Pipeline, Tasks and Triggers from {}", manifests.display());
    }
    eprintln!("seeded: {USER}/{APP}, {USER}/{GITOPS_REPO}, registry model {APP}");
    if args.alert && rt.block_on(demo.alert_trigger())?.is_none() {
        return Err(format!(
            "--alert: the EventListener of {}/pipeline/triggers lists no alert Trigger; render the chart with alertTrigger.enabled and pass it with --manifests (docs/sandbox.md)",
            manifests.display()
        ));
    }
    if !args.no_webhook {
        for branch in ["experiment", "main"] {
            let o = rt.block_on(demo.push_and_trigger(branch))?;
            let what = match o.decision {
                Decision::Accepted(_) => {
                    format!("push to {USER}/{APP} {branch} ({})", short(&demo.revision))
                }
                Decision::Rejected { .. } => format!("push to {USER}/{APP} {branch}"),
            };
            eprintln!("{}", delivered(&what, "signed webhook", &o));
            if branch == "main" && !matches!(o.decision, Decision::Accepted(_)) {
                return Err("the push to main was not accepted by the Trigger".into());
            }
        }
    }
    let observer: Arc<dyn Observer> = Arc::new(ConsoleObserver {
        verbose: args.verbose,
    });
    cancel_on_ctrl_c(rt, demo.cancel.clone());
    eprintln!(
        "running pipeline/ct-pipeline.yaml for commit {} …",
        demo.revision
    );
    let mut ok = run_and_summarise(&demo, observer.clone())?;
    if args.alert && ok {
        let n = alert::firing_notification(APP, &demo.config.alertmanager_credentials)?;
        let o = rt.block_on(demo.alert_and_trigger(&n.headers, &n.body))?;
        eprintln!(
            "{}",
            delivered(&format!("alert on {APP}"), "Alertmanager webhook", &o)
        );
        if !matches!(o.decision, Decision::Accepted(_)) {
            return Err("the firing alert was not accepted by the alert Trigger".into());
        }
        eprintln!("running pipeline/ct-pipeline.yaml for the retraining the alert asked for …");
        ok = run_and_summarise(&demo, observer)?;
    }
    if args.keep
        && let Some(kept) = demo.keep_work_dir()
    {
        println!("work directory kept: {}", kept.display());
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// One line on what the EventListener made of a delivery.
fn delivered(what: &str, how: &str, o: &ct_tekton_interpreter::trigger::Evaluation) -> String {
    match &o.decision {
        Decision::Accepted(_) => format!(
            "{what} → {how} → Trigger {}: accepted → PipelineRun params {}",
            o.trigger,
            o.pipelinerun_params
                .iter()
                .flatten()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        Decision::Rejected {
            interceptor,
            reason,
        } => format!(
            "{what} → {how} → Trigger {}: filtered out by {interceptor} ({reason})",
            o.trigger
        ),
    }
}

/// Run the pipeline, print the summary; whether the run succeeded.
fn run_and_summarise(demo: &Demo, observer: Arc<dyn Observer>) -> Result<bool, String> {
    let report = demo.run(observer).map_err(|e| e.to_string())?;
    println!();
    println!("{}", demo.summary(&report));
    Ok(report.succeeded())
}
