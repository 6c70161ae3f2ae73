//! A standalone git smart-HTTP server (`git http-backend` behind Basic auth) for benchmarks
//! and manual tests.
//!
//! ```text
//! GIT_SERVER_USER=bench GIT_SERVER_PASSWORD=secret \
//!   cargo run --release -p ct-forge-emulator --example git_server -- ROOT [PORT]
//! ```
//! Serves every bare repository below ROOT at `http://127.0.0.1:PORT/<path>.git`, prints
//! `url http://127.0.0.1:PORT` on stdout once listening, and runs until killed.

use std::io::Write;

use ct_forge_emulator::git_http::GitHttp;
use ct_forge_emulator::{Server, loopback};

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let Some(root) = args.next() else {
        eprintln!("usage: git_server ROOT [PORT]  (env GIT_SERVER_USER, GIT_SERVER_PASSWORD)");
        std::process::exit(2);
    };
    let port: u16 = match args.next().map(|p| p.parse()) {
        None => 0,
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            eprintln!("PORT: {e}");
            std::process::exit(2);
        }
    };
    let user = std::env::var("GIT_SERVER_USER").unwrap_or_else(|_| "bench".into());
    let password = std::env::var("GIT_SERVER_PASSWORD").unwrap_or_else(|_| "bench".into());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let git = GitHttp::with_user(root, &user, &password);
        let server = Server::start(loopback(port), git.router()).await?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "url {}", server.url)?;
        out.flush()?;
        drop(out);
        std::future::pending::<()>().await;
        Ok(())
    })
}
