//! In-cluster defaults: the pod's service-account token, namespace and service CA.

use std::path::{Path, PathBuf};

use crate::error::{Result, StepError};
use crate::input::{MAX_ID_FILE, read_text_bounded};

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
    let ns = read_text_bounded(Path::new(NAMESPACE_FILE), MAX_ID_FILE, "namespace file")
        .map_err(|e| StepError::usage(format!("no namespace given and {e}; pass --namespace")))?;
    let ns = ns.trim();
    if ns.is_empty() {
        return Err(StepError::usage(format!(
            "{NAMESPACE_FILE} is empty; pass --namespace"
        )));
    }
    Ok(ns.to_string())
}
