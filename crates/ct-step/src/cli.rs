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
//! A step's `main` parses with [`parse`], not `Parser::parse`: one command-line value is always
//! one value, and only a repeatable flag's environment variable is a list (one value per line).

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgAction, Args, Command, Parser, ValueEnum};

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
    /// A filter that does not parse is a usage error.
    #[arg(
        long,
        env = "CT_LOG_LEVEL",
        default_value = "info",
        value_name = "FILTER",
        value_parser = parse_log_filter
    )]
    pub log_level: String,
}

/// Auth, TLS and HTTP behaviour for steps that call a REST API.
///
/// The bearer token is read from `--token-file`, else from the `CT_TOKEN` environment variable,
/// else from the pod's service-account token file when it exists; it is never a command-line
/// value.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Auth, TLS and HTTP")]
pub struct HttpArgs {
    /// File holding the bearer token (trimmed, at most 1 MiB; re-read once when the server
    /// answers 401). When not given: the CT_TOKEN environment variable, else
    /// /var/run/secrets/kubernetes.io/serviceaccount/token when present, else no token.
    #[arg(long, env = "CT_TOKEN_FILE", value_name = "FILE", value_parser = path_or_empty)]
    pub token_file: Option<PathBuf>,

    /// Extra CA bundle (PEM, at most 4 MiB) trusted in addition to the system roots.
    /// Default: /var/run/secrets/kubernetes.io/serviceaccount/service-ca.crt when present.
    #[arg(long, env = "CT_CA_FILE", value_name = "FILE", value_parser = path_or_empty)]
    pub ca_file: Option<PathBuf>,

    /// Do not verify TLS certificates. For debugging only: anyone on the path can read the token.
    #[arg(long, env = "CT_INSECURE_SKIP_TLS_VERIFY", value_parser = bool_flag)]
    pub insecure_skip_tls_verify: bool,

    /// Timeout of one HTTP request (e.g. `30s`, `2m`; above 0).
    #[arg(long, env = "CT_REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_positive_duration, value_name = "DURATION")]
    pub request_timeout: Duration,

    /// Retries of a request after a connect error (any method: nothing reached the server),
    /// and of an idempotent request after a timeout, a lost answer, 429, 502, 503 or 504.
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

/// [`parse_duration`], refusing 0 (a timeout or interval of 0 cannot work).
pub fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err(format!(
            "`{}` is 0; write a duration above 0, e.g. 30s",
            s.trim()
        ));
    }
    Ok(d)
}

/// A tracing-subscriber `EnvFilter` that parses (the text is kept as given).
pub fn parse_log_filter(s: &str) -> Result<String, String> {
    if s.chars().any(char::is_control) {
        return Err("has a control character (newline?); write e.g. info or debug".into());
    }
    tracing_subscriber::EnvFilter::try_new(s)
        .map(|_| s.to_string())
        .map_err(|e| {
            format!("`{s}` is not a log filter ({e}); write e.g. info, debug or ct_kfp=trace")
        })
}

/// Whether `arg` is a repeatable flag that reads an environment variable: the only flags whose
/// environment value is a list (one value per line).
fn is_env_list(arg: &clap::Arg) -> bool {
    matches!(arg.get_action(), ArgAction::Append) && arg.get_env().is_some()
}

/// The environment variables of `cmd` that hold a list, one value per line (e.g. `CT_PARAM`).
/// No Task may put a single free-text param into one of them.
pub fn env_list_vars(cmd: &Command) -> Vec<String> {
    cmd.get_arguments()
        .filter(|a| is_env_list(a))
        .filter_map(|a| a.get_env().map(|e| e.to_string_lossy().into_owned()))
        .collect()
}

/// The values of a list environment variable: one per line (`\n`, or `\r\n`), blank lines
/// skipped. Tekton has no list type for environment variables, so a Task passes a list as a
/// multi-line string.
pub fn env_lines(text: &str) -> Vec<&str> {
    text.split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .filter(|l| !l.trim().is_empty())
        .collect()
}

/// Parse a step's flags from the process's argv and environment; on a usage error print it and
/// exit 2 (`--help` and `--version` exit 0). See [`try_parse_from`].
pub fn parse<T: Parser>() -> T {
    try_parse_from(std::env::args_os()).unwrap_or_else(|e| e.exit())
}

/// Parse a step's flags the way `Parser::try_parse_from` does, with one rule clap lacks: a
/// command-line value is always exactly one value (nothing splits it, whatever it contains),
/// while a repeatable flag whose value comes from its environment variable takes one value
/// per line of it ([`env_lines`]). An environment list with no value counts as not given.
pub fn try_parse_from<T, I, A>(argv: I) -> Result<T, clap::Error>
where
    T: Parser,
    I: IntoIterator<Item = A>,
    A: Into<OsString> + Clone,
{
    let mut argv: Vec<OsString> = argv.into_iter().map(Into::into).collect();
    let mut cmd = T::command();
    let mut matches = cmd.clone().try_get_matches_from(&argv)?;
    let lists: Vec<(clap::Id, String)> = cmd
        .get_arguments()
        .filter(|a| is_env_list(a))
        .filter(|a| matches.value_source(a.get_id().as_str()) == Some(ValueSource::EnvVariable))
        .filter_map(|a| a.get_long().map(|l| (a.get_id().clone(), l.to_string())))
        .collect();
    if !lists.is_empty() {
        for (id, long) in &lists {
            let values: Vec<String> = matches
                .get_raw(id.as_str())
                .into_iter()
                .flatten()
                .map(|v| v.to_string_lossy().into_owned())
                .collect();
            for v in &values {
                for line in env_lines(v) {
                    argv.push(format!("--{long}={line}").into());
                }
            }
            cmd = cmd.mut_arg(id.clone(), |a| a.env(None::<&'static str>));
        }
        matches = cmd.clone().try_get_matches_from(&argv)?;
    }
    T::from_arg_matches_mut(&mut matches).map_err(|e| e.format(&mut cmd))
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
        assert!(parse_duration("-5s").is_err());
        for zero in ["0", "0s", " 0ms "] {
            assert!(
                parse_positive_duration(zero)
                    .unwrap_err()
                    .contains("above 0")
            );
        }
        assert_eq!(
            parse_positive_duration("1ms").unwrap(),
            Duration::from_millis(1)
        );
    }

    #[test]
    fn log_filters_must_parse() {
        assert_eq!(
            parse_log_filter("info,ct_kfp=trace").unwrap(),
            "info,ct_kfp=trace"
        );
        assert!(parse_log_filter("info=[").is_err());
        assert!(parse_log_filter("info\ndebug").is_err());
    }

    #[derive(Debug, clap::Parser)]
    struct Lists {
        #[arg(long = "item", env = "CT_TEST_CLI_ITEM")]
        items: Vec<String>,
        #[arg(long = "req", env = "CT_TEST_CLI_REQ", required = true)]
        req: Vec<String>,
        #[arg(long, env = "CT_TEST_CLI_ONE")]
        one: Option<String>,
    }

    #[test]
    fn a_command_line_value_is_one_value_and_env_lists_are_lines() {
        // The variables are this test's own: no other test reads them.
        // SAFETY: no other thread reads or writes these variables.
        unsafe {
            std::env::remove_var("CT_TEST_CLI_ITEM");
            std::env::set_var("CT_TEST_CLI_REQ", "r");
            std::env::set_var("CT_TEST_CLI_ONE", "a\nb");
        }
        let t: Lists = try_parse_from([
            "t",
            "--item",
            "version=1\nns=evil",
            "--item=a,b",
            "--req",
            "x\ny",
        ])
        .unwrap();
        assert_eq!(t.items, ["version=1\nns=evil", "a,b"]);
        assert_eq!(t.req, ["x\ny"]);
        assert_eq!(
            t.one.as_deref(),
            Some("a\nb"),
            "a single-value flag never splits"
        );

        unsafe { std::env::set_var("CT_TEST_CLI_ITEM", "a=1\r\n\n b=2 \n-c=3\n") };
        let t: Lists = try_parse_from(["t"]).unwrap();
        assert_eq!(t.items, ["a=1", " b=2 ", "-c=3"]);
        assert_eq!(t.req, ["r"]);
        // The command line wins over the environment, as for every flag.
        let t: Lists = try_parse_from(["t", "--item", "z"]).unwrap();
        assert_eq!(t.items, ["z"]);

        // An environment list without a value is not given at all.
        unsafe { std::env::set_var("CT_TEST_CLI_REQ", " \n") };
        let e = try_parse_from::<Lists, _, _>(["t"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("--req"), "{e}");
        unsafe { std::env::remove_var("CT_TEST_CLI_REQ") };
        assert_eq!(
            env_list_vars(&<Lists as clap::CommandFactory>::command()),
            ["CT_TEST_CLI_ITEM", "CT_TEST_CLI_REQ"]
        );
    }
}
