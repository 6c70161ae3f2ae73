use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ct_sandbox::serve::{Sandbox, ServeArgs};

/// Local sandbox for ct-steps: emulators of KFP, the Model Registry and a Gitea-compatible forge.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log filter for the emulators (stderr).
    #[arg(long, global = true, env = "CT_LOG_LEVEL", default_value = "info")]
    log_level: String,
}

#[derive(Subcommand)]
enum Command {
    /// Start every emulator on loopback, print `NAME URL` per service, serve until killed.
    Serve(ServeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    ct_step::log::init_with(ct_step::cli::LogFormat::Human, &cli.log_level);
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
        }),
    }
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
