//! `ct-sandbox demo`: the whole CT flow on this machine, with one command.
//!
//! 1. starts the KFP, Model Registry and forge emulators on loopback ([`crate::serve::Sandbox`]);
//! 2. seeds the forge with a user, an API token, the `jukebox` model repository (compiled KFP
//!    pipeline, `default_parameters.json`, modelcar Containerfile) and the `mlops-gitops`
//!    repository (`model-deployments/{test,prod}/jukebox/config.yaml`), and the registry with the
//!    `jukebox` model: the version the training of the pushed commit produces (in the real flow
//!    the KFP pipeline registers it) and an older version holding the `test` and `prod` labels;
//! 3. runs `pipeline/ct-pipeline.yaml` with `tasks/*.yaml` through the local Tekton interpreter
//!    ([`crate::tekton`]): the real step binaries against the emulators, stand-ins for the
//!    catalog git-clone and buildah Tasks;
//! 4. prints a summary: the KFP run and its state, the registry version with its labels and
//!    properties, the GitOps test commit and the prod pull request.
//!
//! The same [`Demo`] is what the end-to-end tests drive.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use clap::Args;
use serde_json::{Value, json};

use crate::serve::{Sandbox, ServeArgs};
use crate::tekton::trigger::Decision;
use crate::tekton::{
    self, Binding, Bundle, Observer, ParamValue, PipelineRunReport, RunOptions, RunStatus,
    TaskRunReport, TaskStatus,
};
use ct_emulator::Emulator;
use ct_forge_emulator::Repo;
use ct_kfp_emulator::RunEnd as Outcome;

/// The step binaries the Tasks run (`/usr/local/bin/<name>` in the image).
pub const STEP_BINARIES: &[&str] = &[
    "execute-ds-pipeline",
    "wait-kfp-run",
    "write-registry-metadata",
    "bump-gitops-version",
    "open-pr",
];

/// The forge user who owns both repositories and pushes.
pub const USER: &str = "user1";
/// The application / model name.
pub const APP: &str = "jukebox";
/// The GitOps repository name.
pub const GITOPS_REPO: &str = "mlops-gitops";
const REGISTRY_API: &str = "/api/model_registry/v1alpha3";

/// Files of the demo repositories, embedded so the demo runs from any directory.
const MODEL_REPO_FILES: &[(&str, &str)] = &[
    ("README.md", include_str!("../demo/jukebox/README.md")),
    (
        "pipeline.yaml",
        include_str!("../demo/jukebox/pipeline.yaml"),
    ),
    (
        "default_parameters.json",
        include_str!("../demo/jukebox/default_parameters.json"),
    ),
    (
        "modelcar/Containerfile",
        include_str!("../demo/jukebox/modelcar/Containerfile"),
    ),
    (
        "model/README.md",
        include_str!("../demo/jukebox/model/README.md"),
    ),
];
const GITOPS_REPO_FILES: &[(&str, &str)] = &[
    ("README.md", include_str!("../demo/mlops-gitops/README.md")),
    (
        "model-deployments/test/jukebox/config.yaml",
        include_str!("../demo/mlops-gitops/model-deployments/test/jukebox/config.yaml"),
    ),
    (
        "model-deployments/prod/jukebox/config.yaml",
        include_str!("../demo/mlops-gitops/model-deployments/prod/jukebox/config.yaml"),
    ),
];

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

    /// Do not run `cargo build` for the step binaries first (it runs only when the binaries sit
    /// in this checkout's target directory).
    #[arg(long)]
    pub no_build: bool,

    /// How the KFP training run ends: SUCCEEDED, FAILED, CANCELED, SKIPPED.
    #[arg(long, value_enum, default_value_t = Outcome::Succeeded)]
    pub training_outcome: Outcome,

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
    pub repo_root: PathBuf,
    pub bin_dir: PathBuf,
    /// None: a temporary directory owned by the [`Demo`].
    pub work_dir: Option<PathBuf>,
    pub training_outcome: Outcome,
    pub training_pending: Duration,
    pub training_time: Duration,
    /// `kfp-poll-interval` of the pipeline (e.g. `200ms`).
    pub poll_interval: String,
}

impl DemoConfig {
    /// Fast settings for tests: instant training, 50 ms polls.
    pub fn fast(repo_root: PathBuf, bin_dir: PathBuf) -> Self {
        DemoConfig {
            repo_root,
            bin_dir,
            work_dir: None,
            training_outcome: Outcome::Succeeded,
            training_pending: Duration::ZERO,
            training_time: Duration::from_millis(100),
            poll_interval: "50ms".into(),
        }
    }
}

/// A seeded sandbox ready to run the pipeline (several times).
pub struct Demo {
    pub sandbox: Sandbox,
    pub bundle: Bundle,
    pub config: DemoConfig,
    /// Work directory (runs go to `runs/<n>`).
    pub work: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    pub model_repo: Repo,
    pub gitops_repo: Repo,
    /// Full SHA of the model repository's `main` (the "pushed" commit).
    pub revision: String,
    /// Registry id of the `jukebox` registered model.
    pub registry_model_id: String,
    /// Registry id of the version the run will update.
    pub registry_version_id: String,
    /// Directory bound as the `git-credentials` workspace (a basic-auth Secret's files).
    pub credentials_dir: PathBuf,
    /// Directory bound as the `forge-token` workspace (the Secret's `token` key).
    pub token_dir: PathBuf,
    /// PipelineRun params the last webhook produced through the Trigger (they override the
    /// push-derived params of [`Demo::params`]).
    pub trigger_params: Option<BTreeMap<String, String>>,
    listener: Option<Listener>,
    /// Set it to cancel the running pipeline (see [`RunOptions::cancel`]).
    pub cancel: Arc<std::sync::atomic::AtomicBool>,
    runs: AtomicUsize,
}

/// The EventListener stand-in, registered as the model repository's webhook.
struct Listener {
    _server: crate::Server,
    rx: tokio::sync::mpsc::UnboundedReceiver<
        Result<Vec<crate::tekton::trigger::Outcome>, crate::tekton::Error>,
    >,
}

/// Secret of the webhook between the forge and the EventListener stand-in.
const WEBHOOK_SECRET_NAME: &str = "ct-webhook-secret";

impl Demo {
    /// Start the emulators and seed them. Must run inside a multi-threaded tokio runtime, which
    /// keeps serving while [`Demo::run`] blocks.
    pub async fn start(config: DemoConfig) -> Result<Demo, String> {
        let bundle = tekton::load(
            &config.repo_root.join("pipeline/ct-pipeline.yaml"),
            &config.repo_root.join("tasks"),
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

        let forge_options = ct_forge_emulator::Options {
            root: Some(work.join("forge")),
            ..Default::default()
        };
        let kfp_options = ct_kfp_emulator::Options {
            kfp_pending: config.training_pending,
            kfp_running: config.training_time,
            kfp_outcome: config.training_outcome,
            ..Default::default()
        };
        let serve = ServeArgs::loopback(
            kfp_options,
            ct_registry_emulator::Options::default(),
            forge_options,
        );
        let sandbox = Sandbox::start(serve)
            .await
            .map_err(|e| format!("cannot start the emulators: {e}"))?;

        // Forge: a user with a password (git) and a token (API), and the two repositories.
        let password = random_hex();
        let forge = &sandbox.forge;
        forge
            .create_user(USER, &password)
            .map_err(|e| format!("forge: {e}"))?;
        let token = forge
            .create_token(USER)
            .map_err(|e| format!("forge: {e}"))?;
        let seed = work.join("seed");
        let model_src = write_tree(&seed.join(APP), MODEL_REPO_FILES)?;
        let gitops_src = write_tree(&seed.join(GITOPS_REPO), GITOPS_REPO_FILES)?;
        let model_repo = forge
            .create_repo(USER, APP, Some(&model_src))
            .map_err(|e| format!("forge: {e}"))?;
        let gitops_repo = forge
            .create_repo(USER, GITOPS_REPO, Some(&gitops_src))
            .map_err(|e| format!("forge: {e}"))?;
        let revision = forge
            .branches(USER, APP)
            .get("main")
            .cloned()
            .ok_or("forge: the model repository has no main branch")?;

        // Secrets, as the Secret workspaces would mount them.
        let credentials_dir = work.join("secrets/git-credentials");
        let token_dir = work.join("secrets/forge-token");
        std::fs::create_dir_all(&credentials_dir).map_err(|e| e.to_string())?;
        std::fs::create_dir_all(&token_dir).map_err(|e| e.to_string())?;
        let host = url::Url::parse(forge.url()).map_err(|e| e.to_string())?;
        write_secret(
            &credentials_dir.join(".git-credentials"),
            &format!(
                "{}://{USER}:{password}@{}:{}\n",
                host.scheme(),
                host.host_str().unwrap_or("127.0.0.1"),
                host.port_or_known_default().unwrap_or(80)
            ),
        )?;
        write_secret(
            &credentials_dir.join(".gitconfig"),
            "[credential]\n\thelper = store\n",
        )?;
        write_secret(&token_dir.join("token"), &token)?;

        // Registry: the model, an older version deployed to test and prod, and the version the
        // training of `revision` registers (the KFP pipeline does that in the real flow).
        let reg = sandbox.registry.url().to_string();
        let http = reqwest::Client::new();
        let model = post(
            &http,
            &format!("{reg}{REGISTRY_API}/registered_models"),
            json!({"name": APP, "description": "Song recommendation model", "owner": USER}),
        )
        .await?;
        let registry_model_id = id_of(&model)?;
        let label = json!({"metadataType": "MetadataStringValue", "string_value": ""});
        let old = post(
            &http,
            &format!("{reg}{REGISTRY_API}/model_versions"),
            json!({
                "name": "0a1b2c3",
                "registeredModelId": registry_model_id,
                "author": "earlier pipeline run",
                "customProperties": {
                    "test": label,
                    "prod": label,
                    "pipeline_run_id": {"metadataType": "MetadataStringValue", "string_value": "run-from-last-week"}
                }
            }),
        )
        .await?;
        post(
            &http,
            &format!("{reg}{REGISTRY_API}/model_versions/{}/artifacts", id_of(&old)?),
            json!({"artifactType": "model-artifact", "name": APP,
                   "uri": "oci://image-registry.openshift-image-registry.svc:5000/user1-mlops/jukebox:0a1b2c3"}),
        )
        .await?;
        let registry_version_id = register_version(&reg, &registry_model_id, &revision).await?;

        Ok(Demo {
            sandbox,
            bundle,
            config,
            work,
            _tmp: tmp,
            model_repo,
            gitops_repo,
            revision,
            registry_model_id,
            registry_version_id,
            credentials_dir,
            token_dir,
            trigger_params: None,
            listener: None,
            cancel: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            runs: AtomicUsize::new(0),
        })
    }

    /// Push a commit to `branch` of the model repository as the user, over git smart HTTP. The
    /// forge delivers its signed push webhook to an EventListener stand-in that evaluates
    /// `pipeline/triggers/` (signature, event type, CEL filters, binding, template). Returns
    /// what the EventListener decided; when accepted, the pushed commit becomes the one the
    /// next [`Demo::run`] trains (with the Trigger's PipelineRun params), and the registry gets
    /// its model version (in the real flow the training pipeline registers it).
    pub async fn push_and_trigger(
        &mut self,
        branch: &str,
    ) -> Result<crate::tekton::trigger::Outcome, String> {
        use crate::tekton::trigger::{Decision, TriggerSet, listener_router};
        if self.listener.is_none() {
            let set = TriggerSet::load(&self.config.repo_root.join("pipeline/triggers"))
                .map_err(|e| e.to_string())?;
            let secret_key = set
                .triggers
                .iter()
                .flat_map(|t| &t.interceptors)
                .find_map(|i| match i {
                    crate::tekton::trigger::Interceptor::Github {
                        secret: Some((n, k)),
                        ..
                    } if n == WEBHOOK_SECRET_NAME => Some(k.clone()),
                    _ => None,
                })
                .ok_or("the Trigger has no github interceptor with the webhook secretRef")?;
            let webhook_secret = random_hex();
            let mut secrets = BTreeMap::new();
            secrets.insert(
                (WEBHOOK_SECRET_NAME.to_string(), secret_key),
                webhook_secret.clone(),
            );
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            let server = crate::Server::start(
                crate::loopback(0),
                listener_router(Arc::new(set), Arc::new(secrets), tx),
            )
            .await
            .map_err(|e| format!("EventListener stand-in: {e}"))?;
            self.sandbox
                .forge
                .add_hook(USER, APP, &format!("{}/", server.url), &webhook_secret)
                .map_err(|e| format!("forge: {e}"))?;
            self.listener = Some(Listener {
                _server: server,
                rx,
            });
        }
        let work = self
            .work
            .join("push")
            .join(format!("{branch}-{}", random_hex()));
        let clone_url = self.model_repo.clone_url.clone();
        let creds = self.credentials_dir.join(".git-credentials");
        let branch_owned = branch.to_string();
        let pushed = tokio::task::spawn_blocking(move || {
            push_change(&work, &clone_url, &creds, &branch_owned)
        })
        .await
        .map_err(|e| e.to_string())??;

        let rx = &mut self.listener.as_mut().expect("listener started above").rx;
        let outcome = tokio::time::timeout(Duration::from_secs(20), rx.recv()).await;
        let outcomes = match outcome {
            Ok(Some(r)) => r.map_err(|e| e.to_string())?,
            Ok(None) | Err(_) => {
                return Err(format!(
                    "no webhook for the push of {pushed} reached the EventListener stand-in"
                ));
            }
        };
        let first = outcomes
            .into_iter()
            .next()
            .ok_or("the EventListener has no Trigger")?;
        if let (Decision::Accepted(_), Some(params)) = (&first.decision, &first.pipelinerun_params)
        {
            let rev = params
                .get("git-revision")
                .cloned()
                .ok_or("the TriggerTemplate sets no git-revision")?;
            if rev != pushed {
                return Err(format!(
                    "the Trigger bound git-revision {rev}, the push was {pushed}"
                ));
            }
            self.revision = rev;
            self.registry_version_id = register_version(
                self.sandbox.registry.url(),
                &self.registry_model_id,
                &self.revision,
            )
            .await?;
            self.trigger_params = Some(params.clone());
        }
        Ok(first)
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
        p.insert("kfp-url".into(), s(&self.sandbox.kfp.url()));
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
    pub fn run(&self, observer: Arc<dyn Observer>) -> Result<PipelineRunReport, tekton::Error> {
        tekton::run(&self.bundle, &self.run_options(observer))
    }

    /// What a person wants to know after a run, read back from the emulators.
    pub async fn summary(&self, report: &PipelineRunReport) -> Summary {
        let result =
            |task: &str, name: &str| report.task(task).and_then(|t| t.results.get(name)).cloned();
        let mut versions = Vec::new();
        let reg = self.sandbox.registry.url();
        let http = reqwest::Client::new();
        let url = format!(
            "{reg}{REGISTRY_API}/registered_models/{}/versions?pageSize=100",
            self.registry_model_id
        );
        if let Ok(v) = get(&http, &url).await {
            for item in v["items"].as_array().cloned().unwrap_or_default() {
                let id = item["id"].as_str().unwrap_or_default().to_string();
                let arts = get(
                    &http,
                    &format!("{reg}{REGISTRY_API}/model_versions/{id}/artifacts"),
                )
                .await
                .ok();
                versions.push(VersionSummary::from_json(&item, arts.as_ref()));
            }
        }
        let pulls = self
            .sandbox
            .forge
            .pulls(USER, GITOPS_REPO)
            .unwrap_or_default();
        Summary {
            pipeline_run: report.name.clone(),
            status: report.status.clone(),
            tasks: report.tasks.clone(),
            revision: self.revision.clone(),
            kfp_run_id: result("train", "KFP_RUN_ID"),
            kfp_run_state: result("train", "KFP_RUN_STATE"),
            modelcar: result("build-modelcar", "IMAGE_URL")
                .zip(result("build-modelcar", "IMAGE_DIGEST"))
                .map(|(u, d)| format!("{u}@{d}")),
            versions,
            test_commit: result("deploy-test", "COMMIT_SHA"),
            test_changed: result("deploy-test", "CHANGED"),
            prod_branch: result("promote-prod", "BRANCH"),
            pr_url: result("open-prod-pr", "PR_URL"),
            pr_action: result("open-prod-pr", "PR_ACTION"),
            open_pulls: pulls
                .iter()
                .filter(|p| p.open)
                .map(|p| format!("#{} {} ({} → {})", p.number, p.title, p.head, p.base))
                .collect(),
            run_dir: report.run_dir.clone(),
        }
    }
}

/// One model version as the registry holds it.
#[derive(Debug, Clone)]
pub struct VersionSummary {
    pub id: String,
    pub name: String,
    pub author: String,
    /// Custom properties with an empty string value (the environment labels).
    pub labels: Vec<String>,
    /// Other custom properties, rendered.
    pub properties: BTreeMap<String, String>,
    pub artifact_uris: Vec<String>,
}

impl VersionSummary {
    fn from_json(v: &Value, artifacts: Option<&Value>) -> Self {
        let mut labels = Vec::new();
        let mut properties = BTreeMap::new();
        if let Some(props) = v["customProperties"].as_object() {
            for (k, p) in props {
                let rendered = ["string_value", "int_value", "double_value", "bool_value"]
                    .iter()
                    .find_map(|f| p.get(*f))
                    .map(|x| match x {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .unwrap_or_else(|| p.to_string());
                if p["metadataType"] == "MetadataStringValue" && rendered.is_empty() {
                    labels.push(k.clone());
                } else {
                    properties.insert(k.clone(), rendered);
                }
            }
        }
        let artifact_uris = artifacts
            .and_then(|a| a["items"].as_array())
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| i["uri"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        VersionSummary {
            id: v["id"].as_str().unwrap_or_default().to_string(),
            name: v["name"].as_str().unwrap_or_default().to_string(),
            author: v["author"].as_str().unwrap_or_default().to_string(),
            labels,
            properties,
            artifact_uris,
        }
    }
}

/// The demo's closing report.
#[derive(Debug, Clone)]
pub struct Summary {
    pub pipeline_run: String,
    pub status: RunStatus,
    pub tasks: Vec<TaskRunReport>,
    pub revision: String,
    pub kfp_run_id: Option<String>,
    pub kfp_run_state: Option<String>,
    pub modelcar: Option<String>,
    pub versions: Vec<VersionSummary>,
    pub test_commit: Option<String>,
    pub test_changed: Option<String>,
    pub prod_branch: Option<String>,
    pub pr_url: Option<String>,
    pub pr_action: Option<String>,
    pub open_pulls: Vec<String>,
    pub run_dir: PathBuf,
}

fn or_none(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("-")
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = match self.status {
            RunStatus::Succeeded => "Succeeded",
            RunStatus::Completed => "Completed (some tasks skipped)",
            RunStatus::Failed => "FAILED",
        };
        writeln!(f, "PipelineRun {}: {status}", self.pipeline_run)?;
        writeln!(f, "  commit        {}", self.revision)?;
        for t in &self.tasks {
            let st = match &t.status {
                TaskStatus::Succeeded => "Succeeded".to_string(),
                TaskStatus::Failed(why) => format!("FAILED: {why}"),
                TaskStatus::Skipped(why) => format!("skipped: {why}"),
                TaskStatus::NotRun => "not run (an earlier task failed)".to_string(),
            };
            let kind = if t.stand_in.is_some() {
                " [stand-in]"
            } else {
                ""
            };
            let fin = if t.finally { " (finally)" } else { "" };
            writeln!(f, "  {:<22} {st}{kind}{fin}", t.name)?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "KFP run         {} ({})",
            or_none(&self.kfp_run_id),
            or_none(&self.kfp_run_state)
        )?;
        writeln!(
            f,
            "modelcar        {} [buildah stand-in: content hash, nothing pushed]",
            or_none(&self.modelcar)
        )?;
        writeln!(f, "Model Registry  {APP}")?;
        for v in &self.versions {
            let labels = if v.labels.is_empty() {
                "no environment label".to_string()
            } else {
                format!("labels {}", v.labels.join(", "))
            };
            writeln!(f, "  version {} (id {}): {labels}", v.name, v.id)?;
            if !v.author.is_empty() {
                writeln!(f, "    author       {}", v.author)?;
            }
            for (k, val) in &v.properties {
                writeln!(f, "    {k:<12} {val}")?;
            }
            for u in &v.artifact_uris {
                writeln!(f, "    artifact     {u}")?;
            }
        }
        writeln!(
            f,
            "GitOps test     commit {} on main (changed: {})",
            or_none(&self.test_commit),
            or_none(&self.test_changed)
        )?;
        writeln!(f, "GitOps prod     branch {}", or_none(&self.prod_branch))?;
        writeln!(
            f,
            "prod PR         {} ({})",
            or_none(&self.pr_url),
            or_none(&self.pr_action)
        )?;
        for p in &self.open_pulls {
            writeln!(f, "  open: {p}")?;
        }
        write!(
            f,
            "TaskRun logs    {}",
            self.run_dir.join("tasks").display()
        )
    }
}

/// First 7 characters of a SHA (the model version).
pub fn short(sha: &str) -> &str {
    &sha[..sha.len().min(7)]
}

/// Register the model version the training of `revision` produces, with its model artifact.
async fn register_version(reg: &str, model_id: &str, revision: &str) -> Result<String, String> {
    let http = reqwest::Client::new();
    let version = post(
        &http,
        &format!("{reg}{REGISTRY_API}/model_versions"),
        json!({"name": short(revision), "registeredModelId": model_id,
               "description": "registered by the training pipeline"}),
    )
    .await?;
    let id = id_of(&version)?;
    post(
        &http,
        &format!("{reg}{REGISTRY_API}/model_versions/{id}/artifacts"),
        json!({"artifactType": "model-artifact", "name": APP,
               "uri": format!("pvc://jukebox-model-pvc/jukebox/{}", short(revision))}),
    )
    .await?;
    Ok(id)
}

/// Clone, change `default_parameters.json` (one more epoch), commit and push to `branch` with
/// the git CLI; returns the pushed commit.
fn push_change(
    dir: &Path,
    clone_url: &str,
    credentials: &Path,
    branch: &str,
) -> Result<String, String> {
    // git's store helper rewrites its file after a login: work on a copy, not the Secret.
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let copy = dir.with_extension("git-credentials");
    std::fs::copy(credentials, &copy).map_err(|e| format!("{}: {e}", credentials.display()))?;
    let credentials = copy.as_path();
    let git = |args: &[&str], cwd: Option<&Path>| -> Result<String, String> {
        let mut c = Command::new("git");
        c.env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", USER)
            .env("GIT_AUTHOR_EMAIL", format!("{USER}@example.com"))
            .env("GIT_COMMITTER_NAME", USER)
            .env("GIT_COMMITTER_EMAIL", format!("{USER}@example.com"))
            .arg("-c")
            .arg("credential.helper=")
            .arg("-c")
            .arg(format!(
                "credential.helper=store --file={}",
                credentials.display()
            ));
        if let Some(d) = cwd {
            c.arg("-C").arg(d);
        }
        let out = c.args(args).output().map_err(|e| format!("git: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "git {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let dir_s = dir.to_string_lossy().to_string();
    git(&["clone", "--quiet", clone_url, &dir_s], None)?;
    if branch != "main" {
        git(&["checkout", "--quiet", "-b", branch], Some(dir))?;
    }
    let params = dir.join("default_parameters.json");
    let text = std::fs::read_to_string(&params).map_err(|e| e.to_string())?;
    let mut v: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let epochs = v["epochs"].as_i64().unwrap_or(10) + 1;
    v["epochs"] = json!(epochs);
    let mut out = serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?;
    out.push('\n');
    std::fs::write(&params, out).map_err(|e| e.to_string())?;
    git(
        &[
            "commit",
            "--quiet",
            "-am",
            &format!("Train with {epochs} epochs"),
        ],
        Some(dir),
    )?;
    git(
        &[
            "push",
            "--quiet",
            "origin",
            &format!("HEAD:refs/heads/{branch}"),
        ],
        Some(dir),
    )?;
    git(&["rev-parse", "HEAD"], Some(dir))
}

fn random_hex() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

fn write_tree(dir: &Path, files: &[(&str, &str)]) -> Result<PathBuf, String> {
    for (rel, text) in files {
        let p = dir.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        std::fs::write(&p, text).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    Ok(dir.to_path_buf())
}

fn write_secret(path: &Path, value: &str) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(value.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn id_of(v: &Value) -> Result<String, String> {
    v["id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("registry: answer without id: {v}"))
}

async fn post(http: &reqwest::Client, url: &str, body: Value) -> Result<Value, String> {
    let r = http
        .post(url)
        .json(&body)
        .send()
        .await
        .map_err(|e| format!("POST {url}: {e}"))?;
    let status = r.status();
    let v: Value = r.json().await.map_err(|e| format!("POST {url}: {e}"))?;
    if !status.is_success() {
        return Err(format!("POST {url}: {status}: {v}"));
    }
    Ok(v)
}

async fn get(http: &reqwest::Client, url: &str) -> Result<Value, String> {
    let r = http
        .get(url)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    let status = r.status();
    let v: Value = r.json().await.map_err(|e| format!("GET {url}: {e}"))?;
    if !status.is_success() {
        return Err(format!("GET {url}: {status}: {v}"));
    }
    Ok(v)
}

/// Prints task progress (and step lines with `verbose`) on stderr.
pub struct ConsoleObserver {
    pub verbose: bool,
}

impl Observer for ConsoleObserver {
    fn task_started(&self, task: &str, stand_in: Option<&str>) {
        match stand_in {
            Some(s) => eprintln!("▶ {task}  ({s})"),
            None => eprintln!("▶ {task}"),
        }
    }

    fn line(&self, task: &str, step: &str, line: &str) {
        if self.verbose {
            eprintln!("  [{task}/{step}] {line}");
        }
    }

    fn task_finished(&self, r: &TaskRunReport) {
        match &r.status {
            TaskStatus::Succeeded => {
                let results: Vec<String> =
                    r.results.iter().map(|(k, v)| format!("{k}={v}")).collect();
                eprintln!("✔ {}  {}", r.name, results.join(" "));
            }
            TaskStatus::Failed(why) => eprintln!(
                "✘ {}  {why}  (logs: {})",
                r.name,
                r.dir.join("logs").display()
            ),
            TaskStatus::Skipped(why) => eprintln!("↷ {}  skipped: {why}", r.name),
            TaskStatus::NotRun => eprintln!("· {}  not run", r.name),
        }
    }
}

/// First Ctrl-C: cancel the run (the running step gets SIGTERM, finally tasks still run), like
/// a PipelineRun's CancelledRunFinally. Second Ctrl-C: exit at once.
pub fn cancel_on_ctrl_c(rt: &tokio::runtime::Runtime, flag: Arc<std::sync::atomic::AtomicBool>) {
    rt.spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
            eprintln!("cancelling the run: stopping the running step, then the finally tasks (Ctrl-C again to quit now)");
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
}

/// The repository root: `--repo-root`, else from the current directory, else the checkout this
/// binary was built from.
pub fn repo_root(given: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(r) = given {
        return tekton::find_repo_root(r).ok_or_else(|| {
            format!(
                "--repo-root {}: no pipeline/ct-pipeline.yaml and tasks/ there",
                r.display()
            )
        });
    }
    std::env::current_dir()
        .ok()
        .and_then(|d| tekton::find_repo_root(&d))
        .or_else(|| tekton::find_repo_root(Path::new(env!("CARGO_MANIFEST_DIR"))))
        .ok_or_else(|| {
            "cannot find pipeline/ct-pipeline.yaml and tasks/: run from the ct-steps checkout or pass --repo-root".into()
        })
}

/// The step binaries' directory: `--bin-dir`, else beside the running executable.
pub fn bin_dir(given: Option<&Path>) -> Result<PathBuf, String> {
    match given {
        Some(d) => Ok(d.to_path_buf()),
        None => std::env::current_exe()
            .map_err(|e| format!("cannot locate the ct-sandbox binary: {e}"))?
            .parent()
            .map(Path::to_path_buf)
            .ok_or_else(|| "cannot locate the ct-sandbox binary's directory".into()),
    }
}

/// When `bin_dir` is `<repo>/target/<profile>` (or a CARGO_TARGET_DIR build of this checkout),
/// bring the step binaries up to date with cargo; otherwise only check they exist.
pub fn ensure_binaries(bin_dir: &Path, repo_root: &Path, build: bool) -> Result<(), String> {
    let profile = bin_dir.file_name().and_then(|p| p.to_str()).unwrap_or("");
    let target_dir = bin_dir.parent();
    let is_cargo_dir = matches!(profile, "debug" | "release" | "dist")
        && target_dir.is_some_and(|t| t.join("CACHEDIR.TAG").is_file() || t.ends_with("target"));
    if build && is_cargo_dir && repo_root.join("Cargo.toml").is_file() {
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.arg("build")
            .arg("--quiet")
            .arg("--locked")
            .arg("--manifest-path")
            .arg(repo_root.join("Cargo.toml"))
            .arg("--target-dir")
            .arg(target_dir.unwrap_or(bin_dir));
        match profile {
            "debug" => {}
            "release" => {
                cmd.arg("--release");
            }
            p => {
                cmd.arg("--profile").arg(p);
            }
        }
        for b in STEP_BINARIES {
            cmd.arg("-p").arg(b);
        }
        eprintln!(
            "building the step binaries (cargo build -p {}) …",
            STEP_BINARIES.join(" -p ")
        );
        let status = cmd.status().map_err(|e| {
            format!("cannot run cargo: {e}; build the step binaries yourself or pass --no-build")
        })?;
        if !status.success() {
            return Err("cargo build of the step binaries failed (see above)".into());
        }
    }
    let missing: Vec<&str> = STEP_BINARIES
        .iter()
        .copied()
        .filter(|b| !bin_dir.join(b).is_file())
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "step binaries missing in {}: {}; build them (cargo build --workspace) or pass --bin-dir",
            bin_dir.display(),
            missing.join(", ")
        ));
    }
    Ok(())
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
    let bins = bin_dir(args.bin_dir.as_deref())?;
    ensure_binaries(&bins, &root, !args.no_build)?;
    let config = DemoConfig {
        repo_root: root,
        bin_dir: bins,
        work_dir: args.work_dir.clone(),
        training_outcome: args.training_outcome,
        training_pending: Duration::from_millis(300),
        training_time: args.training_time,
        poll_interval: "500ms".into(),
    };
    let mut demo = rt.block_on(Demo::start(config))?;
    eprintln!(
        "sandbox: kfp {}  registry {}  forge {}",
        demo.sandbox.kfp.url(),
        demo.sandbox.registry.url(),
        demo.sandbox.forge.url()
    );
    eprintln!("seeded: {USER}/{APP}, {USER}/{GITOPS_REPO}, registry model {APP}");
    if !args.no_webhook {
        for branch in ["experiment", "main"] {
            let o = rt.block_on(demo.push_and_trigger(branch))?;
            match &o.decision {
                Decision::Accepted(_) => eprintln!(
                    "push to {USER}/{APP} {branch} ({}) → signed webhook → Trigger {}: accepted → PipelineRun params {}",
                    short(&demo.revision),
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
                } => eprintln!(
                    "push to {USER}/{APP} {branch} → signed webhook → Trigger {}: filtered out by {interceptor} ({reason})",
                    o.trigger
                ),
            }
            if branch == "main" && !matches!(o.decision, Decision::Accepted(_)) {
                return Err("the push to main was not accepted by the Trigger".into());
            }
        }
    }
    eprintln!(
        "running pipeline/ct-pipeline.yaml for commit {} …",
        demo.revision
    );
    let observer = Arc::new(ConsoleObserver {
        verbose: args.verbose,
    });
    cancel_on_ctrl_c(rt, demo.cancel.clone());
    let report = demo.run(observer).map_err(|e| e.to_string())?;
    let summary = rt.block_on(demo.summary(&report));
    println!();
    println!("{summary}");
    if args.keep
        && let Some(t) = demo._tmp.take()
    {
        let kept = t.keep();
        println!("work directory kept: {}", kept.display());
    }
    Ok(if report.succeeded() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
