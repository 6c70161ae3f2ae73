//! Tekton results: one file per result in the results directory, exact bytes, no newline.
//!
//! A step declares its results up front; [`Results::finish`] fails unless every declared
//! result was written, so a step that cannot write all of them exits non-zero. Each file is
//! written to a temporary name and renamed, so no result is ever half-written. Results are
//! also printed to stdout as `NAME=value` lines for people running the binary by hand.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Result, ResultExt, StepError};

pub const DEFAULT_RESULTS_DIR: &str = "/tekton/results";

/// Largest value we write: results ride the 4 KiB termination message.
pub const MAX_RESULT_BYTES: usize = 1024;

#[derive(Debug)]
pub struct Results {
    dir: Option<PathBuf>,
    declared: Vec<&'static str>,
    written: BTreeSet<&'static str>,
}

impl Results {
    /// `dir` is the `--results-dir` value. The default directory is skipped (stdout only) when it
    /// does not exist; any other directory must exist and be writable.
    pub fn new(dir: &Path, declared: &[&'static str]) -> Result<Self> {
        let dir = if dir == Path::new(DEFAULT_RESULTS_DIR) && !dir.exists() {
            tracing::debug!("{DEFAULT_RESULTS_DIR} does not exist: results go to stdout only");
            None
        } else {
            if !dir.is_dir() {
                return Err(StepError::usage(format!(
                    "--results-dir {}: not a directory; create it or point CT_RESULTS_DIR at one",
                    dir.display()
                )));
            }
            Some(dir.to_path_buf())
        };
        Ok(Results {
            dir,
            declared: declared.to_vec(),
            written: BTreeSet::new(),
        })
    }

    /// Write one declared result now (atomically), and echo it on stdout.
    pub fn write(&mut self, name: &str, value: &str) -> Result<()> {
        let Some(&name) = self.declared.iter().find(|d| **d == name) else {
            return Err(StepError::remote(format!(
                "internal: result {name} is not declared"
            )));
        };
        if value.len() > MAX_RESULT_BYTES || value.chars().any(char::is_control) {
            return Err(StepError::remote(format!(
                "result {name}: value is not a short single-line ID/SHA/URL ({} bytes)",
                value.len()
            )));
        }
        if let Some(dir) = &self.dir {
            let tmp = dir.join(format!(".{name}.tmp"));
            let dest = dir.join(name);
            std::fs::write(&tmp, value.as_bytes())
                .and_then(|_| std::fs::rename(&tmp, &dest))
                .remote_err(format!("cannot write result {}", dest.display()))?;
        }
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{name}={value}");
        self.written.insert(name);
        Ok(())
    }

    pub fn is_written(&self, name: &str) -> bool {
        self.written.contains(name)
    }

    /// Every declared result must have been written.
    pub fn finish(&self) -> Result<()> {
        let missing: Vec<_> = self
            .declared
            .iter()
            .filter(|d| !self.written.contains(*d))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(StepError::remote(format!(
                "internal: results not written: {}",
                missing
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_exact_bytes_and_checks_completeness() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Results::new(dir.path(), &["A", "B"]).unwrap();
        r.write("A", "run-123").unwrap();
        assert_eq!(std::fs::read(dir.path().join("A")).unwrap(), b"run-123");
        assert!(r.finish().unwrap_err().to_string().contains("B"));
        r.write("B", "").unwrap();
        r.finish().unwrap();
        assert!(r.write("C", "x").is_err());
        assert!(r.write("A", "two\nlines").is_err());
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            2,
            "no temp files left"
        );
    }

    #[test]
    fn explicit_missing_dir_is_a_usage_error() {
        let e = Results::new(Path::new("/nonexistent/ct-results"), &["A"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }
}
