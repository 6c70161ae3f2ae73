//! A push through the signed webhook: an EventListener stand-in (the Triggers of
//! `pipeline/triggers/`, evaluated by the interpreter) registered as the model repository's
//! webhook, and a commit pushed with the git CLI.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ct_emulator::git::Git;
use ct_emulator::{Server, loopback};
use ct_tekton_interpreter::trigger::{
    Decision, Evaluation, Interceptor, TriggerSet, listener_router,
};
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedReceiver;

use super::seed::{random_hex, register_version};
use super::{APP, Demo, USER};

/// Secret of the webhook between the forge and the EventListener stand-in.
const WEBHOOK_SECRET_NAME: &str = "ct-webhook-secret";

/// The EventListener stand-in, registered as the model repository's webhook.
pub(super) struct Listener {
    _server: Server,
    rx: UnboundedReceiver<Result<Vec<Evaluation>, ct_tekton_interpreter::Error>>,
}

impl Listener {
    /// Start the stand-in with a fresh webhook secret and register it on the model repository.
    async fn start(demo: &Demo) -> Result<Listener, String> {
        let set = TriggerSet::load(&demo.config.repo_root.join("pipeline/triggers"))
            .map_err(|e| e.to_string())?;
        let secret_key = set
            .triggers
            .iter()
            .flat_map(|t| &t.interceptors)
            .find_map(|i| match i {
                Interceptor::Github {
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
        let server = Server::start(
            loopback(0),
            listener_router(Arc::new(set), Arc::new(secrets), tx),
        )
        .await
        .map_err(|e| format!("EventListener stand-in: {e}"))?;
        demo.sandbox
            .forge
            .add_hook(USER, APP, &format!("{}/", server.url), &webhook_secret)
            .map_err(|e| format!("forge: {e}"))?;
        Ok(Listener {
            _server: server,
            rx,
        })
    }
}

impl Demo {
    /// Push a commit to `branch` of the model repository as the user, over git smart HTTP. The
    /// forge delivers its signed push webhook to an EventListener stand-in that evaluates
    /// `pipeline/triggers/` (signature, event type, CEL filters, binding, template). Returns
    /// what the EventListener decided; when accepted, the pushed commit becomes the one the
    /// next [`Demo::run`] trains (with the Trigger's PipelineRun params), and the registry gets
    /// its model version (in the real flow the training pipeline registers it).
    pub async fn push_and_trigger(&mut self, branch: &str) -> Result<Evaluation, String> {
        if self.listener.is_none() {
            self.listener = Some(Listener::start(self).await?);
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
        let outcomes = match tokio::time::timeout(Duration::from_secs(20), rx.recv()).await {
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
                &self.sandbox.registry,
                &self.registry_model_id,
                &self.revision,
            )?;
            self.trigger_params = Some(params.clone());
        }
        Ok(first)
    }
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
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let copy = dir.with_extension("git-credentials");
    std::fs::copy(credentials, &copy).map_err(|e| format!("{}: {e}", credentials.display()))?;
    let email = format!("{USER}@example.com");
    let git = || {
        Git::work_tree(dir)
            .identity(USER, &email)
            .credential_store(&copy)
    };
    let fail = |e: ct_emulator::Error| e.to_string();
    Git::new()
        .credential_store(&copy)
        .args(["clone", "--quiet", clone_url])
        .arg(dir)
        .run()
        .map_err(fail)?;
    if branch != "main" {
        git()
            .args(["checkout", "--quiet", "-b", branch])
            .run()
            .map_err(fail)?;
    }
    let params = dir.join("default_parameters.json");
    let text =
        std::fs::read_to_string(&params).map_err(|e| format!("{}: {e}", params.display()))?;
    let mut v: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", params.display()))?;
    let epochs = v["epochs"].as_i64().unwrap_or(10) + 1;
    v["epochs"] = json!(epochs);
    let mut out = serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?;
    out.push('\n');
    std::fs::write(&params, out).map_err(|e| format!("{}: {e}", params.display()))?;
    git()
        .args([
            "commit",
            "--quiet",
            "-am",
            &format!("Train with {epochs} epochs"),
        ])
        .run()
        .map_err(fail)?;
    git()
        .args([
            "push",
            "--quiet",
            "origin",
            &format!("HEAD:refs/heads/{branch}"),
        ])
        .run()
        .map_err(fail)?;
    git().args(["rev-parse", "HEAD"]).run().map_err(fail)
}
