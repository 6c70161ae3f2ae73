//! `ct-sandbox`: the local sandbox binary. It only wires the workspace's pieces together:
//!
//! - [`serve`]: `ct-sandbox serve`, every emulator (`ct-kfp-emulator`,
//!   `ct-registry-emulator`, `ct-forge-emulator`) on loopback;
//! - [`run`]: `ct-sandbox run`, a Pipeline through `ct-tekton-interpreter` against endpoints
//!   the caller chooses;
//! - [`demo`]: `ct-sandbox demo`, the emulators seeded through their handles, a push through the
//!   signed webhook and the Trigger, the pipeline run, a summary;
//! - [`console`] (progress on stderr, Ctrl-C) and [`binaries`] (the checkout and the step
//!   binaries) for `demo` and `run`.

pub mod binaries;
pub mod console;
pub mod demo;
pub mod run;
pub mod serve;
