//! registry emulator (being written).

/// Flags for `ct-sandbox serve`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Options {}

/// Handle on a running emulator.
#[derive(Clone)]
pub struct Emulator {}

impl Emulator {
    pub fn new(_options: Options, _base_url: &str) -> Self {
        Emulator {}
    }
    pub fn router(&self) -> axum::Router {
        axum::Router::new()
    }
}
