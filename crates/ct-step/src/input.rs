//! Local input files, read with a size bound.
//!
//! Every file a step reads (pipeline packages, parameter files, tokens, passwords, credential
//! stores, CA bundles, PR bodies, run-id files) goes through [`read_bounded`]. The bound is
//! enforced while reading (`Read::take`), so a pipe, a device such as `/dev/zero` or a file that
//! keeps growing is stopped at the limit, not only a large regular file. Over the limit is a
//! usage error (exit 2) that names the input and the limit. The limits are generous: each is far
//! above what a real input of that kind holds.

use std::io::Read;
use std::path::Path;

use crate::error::{Result, StepError};

pub const KIB: u64 = 1024;
pub const MIB: u64 = 1024 * KIB;

/// A compiled pipeline (KFP IR YAML, platform spec included).
pub const MAX_PIPELINE_PACKAGE: u64 = 32 * MIB;
/// A JSON object of run parameters.
pub const MAX_PARAMETERS_FILE: u64 = 4 * MIB;
/// A token, a password or a git-credential-store file.
pub const MAX_SECRET_FILE: u64 = MIB;
/// A PEM CA bundle (the system bundle is about 200 KiB).
pub const MAX_CA_FILE: u64 = 4 * MIB;
/// A file holding one ID: a run-id file, the service-account namespace file.
pub const MAX_ID_FILE: u64 = 64 * KIB;

/// `bytes` as `32 MiB`, `64 KiB` or `100 bytes`.
pub fn format_size(bytes: u64) -> String {
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= KIB && bytes.is_multiple_of(KIB) {
        format!("{} KiB", bytes / KIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// Read at most `limit` bytes of `path`. `what` names the input in messages, e.g.
/// `--pipeline-package`. A missing or unreadable file, or one larger than `limit`, is a usage
/// error (exit 2).
pub fn read_bounded(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>> {
    let label = format!("{what} {}", path.display());
    let file = std::fs::File::open(path)
        .map_err(|e| StepError::usage(format!("{label}: cannot read: {e}")))?;
    let mut buf = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|e| StepError::usage(format!("{label}: cannot read: {e}")))?;
    if buf.len() as u64 > limit {
        return Err(StepError::usage(format!(
            "{label}: larger than the {} limit for this input; pass a smaller file",
            format_size(limit)
        )));
    }
    Ok(buf)
}

/// [`read_bounded`], as UTF-8 text.
pub fn read_text_bounded(path: &Path, limit: u64, what: &str) -> Result<String> {
    let bytes = read_bounded(path, limit, what)?;
    String::from_utf8(bytes).map_err(|_| {
        StepError::usage(format!(
            "{what} {}: not UTF-8 text; pass a text file",
            path.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_holds_for_files_and_devices() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x");
        std::fs::write(&f, b"12345").unwrap();
        assert_eq!(read_bounded(&f, 5, "--x").unwrap(), b"12345");
        let e = read_bounded(&f, 4, "--x").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("4 bytes limit"), "{e}");
        // A device without an end stops at the bound instead of filling memory.
        let e = read_bounded(Path::new("/dev/zero"), MIB, "--pipeline-package").unwrap_err();
        assert_eq!(
            e.to_string(),
            "--pipeline-package /dev/zero: larger than the 1 MiB limit for this input; pass a smaller file"
        );
        let e = read_bounded(dir.path(), MIB, "--x").unwrap_err();
        assert!(e.to_string().contains("cannot read"), "{e}");
        let e = read_bounded(&dir.path().join("missing"), MIB, "--x").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        std::fs::write(&f, [0xff, 0xfe]).unwrap();
        assert!(
            read_text_bounded(&f, 10, "--x")
                .unwrap_err()
                .to_string()
                .contains("not UTF-8")
        );
    }

    #[test]
    fn sizes_are_named_in_their_unit() {
        assert_eq!(format_size(32 * MIB), "32 MiB");
        assert_eq!(format_size(64 * KIB), "64 KiB");
        assert_eq!(format_size(100), "100 bytes");
    }
}
