//! Test support shared by the workspace's tests (a dev-dependency only, never shipped):
//!
//! - [`repo_root`] and [`fixture`]: the checkout and `tests/fixtures/`;
//! - [`step_binaries`]: the directory of the step binaries, brought up to date with
//!   `cargo build` once per test process, so `cargo test -p <crate>` works on a clean tree;
//! - [`chart`]: the Helm chart rendered with the workshop's values and the alert Trigger on;
//! - [`hostile`]: what the steps' hostile-input suites share (a step's outcome, files left in
//!   its results directory, a listener that tells whether anyone connected, SIGTERM at a phase);
//! - [`forge`] (feature `forge`): the GitOps promotion repository the PR tests start from.

pub mod chart;
#[cfg(feature = "forge")]
pub mod forge;
pub mod hostile;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The root of the checkout (holding `Cargo.toml`, `tasks/`, `pipeline/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/ct-testkit lies two levels below the root")
        .to_path_buf()
}

/// `tests/fixtures/<rel>` of the checkout.
pub fn fixture(rel: &str) -> PathBuf {
    repo_root().join("tests/fixtures").join(rel)
}

/// The cargo output directory of the running test (`target/<profile>`; test executables live
/// in its `deps/`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    exe.parent()
        .and_then(Path::parent)
        .expect("the test executable lies in target/<profile>/deps")
        .to_path_buf()
}

/// The directory of the step binaries (every binary of the workspace but `ct-sandbox`), built
/// or brought up to date with `cargo build` for the test's own target directory and profile,
/// once per process. Panics with cargo's exit status when the build fails.
pub fn step_binaries() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = profile_dir();
        build_step_binaries(&dir);
        dir
    })
}

/// `cargo build --workspace --bins --exclude ct-sandbox` into `profile_dir` (the `CARGO` that
/// runs the tests, the profile named by the directory).
fn build_step_binaries(profile_dir: &Path) {
    let target_dir = profile_dir.parent().expect("target/<profile>");
    let profile = profile_dir
        .file_name()
        .and_then(|p| p.to_str())
        .expect("a profile directory name");
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.args(["build", "--quiet", "--bins", "--manifest-path"])
        .arg(repo_root().join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir)
        .args([
            "--profile",
            if profile == "debug" { "dev" } else { profile },
        ])
        .args(["--locked", "--workspace", "--exclude", "ct-sandbox"]);
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo to build the step binaries: {e}"));
    assert!(
        status.success(),
        "cargo build of the step binaries failed ({status}); see its output above"
    );
}
