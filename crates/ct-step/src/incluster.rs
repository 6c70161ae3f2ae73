//! In-cluster defaults: the pod's service-account token, namespace and service CA.

use std::path::{Path, PathBuf};

use crate::error::{Result, ResultExt, StepError};

pub const SA_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
pub const TOKEN_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";
pub const NAMESPACE_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";
pub const SERVICE_CA_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/service-ca.crt";

/// The explicit file, else the in-cluster one when it exists.
pub fn default_file(explicit: Option<&Path>, in_cluster: &str) -> Option<PathBuf> {
    match explicit {
        Some(p) => Some(p.to_path_buf()),
        None => Path::new(in_cluster)
            .exists()
            .then(|| PathBuf::from(in_cluster)),
    }
}

/// The namespace: the explicit value, else the service-account namespace file.
pub fn namespace(explicit: Option<&str>) -> Result<String> {
    if let Some(ns) = explicit.filter(|s| !s.is_empty()) {
        return Ok(ns.to_string());
    }
    let ns = std::fs::read_to_string(NAMESPACE_FILE).usage_err(format!(
        "no namespace given and {NAMESPACE_FILE} is unreadable; pass --namespace"
    ))?;
    let ns = ns.trim();
    if ns.is_empty() {
        return Err(StepError::usage(format!(
            "{NAMESPACE_FILE} is empty; pass --namespace"
        )));
    }
    Ok(ns.to_string())
}
