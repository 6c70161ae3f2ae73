use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ct_sandbox::console::wait_for_signal;
use ct_sandbox::demo::{self, DemoArgs};
use ct_sandbox::run::{RunArgs, run};
use ct_sandbox::serve::{Sandbox, ServeArgs};

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
        Command::Serve(args) => rt.block_on(serve(*args)),
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

/// `ct-sandbox serve`: the service lines on stdout, then serve until SIGTERM/SIGINT.
async fn serve(args: ServeArgs) -> ExitCode {
    let sandbox = match Sandbox::start(args).await {
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
}
