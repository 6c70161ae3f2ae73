//! `ct-sandbox run`: a Tekton Pipeline run locally against endpoints the caller chooses.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use ct_tekton_interpreter::{self as tekton, RunOptions};

use crate::binaries::bin_dir;
use crate::console::{ConsoleObserver, cancel_on_ctrl_c};

/// Flags of `ct-sandbox run`.
#[derive(Args)]
pub struct RunArgs {
    /// The Pipeline file (tekton.dev/v1), e.g. pipeline/ct-pipeline.yaml, or
    /// DIR/pipeline/ct-pipeline.yaml of the Helm chart rendered by `.ci/chart.py render --out
    /// DIR` (one object per file, laid out like the repository).
    pub pipeline: PathBuf,
    /// Directory of the Tasks the Pipeline references by name. Default: tasks/ beside the
    /// pipeline's directory (DIR/tasks of a rendered chart).
    #[arg(long, value_name = "DIR")]
    pub tasks: Option<PathBuf>,
    /// A pipeline param, repeatable: KEY=VALUE.
    #[arg(long = "param", short = 'p', value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// A pipeline workspace, repeatable: NAME=DIR (an existing directory, e.g. a Secret's files)
    /// or NAME=emptyDir (a fresh directory for this run).
    #[arg(long = "workspace", short = 'w', value_name = "NAME=DIR|emptyDir")]
    pub workspaces: Vec<String>,
    /// Directory with the step binaries. Default: the directory of the ct-sandbox binary.
    #[arg(long, env = "CT_BIN_DIR", value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,
    /// Directory for TaskRun results, homes, logs and emptyDir workspaces. Default: a new
    /// temporary directory (kept, its path is printed).
    #[arg(long, value_name = "DIR")]
    pub run_dir: Option<PathBuf>,
    /// Extra environment for every step, repeatable: NAME=VALUE, e.g.
    /// `CT_TOKEN_FILE=$HOME/.kube/kfp-token` or `CT_CA_FILE=./ca.pem` for real endpoints (steps
    /// otherwise run in a clean environment). The Task's own env wins over it.
    #[arg(long = "env", short = 'e', value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// Pass a variable of this environment to every step, repeatable (e.g. CT_TOKEN, so the
    /// token is not on the command line).
    #[arg(long = "pass-env", value_name = "NAME")]
    pub pass_env: Vec<String>,
    /// Run steps whose command is not a ct-steps binary (e.g. `kfp` of kfp-compile) from PATH.
    #[arg(long)]
    pub host_commands: bool,
    /// Print every step's log lines.
    #[arg(long, short)]
    pub verbose: bool,
}

/// `ct-sandbox run`: `Err` is a one-line input error (exit 2).
pub fn run(args: RunArgs, rt: &tokio::runtime::Runtime) -> Result<ExitCode, String> {
    let tasks_dir = match args.tasks {
        Some(t) => t,
        None => args
            .pipeline
            .canonicalize()
            .map_err(|e| format!("{}: {e}", args.pipeline.display()))?
            .parent()
            .and_then(|p| p.parent())
            .map(|p| p.join("tasks"))
            .ok_or("cannot find tasks/ beside the pipeline; pass --tasks DIR")?,
    };
    let bundle = tekton::load(&args.pipeline, &tasks_dir).map_err(|e| e.to_string())?;
    let bin_dir = bin_dir(args.bin_dir.as_deref())?;
    let run_dir = match args.run_dir {
        Some(d) => d,
        // Created by the runner once the inputs are valid.
        None => std::env::temp_dir().join(format!(
            "ct-run-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        )),
    };
    let mut opts = RunOptions::new(bin_dir, run_dir);
    for p in &args.params {
        let (k, v) = tekton::parse_param(p).map_err(|e| e.to_string())?;
        opts.params.insert(k, v);
    }
    for w in &args.workspaces {
        let (k, b) = tekton::parse_workspace(w).map_err(|e| e.to_string())?;
        opts.workspaces.insert(k, b);
    }
    for e in &args.env {
        let (k, v) = e
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .ok_or_else(|| format!("--env {e}: write NAME=VALUE"))?;
        opts.env.push((k.to_string(), v.to_string()));
    }
    for name in &args.pass_env {
        let v = std::env::var(name)
            .map_err(|_| format!("--pass-env {name}: not set in this environment"))?;
        opts.env.push((name.clone(), v));
    }
    opts.host_commands = args.host_commands;
    opts.observer = Arc::new(ConsoleObserver {
        verbose: args.verbose,
    });
    cancel_on_ctrl_c(rt, opts.cancel.clone());
    let report = tekton::run(&bundle, &opts).map_err(|e| e.to_string())?;
    println!("PipelineRun {}: {}", report.name, report.status);
    if let Some(reason) = &report.reason {
        println!("  {reason}");
    }
    for t in &report.tasks {
        println!("  {:<22} {}", t.name, t.status);
        for (k, v) in &t.results {
            println!("    {k}={v}");
        }
    }
    for (k, v) in &report.results {
        println!("result {k}={v}");
    }
    println!("run directory: {}", report.run_dir.display());
    Ok(if report.succeeded() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
