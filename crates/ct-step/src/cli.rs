//! Flags every step shares. Flatten them into a step's `clap::Parser`:
//!
//! ```ignore
//! #[derive(clap::Parser)]
//! struct Args {
//!     #[command(flatten)] common: ct_step::cli::CommonArgs,
//!     #[command(flatten)] http: ct_step::cli::HttpArgs,
//! }
//! ```
//! Every flag also reads an environment variable named `CT_` + the flag in upper snake case.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum LogFormat {
    /// One readable line per event (no colour unless stderr is a terminal).
    #[default]
    Human,
    /// One JSON object per event.
    Json,
}

/// Results and logging: every step has these.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Results and logging")]
pub struct CommonArgs {
    /// Directory for Tekton results: one file per result, named as the result, exact bytes, no
    /// trailing newline. When the default directory does not exist (running from a laptop),
    /// results are only printed to stdout as NAME=value lines.
    #[arg(long, env = "CT_RESULTS_DIR", default_value = crate::results::DEFAULT_RESULTS_DIR, value_name = "DIR")]
    pub results_dir: PathBuf,

    /// Log format on stderr.
    #[arg(long, env = "CT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,

    /// Log filter (tracing-subscriber EnvFilter syntax), e.g. `info`, `debug`, `ct_kfp=trace`.
    #[arg(
        long,
        env = "CT_LOG_LEVEL",
        default_value = "info",
        value_name = "FILTER"
    )]
    pub log_level: String,
}

/// Auth, TLS and HTTP behaviour for steps that call a REST API.
///
/// The bearer token is read from `--token-file` (default: the pod's service-account token when
/// it exists) or from the `CT_TOKEN` environment variable; it is never a command-line value.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Auth, TLS and HTTP")]
pub struct HttpArgs {
    /// File holding the bearer token (trimmed; re-read once when the server answers 401).
    /// Default: /var/run/secrets/kubernetes.io/serviceaccount/token when present, else the
    /// CT_TOKEN environment variable, else no token.
    #[arg(long, env = "CT_TOKEN_FILE", value_name = "FILE", value_parser = path_or_empty)]
    pub token_file: Option<PathBuf>,

    /// Extra CA bundle (PEM) trusted in addition to the system roots.
    /// Default: /var/run/secrets/kubernetes.io/serviceaccount/service-ca.crt when present.
    #[arg(long, env = "CT_CA_FILE", value_name = "FILE", value_parser = path_or_empty)]
    pub ca_file: Option<PathBuf>,

    /// Do not verify TLS certificates. For debugging only: anyone on the path can read the token.
    #[arg(long, env = "CT_INSECURE_SKIP_TLS_VERIFY", value_parser = bool_flag)]
    pub insecure_skip_tls_verify: bool,

    /// Timeout of one HTTP request (e.g. `30s`, `2m`).
    #[arg(long, env = "CT_REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    pub request_timeout: Duration,

    /// Retries of an idempotent request after a connect error, timeout, 429, 502, 503 or 504.
    #[arg(long, env = "CT_MAX_RETRIES", default_value_t = 5, value_name = "N")]
    pub max_retries: u32,
}

impl HttpArgs {
    /// `--token-file`, with an empty value (how Tekton passes an unset param) meaning "not given".
    pub fn token_file(&self) -> Option<&std::path::Path> {
        self.token_file
            .as_deref()
            .filter(|p| !p.as_os_str().is_empty())
    }
    /// `--ca-file`, with an empty value meaning "not given".
    pub fn ca_file(&self) -> Option<&std::path::Path> {
        self.ca_file
            .as_deref()
            .filter(|p| !p.as_os_str().is_empty())
    }
}

/// A boolean flag's value: `--flag` alone means true; from the environment, true/false, 1/0,
/// yes/no, y/n, on/off in any case; empty (how Tekton passes an unset param) is false.
/// Use as `#[arg(long, env = "CT_X", value_parser = ct_step::cli::bool_flag)] x: bool`.
pub fn bool_flag(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "" | "false" | "0" | "no" | "n" | "off" => Ok(false),
        "true" | "1" | "yes" | "y" | "on" => Ok(true),
        _ => Err("expected true or false (empty means false)".into()),
    }
}

/// A path that may be empty: Tekton passes unset params as empty env values, which must mean
/// "not given" rather than a parse error.
pub fn path_or_empty(s: &str) -> Result<PathBuf, std::convert::Infallible> {
    Ok(PathBuf::from(s.trim()))
}

/// Parse `30s`, `5m`, `2h`, `1h30m` or plain seconds (`90`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(s)
        .map_err(|e| format!("`{s}` is not a duration ({e}); write e.g. 30s, 5m or 2h"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(clap::Parser)]
    struct T {
        #[command(flatten)]
        http: HttpArgs,
    }

    #[test]
    fn bool_flags_from_env_and_argv() {
        use clap::Parser;
        for s in ["", " ", "false", "FALSE", "0", "no", "n", "off"] {
            assert_eq!(bool_flag(s), Ok(false), "{s:?}");
        }
        for s in ["true", "True", "1", "yes", "y", "on"] {
            assert_eq!(bool_flag(s), Ok(true), "{s:?}");
        }
        assert!(bool_flag("maybe").is_err());
        let t = T::try_parse_from(["t", "--insecure-skip-tls-verify"]).unwrap();
        assert!(t.http.insecure_skip_tls_verify);
        let t = T::try_parse_from(["t"]).unwrap();
        assert!(!t.http.insecure_skip_tls_verify);
    }

    #[test]
    fn empty_paths_mean_not_given() {
        use clap::Parser;
        let t = T::try_parse_from(["t", "--token-file", "", "--ca-file", "/x/ca.crt"]).unwrap();
        assert_eq!(t.http.token_file(), None);
        assert_eq!(t.http.ca_file(), Some(std::path::Path::new("/x/ca.crt")));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert!(parse_duration("soon").unwrap_err().contains("30s"));
    }
}
