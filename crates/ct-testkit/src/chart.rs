//! The Helm chart rendered the way a workshop user installs it, for the tests that run or check
//! the rendered objects instead of `tasks/` and `pipeline/`.
//!
//! `.ci/chart.py render` (Helm v4's engine through helm-python-sdk, offline) writes one object
//! per file in the repository's layout. The values are the workshop's
//! (`charts/ct-pipeline/ci/workshop-values.yaml`: only `USER_NAME` and `cluster_domain`) with
//! the alert Trigger switched on (`alert_trigger: true`), in the namespace `user1-toolings`.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::repo_root;

/// Where `.ci/chart` keeps the venv with helm-python-sdk (and `.ci/run` creates it).
pub const HELM_VENV: &str = "target/ci-venv-helm";

/// The namespace the chart is rendered into.
pub const NAMESPACE: &str = "user1-toolings";

/// The arguments of `.ci/chart.py render` besides `--out`.
fn render_args() -> Vec<String> {
    let root = repo_root();
    vec![
        "render".into(),
        "-f".into(),
        root.join("charts/ct-pipeline/ci/workshop-values.yaml")
            .display()
            .to_string(),
        "--set".into(),
        "alert_trigger=true".into(),
        "-n".into(),
        NAMESPACE.into(),
    ]
}

/// The Python of the Helm venv: `CT_HELM_VENV`, else `target/ci-venv-helm` of the checkout.
/// Panics, saying how to create it, when it is missing: a test of the rendered chart never
/// passes without rendering it.
fn helm_python() -> PathBuf {
    let venv = std::env::var_os("CT_HELM_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(HELM_VENV));
    let python = venv.join("bin/python");
    assert!(
        python.is_file(),
        "the Helm venv {} is missing (the rendered-chart tests need Helm's engine): create it with \
         `python3 -m venv {HELM_VENV} && {HELM_VENV}/bin/pip install helm-python-sdk==0.2.2` in the \
         repository root (or run `bash .ci/chart` once, which does that), or point CT_HELM_VENV at one",
        venv.display()
    );
    python
}

/// The chart rendered into a directory laid out like the repository (`tasks/`, `pipeline/`,
/// `pipeline/triggers/`, `pipeline/rbac/`, `other/`), once per test process. The directory is
/// named by a hash of the chart, the repository's Task/Pipeline files and the render script, so
/// concurrent test processes share an up-to-date render.
pub fn rendered_chart() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = repo_root();
        let mut h = DefaultHasher::new();
        render_args().hash(&mut h);
        for input in ["charts/ct-pipeline", "tasks", "pipeline", ".ci/chart.py"] {
            hash_tree(&root.join(input), &mut h);
        }
        let tmp = root.join("target/tmp");
        let dir = tmp.join(format!("rendered-chart-{:016x}", h.finish()));
        if dir.join("pipeline/ct-pipeline.yaml").is_file() {
            return dir;
        }
        let staging = tmp.join(format!("rendered-chart-staging-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir_all(&tmp).expect("create target/tmp");
        let out = Command::new(helm_python())
            .arg(root.join(".ci/chart.py"))
            .args(render_args())
            .arg("--out")
            .arg(&staging)
            .current_dir(&root)
            .output()
            .expect("run .ci/chart.py render");
        assert!(
            out.status.success(),
            ".ci/chart.py render failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // Another process may have finished the same render meanwhile: either copy is complete.
        if std::fs::rename(&staging, &dir).is_err() {
            let _ = std::fs::remove_dir_all(&staging);
        }
        // Renders of earlier inputs are stale.
        for e in std::fs::read_dir(&tmp).into_iter().flatten().flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("rendered-chart-") && !name.contains("staging") && p != dir {
                let _ = std::fs::remove_dir_all(&p);
            }
        }
        assert!(
            dir.join("pipeline/ct-pipeline.yaml").is_file(),
            "{}: no rendered Pipeline",
            dir.display()
        );
        dir
    })
}

/// Hash every file's relative path and bytes under `path` (symlinks followed), in order.
fn hash_tree(path: &Path, h: &mut DefaultHasher) {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .map(|e| e.expect("a directory entry").path())
            .collect();
        entries.sort();
        for e in entries {
            hash_tree(&e, h);
        }
    } else {
        path.hash(h);
        std::fs::read(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .hash(h);
    }
}
