//! Seeding the sandbox through the emulators' handles: the forge user (password for git, API
//! token), the model and GitOps repositories from the embedded files, the Secrets a cluster
//! would mount, and the registry's model with an older deployed version and the version the
//! training of a commit produces.

use std::path::{Path, PathBuf};

use ct_forge_emulator::{Emulator as _, ForgeEmulator, Repo};
use ct_registry_emulator::RegistryEmulator;
use serde_json::json;

use super::{APP, GITOPS_REPO, USER, short};

/// Files of the demo repositories, embedded so the demo runs from any directory.
const MODEL_REPO_FILES: &[(&str, &str)] = &[
    ("README.md", include_str!("../../demo/jukebox/README.md")),
    (
        "pipeline.yaml",
        include_str!("../../demo/jukebox/pipeline.yaml"),
    ),
    (
        "default_parameters.json",
        include_str!("../../demo/jukebox/default_parameters.json"),
    ),
    (
        "modelcar/Containerfile",
        include_str!("../../demo/jukebox/modelcar/Containerfile"),
    ),
    (
        "model/README.md",
        include_str!("../../demo/jukebox/model/README.md"),
    ),
];
const GITOPS_REPO_FILES: &[(&str, &str)] = &[
    (
        "README.md",
        include_str!("../../demo/mlops-gitops/README.md"),
    ),
    (
        "model-deployments/test/jukebox/config.yaml",
        include_str!("../../demo/mlops-gitops/model-deployments/test/jukebox/config.yaml"),
    ),
    (
        "model-deployments/prod/jukebox/config.yaml",
        include_str!("../../demo/mlops-gitops/model-deployments/prod/jukebox/config.yaml"),
    ),
];

/// What the forge holds after seeding.
pub struct ForgeSeed {
    pub model_repo: Repo,
    pub gitops_repo: Repo,
    /// Full SHA of the model repository's `main`.
    pub revision: String,
    /// The `git-credentials` workspace: a basic-auth Secret's `.git-credentials` and
    /// `.gitconfig`.
    pub credentials_dir: PathBuf,
    /// The `forge-token` workspace: the Secret's `token` key.
    pub token_dir: PathBuf,
}

/// Seed the forge: `user1` with a password and a token, `user1/jukebox` and
/// `user1/mlops-gitops` from the embedded files, and the Secrets under `work/secrets`.
pub fn forge(forge: &ForgeEmulator, work: &Path) -> Result<ForgeSeed, String> {
    let password = random_hex();
    let forge_err = |e: ct_forge_emulator::Error| format!("forge: {e}");
    forge.create_user(USER, &password).map_err(forge_err)?;
    let token = forge.create_token(USER).map_err(forge_err)?;
    let seed = work.join("seed");
    let model_src = write_tree(&seed.join(APP), MODEL_REPO_FILES)?;
    let gitops_src = write_tree(&seed.join(GITOPS_REPO), GITOPS_REPO_FILES)?;
    let model_repo = forge
        .create_repo(USER, APP, Some(&model_src))
        .map_err(forge_err)?;
    let gitops_repo = forge
        .create_repo(USER, GITOPS_REPO, Some(&gitops_src))
        .map_err(forge_err)?;
    let revision = forge
        .branches(USER, APP)
        .get("main")
        .cloned()
        .ok_or("forge: the model repository has no main branch")?;

    // Secrets, as the Secret workspaces would mount them.
    let credentials_dir = work.join("secrets/git-credentials");
    let token_dir = work.join("secrets/forge-token");
    for d in [&credentials_dir, &token_dir] {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    let host = url::Url::parse(forge.url()).map_err(|e| format!("forge URL: {e}"))?;
    write_secret(
        &credentials_dir.join(".git-credentials"),
        &format!(
            "{}://{USER}:{password}@{}:{}\n",
            host.scheme(),
            host.host_str().unwrap_or("127.0.0.1"),
            host.port_or_known_default().unwrap_or(80)
        ),
    )?;
    write_secret(
        &credentials_dir.join(".gitconfig"),
        "[credential]\n\thelper = store\n",
    )?;
    write_secret(&token_dir.join("token"), &token)?;
    Ok(ForgeSeed {
        model_repo,
        gitops_repo,
        revision,
        credentials_dir,
        token_dir,
    })
}

/// Seed the registry: the `jukebox` model, an older version deployed to test and prod, and the
/// version an earlier training of `revision` registered (a run's training registers its own:
/// [`super::training`]). Returns (model id, version id).
pub fn registry(registry: &RegistryEmulator, revision: &str) -> Result<(String, String), String> {
    let reg_err = |e: ct_registry_emulator::Error| format!("registry: {e}");
    let model = registry
        .create_model(
            json!({"name": APP, "description": "Song recommendation model", "owner": USER}),
        )
        .map_err(reg_err)?;
    let model_id = id_of(&model)?;
    let label = json!({"metadataType": "MetadataStringValue", "string_value": ""});
    let old = registry
        .create_version(json!({
            "name": "0a1b2c3",
            "registeredModelId": model_id,
            "author": "earlier pipeline run",
            "customProperties": {
                "test": label,
                "prod": label,
                "pipeline_run_id": {"metadataType": "MetadataStringValue", "string_value": "run-from-last-week"}
            }
        }))
        .map_err(reg_err)?;
    registry
        .create_version_artifact(
            &id_of(&old)?,
            json!({"artifactType": "model-artifact", "name": APP,
                   "uri": "oci://image-registry.openshift-image-registry.svc:5000/user1-mlops/jukebox:0a1b2c3"}),
        )
        .map_err(reg_err)?;
    let version_id = register_version(registry, &model_id, short(revision))?;
    Ok((model_id, version_id))
}

/// Register the model version `version` as the training pipeline does, with its model
/// artifact; returns its id.
pub fn register_version(
    registry: &RegistryEmulator,
    model_id: &str,
    version: &str,
) -> Result<String, String> {
    let reg_err = |e: ct_registry_emulator::Error| format!("registry: {e}");
    let created = registry
        .create_version(json!({"name": version, "registeredModelId": model_id,
               "description": "registered by the training pipeline"}))
        .map_err(reg_err)?;
    let id = id_of(&created)?;
    registry
        .create_version_artifact(
            &id,
            json!({"artifactType": "model-artifact", "name": APP,
                   "uri": format!("pvc://jukebox-model-pvc/jukebox/{version}")}),
        )
        .map_err(reg_err)?;
    Ok(id)
}

fn id_of(v: &serde_json::Value) -> Result<String, String> {
    v["id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("registry: answer without id: {v}"))
}

/// 32 random hex digits (passwords, webhook secrets, unique directory names).
pub fn random_hex() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

fn write_tree(dir: &Path, files: &[(&str, &str)]) -> Result<PathBuf, String> {
    for (rel, text) in files {
        let p = dir.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        std::fs::write(&p, text).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    Ok(dir.to_path_buf())
}

fn write_secret(path: &Path, value: &str) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(value.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))
}
