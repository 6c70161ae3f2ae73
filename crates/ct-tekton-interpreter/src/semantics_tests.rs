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

fn skip_reason(r: &PipelineRunReport, t: &str) -> SkipReason {
    match st(r, t) {
        TaskStatus::Skipped(s) => s.reason,
        other => panic!("{t} was not skipped: {other:?}"),
    }
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
    - name: g
      runAfter: [e]
      taskRef: {name: echo}
      params: [{name: v, value: g}]
    - name: h
      runAfter: [g]
      taskRef: {name: echo}
      params: [{name: v, value: h}]
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
        ["e", "a", "b", "c", "d", "g", "h", "f"],
        "declaration order kept"
    );
    assert_eq!(results(&r, "a")["OUT"], format!("hello {}", r.name));
    assert_eq!(results(&r, "b")["OUT"], format!("hello {}!", r.name));
    assert_eq!(skip_reason(&r, "c"), SkipReason::When);
    // runAfter a when-skipped task: still runs (when guards only its task); consuming its
    // result: skipped for missing results.
    assert_eq!(st(&r, "d"), TaskStatus::Succeeded);
    assert_eq!(skip_reason(&r, "e"), SkipReason::MissingResults);
    // A skip for any reason but the task's own `when` passes on to runAfter dependents, all
    // the way down (skipBecauseParentTaskWasSkipped).
    assert_eq!(skip_reason(&r, "g"), SkipReason::ParentSkipped);
    assert_eq!(skip_reason(&r, "h"), SkipReason::ParentSkipped);
    assert!(
        r.task("g")
            .unwrap()
            .status
            .to_string()
            .contains("parent task e")
    );
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
    // A failed TaskRun keeps the results it wrote.
    assert_eq!(results(&r, "a")["OUT"], "run-1");
    assert_eq!(results(&r, "cleanup")["OUT"], "run-1 Failed");
    assert_eq!(skip_reason(&r, "never"), SkipReason::When);
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
    - name: status-only
      taskRef: {name: echo}
      params: [{name: v, value: "$(tasks.slow.status)"}]
"#;
    let f = Fixture::new(&[echo(), graceful], p);
    let r = f.run(&[]).unwrap();
    assert!(
        matches!(st(&r, "slow"), TaskStatus::Failed(ref w) if w.contains("TaskRunTimeout")),
        "{:?}",
        st(&r, "slow")
    );
    assert_eq!(r.task("slow").unwrap().steps[0].exit_code, 143);
    // The step wrote OUT while terminating, but a timed-out TaskRun's pod is deleted and Tekton
    // publishes no results: the finally task that needs OUT is skipped.
    assert!(results(&r, "slow").is_empty(), "{:?}", results(&r, "slow"));
    assert_eq!(st(&r, "after"), TaskStatus::NotRun);
    assert_eq!(skip_reason(&r, "f"), SkipReason::MissingResults);
    assert_eq!(results(&r, "status-only")["OUT"], "Failed");
}

#[test]
fn cancel_stops_the_running_step_and_still_runs_finally() {
    let waiter = task(
        "waiter",
        &["marker"],
        &["OUT"],
        r#"trap 'kill $! 2>/dev/null; exit 143' TERM; printf early > "$RESULTS/OUT"; : > "$P_MARKER"; sleep 30 & wait"#,
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
    - name: needs-out
      taskRef: {name: echo}
      params: [{name: v, value: "$(tasks.slow.results.OUT)"}]
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
    // Cancelled like a timeout: the pod is deleted, the result written before is not published.
    assert!(results(&r, "slow").is_empty());
    assert_eq!(skip_reason(&r, "needs-out"), SkipReason::MissingResults);
    assert_eq!(r.status, RunStatus::Failed);
}

/// `ValidatePipelineTaskResults` and `ValidatePipelineResults`: a reference to a result that the
/// producing Task does not declare, or to a task that does not exist, is refused before anything
/// runs, in `tasks`, in `finally` and in the Pipeline's `results`.
#[test]
fn result_references_are_checked_against_the_declared_results_before_anything_runs() {
    let base = r#"
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: p}
spec:
  tasks:
    - name: a
      taskRef: {name: echo}
      params: [{name: v, value: a}]
    - name: b
      taskRef: {name: echo}
      params: [{name: v, value: "REF_B"}]
  finally:
    - name: f
      taskRef: {name: echo}
      params: [{name: v, value: "REF_F"}]
  results:
    - {name: R, value: "REF_R"}
"#;
    let ok = "$(tasks.a.results.OUT)";
    // (where, the reference written there, what the message names); every other place holds `ok`.
    let cases: [(&str, &str, &[&str]); 8] = [
        (
            "REF_B",
            "$(tasks.a.results.NOPE)",
            &[
                "pipeline task b",
                "InvalidTaskResultReference",
                "NOPE is not a named result returned by pipeline task a",
                "declares OUT",
            ],
        ),
        (
            "REF_F",
            "$(tasks.a.results.NOPE)",
            &["pipeline task f", "NOPE"],
        ),
        (
            "REF_F",
            "$(tasks.f.results.OUT)",
            &["pipeline task f", "f is a finally task"],
        ),
        (
            "REF_R",
            "$(tasks.a.results.NOPE)",
            &[
                "pipeline result R",
                "InvalidPipelineResultReference",
                "NOPE",
            ],
        ),
        (
            "REF_R",
            "$(tasks.zz.results.OUT)",
            &["pipeline result R", "pipeline task zz does not exist"],
        ),
        (
            "REF_R",
            "$(finally.f.results.NOPE)",
            &["pipeline result R", "NOPE"],
        ),
        (
            "REF_R",
            "$(params.x)",
            &["pipeline result R", "not a task result reference"],
        ),
        (
            "REF_R",
            "constant",
            &["pipeline result R", "no task result reference"],
        ),
    ];
    for (place, reference, want) in cases {
        let mut p = base.replace(place, reference);
        for other in ["REF_B", "REF_F", "REF_R"] {
            p = p.replace(other, ok);
        }
        let f = Fixture::new(&[echo()], &p);
        let e = f.run(&[]).unwrap_err().to_string();
        for w in want {
            assert!(e.contains(w), "{place}={reference}: {e:?} lacks {w:?}");
        }
        assert!(!f.root.join("run").exists(), "nothing ran");
    }
    // The stand-ins declare the catalog Tasks' results.
    let p = r#"
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: p}
spec:
  workspaces: [{name: ws}]
  tasks:
    - name: clone
      taskRef: {resolver: cluster, params: [{name: name, value: git-clone}]}
      params: [{name: URL, value: x}]
      workspaces: [{name: output, workspace: ws}]
    - name: b
      taskRef: {name: echo}
      params: [{name: v, value: "$(tasks.clone.results.SHA)"}]
"#;
    let f = Fixture::new(&[echo()], p);
    let e = f.run(&[]).unwrap_err().to_string();
    assert!(
        e.contains("SHA is not a named result returned by pipeline task clone (Task git-clone declares COMMIT, URL, COMMITTER_DATE)"),
        "{e}"
    );
}

/// `ApplyTaskResultsToPipelineResults`: a Pipeline result from a skipped task is left out; one
/// from a task that succeeded without writing it fails the run (`CouldntGetPipelineResult`).
#[test]
fn pipeline_results_from_skipped_tasks_are_left_out_and_missing_ones_fail_the_run() {
    let silent = task("silent", &[], &["OUT"], "true");
    let p = r#"
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: p}
spec:
  params: [{name: flag, type: string, default: "no"}]
  tasks:
    - name: a
      taskRef: {name: echo}
      params: [{name: v, value: a}]
    - name: skipped
      when: [{input: "$(params.flag)", operator: in, values: ["yes"]}]
      taskRef: {name: echo}
      params: [{name: v, value: s}]
    - name: quiet
      taskRef: {name: silent}
  finally:
    - name: f
      taskRef: {name: echo}
      params: [{name: v, value: fin}]
  results:
    - {name: A, value: "$(tasks.a.results.OUT)-$(finally.f.results.OUT)"}
    - {name: S, value: "$(tasks.skipped.results.OUT)"}
"#;
    let f = Fixture::new(&[echo(), silent.clone()], p);
    let r = f.run(&[]).unwrap();
    assert_eq!(r.status, RunStatus::Completed);
    assert_eq!(r.reason, None);
    assert_eq!(r.results.get("A").map(String::as_str), Some("a-fin"));
    assert!(!r.results.contains_key("S"), "left out: {:?}", r.results);

    let p = p.replace(
        "- {name: S, value: \"$(tasks.skipped.results.OUT)\"}",
        "- {name: Q, value: \"$(tasks.quiet.results.OUT)\"}",
    );
    let f = Fixture::new(&[echo(), silent], &p);
    let r = f.run(&[]).unwrap();
    assert_eq!(st(&r, "quiet"), TaskStatus::Succeeded);
    assert_eq!(r.status, RunStatus::Failed);
    let reason = r.reason.clone().unwrap_or_default();
    assert!(
        reason.starts_with("CouldntGetPipelineResult")
            && reason.contains("Q ($(tasks.quiet.results.OUT))"),
        "{reason}"
    );
    assert_eq!(r.results.get("A").map(String::as_str), Some("a-fin"));
}

/// The skip reasons in the order Tekton checks them: a parent skipped for a reason other than
/// its `when` wins over this task's own missing results and `when`; a result of a when-skipped
/// parent is missing before this task's `when` is looked at; the dependents of a task that is
/// skipped by its own `when` run.
#[test]
fn skip_reasons_follow_tektons_order() {
    let p = r#"
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: p}
spec:
  tasks:
    - name: off
      when: [{input: "a", operator: in, values: ["b"]}]
      taskRef: {name: echo}
      params: [{name: v, value: x}]
    - name: needs-off
      when: [{input: "a", operator: in, values: ["b"]}]
      taskRef: {name: echo}
      params: [{name: v, value: "$(tasks.off.results.OUT)"}]
    - name: after-needs-off
      runAfter: [needs-off]
      when: [{input: "a", operator: in, values: ["b"]}]
      taskRef: {name: echo}
      params: [{name: v, value: x}]
    - name: own-when
      runAfter: [off]
      when: [{input: "a", operator: in, values: ["b"]}]
      taskRef: {name: echo}
      params: [{name: v, value: x}]
    - name: after-own-when
      runAfter: [own-when]
      taskRef: {name: echo}
      params: [{name: v, value: x}]
"#;
    let f = Fixture::new(&[echo()], p);
    let r = f.run(&[]).unwrap();
    assert_eq!(skip_reason(&r, "off"), SkipReason::When);
    assert_eq!(skip_reason(&r, "needs-off"), SkipReason::MissingResults);
    assert_eq!(
        skip_reason(&r, "after-needs-off"),
        SkipReason::ParentSkipped
    );
    assert_eq!(skip_reason(&r, "own-when"), SkipReason::When);
    assert_eq!(st(&r, "after-own-when"), TaskStatus::Succeeded);
    assert_eq!(r.status, RunStatus::Completed);
}
