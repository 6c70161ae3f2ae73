//! Interpreter semantics on small synthetic Pipelines. The steps run `/usr/local/bin/sh`, mapped to
//! the host's `/bin/sh` through a temporary bin directory (only these tests use a shell).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::*;

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

/// A Task `NAME` with one sh step running `script` (params as env P_<NAME>).
fn task(name: &str, params: &[&str], results: &[&str], script: &str) -> String {
    let mut y = format!(
        "apiVersion: tekton.dev/v1\nkind: Task\nmetadata: {{name: {name}}}\nspec:\n  params:\n"
    );
    for p in params {
        y.push_str(&format!("    - {{name: {p}, type: string}}\n"));
    }
    if params.is_empty() {
        y.push_str("    []\n");
    }
    y.push_str("  results:\n");
    for r in results {
        y.push_str(&format!("    - {{name: {r}}}\n"));
    }
    if results.is_empty() {
        y.push_str("    []\n");
    }
    y.push_str("  steps:\n    - name: run\n      command: [/usr/local/bin/sh]\n      args: [-c, '");
    y.push_str(&script.replace('\'', "''"));
    y.push_str("']\n      env:\n        - {name: RESULTS, value: /tekton/results}\n");
    for p in params {
        y.push_str(&format!(
            "        - {{name: P_{}, value: $(params.{p})}}\n",
            p.to_uppercase().replace('-', "_")
        ));
    }
    y
}

struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Fixture {
    fn new(tasks: &[String], pipeline: &str) -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        std::fs::create_dir_all(root.join("tasks")).unwrap();
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::os::unix::fs::symlink("/bin/sh", root.join("bin/sh")).unwrap();
        for (i, t) in tasks.iter().enumerate() {
            write(&root.join("tasks"), &format!("t{i}.yaml"), t);
        }
        write(&root, "pipeline.yaml", pipeline);
        Fixture { _tmp: tmp, root }
    }

    fn run(&self, params: &[(&str, &str)]) -> Result<PipelineRunReport, Error> {
        let b = load(&self.root.join("pipeline.yaml"), &self.root.join("tasks"))?;
        let mut o = RunOptions::new(self.root.join("bin"), self.root.join("run"));
        for (k, v) in params {
            o.params
                .insert(k.to_string(), ParamValue::Str(v.to_string()));
        }
        run(&b, &o)
    }
}

fn st(r: &PipelineRunReport, t: &str) -> TaskStatus {
    r.task(t).unwrap().status.clone()
}

fn results(r: &PipelineRunReport, t: &str) -> BTreeMap<String, String> {
    r.task(t).unwrap().results.clone()
}

const PIPELINE: &str = r#"
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: p}
spec:
  params:
    - {name: flag, type: string, default: "no"}
  tasks:
    - name: e
      taskRef: {name: echo}
      params: [{name: v, value: "$(tasks.c.results.OUT)"}]
    - name: a
      taskRef: {name: echo}
      params: [{name: v, value: "hello $(context.pipelineRun.name)"}]
    - name: b
      taskRef: {name: echo}
      params: [{name: v, value: "$(tasks.a.results.OUT)!"}]
    - name: c
      runAfter: [b]
      when: [{input: "$(params.flag)", operator: in, values: ["yes"]}]
      taskRef: {name: echo}
      params: [{name: v, value: c}]
    - name: d
      runAfter: [c]
      taskRef: {name: echo}
      params: [{name: v, value: d}]
  finally:
    - name: f
      taskRef: {name: echo}
      params: [{name: v, value: "$(tasks.status) $(tasks.b.status) $(tasks.c.status) $(tasks.b.results.OUT)"}]
"#;

fn echo() -> String {
    task(
        "echo",
        &["v"],
        &["OUT"],
        r#"printf %s "$P_V" > "$RESULTS/OUT""#,
    )
}

#[test]
fn dag_results_when_and_finally() {
    let f = Fixture::new(&[echo()], PIPELINE);
    let r = f.run(&[]).unwrap();
    let order: Vec<&str> = r.tasks.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        order,
        ["e", "a", "b", "c", "d", "f"],
        "declaration order kept"
    );
    assert_eq!(results(&r, "a")["OUT"], format!("hello {}", r.name));
    assert_eq!(results(&r, "b")["OUT"], format!("hello {}!", r.name));
    assert!(matches!(st(&r, "c"), TaskStatus::Skipped(_)));
    // runAfter a skipped task: still runs; consuming its result: skipped.
    assert_eq!(st(&r, "d"), TaskStatus::Succeeded);
    assert!(matches!(st(&r, "e"), TaskStatus::Skipped(ref w) if w.contains("skipped")));
    assert_eq!(
        results(&r, "f")["OUT"],
        format!("Completed Succeeded None hello {}!", r.name)
    );
    assert_eq!(r.status, RunStatus::Completed);

    let r = f.run(&[("flag", "yes")]).unwrap();
    assert_eq!(r.status, RunStatus::Succeeded);
    assert_eq!(results(&r, "e")["OUT"], "c");
    assert!(results(&r, "f")["OUT"].starts_with("Succeeded Succeeded Succeeded"));
}

#[test]
fn a_failure_stops_scheduling_and_finally_sees_written_results() {
    let fail = task(
        "fail",
        &[],
        &["OUT"],
        r#"printf run-1 > "$RESULTS/OUT"; exit 3"#,
    );
    let p = r#"
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: p}
spec:
  tasks:
    - {name: a, taskRef: {name: fail}}
    - name: b
      runAfter: [a]
      taskRef: {name: echo}
      params: [{name: v, value: b}]
  finally:
    - name: cleanup
      when: [{input: "$(tasks.a.status)", operator: notin, values: ["Succeeded"]}]
      taskRef: {name: echo}
      params: [{name: v, value: "$(tasks.a.results.OUT) $(tasks.status)"}]
    - name: never
      when: [{input: "$(tasks.a.status)", operator: in, values: ["Succeeded"]}]
      taskRef: {name: echo}
      params: [{name: v, value: x}]
"#;
    let f = Fixture::new(&[echo(), fail], p);
    let r = f.run(&[]).unwrap();
    assert_eq!(r.status, RunStatus::Failed);
    assert!(matches!(st(&r, "a"), TaskStatus::Failed(ref w) if w.contains("code 3")));
    assert_eq!(r.task("a").unwrap().steps[0].exit_code, 3);
    assert_eq!(st(&r, "b"), TaskStatus::NotRun);
    assert_eq!(results(&r, "cleanup")["OUT"], "run-1 Failed");
    assert!(matches!(st(&r, "never"), TaskStatus::Skipped(_)));
}

#[test]
fn a_missing_result_of_a_successful_task_fails_its_consumer() {
    let silent = task("silent", &[], &["OUT"], "true");
    let p = r#"
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: p}
spec:
  tasks:
    - {name: a, taskRef: {name: silent}}
    - name: b
      taskRef: {name: echo}
      params: [{name: v, value: "$(tasks.a.results.OUT)"}]
"#;
    let f = Fixture::new(&[echo(), silent], p);
    let r = f.run(&[]).unwrap();
    assert_eq!(st(&r, "a"), TaskStatus::Succeeded);
    assert!(
        matches!(st(&r, "b"), TaskStatus::Failed(ref w) if w.contains("InvalidTaskResultReference"))
    );
    assert_eq!(r.status, RunStatus::Failed);
}

#[test]
fn bad_inputs_are_refused_before_anything_runs() {
    let p = r#"
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: p}
spec:
  params: [{name: need, type: string}]
  workspaces: [{name: ws}]
  tasks:
    - name: a
      taskRef: {name: echo}
      params: [{name: v, value: "$(params.need)"}]
"#;
    let f = Fixture::new(&[echo()], p);
    let e = f.run(&[]).unwrap_err().to_string();
    assert!(e.contains("need") && e.contains("--param"), "{e}");
    let e = f
        .run(&[("need", "x"), ("extra", "y")])
        .unwrap_err()
        .to_string();
    assert!(e.contains("extra"), "{e}");
    let e = f.run(&[("need", "x")]).unwrap_err().to_string();
    assert!(e.contains("workspace ws"), "{e}");
    assert!(!f.root.join("run").exists(), "nothing ran, nothing created");

    // A script step, an undeclared param and an unknown Task are load errors.
    let scripted = "apiVersion: tekton.dev/v1\nkind: Task\nmetadata: {name: s}\nspec:\n  steps:\n    - {name: x, image: i, script: echo hi}\n";
    let f = Fixture::new(&[echo(), scripted.to_string()], p);
    assert!(f.run(&[]).unwrap_err().to_string().contains("script"));
    let p2 = p.replace("{name: v, value:", "{name: w, value:");
    let f = Fixture::new(&[echo()], &p2);
    assert!(f.run(&[]).unwrap_err().to_string().contains("param w"));
    let p3 = p.replace("{name: echo}", "{name: nope}");
    let f = Fixture::new(&[echo()], &p3);
    assert!(f.run(&[]).unwrap_err().to_string().contains("nope"));
}

#[test]
fn array_params_expand_in_args() {
    let t = r#"apiVersion: tekton.dev/v1
kind: Task
metadata: {name: arr}
spec:
  params:
    - {name: items, type: array}
  results: [{name: OUT}]
  steps:
    - name: run
      command: [/usr/local/bin/sh]
      args: [-c, 'printf "%s|" "$@" > "$RESULTS/OUT"', sh, "$(params.items[*])", last]
      env: [{name: RESULTS, value: /tekton/results}]
"#;
    let p = r#"
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: p}
spec:
  tasks:
    - name: a
      taskRef: {name: arr}
      params: [{name: items, value: ["x y", "z"]}]
"#;
    let f = Fixture::new(&[t.to_string()], p);
    let r = f.run(&[]).unwrap();
    assert_eq!(results(&r, "a")["OUT"], "x y|z|last|");
}

#[test]
fn a_pipeline_task_timeout_sends_sigterm_and_fails_the_task() {
    let graceful = task(
        "graceful",
        &[],
        &["OUT"],
        r#"trap 'kill $! 2>/dev/null; printf cleaned-up > "$RESULTS/OUT"; exit 143' TERM; sleep 30 & wait"#,
    );
    let p = r#"
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: p}
spec:
  tasks:
    - {name: slow, timeout: 300ms, taskRef: {name: graceful}}
    - {name: after, runAfter: [slow], taskRef: {name: echo}, params: [{name: v, value: x}]}
  finally:
    - name: f
      taskRef: {name: echo}
      params: [{name: v, value: "$(tasks.slow.status) $(tasks.slow.results.OUT)"}]
"#;
    let f = Fixture::new(&[echo(), graceful], p);
    let r = f.run(&[]).unwrap();
    assert!(
        matches!(st(&r, "slow"), TaskStatus::Failed(ref w) if w.contains("TaskRunTimeout")),
        "{:?}",
        st(&r, "slow")
    );
    assert_eq!(r.task("slow").unwrap().steps[0].exit_code, 143);
    assert_eq!(st(&r, "after"), TaskStatus::NotRun);
    assert_eq!(results(&r, "f")["OUT"], "Failed cleaned-up");
}

#[test]
fn cancel_stops_the_running_step_and_still_runs_finally() {
    let waiter = task(
        "waiter",
        &["marker"],
        &[],
        r#"trap 'kill $! 2>/dev/null; exit 143' TERM; : > "$P_MARKER"; sleep 30 & wait"#,
    );
    let p = r#"
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: p}
spec:
  params: [{name: marker, type: string}]
  tasks:
    - {name: slow, taskRef: {name: waiter}, params: [{name: marker, value: "$(params.marker)"}]}
    - {name: after, runAfter: [slow], taskRef: {name: echo}, params: [{name: v, value: x}]}
  finally:
    - name: f
      taskRef: {name: echo}
      params: [{name: v, value: "$(tasks.status) $(tasks.slow.status)"}]
"#;
    let f = Fixture::new(&[echo(), waiter], p);
    let marker = f.root.join("started");
    let b = load(&f.root.join("pipeline.yaml"), &f.root.join("tasks")).unwrap();
    let mut o = RunOptions::new(f.root.join("bin"), f.root.join("run"));
    o.params.insert(
        "marker".into(),
        ParamValue::Str(marker.to_string_lossy().into_owned()),
    );
    let cancel = o.cancel.clone();
    let watcher = std::thread::spawn(move || {
        while !marker.exists() {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        cancel.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    let r = run(&b, &o).unwrap();
    watcher.join().unwrap();
    assert!(
        matches!(st(&r, "slow"), TaskStatus::Failed(ref w) if w.contains("TaskRunCancelled")),
        "{:?}",
        st(&r, "slow")
    );
    assert_eq!(r.task("slow").unwrap().steps[0].exit_code, 143);
    assert_eq!(st(&r, "after"), TaskStatus::NotRun);
    assert_eq!(st(&r, "f"), TaskStatus::Succeeded);
    assert_eq!(results(&r, "f")["OUT"], "Failed Failed");
    assert_eq!(r.status, RunStatus::Failed);
}
