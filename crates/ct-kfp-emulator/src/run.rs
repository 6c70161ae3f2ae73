//! Runs and their scripted timelines.
//!
//! A run's life is a timeline fixed at creation from its [`RunScript`]: PENDING at 0, RUNNING
//! at `pending`, the end state at `pending + running`. Terminating cuts the timeline (CANCELING
//! now, CANCELED `cancel_delay` later). Views are computed from the elapsed time when read, so
//! no background task is needed and tests choose their own speed. States are `ct_kfp`'s
//! [`RunState`], the vocabulary the steps read.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use ct_kfp::RunState;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::records::{EPOCH, storage_state, ts};

/// How a scripted run ends (`--kfp-outcome`, the admin script's `outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[value(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunEnd {
    #[default]
    Succeeded,
    Failed,
    Canceled,
    Skipped,
    /// Never finishes (until terminated).
    Running,
}

impl RunEnd {
    /// The run's state once its RUNNING time is over.
    pub fn state(self) -> RunState {
        match self {
            RunEnd::Succeeded => RunState::Succeeded,
            RunEnd::Failed => RunState::Failed,
            RunEnd::Canceled => RunState::Canceled,
            RunEnd::Skipped => RunState::Skipped,
            RunEnd::Running => RunState::Running,
        }
    }
}

/// The scripted life of one run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunScript {
    pub outcome: RunEnd,
    /// Time spent PENDING.
    pub pending: Duration,
    /// Time spent RUNNING (tasks progress evenly over it).
    pub running: Duration,
    /// The run's error message when it FAILED (a default one otherwise).
    pub error: Option<String>,
}

impl RunScript {
    pub fn new(outcome: RunEnd, pending: Duration, running: Duration) -> Self {
        RunScript {
            outcome,
            pending,
            running,
            error: None,
        }
    }
}

/// [`RunScript`] as JSON, for the admin endpoint: `{"outcome","pending_ms","running_ms","error"}`.
#[derive(Debug, Clone, Deserialize)]
pub struct RunScriptJson {
    #[serde(default)]
    pub outcome: RunEnd,
    #[serde(default)]
    pub pending_ms: u64,
    #[serde(default)]
    pub running_ms: u64,
    #[serde(default)]
    pub error: Option<String>,
}

impl From<RunScriptJson> for RunScript {
    fn from(j: RunScriptJson) -> Self {
        RunScript {
            outcome: j.outcome,
            pending: Duration::from_millis(j.pending_ms),
            running: Duration::from_millis(j.running_ms),
            error: j.error,
        }
    }
}

/// The IR inside a run's or version's `pipeline_spec` (bare or wrapped).
pub fn ir_of(spec: &Value) -> &Value {
    if spec.get("root").is_none()
        && let Some(inner) = spec.get("pipeline_spec")
    {
        return inner;
    }
    spec
}

/// Task display names of the root DAG in dependency order (ties by name).
pub fn task_names(spec: &Value) -> Vec<String> {
    let Some(tasks) = ir_of(spec)
        .pointer("/root/dag/tasks")
        .and_then(Value::as_object)
    else {
        return Vec::new();
    };
    let mut left: Vec<(&String, &Value)> = tasks.iter().collect();
    left.sort_by(|a, b| a.0.cmp(b.0));
    let mut done: Vec<String> = Vec::new();
    let mut out = Vec::new();
    while !left.is_empty() {
        let ready = left.iter().position(|(_, t)| {
            t.get("dependentTasks")
                .and_then(Value::as_array)
                .map(|d| {
                    d.iter()
                        .all(|x| x.as_str().is_some_and(|x| done.iter().any(|k| k == x)))
                })
                .unwrap_or(true)
        });
        // A cycle (invalid IR) is broken by taking the first remaining task.
        let (key, task) = left.remove(ready.unwrap_or(0));
        done.push(key.clone());
        out.push(
            task.pointer("/taskInfo/name")
                .and_then(Value::as_str)
                .unwrap_or(key)
                .to_string(),
        );
    }
    out
}

#[derive(Debug, Clone)]
pub struct RunRec {
    pub id: String,
    pub seq: u64,
    pub experiment_id: String,
    pub display_name: String,
    pub description: String,
    pub pipeline_spec: Option<Value>,
    pub version_ref: Option<Value>,
    pub runtime_config: Option<Value>,
    pub service_account: String,
    pub created: Instant,
    pub created_wall: DateTime<Utc>,
    pub script: RunScript,
    pub tasks: Vec<String>,
    /// (offset from creation, state), ascending. The last entry at or before "now" is current.
    pub timeline: Vec<(Duration, RunState)>,
    pub archived: bool,
    pub terminate_calls: u32,
}

impl RunRec {
    pub fn timeline_for(script: &RunScript) -> Vec<(Duration, RunState)> {
        let mut t = vec![
            (Duration::ZERO, RunState::Pending),
            (script.pending, RunState::Running),
        ];
        if script.outcome != RunEnd::Running {
            t.push((script.pending + script.running, script.outcome.state()));
        }
        t
    }

    pub fn elapsed(&self) -> Duration {
        self.created.elapsed()
    }

    /// The state at `at` (offset from creation).
    pub fn state_at(&self, at: Duration) -> RunState {
        self.timeline
            .iter()
            .take_while(|(t, _)| *t <= at)
            .last()
            .map(|(_, s)| s.clone())
            .unwrap_or(RunState::Pending)
    }

    /// When the run became terminal, and how.
    fn end(&self) -> Option<(Duration, RunState)> {
        self.timeline.iter().find(|(_, s)| s.is_terminal()).cloned()
    }

    /// Cut the timeline now and continue with `states` (offsets relative to now).
    pub fn cut(&mut self, states: Vec<(Duration, RunState)>) {
        let now = self.elapsed();
        self.timeline.retain(|(t, _)| *t <= now);
        for (d, s) in states {
            self.timeline.push((now + d, s));
        }
    }

    /// Terminate: CANCELING now, CANCELED after `delay`. A finished run is left alone.
    pub fn terminate(&mut self, delay: Duration) {
        self.terminate_calls += 1;
        let current = self.state_at(self.elapsed());
        if current.is_terminal() || current == RunState::Canceling {
            return;
        }
        self.cut(vec![
            (Duration::ZERO, RunState::Canceling),
            (delay, RunState::Canceled),
        ]);
    }

    fn error_message(&self) -> String {
        self.script.error.clone().unwrap_or_else(|| {
            format!(
                "task {} failed: main container exited with code 1",
                self.tasks.last().map(String::as_str).unwrap_or("root")
            )
        })
    }

    fn task_views(&self, now: Duration) -> Vec<Value> {
        let n = self.tasks.len() as u32;
        let end = self.end();
        let mut out = Vec::new();
        for (i, name) in self.tasks.iter().enumerate() {
            let i = i as u32;
            let (start, natural_end) = if self.script.outcome == RunEnd::Running {
                // Never-ending run: the first task runs forever, the others never start.
                if i > 0 {
                    break;
                }
                (self.script.pending, None)
            } else {
                (
                    self.script.pending + self.script.running * i / n,
                    Some(self.script.pending + self.script.running * (i + 1) / n),
                )
            };
            if now < start
                || end
                    .as_ref()
                    .is_some_and(|(e, _)| start > *e || (start == *e && i > 0))
            {
                break;
            }
            let (eff_end, final_state) = match (natural_end, end.clone()) {
                (Some(ne), Some((e, s))) if ne >= e => {
                    let st = if ne == e && s == RunState::Failed && i + 1 == n {
                        RunState::Failed
                    } else if ne == e && s.is_success() {
                        s
                    } else if ne == e {
                        RunState::Succeeded
                    } else {
                        s
                    };
                    (Some(e), st)
                }
                (Some(ne), _) => (Some(ne), RunState::Succeeded),
                (None, Some((e, s))) => (Some(e), s),
                (None, None) => (None, RunState::Running),
            };
            let finished = eff_end.is_some_and(|e| now >= e);
            let state = if finished {
                final_state
            } else {
                RunState::Running
            };
            let at = |d: Duration| {
                ts(self.created_wall + chrono::Duration::from_std(d).unwrap_or_default())
            };
            let mut history = vec![json!({"update_time": at(start), "state": "RUNNING"})];
            if finished {
                history.push(
                    json!({"update_time": at(eff_end.unwrap_or(start)), "state": state.as_str()}),
                );
            }
            let mut m = Map::new();
            m.insert("run_id".into(), json!(self.id));
            m.insert(
                "task_id".into(),
                json!(format!("{}-t{}", &self.id[..8], i + 1)),
            );
            m.insert("display_name".into(), json!(name));
            m.insert("create_time".into(), json!(at(start)));
            m.insert("start_time".into(), json!(at(start)));
            m.insert(
                "end_time".into(),
                json!(if finished {
                    at(eff_end.unwrap_or(start))
                } else {
                    EPOCH.into()
                }),
            );
            m.insert("state".into(), json!(state.as_str()));
            m.insert(
                "execution_id".into(),
                json!(format!("{}", self.seq * 100 + u64::from(i) + 1)),
            );
            if state == RunState::Failed {
                m.insert(
                    "error".into(),
                    json!({"code": 2, "message": self.error_message()}),
                );
            }
            m.insert("state_history".into(), Value::Array(history));
            out.push(Value::Object(m));
        }
        out
    }

    /// The v2beta1 Run as the server would answer now.
    pub fn view(&self) -> Value {
        let now = self.elapsed();
        let state = self.state_at(now);
        let at =
            |d: Duration| ts(self.created_wall + chrono::Duration::from_std(d).unwrap_or_default());
        let mut m = Map::new();
        m.insert("experiment_id".into(), json!(self.experiment_id));
        m.insert("run_id".into(), json!(self.id));
        m.insert("display_name".into(), json!(self.display_name));
        if !self.description.is_empty() {
            m.insert("description".into(), json!(self.description));
        }
        m.insert("storage_state".into(), storage_state(self.archived));
        if let Some(s) = &self.pipeline_spec {
            m.insert("pipeline_spec".into(), s.clone());
        }
        if let Some(r) = &self.version_ref {
            m.insert("pipeline_version_reference".into(), r.clone());
        }
        if let Some(rc) = &self.runtime_config {
            m.insert("runtime_config".into(), rc.clone());
        }
        m.insert("service_account".into(), json!(self.service_account));
        m.insert("created_at".into(), json!(ts(self.created_wall)));
        m.insert("scheduled_at".into(), json!(ts(self.created_wall)));
        let finished = self
            .end()
            .filter(|(t, _)| *t <= now)
            .map(|(t, _)| at(t))
            .unwrap_or_else(|| EPOCH.into());
        m.insert("finished_at".into(), json!(finished));
        m.insert("state".into(), json!(state.as_str()));
        if state == RunState::Failed {
            m.insert(
                "error".into(),
                json!({"code": 2, "message": self.error_message()}),
            );
        }
        let mut details = Map::new();
        details.insert("pipeline_context_id".into(), json!("1"));
        details.insert(
            "pipeline_run_context_id".into(),
            json!(format!("{}", self.seq + 1)),
        );
        let tasks = self.task_views(now);
        if !tasks.is_empty() {
            details.insert("task_details".into(), Value::Array(tasks));
        }
        m.insert("run_details".into(), Value::Object(details));
        let history: Vec<Value> = self
            .timeline
            .iter()
            .filter(|(t, _)| *t <= now)
            .map(|(t, s)| json!({"update_time": at(*t), "state": s.as_str()}))
            .collect();
        m.insert("state_history".into(), Value::Array(history));
        Value::Object(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(script: RunScript, tasks: &[&str]) -> RunRec {
        RunRec {
            id: "0123456789abcdef".into(),
            seq: 0,
            experiment_id: "e".into(),
            display_name: "d".into(),
            description: String::new(),
            pipeline_spec: None,
            version_ref: None,
            runtime_config: None,
            service_account: "sa".into(),
            created: Instant::now(),
            created_wall: Utc::now(),
            timeline: RunRec::timeline_for(&script),
            script,
            tasks: tasks.iter().map(|s| s.to_string()).collect(),
            archived: false,
            terminate_calls: 0,
        }
    }

    fn states(v: &[Value]) -> Vec<(String, String)> {
        v.iter()
            .map(|t| {
                (
                    t["display_name"].as_str().unwrap().into(),
                    t["state"].as_str().unwrap().into(),
                )
            })
            .collect()
    }

    #[test]
    fn tasks_progress_along_the_timeline() {
        let s = RunScript::new(
            RunEnd::Failed,
            Duration::from_secs(10),
            Duration::from_secs(30),
        );
        let r = rec(s, &["a", "b", "c"]);
        assert_eq!(r.state_at(Duration::from_secs(5)), RunState::Pending);
        assert!(r.task_views(Duration::from_secs(5)).is_empty());
        assert_eq!(r.state_at(Duration::from_secs(25)), RunState::Running);
        assert_eq!(
            states(&r.task_views(Duration::from_secs(25))),
            [
                ("a".into(), "SUCCEEDED".into()),
                ("b".into(), "RUNNING".into())
            ]
        );
        assert_eq!(r.state_at(Duration::from_secs(40)), RunState::Failed);
        let end = r.task_views(Duration::from_secs(41));
        assert_eq!(states(&end)[2], ("c".into(), "FAILED".into()));
        assert!(
            end[2]["error"]["message"]
                .as_str()
                .unwrap()
                .contains("task c failed")
        );
    }

    #[test]
    fn terminate_cancels_running_tasks() {
        let s = RunScript::new(RunEnd::Running, Duration::ZERO, Duration::ZERO);
        let mut r = rec(s, &["a", "b"]);
        assert_eq!(r.state_at(Duration::from_secs(3600)), RunState::Running);
        r.terminate(Duration::ZERO);
        let v = r.view();
        assert_eq!(v["state"], "CANCELED");
        assert_eq!(
            states(v["run_details"]["task_details"].as_array().unwrap()),
            [("a".into(), "CANCELED".into())]
        );
        assert_eq!(r.terminate_calls, 1);
        r.terminate(Duration::ZERO);
        assert_eq!(r.view()["state"], "CANCELED");
    }

    #[test]
    fn task_order_follows_dependencies() {
        let spec = json!({"root": {"dag": {"tasks": {
            "a-train": {"dependentTasks": ["b-fetch"], "taskInfo": {"name": "train"}},
            "b-fetch": {"taskInfo": {"name": "fetch"}},
            "c-eval": {"dependentTasks": ["a-train"]}
        }}}});
        assert_eq!(
            task_names(&json!({"pipeline_spec": spec})),
            ["fetch", "train", "c-eval"]
        );
    }
}
