//! Where the demo and `run` find their inputs: the checkout, the manifests (`pipeline/`,
//! `tasks/`: the checkout's or a rendered chart's) and the step binaries (built with cargo when
//! they sit in this checkout's target directory).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use ct_tekton_interpreter::find_repo_root;

/// The repository root: `--repo-root`, else from the current directory, else the checkout this
/// binary was built from.
pub fn repo_root(given: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(r) = given {
        return find_repo_root(r).ok_or_else(|| {
            format!(
                "--repo-root {}: no pipeline/ct-pipeline.yaml and tasks/ there",
                r.display()
            )
        });
    }
    std::env::current_dir()
        .ok()
        .and_then(|d| find_repo_root(&d))
        .or_else(|| find_repo_root(Path::new(env!("CARGO_MANIFEST_DIR"))))
        .ok_or_else(|| {
            "cannot find pipeline/ct-pipeline.yaml and tasks/: run from the ct-steps checkout or pass --repo-root".into()
        })
}

/// Where the Pipeline, Tasks and Triggers come from: `--manifests` (a rendered chart, or any
/// directory laid out like the repository), else the repository root.
pub fn manifests_dir(given: Option<&Path>, repo_root: &Path) -> Result<PathBuf, String> {
    let Some(dir) = given else {
        return Ok(repo_root.to_path_buf());
    };
    let missing: Vec<&str> = ["pipeline/ct-pipeline.yaml", "tasks", "pipeline/triggers"]
        .into_iter()
        .filter(|p| !dir.join(p).exists())
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "--manifests {}: no {} there; render the chart into it with `.ci/chart.py render -f VALUES -n NAMESPACE --out DIR` (docs/sandbox.md)",
            dir.display(),
            missing.join(", ")
        ));
    }
    Ok(dir.to_path_buf())
}

/// The step binaries' directory: `--bin-dir`, else beside the running executable.
pub fn bin_dir(given: Option<&Path>) -> Result<PathBuf, String> {
    match given {
        Some(d) => Ok(d.to_path_buf()),
        None => std::env::current_exe()
            .map_err(|e| format!("cannot locate the ct-sandbox binary: {e}"))?
            .parent()
            .map(Path::to_path_buf)
            .ok_or_else(|| "cannot locate the ct-sandbox binary's directory".into()),
    }
}

/// When `bin_dir` is `<repo>/target/<profile>` (or a CARGO_TARGET_DIR build of this checkout),
/// bring `binaries` (the step binaries the pipeline runs) up to date with cargo; otherwise only
/// check they exist.
pub fn ensure_binaries(
    bin_dir: &Path,
    repo_root: &Path,
    binaries: &BTreeSet<String>,
    build: bool,
) -> Result<(), String> {
    let profile = bin_dir.file_name().and_then(|p| p.to_str()).unwrap_or("");
    let target_dir = bin_dir.parent();
    let is_cargo_dir = matches!(profile, "debug" | "release" | "dist")
        && target_dir.is_some_and(|t| t.join("CACHEDIR.TAG").is_file() || t.ends_with("target"));
    if build && is_cargo_dir && repo_root.join("Cargo.toml").is_file() {
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.args(["build", "--quiet", "--locked", "--manifest-path"])
            .arg(repo_root.join("Cargo.toml"))
            .arg("--target-dir")
            .arg(target_dir.unwrap_or(bin_dir))
            .args([
                "--profile",
                if profile == "debug" { "dev" } else { profile },
            ]);
        for b in binaries {
            cmd.args(["-p", b]);
        }
        let names: Vec<&str> = binaries.iter().map(String::as_str).collect();
        eprintln!(
            "building the step binaries (cargo build -p {}) …",
            names.join(" -p ")
        );
        let status = cmd.status().map_err(|e| {
            format!("cannot run cargo: {e}; build the step binaries yourself or pass --no-build")
        })?;
        if !status.success() {
            return Err("cargo build of the step binaries failed (see above)".into());
        }
    }
    let missing: Vec<&str> = binaries
        .iter()
        .map(String::as_str)
        .filter(|b| !bin_dir.join(b).is_file())
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "step binaries missing in {}: {}; build them (cargo build --workspace) or pass --bin-dir",
            bin_dir.display(),
            missing.join(", ")
        ));
    }
    Ok(())
}
