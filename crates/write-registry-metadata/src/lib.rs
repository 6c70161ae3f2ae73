//! `write-registry-metadata`: record a training run on its Model Registry version.
//!
//! Thin step around [`ct_registry::plan`]: parse and validate the flags, look everything up,
//! then apply the planned PATCHes (or print them with `--dry-run`), and write
//! `MODEL_VERSION_ID`.

use clap::{Parser, ValueEnum};
use ct_registry::{ApiVersion, RegistryClient, Request};
use ct_step::cli::{CommonArgs, HttpArgs};
use ct_step::http::{ApiClient, ClientConfig};
use ct_step::{Result, Results};

/// Result names this step writes.
pub const RESULT_MODEL_VERSION_ID: &str = "MODEL_VERSION_ID";

/// Which Model Registry API prefix to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ApiChoice {
    /// Probe `/api/model_registry/v1`, fall back to `/api/model_registry/v1alpha3` on a 404.
    #[default]
    Auto,
    /// `/api/model_registry/v1alpha3` (servers for model-registry clients up to 0.3.11).
    V1alpha3,
    /// `/api/model_registry/v1` (newer servers).
    V1,
}

const ABOUT: &str = "Record a training run on its Model Registry version.";

const LONG_ABOUT: &str = "\
Record a training run on its Kubeflow Model Registry version, after the test deploy:

  * sets the custom property pipeline_run_id=<--kfp-run-id> on the version;
  * moves the environment label to this version: a custom property named after the
    environment (e.g. `test`) with the empty string as value, as the Python step wrote it;
    it is removed from every other version of the model (all pages), even when it is that
    version's only property;
  * sets the version's author (--author) and any --property;
  * sets the URI of the version's model artifact (--artifact-uri).

Every other custom property is left exactly as stored, whatever its type (struct and proto
values included). Every flag is checked before the first request (names, the run id, the
author, property keys and values are single-line: a control character such as a newline is a
usage error), and the results directory is checked too. Everything is looked up and validated
before the first write: a missing model, version or artifact, or a version with several model
artifacts and no --artifact-name, fails with nothing written. A re-run with the same inputs
sends no PATCH. --dry-run prints the planned PATCHes on stdout and writes nothing to the
registry.

Result: MODEL_VERSION_ID (the version's id).

Exit codes: 0 done (or nothing to do); 2 bad flag, or the model, version or artifact is
missing or ambiguous (nothing written); 3 registry, auth, network or I/O error; 143 SIGTERM.";

/// Flags of `write-registry-metadata`.
#[derive(Debug, Clone, Parser)]
// `--version` is the model version: no clap version flag.
#[command(name = "write-registry-metadata", disable_version_flag = true, about = ABOUT, long_about = LONG_ABOUT)]
pub struct Args {
    /// Model Registry REST base URL, e.g. https://<name>-rest.<domain> (the route of the
    /// registry's REST service, without the /api/... prefix).
    #[arg(long, env = "CT_REGISTRY_URL", value_name = "URL")]
    pub registry_url: String,

    /// API prefix: auto (probe v1, then v1alpha3), v1alpha3 or v1.
    #[arg(long, env = "CT_REGISTRY_API", value_enum, default_value_t = ApiChoice::Auto)]
    pub registry_api: ApiChoice,

    /// Registered model name.
    #[arg(long, env = "CT_MODEL", value_name = "NAME")]
    pub model: String,

    /// Model version name.
    #[arg(long, env = "CT_VERSION", value_name = "NAME")]
    pub version: String,

    /// Environment label moved to this version, e.g. `test` or `prod` (letters, digits, `-`,
    /// `_` and `.`)
    #[arg(long, env = "CT_ENVIRONMENT", value_name = "LABEL")]
    pub environment: String,

    /// KFP run id stored as the pipeline_run_id custom property.
    #[arg(long, env = "CT_KFP_RUN_ID", value_name = "ID")]
    pub kfp_run_id: String,

    /// Author set on the version (e.g. the commit author `Name <mail>`).
    #[arg(long, env = "CT_AUTHOR", value_name = "NAME")]
    pub author: String,

    /// URI set on the version's model artifact, e.g. oci://<registry>/<ns>/<model>:<version>.
    #[arg(long, env = "CT_ARTIFACT_URI", value_name = "URI")]
    pub artifact_uri: String,

    /// Name of the model artifact to update. Default: the version's only model artifact, or
    /// the one named after the model when there are several.
    #[arg(long, env = "CT_ARTIFACT_NAME", value_name = "NAME")]
    pub artifact_name: Option<String>,

    /// Extra custom property on the version, repeatable: KEY=VALUE (string) or KEY:TYPE=VALUE
    /// with TYPE int (32-bit), double, bool or string; single-line (no control characters).
    /// Each --property is one property, whatever it holds; only the CT_PROPERTY variable is a
    /// list (one property per line).
    #[arg(
        long = "property",
        env = "CT_PROPERTY",
        value_name = "KEY[:TYPE]=VALUE"
    )]
    pub properties: Vec<String>,

    /// Print the planned changes on stdout and write nothing to the registry.
    #[arg(long, env = "CT_DRY_RUN", value_parser = ct_step::cli::bool_flag)]
    pub dry_run: bool,

    /// Items per page when listing versions and artifacts.
    #[arg(long, env = "CT_PAGE_SIZE", default_value_t = ct_registry::client::DEFAULT_PAGE_SIZE, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub page_size: u32,

    #[command(flatten)]
    pub http: HttpArgs,

    #[command(flatten)]
    pub common: CommonArgs,
}

/// Run the step.
pub async fn run(args: Args) -> Result<()> {
    // Validate every input before any request.
    let request = Request::new(
        &args.model,
        &args.version,
        &args.environment,
        &args.kfp_run_id,
        &args.author,
        &args.artifact_uri,
        args.artifact_name.as_deref(),
        &args.properties,
    )?;
    let mut results = Results::new(&args.common.results_dir, &[RESULT_MODEL_VERSION_ID])?;
    let config = ClientConfig::from_args(&args.registry_url, "--registry-url", &args.http)?;
    let api = ApiClient::new(config)?;
    let version = match args.registry_api {
        ApiChoice::Auto => None,
        ApiChoice::V1alpha3 => Some(ApiVersion::V1Alpha3),
        ApiChoice::V1 => Some(ApiVersion::V1),
    };
    let client = RegistryClient::connect(api, version)
        .await?
        .with_page_size(args.page_size);

    let plan = ct_registry::plan(&client, &request).await?;
    tracing::info!(
        "model {:?} id {}, version {:?} id {}, artifact {:?} id {}: {} change(s) planned",
        plan.model.name,
        plan.model.id,
        plan.version.name,
        plan.version.id,
        plan.artifact.name.as_deref().unwrap_or(""),
        plan.artifact.id,
        plan.changes.len()
    );

    if plan.version.state.as_deref() == Some("ARCHIVED") {
        tracing::warn!(
            "version {:?} of {:?} is ARCHIVED; recording the deploy anyway",
            plan.version.name,
            plan.model.name
        );
    }

    if args.dry_run {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        if plan.changes.is_empty() {
            let _ = writeln!(out, "dry run: nothing to change");
        }
        for change in &plan.changes {
            let _ = writeln!(out, "dry run: {change}");
        }
        drop(out);
    } else if plan.changes.is_empty() {
        tracing::info!("the registry already holds these values: nothing to write");
    } else {
        let outcome = ct_registry::apply(&client, &plan).await?;
        tracing::info!("{} PATCH request(s) sent", outcome.patches);
    }
    results.write(RESULT_MODEL_VERSION_ID, &plan.version.id)?;
    results.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn flags_are_consistent_and_read_the_environment() {
        Args::command().debug_assert();
        for arg in Args::command().get_arguments() {
            if arg.get_long().is_some() && arg.get_id() != "help" {
                assert!(arg.get_env().is_some(), "--{} has no env var", arg.get_id());
            }
        }
    }
}
