//! An alert through the EventListener: the firing notification of
//! `tests/fixtures/alertmanager/firing.json` for the demo's app, posted the way Alertmanager's
//! webhook receiver posts it (`notify.PostJSON`: the JSON body as given,
//! `Authorization: Bearer <credentials>` from its `http_config.authorization`), to the
//! EventListener stand-in ([`super::listener`]).

use ct_tekton_interpreter::trigger::{Decision, Evaluation, parse_headers};
use serde_json::Value;

use super::Demo;
use super::listener::{Listener, Sender};

const FIRING: &str = include_str!("../../../../tests/fixtures/alertmanager/firing.json");
const FIRING_HEADERS: &str = include_str!("../../../../tests/fixtures/alertmanager/firing.headers");

/// An Alertmanager webhook notification as sent: its headers and its exact body.
#[derive(Debug, Clone)]
pub struct Notification {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// The fixture's firing notification with the label `model` set to `app` (in every alert, the
/// group labels and the common labels), sent with `credentials`.
pub fn firing_notification(app: &str, credentials: &str) -> Result<Notification, String> {
    let mut v: Value =
        serde_json::from_str(FIRING).map_err(|e| format!("firing.json fixture: {e}"))?;
    for labels in ["groupLabels", "commonLabels"] {
        v[labels]["model"] = Value::from(app);
    }
    for alert in v["alerts"].as_array_mut().into_iter().flatten() {
        alert["labels"]["model"] = Value::from(app);
    }
    // Go's json.Encoder: compact, one trailing newline.
    let mut body = serde_json::to_vec(&v).map_err(|e| e.to_string())?;
    body.push(b'\n');
    let headers = parse_headers(FIRING_HEADERS)
        .into_iter()
        .map(|(k, v)| {
            if k.eq_ignore_ascii_case("Authorization") {
                (k, format!("Bearer {credentials}"))
            } else {
                (k, v)
            }
        })
        .collect();
    Ok(Notification { headers, body })
}

impl Demo {
    /// The Trigger of the EventListener that takes Alertmanager notifications (the one that
    /// compares bearer credentials with `compareSecret`), if it lists one; starts the
    /// EventListener stand-in.
    pub async fn alert_trigger(&mut self) -> Result<Option<String>, String> {
        if self.listener.is_none() {
            self.listener = Some(Listener::start(self).await?);
        }
        let listener = self.listener.as_ref().expect("listener started above");
        Ok(listener.alert_trigger().map(str::to_string))
    }

    /// Post an Alertmanager notification (`headers`, `body`) to the EventListener stand-in.
    /// Returns what the alert Trigger decided; when accepted, the next [`Demo::run`] is the
    /// retraining it asks for (its PipelineRun params: the model's repository at `main`, an
    /// empty version for the pipeline to derive). The EventListener must list an alert Trigger
    /// (a rendered chart with `alertTrigger.enabled`).
    pub async fn alert_and_trigger(
        &mut self,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<Evaluation, String> {
        if self.alert_trigger().await?.is_none() {
            return Err(format!(
                "{}/pipeline/triggers: the EventListener lists no alert Trigger; render the chart with alertTrigger.enabled (or add `- triggerRef: ct-alert-retrain` to eventlistener.yaml) and pass it with --manifests",
                self.config.manifests.display()
            ));
        }
        let listener = self.listener.as_mut().expect("started by alert_trigger");
        let mut request = reqwest::Client::new()
            .post(listener.url())
            .body(body.to_vec());
        for (k, v) in headers {
            request = request.header(k, v);
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("Alertmanager → EventListener stand-in: {e}"))?;
        // A refused payload is reported on the listener's channel too: its message wins.
        let outcome = listener.next(Sender::Alertmanager, "the alert").await?;
        if response.status() != reqwest::StatusCode::ACCEPTED {
            return Err(format!(
                "the EventListener stand-in answered {} to the alert",
                response.status()
            ));
        }
        if let (Decision::Accepted(_), Some(params)) =
            (&outcome.decision, &outcome.pipelinerun_params)
        {
            self.trigger_params = Some(params.clone());
        }
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_firing_fixture_for_another_app_and_credentials() {
        let n = firing_notification("other-model", "creds").unwrap();
        let v: Value = serde_json::from_slice(&n.body).unwrap();
        assert_eq!(v["status"], "firing");
        assert_eq!(v["commonLabels"]["model"], "other-model");
        assert_eq!(v["groupLabels"]["model"], "other-model");
        assert_eq!(v["alerts"][0]["labels"]["model"], "other-model");
        assert_eq!(
            v["commonLabels"]["alertname"], "JukeboxDataDrift",
            "the rest kept"
        );
        assert!(n.body.ends_with(b"}\n"));
        let auth: Vec<&str> = n
            .headers
            .iter()
            .filter(|(k, _)| k == "Authorization")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(auth, ["Bearer creds"]);
        assert!(
            n.headers
                .iter()
                .any(|(k, v)| k == "User-Agent" && v.starts_with("Alertmanager/"))
        );
    }
}
