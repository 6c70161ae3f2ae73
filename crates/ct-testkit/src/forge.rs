//! The GitOps repository the pull-request tests start from, on the forge emulator:
//! `user1/mlops-gitops` with `main` (version 1.0.0) and the promotion branch `jukebox-1.0.1`
//! (version 1.0.1) at one file, a `reviewer` collaborator, the label `promote`, and an API
//! token of `user1`.

use ct_forge_emulator::{ForgeEmulator, Options};

pub const OWNER: &str = "user1";
pub const REPO: &str = "mlops-gitops";
/// The promotion branch.
pub const HEAD: &str = "jukebox-1.0.1";

/// A running forge with the promotion repository.
pub struct Promotion {
    pub emu: ForgeEmulator,
    /// An API token of [`OWNER`].
    pub token: String,
}

/// Start a forge with `options` and seed the promotion repository, the version file at `path`.
pub async fn promotion(options: Options, path: &str) -> Promotion {
    let emu = ct_forge_emulator::start(options)
        .await
        .expect("forge starts");
    emu.create_user(OWNER, "owner-password").unwrap();
    emu.create_user("reviewer", "reviewer-password").unwrap();
    let token = emu.create_token(OWNER).unwrap();
    emu.create_repo(OWNER, REPO, None).unwrap();
    emu.commit(OWNER, REPO, "main", None, path, "version: 1.0.0\n", "init")
        .unwrap();
    emu.commit(
        OWNER,
        REPO,
        HEAD,
        Some("main"),
        path,
        "version: 1.0.1\n",
        "promote",
    )
    .unwrap();
    emu.create_label(OWNER, REPO, "promote", "00aabb").unwrap();
    emu.add_collaborator(OWNER, REPO, "reviewer").unwrap();
    Promotion { emu, token }
}
