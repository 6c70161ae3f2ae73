//! Kubeflow Pipelines v2beta1 client library for the ct-steps KFP binaries.
//!
//! - [`package`]: load a compiled pipeline (IR YAML) the way the kfp SDK does, and apply the
//!   SDK's caching override.
//! - [`params`]: typed run parameters from the IR's `root.inputDefinitions.parameters`.
//! - [`model`]: the v2beta1 API objects, deserialized leniently.
//! - [`client`]: experiments (get-or-create), pipelines and versions, idempotent run
//!   creation, run get/terminate.
//! - [`wait`]: the wait loop with per-task progress, timeout and cancellation, and
//!   terminate-then-wait for clean-up.
//! - [`cancel`]: stopping a run (by id, or by its idempotency key) after SIGTERM, within the
//!   cancel budget.
//! - [`filter`]: the list `filter` JSON, byte-for-byte as the kfp SDK writes it.

pub mod cancel;
pub mod client;
pub mod filter;
pub mod model;
pub mod package;
pub mod params;
pub mod wait;

pub use client::{CreateRun, KfpClient, RunSource, validate_run_id};
pub use model::{Experiment, Pipeline, PipelineVersion, Run, RunState};
pub use package::PipelinePackage;
pub use params::{ParamDecl, ParamType};

/// The in-cluster API URL of the DSPA named `dspa` in `namespace` (its auth proxy on :8443).
pub fn default_kfp_url(namespace: &str) -> String {
    format!("https://ds-pipeline-dspa.{namespace}.svc:8443")
}

/// The API URL and namespace for a step: `--kfp-url` when given, else the in-cluster DSPA URL
/// of the namespace. The namespace is `--namespace`, else the pod's service-account namespace
/// file when it exists, else unknown (then `--kfp-url` is required).
pub fn endpoint(
    kfp_url: Option<&str>,
    namespace: Option<&str>,
) -> ct_step::Result<(String, Option<String>)> {
    let namespace = match namespace.map(str::trim).filter(|s| !s.is_empty()) {
        Some(ns) => Some(validate_namespace(ns)?.to_string()),
        None if std::path::Path::new(ct_step::incluster::NAMESPACE_FILE).exists() => {
            Some(ct_step::incluster::namespace(None)?)
        }
        None => None,
    };
    let url = match (kfp_url.map(str::trim).filter(|s| !s.is_empty()), &namespace) {
        (Some(u), _) => u.to_string(),
        (None, Some(ns)) => default_kfp_url(ns),
        (None, None) => {
            return Err(ct_step::StepError::usage(
                "--kfp-url is not set and the namespace is unknown (not in a pod); pass --kfp-url or --namespace",
            ));
        }
    };
    Ok((url, namespace))
}

/// A Kubernetes namespace name (RFC 1123 label): 1-63 of `a-z 0-9 -`, alphanumeric at both ends.
pub fn validate_namespace(ns: &str) -> ct_step::Result<&str> {
    let ok = !ns.is_empty()
        && ns.len() <= 63
        && ns
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !ns.starts_with('-')
        && !ns.ends_with('-');
    if ok {
        Ok(ns)
    } else {
        Err(ct_step::StepError::usage(format!(
            "--namespace {ns:?}: not a namespace name; use 1-63 of a-z, 0-9 and -"
        )))
    }
}

/// A name sent to the server as text (experiment, run, pipeline, version): not empty after
/// trimming, at most 512 bytes, no control character (a newline would make it two lines in
/// every list and log). Returns the trimmed name.
pub fn validate_name<'a>(flag: &str, name: &'a str) -> ct_step::Result<&'a str> {
    let name = name.trim();
    if name.is_empty() {
        return Err(ct_step::StepError::usage(format!(
            "{flag} is empty; pass a name"
        )));
    }
    if name.len() > 512 || name.chars().any(char::is_control) {
        return Err(ct_step::StepError::usage(format!(
            "{flag} {name:?}: use a single-line name of at most 512 bytes, without control characters"
        )));
    }
    Ok(name)
}

/// API prefix of every v2beta1 endpoint.
pub const API: &str = "/apis/v2beta1";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_defaults_to_the_dspa_service_of_the_namespace() {
        assert_eq!(
            endpoint(Some("http://127.0.0.1:1"), None).unwrap(),
            ("http://127.0.0.1:1".to_string(), in_pod_namespace())
        );
        assert_eq!(
            endpoint(None, Some("jukebox-ci")).unwrap(),
            (
                "https://ds-pipeline-dspa.jukebox-ci.svc:8443".to_string(),
                Some("jukebox-ci".to_string())
            )
        );
        assert_eq!(
            endpoint(Some(" "), Some("ns")).unwrap().0,
            "https://ds-pipeline-dspa.ns.svc:8443",
            "an empty --kfp-url (unset Tekton param) means the default"
        );
        if in_pod_namespace().is_none() {
            let e = endpoint(None, Some("")).unwrap_err();
            assert_eq!(e.exit_code(), 2);
            assert!(e.to_string().contains("--kfp-url"), "{e}");
        }
    }

    #[test]
    fn names_and_namespaces_are_checked_locally() {
        assert_eq!(validate_namespace("jukebox-ci").unwrap(), "jukebox-ci");
        for bad in ["", "a b", "A", "-a", "a/../b", "a\nb", &"a".repeat(64)] {
            assert_eq!(
                validate_namespace(bad).unwrap_err().exit_code(),
                2,
                "{bad:?}"
            );
        }
        assert_eq!(
            validate_name("--experiment", " jükebox ").unwrap(),
            "jükebox"
        );
        for bad in ["", " ", "a\nb", "a\rb", "a\tb", &"a".repeat(513)] {
            assert_eq!(
                validate_name("--experiment", bad).unwrap_err().exit_code(),
                2,
                "{bad:?}"
            );
        }
    }

    fn in_pod_namespace() -> Option<String> {
        std::fs::read_to_string(ct_step::incluster::NAMESPACE_FILE)
            .ok()
            .map(|s| s.trim().to_string())
    }
}
