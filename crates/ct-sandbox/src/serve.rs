//! `ct-sandbox serve`: every emulator on loopback, one line per service on stdout.

use std::net::IpAddr;

use clap::Args;
use ct_emulator::Emulator;
use ct_forge_emulator::ForgeEmulator;
use ct_kfp_emulator::KfpEmulator;
use ct_registry_emulator::RegistryEmulator;

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
    pub kfp: ct_kfp_emulator::Options,
    #[command(flatten)]
    pub registry: ct_registry_emulator::Options,
    #[command(flatten)]
    pub forge: ct_forge_emulator::Options,
}

impl ServeArgs {
    /// Every emulator on a free loopback port with these options.
    pub fn loopback(
        kfp: ct_kfp_emulator::Options,
        registry: ct_registry_emulator::Options,
        forge: ct_forge_emulator::Options,
    ) -> Self {
        ServeArgs {
            bind: IpAddr::from([127, 0, 0, 1]),
            kfp_port: 0,
            registry_port: 0,
            forge_port: 0,
            kfp,
            registry,
            forge,
        }
    }
}

/// The running emulators. Dropping it stops them.
pub struct Sandbox {
    pub kfp: KfpEmulator,
    pub registry: RegistryEmulator,
    pub forge: ForgeEmulator,
}

impl Sandbox {
    /// Start all emulators in the current tokio runtime.
    pub async fn start(args: ServeArgs) -> ct_emulator::Result<Sandbox> {
        let at = |port: u16| (args.bind, port).into();
        Ok(Sandbox {
            kfp: ct_kfp_emulator::start_at(at(args.kfp_port), args.kfp).await?,
            registry: ct_registry_emulator::start_at(at(args.registry_port), args.registry).await?,
            forge: ct_forge_emulator::start_at(at(args.forge_port), args.forge).await?,
        })
    }

    /// The lines `ct-sandbox serve` prints: `NAME URL` per service.
    pub fn service_lines(&self) -> Vec<String> {
        vec![
            format!("kfp {}", self.kfp.url()),
            format!("registry {}", self.registry.url()),
            format!("forge {}", self.forge.url()),
        ]
    }
}
