//! Byte-preserving YAML scalar editor.
//!
//! [`apply`] sets string values at dotted key paths by splicing bytes: only the text of the
//! changed scalars changes (and, with `create_missing`, one new `key: value` per missing key).
//! Comments, blank lines, key order, indentation, quote style, line endings, `---`/`...`,
//! directives and a BOM stay as they were. Written values are always YAML strings: a plain
//! scalar that would read back as a number, bool, null or timestamp (`1.10`, `1e3`, `0123`,
//! `true`, `yes`, `~`, …) or would break the document (`a: b`, `x #y`) is double-quoted.
//!
//! The result is checked twice before it is returned: re-scanned (every node other than the
//! targets is identical, each target holds exactly the requested string), and parsed with an
//! independent parser (libyaml via serde_yaml_ng) that must read the same strings.
//!
//! Refused with a clear error: invalid YAML, several documents, a root that is not a mapping,
//! duplicate keys, complex keys, targets that are mappings, sequences, aliases, anchored,
//! tagged (other than `!!str`), block (`|`, `>`) or multi-line scalars, and missing parents.

pub mod scalar;
pub mod scan;

use std::fmt;

use crate::keypath::{KeyPath, Segment, display_segments};
use ct_step::StepError;
use scalar::Style;
use scan::{Kind, Node};

/// One requested assignment `key=value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub key: KeyPath,
    pub value: String,
}

impl Setting {
    /// Parse one `--set KEY=VALUE` (split at the first `=`). The value is one single-line
    /// value: a control character in it (a newline, a carriage return, a tab, ...) is a usage
    /// error, never a second setting. Errors name `--set`.
    pub fn parse(s: &str) -> ct_step::Result<Setting> {
        let shown = s.escape_debug();
        let (k, v) = s.split_once('=').ok_or_else(|| {
            StepError::usage(format!(
                "--set `{shown}` has no `=`; write KEY=VALUE, e.g. version=1.2.3"
            ))
        })?;
        let key: KeyPath = k
            .trim()
            .parse()
            .map_err(|e: StepError| StepError::usage(format!("--set {e}")))?;
        if v.chars().any(char::is_control) {
            return Err(StepError::usage(format!(
                "--set `{shown}`: the value of `{key}` has a control character (newline?); values are single-line text"
            )));
        }
        Ok(Setting {
            key,
            value: v.to_string(),
        })
    }
}

/// What happened to one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub key: KeyPath,
    /// The previous value (`None` when the key was created).
    pub old: Option<String>,
    pub new: String,
}

impl Change {
    /// Whether the bytes of the file changed for this key.
    pub fn changed(&self) -> bool {
        self.old.as_deref() != Some(self.new.as_str())
    }
}

/// The edited text and one [`Change`] per setting whose bytes changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edited {
    pub text: String,
    pub changes: Vec<Change>,
}

/// An edit that did not verify (a bug guard: nothing is written). A usage error: the file
/// has to be edited by hand.
fn unverified(m: impl fmt::Display) -> StepError {
    StepError::usage(format!(
        "refusing to write an edit that does not verify: {m}"
    ))
}

/// Set every `settings` key to its string value in `src`.
///
/// A missing key is an error unless `create_missing`, in which case it is added as the last
/// entry of its (existing) parent mapping: a new line at the mapping's indentation with the
/// file's line ending, or `, key: value` inside a flow mapping.
pub fn apply(src: &str, settings: &[Setting], create_missing: bool) -> ct_step::Result<Edited> {
    let original = scan::scan(src)?;
    check_independent_parse(src)?;
    for (i, a) in settings.iter().enumerate() {
        if settings[..i].iter().any(|b| b.key == a.key) {
            return Err(StepError::usage(format!(
                "key `{}` is set twice; pass each key once",
                a.key
            )));
        }
        if settings[..i].iter().any(|b| {
            let (x, y) = (a.key.segments(), b.key.segments());
            x.starts_with(y) || y.starts_with(x)
        }) {
            return Err(StepError::usage(format!(
                "key `{}` overlaps another --set key; a value cannot also be a mapping",
                a.key
            )));
        }
    }
    let mut text = src.to_string();
    let mut changes = Vec::new();
    let mut created = Vec::new();
    for s in settings {
        let nodes = scan::scan(&text)?;
        let (out, change) = set_one(&text, &nodes, s, create_missing)?;
        if change.old.is_none() {
            created.push(s.key.segments().to_vec());
        }
        if out != text || change.old.is_none() {
            changes.push(change);
        }
        text = out;
    }
    verify(&original, &text, settings, &created)?;
    Ok(Edited { text, changes })
}

fn find<'a>(nodes: &'a [Node], path: &[Segment]) -> Option<&'a Node> {
    nodes.iter().find(|n| n.path == path)
}

fn kind_name(k: &Kind) -> &'static str {
    match k {
        Kind::Scalar(_) => "a scalar",
        Kind::Mapping(_) => "a mapping",
        Kind::Sequence => "a sequence",
        Kind::Alias(_) => "an alias (*name)",
    }
}

fn set_one(
    src: &str,
    nodes: &[Node],
    s: &Setting,
    create_missing: bool,
) -> ct_step::Result<(String, Change)> {
    let key = &s.key;
    let Some(node) = find(nodes, key.segments()) else {
        return insert(src, nodes, s, create_missing);
    };
    let sc = match &node.kind {
        Kind::Scalar(sc) => sc,
        other => {
            return Err(StepError::usage(format!(
                "`{key}` is {}, not a scalar value; set a key below it, e.g. `{key}.name`",
                kind_name(other)
            )));
        }
    };
    let str_tag = match sc.tag.as_deref() {
        None => false,
        Some("tag:yaml.org,2002:str") => true,
        Some(t) => {
            return Err(StepError::usage(format!(
                "`{key}` has the explicit tag {t}; remove the tag or edit the file by hand"
            )));
        }
    };
    if sc.anchor != 0 {
        return Err(StepError::usage(format!(
            "`{key}` has an anchor (&name) that other nodes may refer to; edit the file by hand"
        )));
    }
    if matches!(sc.style, Style::Literal | Style::Folded) {
        return Err(StepError::usage(format!(
            "`{key}` is a block scalar (| or >); only single-line values can be set"
        )));
    }
    let old_text = &src[sc.start..sc.end];
    if old_text.contains(['\n', '\r']) {
        return Err(StepError::usage(format!(
            "`{key}` spans several lines; only single-line values can be set"
        )));
    }
    let change = Change {
        key: key.clone(),
        old: Some(sc.value.clone()),
        new: s.value.clone(),
    };
    if sc.value == s.value && scalar::is_string(&sc.value, sc.style, str_tag) {
        return Ok((src.to_string(), change));
    }
    let out = if sc.implicit_empty {
        // `key:` with no value: the empty range sits on the `:`; write ` value` after it.
        if src.as_bytes().get(sc.start) != Some(&b':') {
            return Err(StepError::usage(format!(
                "`{key}` has an empty value in a position this editor cannot write to; set a value by hand first"
            )));
        }
        let at = sc.start + 1;
        format!(
            "{} {}{}",
            &src[..at],
            scalar::render(&s.value, Style::Plain, node.in_flow),
            &src[at..]
        )
    } else {
        // A `!!str` tag keeps its text a string; quoting an ambiguous value there is harmless.
        let rendered = scalar::render(&s.value, sc.style, node.in_flow);
        format!("{}{}{}", &src[..sc.start], rendered, &src[sc.end..])
    };
    Ok((out, change))
}

fn line_ending_at(src: &str, eol: usize) -> &'static str {
    // `eol` is just after a '\n'.
    if eol >= 2 && &src.as_bytes()[eol - 2..eol] == b"\r\n" {
        "\r\n"
    } else if eol >= 1 && src.as_bytes()[eol - 1] == b'\n' {
        "\n"
    } else if src.contains("\r\n") {
        "\r\n"
    } else {
        "\n"
    }
}

fn render_key(k: &str, flow: bool) -> String {
    if scalar::plain_is_safe(k, flow) && !k.contains(':') && !k.contains('#') {
        k.to_string()
    } else {
        scalar::double_quoted(k)
    }
}

fn insert(
    src: &str,
    nodes: &[Node],
    s: &Setting,
    create_missing: bool,
) -> ct_step::Result<(String, Change)> {
    let key = &s.key;
    let parent_path = key.parent();
    let parent = find(nodes, parent_path);
    let name = match key.last() {
        Segment::Key(k) => k.clone(),
        Segment::Index(i) => {
            return Err(StepError::usage(match parent {
                Some(Node {
                    kind: Kind::Sequence,
                    ..
                }) => format!("`{key}`: the sequence has no item [{i}] (items are not created)"),
                _ => format!("`{key}` does not exist"),
            }));
        }
    };
    let map = match parent.map(|p| &p.kind) {
        Some(Kind::Mapping(m)) => m,
        Some(other) => {
            return Err(StepError::usage(format!(
                "cannot set `{key}`: `{}` is {}, not a mapping",
                display_segments(parent_path),
                kind_name(other)
            )));
        }
        None => {
            let mut p = parent_path.to_vec();
            while !p.is_empty() && find(nodes, &p).is_none() {
                p.pop();
            }
            let missing = &parent_path[..(p.len() + 1).min(parent_path.len())];
            return Err(StepError::usage(format!(
                "`{key}` does not exist: `{}` is missing{}",
                display_segments(missing),
                if create_missing {
                    " (--create-missing adds only the last key; add the parent mapping first)"
                } else {
                    ""
                }
            )));
        }
    };
    if !create_missing {
        return Err(StepError::usage(format!(
            "`{key}` does not exist in the file; check the key or pass --create-missing to add it"
        )));
    }
    if map.anchor != 0 || map.tag.is_some() {
        return Err(StepError::usage(format!(
            "cannot add `{key}`: its parent mapping has an anchor or tag; edit the file by hand"
        )));
    }
    let change = Change {
        key: key.clone(),
        old: None,
        new: s.value.clone(),
    };
    let out = if map.flow {
        let close = map
            .close
            .ok_or_else(|| unverified("flow mapping without `}`"))?;
        let mut p = close;
        let b = src.as_bytes();
        while p > 0 && matches!(b[p - 1], b' ' | b'\t' | b'\r' | b'\n') {
            p -= 1;
        }
        let sep = match b.get(p.wrapping_sub(1)) {
            Some(b'{') => "",
            Some(b',') => " ",
            _ => ", ",
        };
        format!(
            "{}{sep}{}: {}{}",
            &src[..p],
            render_key(&name, true),
            scalar::render(&s.value, Style::Plain, true),
            &src[p..]
        )
    } else {
        let col = map.key_col.unwrap_or(0);
        // After the line holding the end of the mapping's last value.
        let b = src.as_bytes();
        let mut p = map.last_end;
        while p > 0 && matches!(b[p - 1], b' ' | b'\t' | b'\r' | b'\n') {
            p -= 1;
        }
        let line = format!(
            "{}{}: {}",
            " ".repeat(col),
            render_key(&name, false),
            scalar::render(&s.value, Style::Plain, false)
        );
        match src[p..].find('\n') {
            Some(i) => {
                let eol = p + i + 1;
                let le = line_ending_at(src, eol);
                format!("{}{line}{le}{}", &src[..eol], &src[eol..])
            }
            None => {
                let le = line_ending_at(src, src.len());
                format!("{src}{le}{line}")
            }
        }
    };
    Ok((out, change))
}

/// A node reduced to what must not change: path, kind, value, style, tag, anchor.
fn signature(n: &Node) -> String {
    match &n.kind {
        Kind::Scalar(s) => format!(
            "{:?} scalar {:?} {:?} {:?} &{}",
            n.path, s.value, s.style, s.tag, s.anchor
        ),
        Kind::Mapping(m) => format!("{:?} map flow={} {:?} &{}", n.path, m.flow, m.tag, m.anchor),
        Kind::Sequence => format!("{:?} seq", n.path),
        Kind::Alias(a) => format!("{:?} alias {a}", n.path),
    }
}

fn verify(
    original: &[Node],
    text: &str,
    settings: &[Setting],
    created: &[Vec<Segment>],
) -> ct_step::Result<()> {
    let edited = scan::scan(text).map_err(|e| unverified(e.message()))?;
    let targeted = |n: &Node| {
        settings
            .iter()
            .any(|s| s.key.segments() == n.path.as_slice())
    };
    let keep = |nodes: &[Node]| -> Vec<String> {
        nodes
            .iter()
            .filter(|n| !targeted(n))
            .map(signature)
            .collect()
    };
    if keep(original) != keep(&edited) {
        return Err(unverified("a value other than the targets changed"));
    }
    for s in settings {
        match find(&edited, s.key.segments()).map(|n| &n.kind) {
            Some(Kind::Scalar(sc))
                if sc.value == s.value
                    && scalar::is_string(
                        &sc.value,
                        sc.style,
                        sc.tag.as_deref() == Some("tag:yaml.org,2002:str"),
                    ) => {}
            other => {
                return Err(unverified(format!("`{}` reads back as {other:?}", s.key)));
            }
        }
    }
    for c in created {
        if !settings.iter().any(|s| s.key.segments() == c.as_slice()) {
            return Err(unverified("unexpected created key"));
        }
    }
    // An independent parser must agree.
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(text)
        .map_err(|e| unverified(format!("libyaml cannot parse the result: {e}")))?;
    for s in settings {
        let mut v = &doc;
        for seg in s.key.segments() {
            let next = match (seg, v) {
                (Segment::Key(k), serde_yaml_ng::Value::Mapping(m)) => {
                    m.get(serde_yaml_ng::Value::String(k.clone()))
                }
                (Segment::Index(i), serde_yaml_ng::Value::Sequence(q)) => q.get(*i),
                _ => None,
            };
            v = next.ok_or_else(|| unverified(format!("libyaml does not find `{}`", s.key)))?;
        }
        if v.as_str() != Some(s.value.as_str()) {
            return Err(unverified(format!("libyaml reads `{}` as {v:?}", s.key)));
        }
    }
    Ok(())
}

/// The file must also parse with libyaml (serde_yaml_ng), as one document.
fn check_independent_parse(src: &str) -> ct_step::Result<()> {
    serde_yaml_ng::from_str::<serde_yaml_ng::Value>(src)
        .map(|_| ())
        .map_err(|e| StepError::usage(format!("not valid YAML: {e}")))
}

#[cfg(test)]
mod tests;
