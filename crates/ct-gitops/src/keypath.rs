//! Dotted key paths: `model.image.tag`, `containers[0].image`, `annotations.serving\.kserve\.io/mode`.
//!
//! A path is a list of segments. `.` separates mapping keys, `[N]` selects item N of a
//! sequence, and `\` escapes the next character (`\.`, `\[`, `\\`) so keys that contain dots
//! can be addressed. A single leading `.` (yq style, `.version`) is accepted and ignored.

use std::fmt;
use std::str::FromStr;

use ct_step::StepError;

/// One step of a [`KeyPath`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Segment {
    /// A key of a mapping.
    Key(String),
    /// An item of a sequence (0-based).
    Index(usize),
}

/// A parsed dotted key path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyPath {
    segments: Vec<Segment>,
}

impl KeyPath {
    /// A path from segments (must not be empty).
    pub fn from_segments(segments: Vec<Segment>) -> Option<Self> {
        (!segments.is_empty()).then_some(KeyPath { segments })
    }

    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The path without its last segment (empty for a top-level key).
    pub fn parent(&self) -> &[Segment] {
        &self.segments[..self.segments.len() - 1]
    }

    pub fn last(&self) -> &Segment {
        &self.segments[self.segments.len() - 1]
    }
}

/// Render segments the way they are written on the command line.
pub fn display_segments(segments: &[Segment]) -> String {
    let mut out = String::new();
    for s in segments {
        match s {
            Segment::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                for c in k.chars() {
                    if matches!(c, '.' | '[' | ']' | '\\') {
                        out.push('\\');
                    }
                    out.push(c);
                }
            }
            Segment::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    if out.is_empty() {
        out.push_str("(document root)");
    }
    out
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&display_segments(&self.segments))
    }
}

/// Syntax errors are usage errors (exit 2).
impl FromStr for KeyPath {
    type Err = StepError;

    fn from_str(s: &str) -> Result<Self, StepError> {
        let text = s.strip_prefix('.').unwrap_or(s);
        if text.is_empty() {
            return Err(StepError::usage(
                "empty key; write e.g. version or model.image.tag",
            ));
        }
        let mut segments = Vec::new();
        let mut key = String::new();
        // Whether the current key has been started (allows `[0]` right after a key).
        let mut have_key = false;
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some(n) => {
                        key.push(n);
                        have_key = true;
                    }
                    None => {
                        return Err(StepError::usage(format!("key `{s}` ends with a lone `\\`")));
                    }
                },
                '.' => {
                    if have_key {
                        segments.push(Segment::Key(std::mem::take(&mut key)));
                    } else if !matches!(segments.last(), Some(Segment::Index(_))) {
                        return Err(StepError::usage(format!(
                            "key `{s}` has an empty segment; write `a.b`, escape a literal dot as `\\.`"
                        )));
                    }
                    have_key = false;
                    if chars.peek().is_none() {
                        return Err(StepError::usage(format!("key `{s}` ends with `.`")));
                    }
                }
                '[' => {
                    if have_key {
                        segments.push(Segment::Key(std::mem::take(&mut key)));
                        have_key = false;
                    } else if segments.is_empty()
                        || !matches!(segments.last(), Some(Segment::Index(_)))
                    {
                        return Err(StepError::usage(format!(
                            "key `{s}`: `[N]` must follow a key, e.g. containers[0].image"
                        )));
                    }
                    let mut digits = String::new();
                    loop {
                        match chars.next() {
                            Some(']') => break,
                            Some(d) if d.is_ascii_digit() => digits.push(d),
                            _ => {
                                return Err(StepError::usage(format!(
                                    "key `{s}`: write a sequence index as [N] with digits only (escape a literal `[` as `\\[`)"
                                )));
                            }
                        }
                    }
                    let idx = digits.parse::<usize>().map_err(|_| {
                        StepError::usage(format!("key `{s}`: `[{digits}]` is not an index"))
                    })?;
                    segments.push(Segment::Index(idx));
                    if let Some(&n) = chars.peek()
                        && n != '.'
                        && n != '['
                    {
                        return Err(StepError::usage(format!(
                            "key `{s}`: expected `.` or `[` after `[{idx}]`"
                        )));
                    }
                }
                ']' => {
                    return Err(StepError::usage(format!(
                        "key `{s}`: unmatched `]` (escape a literal one as `\\]`)"
                    )));
                }
                c => {
                    key.push(c);
                    have_key = true;
                }
            }
        }
        if have_key {
            segments.push(Segment::Key(key));
        }
        if segments
            .iter()
            .any(|s| matches!(s, Segment::Key(k) if k.chars().any(char::is_control)))
        {
            return Err(StepError::usage(format!(
                "key `{s}` contains a control character"
            )));
        }
        KeyPath::from_segments(segments)
            .ok_or_else(|| StepError::usage(format!("key `{s}` is empty")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(s: &str) -> Segment {
        Segment::Key(s.into())
    }

    #[test]
    fn parses_dotted_escaped_and_indexed_keys() {
        let p: KeyPath = "model.image.tag".parse().unwrap();
        assert_eq!(p.segments(), [k("model"), k("image"), k("tag")]);
        let p: KeyPath = ".version".parse().unwrap();
        assert_eq!(p.segments(), [k("version")]);
        let p: KeyPath = r"metadata.annotations.serving\.kserve\.io/deploymentMode"
            .parse()
            .unwrap();
        assert_eq!(
            p.segments(),
            [
                k("metadata"),
                k("annotations"),
                k("serving.kserve.io/deploymentMode")
            ]
        );
        let p: KeyPath = "spec.containers[0].image".parse().unwrap();
        assert_eq!(
            p.segments(),
            [k("spec"), k("containers"), Segment::Index(0), k("image")]
        );
        let p: KeyPath = "m[1][2]".parse().unwrap();
        assert_eq!(p.segments(), [k("m"), Segment::Index(1), Segment::Index(2)]);
        assert_eq!(p.to_string(), "m[1][2]");
        assert_eq!(r"a\.b.c".parse::<KeyPath>().unwrap().to_string(), r"a\.b.c");
    }

    #[test]
    fn rejects_malformed_keys() {
        for bad in [
            "", ".", "a..b", "a.", "[0]", "a[x]", "a[0]b", "a]", "a\\", "a[1",
        ] {
            assert!(bad.parse::<KeyPath>().is_err(), "{bad:?} should fail");
        }
    }
}
