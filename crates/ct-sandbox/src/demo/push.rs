//! A push through the signed webhook: a commit pushed with the git CLI to the model repository,
//! whose webhook is the EventListener stand-in ([`super::listener`]).

use std::path::Path;

use ct_emulator::git::Git;
use ct_tekton_interpreter::trigger::{Decision, Evaluation};
use serde_json::{Value, json};

use super::listener::{Listener, Sender};
use super::seed::random_hex;
use super::{Demo, USER};

impl Demo {
    /// Push a commit to `branch` of the model repository as the user, over git smart HTTP. The
    /// forge delivers its signed push webhook to the EventListener stand-in, which evaluates
    /// the Triggers (signature, event type, CEL filters, binding, template). Returns what the
    /// push Trigger decided; when accepted, the pushed commit becomes the one the next
    /// [`Demo::run`] trains, with the Trigger's PipelineRun params.
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

        let listener = self.listener.as_mut().expect("listener started above");
        let outcome = listener
            .next(Sender::Forge, &format!("the push of {pushed}"))
            .await?;
        if let (Decision::Accepted(_), Some(params)) =
            (&outcome.decision, &outcome.pipelinerun_params)
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
            self.trigger_params = Some(params.clone());
        }
        Ok(outcome)
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
