//! Tekton results: one file per result in the results directory, exact bytes, no newline.
//!
//! A step declares its results up front, before its first remote call: [`Results::new`] proves
//! that each of them can be written where it will be written (the directory takes a new file,
//! and no result path is a directory), so a step never changes remote state and then fails on
//! its results. [`Results::finish`] fails unless every declared result was written, so a step
//! that cannot write all of them exits non-zero. Each file is written to a temporary name
//! (`.NAME.tmp`) and renamed, so no result is ever half-written, and the temporary file is
//! removed on every failure. Results are also printed to stdout as `NAME=value` lines for
//! people running the binary by hand.

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
    /// does not exist; any other directory must exist, take a new file, and hold no directory
    /// (or anything else a rename cannot replace) under a declared result's name: a usage error
    /// (exit 2) otherwise. Call it before the first remote call.
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
            for name in declared {
                preflight(dir, name)?;
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
            let tmp = temp_path(dir, name);
            let dest = dir.join(name);
            let written =
                std::fs::write(&tmp, value.as_bytes()).and_then(|_| std::fs::rename(&tmp, &dest));
            if written.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            written.remote_err(format!("cannot write result {}", dest.display()))?;
        }
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{name}={value}");
        self.written.insert(name);
        Ok(())
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

fn temp_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!(".{name}.tmp"))
}

/// Prove that result `name` can be written in `dir` the way [`Results::write`] writes it:
/// the temporary file can be created (and is removed again) and the destination is not a
/// directory.
fn preflight(dir: &Path, name: &str) -> Result<()> {
    let dest = dir.join(name);
    let bad = |why: String| {
        StepError::usage(format!(
            "--results-dir {}: cannot write result {name}: {why}",
            dir.display()
        ))
    };
    match std::fs::symlink_metadata(&dest) {
        Ok(m) if m.is_dir() => {
            return Err(bad(format!("{} is a directory; remove it", dest.display())));
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(bad(e.to_string())),
    }
    let tmp = temp_path(dir, name);
    let probe = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp);
    let removed = probe.as_ref().ok().map(|_| std::fs::remove_file(&tmp));
    match (probe, removed) {
        (Err(e), _) => Err(bad(format!(
            "{e}; make the directory writable or point CT_RESULTS_DIR at one that is"
        ))),
        (Ok(_), Some(Err(e))) => Err(bad(format!("cannot remove {}: {e}", tmp.display()))),
        _ => Ok(()),
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

    #[test]
    fn results_that_cannot_be_written_fail_up_front_and_leave_no_temp_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("B")).unwrap();
        let e = Results::new(dir.path(), &["A", "B"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(
            e.to_string().contains("result B") && e.to_string().contains("is a directory"),
            "{e}"
        );
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["B"], "the probe of A was removed");

        let ro = tempfile::tempdir().unwrap();
        std::fs::set_permissions(ro.path(), std::fs::Permissions::from_mode(0o555)).unwrap();
        // root ignores permissions: only check what a real (non-root) step sees.
        if std::fs::write(ro.path().join("probe"), "").is_err() {
            let e = Results::new(ro.path(), &["A"]).unwrap_err();
            assert_eq!(e.exit_code(), 2);
            assert!(e.to_string().contains("cannot write result A"), "{e}");
        }
        std::fs::set_permissions(ro.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn a_failed_write_removes_its_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Results::new(dir.path(), &["A"]).unwrap();
        // The destination became a non-empty directory after the preflight: rename fails.
        std::fs::create_dir_all(dir.path().join("A/x")).unwrap();
        let e = r.write("A", "v").unwrap_err();
        assert_eq!(e.exit_code(), 3);
        assert!(!dir.path().join(".A.tmp").exists());
    }
}
