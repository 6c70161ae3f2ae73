//! Logging on stderr (stdout is kept for results), human or JSON, with secret redaction.
//!
//! Every secret a step reads (tokens, passwords) is registered with [`register_secret`];
//! the log writer replaces each occurrence with `***` before anything reaches stderr.

use std::io::{self, IsTerminal, Write};
use std::sync::RwLock;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::cli::{CommonArgs, LogFormat};

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Never print this value: it is replaced by `***` in every log line.
pub fn register_secret(secret: &str) {
    let secret = secret.trim();
    // Very short values would redact ordinary words; tokens and passwords are longer.
    if secret.len() < 4 {
        return;
    }
    let mut s = SECRETS.write().unwrap_or_else(|p| p.into_inner());
    if !s.iter().any(|x| x == secret) {
        s.push(secret.to_string());
        // Longest first, so a secret containing another is replaced whole.
        s.sort_by_key(|x| std::cmp::Reverse(x.len()));
    }
}

/// `text` with every registered secret replaced by `***`.
pub fn redact(text: &str) -> String {
    let secrets = SECRETS.read().unwrap_or_else(|p| p.into_inner());
    let mut out = text.to_string();
    for s in secrets.iter() {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), "***");
        }
    }
    out
}

/// Writer that redacts each formatted event (tracing-subscriber writes an event in one call).
pub struct RedactingStderr;

impl Write for RedactingStderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        io::stderr().lock().write_all(redact(&text).as_bytes())?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

#[derive(Clone, Copy)]
struct MakeRedacting;

impl<'a> MakeWriter<'a> for MakeRedacting {
    type Writer = RedactingStderr;
    fn make_writer(&'a self) -> Self::Writer {
        RedactingStderr
    }
}

/// Install the global subscriber. Safe to call more than once (later calls are ignored).
pub fn init(args: &CommonArgs) {
    init_with(args.log_format, &args.log_level)
}

pub fn init_with(format: LogFormat, filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(MakeRedacting)
        .with_target(false);
    let _ = match format {
        LogFormat::Human => builder.with_ansi(ansi).without_time().try_init(),
        LogFormat::Json => builder
            .json()
            .with_ansi(false)
            .with_current_span(false)
            .try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_registered_secrets_longest_first() {
        register_secret("s3cr3t-token");
        register_secret("s3cr3t");
        register_secret("ab"); // too short to register
        assert_eq!(
            redact("Bearer s3cr3t-token and s3cr3t, ab"),
            "Bearer *** and ***, ab"
        );
    }
}
