//! The EventListener stand-in of the demo: the Triggers of `pipeline/triggers/` (the
//! repository's or a rendered chart's) installed for the sandbox's forge, evaluated by the
//! interpreter behind a loopback HTTP server that the forge's push webhook and the demo's
//! Alertmanager post to.

use std::sync::Arc;
use std::time::Duration;

use ct_emulator::{Emulator as _, Server, loopback};
use ct_tekton_interpreter::trigger::{
    Decision, Evaluation, Interceptor, Secrets, TriggerSet, listener_router,
};
use tokio::sync::mpsc::UnboundedReceiver;

use super::seed::random_hex;
use super::{APP, Demo, USER};

/// Who sent a delivery: which Trigger's answer the demo reports when none accepts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sender {
    /// The forge's signed push webhook (the Trigger with a `github` interceptor).
    Forge,
    /// Alertmanager (the Trigger that compares bearer credentials with `compareSecret`).
    Alertmanager,
}

/// The EventListener stand-in, registered as the model repository's webhook.
pub(super) struct Listener {
    server: Server,
    rx: UnboundedReceiver<Result<Vec<Evaluation>, ct_tekton_interpreter::Error>>,
    /// The Trigger that takes pushes.
    push_trigger: String,
    /// The Trigger that takes alerts, when the EventListener lists one.
    alert_trigger: Option<String>,
}

impl Listener {
    /// Load the Triggers, install them for the sandbox's forge (as the chart installs them for
    /// its git server), give them their Secrets (a fresh webhook secret, the demo's Alertmanager
    /// credentials) and register the stand-in as the model repository's webhook.
    pub(super) async fn start(demo: &Demo) -> Result<Listener, String> {
        let dir = demo.config.manifests.join("pipeline/triggers");
        let set = TriggerSet::load(&dir)
            .and_then(|s| s.install(demo.sandbox.forge.url()))
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        let with = |pred: &dyn Fn(&Interceptor) -> bool| {
            set.triggers
                .iter()
                .find(|t| t.interceptors.iter().any(pred))
                .map(|t| t.name.clone())
        };
        let push_trigger = with(&|i| matches!(i, Interceptor::Github { .. })).ok_or_else(|| {
            format!(
                "{}: the EventListener lists no Trigger with a github interceptor (the push Trigger)",
                dir.display()
            )
        })?;
        let alert_trigger = with(&|i| match i {
            Interceptor::Cel {
                filter: Some(f), ..
            } => f.contains("compareSecret"),
            _ => false,
        });
        let refs = set.secret_refs();
        let webhook_secret = random_hex();
        let mut secrets = Secrets::new();
        for r in refs.signatures {
            secrets.insert(r, webhook_secret.clone());
        }
        for r in refs.compared {
            secrets.insert(r, demo.config.alertmanager_credentials.clone());
        }
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
            server,
            rx,
            push_trigger,
            alert_trigger,
        })
    }

    /// The stand-in's URL (Alertmanager's receiver URL).
    pub(super) fn url(&self) -> String {
        format!("{}/", self.server.url)
    }

    pub(super) fn alert_trigger(&self) -> Option<&str> {
        self.alert_trigger.as_deref()
    }

    /// The next delivery's outcome: the Trigger that accepted it (more than one is an error:
    /// two PipelineRuns), else the answer of the Trigger for `sender`.
    pub(super) async fn next(&mut self, sender: Sender, what: &str) -> Result<Evaluation, String> {
        let evaluations = match tokio::time::timeout(Duration::from_secs(20), self.rx.recv()).await
        {
            Ok(Some(r)) => r.map_err(|e| e.to_string())?,
            Ok(None) | Err(_) => {
                return Err(format!(
                    "no delivery of {what} reached the EventListener stand-in"
                ));
            }
        };
        let accepted: Vec<&Evaluation> = evaluations
            .iter()
            .filter(|e| matches!(e.decision, Decision::Accepted(_)))
            .collect();
        if accepted.len() > 1 {
            let names: Vec<&str> = accepted.iter().map(|e| e.trigger.as_str()).collect();
            return Err(format!(
                "{what} was accepted by several Triggers ({}): it would create several PipelineRuns",
                names.join(", ")
            ));
        }
        let wanted = match sender {
            Sender::Forge => Some(self.push_trigger.as_str()),
            Sender::Alertmanager => self.alert_trigger.as_deref(),
        };
        accepted
            .first()
            .copied()
            .or_else(|| {
                evaluations
                    .iter()
                    .find(|e| Some(e.trigger.as_str()) == wanted)
            })
            .cloned()
            .ok_or_else(|| format!("the EventListener has no Trigger for {what}"))
    }
}
