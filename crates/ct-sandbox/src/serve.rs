//! `ct-sandbox serve`: every emulator on loopback, one line per service on stdout.

use std::net::IpAddr;

use clap::Args;

use ct_emulator::Emulator;
use ct_kfp_emulator::{self as kfp, KfpEmulator};

use ct_registry_emulator::{self as registry, RegistryEmulator};

use crate::{Server, forge};

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on. Keep it on loopback: the emulators have no real security.
    #[arg(long, env = "CT_SANDBOX_BIND", default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// KFP emulator port (0 = a free port).
    #[arg(long, env = "CT_SANDBOX_KFP_PORT", default_value_t = 0)]
    pub kfp_port: u16,
    /// Model Registry emulator port (0 = a free port).
    #[arg(long, env = "CT_SANDBOX_REGISTRY_PORT", default_value_t = 0)]
    pub registry_port: u16,
    /// Forge (Gitea-compatible) port (0 = a free port).
    #[arg(long, env = "CT_SANDBOX_FORGE_PORT", default_value_t = 0)]
    pub forge_port: u16,
    #[command(flatten)]
    pub kfp: kfp::Options,
    #[command(flatten)]
    pub registry: registry::Options,
    #[command(flatten)]
    pub forge: forge::Options,
}

/// The running emulators. Dropping it stops them.
pub struct Sandbox {
    pub kfp: KfpEmulator,
    pub registry: RegistryEmulator,
    pub forge: forge::Emulator,
    pub forge_server: Server,
}

impl Sandbox {
    /// Start all emulators in the current tokio runtime.
    pub async fn start(args: ServeArgs) -> std::io::Result<Sandbox> {
        let kfp = kfp::start_at((args.bind, args.kfp_port).into(), args.kfp)
            .await
            .map_err(std::io::Error::other)?;

        let registry = registry::start_at((args.bind, args.registry_port).into(), args.registry)
            .await
            .map_err(std::io::Error::other)?;

        let (l, url) = Server::bind((args.bind, args.forge_port).into()).await?;
        let forge = forge::Emulator::new(args.forge, &url)?;
        let forge_server = Server::serve(l, forge.router())?;

        Ok(Sandbox {
            kfp,
            registry,
            forge,
            forge_server,
        })
    }

    /// The lines `ct-sandbox serve` prints.
    pub fn service_lines(&self) -> Vec<String> {
        vec![
            format!("kfp {}", self.kfp.url()),
            format!("registry {}", self.registry.url()),
            format!("forge {}", self.forge_server.url),
        ]
    }
}
