use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use ct_sandbox::demo::{self, ConsoleObserver, DemoArgs};
use ct_sandbox::serve::{Sandbox, ServeArgs};
use ct_sandbox::tekton::{self, RunOptions, TaskStatus};

/// Local sandbox for ct-steps: emulators of KFP, the Model Registry and a Gitea-compatible forge,
/// and a local runner for the Tekton pipeline.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log filter for the emulators (stderr). Default: info for serve, warn for demo and run.
    #[arg(long, global = true, env = "CT_LOG_LEVEL")]
    log_level: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Start every emulator on loopback, print `NAME URL` per service, serve until killed.
    Serve(Box<ServeArgs>),
    /// Start the emulators, seed a model repo, a GitOps repo and a registered model, run
    /// pipeline/ct-pipeline.yaml locally with the real step binaries, and print a summary.
    Demo(DemoArgs),
    /// Run a Tekton Pipeline locally against endpoints you choose (the sandbox's or real ones).
    Run(RunArgs),
}

/// Flags of `ct-sandbox run`.
#[derive(Args)]
struct RunArgs {
    /// The Pipeline file (tekton.dev/v1), e.g. pipeline/ct-pipeline.yaml.
    pipeline: PathBuf,
    /// Directory of the Tasks the Pipeline references by name. Default: tasks/ beside the
    /// pipeline's directory.
    #[arg(long, value_name = "DIR")]
    tasks: Option<PathBuf>,
    /// A pipeline param, repeatable: KEY=VALUE.
    #[arg(long = "param", short = 'p', value_name = "KEY=VALUE")]
    params: Vec<String>,
    /// A pipeline workspace, repeatable: NAME=DIR (an existing directory, e.g. a Secret's files)
    /// or NAME=emptyDir (a fresh directory for this run).
    #[arg(long = "workspace", short = 'w', value_name = "NAME=DIR|emptyDir")]
    workspaces: Vec<String>,
    /// Directory with the step binaries. Default: the directory of the ct-sandbox binary.
    #[arg(long, env = "CT_BIN_DIR", value_name = "DIR")]
    bin_dir: Option<PathBuf>,
    /// Directory for TaskRun results, homes, logs and emptyDir workspaces. Default: a new
    /// temporary directory (kept, its path is printed).
    #[arg(long, value_name = "DIR")]
    run_dir: Option<PathBuf>,
    /// Extra environment for every step, repeatable: NAME=VALUE, e.g.
    /// `CT_TOKEN_FILE=$HOME/.kube/kfp-token` or `CT_CA_FILE=./ca.pem` for real endpoints (steps
    /// otherwise run in a clean environment). The Task's own env wins over it.
    #[arg(long = "env", short = 'e', value_name = "NAME=VALUE")]
    env: Vec<String>,
    /// Pass a variable of this environment to every step, repeatable (e.g. CT_TOKEN, so the
    /// token is not on the command line).
    #[arg(long = "pass-env", value_name = "NAME")]
    pass_env: Vec<String>,
    /// Run steps whose command is not a ct-steps binary (e.g. `kfp` of kfp-compile) from PATH.
    #[arg(long)]
    host_commands: bool,
    /// Print every step's log lines.
    #[arg(long, short)]
    verbose: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = match cli.command {
        Command::Serve(_) => "info",
        Command::Demo(_) | Command::Run(_) => "warn",
    };
    ct_step::log::init_with(
        ct_step::cli::LogFormat::Human,
        cli.log_level.as_deref().unwrap_or(default_level),
    );
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(3);
        }
    };
    match cli.command {
        Command::Serve(args) => rt.block_on(async {
            let sandbox = match Sandbox::start(*args).await {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: cannot start the emulators: {e}");
                    return ExitCode::from(3);
                }
            };
            let mut out = std::io::stdout().lock();
            for line in sandbox.service_lines() {
                let _ = writeln!(out, "{line}");
            }
            let _ = out.flush();
            drop(out);
            wait_for_signal().await;
            ExitCode::SUCCESS
        }),
        Command::Demo(args) => demo::main(args, &rt),
        Command::Run(args) => match run(args, &rt) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
    }
}

fn run(args: RunArgs, rt: &tokio::runtime::Runtime) -> Result<ExitCode, String> {
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
    let bin_dir = demo::bin_dir(args.bin_dir.as_deref())?;
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
    demo::cancel_on_ctrl_c(rt, opts.cancel.clone());
    let report = tekton::run(&bundle, &opts).map_err(|e| e.to_string())?;
    println!("PipelineRun {}: {:?}", report.name, report.status);
    for t in &report.tasks {
        let st = match &t.status {
            TaskStatus::Succeeded => "Succeeded".to_string(),
            TaskStatus::Failed(w) => format!("Failed: {w}"),
            TaskStatus::Skipped(w) => format!("Skipped: {w}"),
            TaskStatus::NotRun => "NotRun".to_string(),
        };
        println!("  {:<22} {st}", t.name);
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

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut t), Ok(mut i)) => {
            tokio::select! { _ = t.recv() => {}, _ = i.recv() => {} }
        }
        _ => std::future::pending::<()>().await,
    }
}
