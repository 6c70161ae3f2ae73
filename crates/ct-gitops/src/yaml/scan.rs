//! One pass over saphyr-parser events that lists every node of a single-document file with
//! its path and byte positions. The editor splices bytes at these positions; the verifier
//! compares two listings.

use ct_step::StepError;
use saphyr_parser::{Event, Parser, ScalarStyle};

use super::scalar::Style;
use crate::keypath::{Segment, display_segments};

/// What a node is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Scalar(ScalarInfo),
    Mapping(MappingInfo),
    Sequence,
    Alias(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalarInfo {
    /// Decoded value.
    pub value: String,
    pub style: Style,
    /// Full tag (`tag:yaml.org,2002:str`), if any.
    pub tag: Option<String>,
    /// Anchor id (0 = none).
    pub anchor: usize,
    /// Byte range of the scalar's text (quotes included; tag and anchor excluded). For an
    /// empty (implicit null) value this is an empty range at the `:` that precedes it.
    pub start: usize,
    pub end: usize,
    /// True for an implicit empty value (`key:` with nothing after it).
    pub implicit_empty: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingInfo {
    pub flow: bool,
    pub anchor: usize,
    pub tag: Option<String>,
    /// Column (chars) of the first key, for block mappings.
    pub key_col: Option<usize>,
    /// Byte just after the last value of the mapping (block: where a new entry goes after).
    pub last_end: usize,
    /// Byte offset of the closing `}` (flow mappings).
    pub close: Option<usize>,
    pub len: usize,
}

/// One node: its path from the root and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub path: Vec<Segment>,
    pub kind: Kind,
    /// Whether the node is inside a flow collection (affects quoting).
    pub in_flow: bool,
}

enum Frame {
    Map {
        node: usize,
        key: Option<String>,
        want_key: bool,
        flow: bool,
        last_end: usize,
        seen_keys: Vec<String>,
    },
    Seq {
        node: usize,
        idx: usize,
        flow: bool,
        last_end: usize,
    },
}

fn style_of(s: ScalarStyle) -> Style {
    match s {
        ScalarStyle::Plain => Style::Plain,
        ScalarStyle::SingleQuoted => Style::SingleQuoted,
        ScalarStyle::DoubleQuoted => Style::DoubleQuoted,
        ScalarStyle::Literal => Style::Literal,
        ScalarStyle::Folded => Style::Folded,
    }
}

/// saphyr-parser 0.3.4 quirk: a quoted scalar's span runs on to the next token (blanks and a
/// `# comment` included). Find the closing quote ourselves.
fn quoted_end(src: &str, start: usize) -> usize {
    let bytes = src.as_bytes();
    let q = bytes[start];
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if q == b'"' => i += 2,
            b'\'' if q == b'\'' && bytes.get(i + 1) == Some(&b'\'') => i += 2,
            c if c == q => return i + 1,
            _ => i += 1,
        }
    }
    src.len()
}

/// Skip `!tag` and `&anchor` properties in front of a node's text.
fn skip_properties(src: &str, mut s: usize, end: usize) -> usize {
    let b = src.as_bytes();
    while s < end && (b[s] == b'!' || b[s] == b'&') {
        while s < end && !b[s].is_ascii_whitespace() {
            s += 1;
        }
        while s < end && (b[s] == b' ' || b[s] == b'\t' || b[s] == b'\r' || b[s] == b'\n') {
            s += 1;
        }
    }
    s
}

fn tag_string(tag: Option<&saphyr_parser::Tag>) -> Option<String> {
    tag.map(|t| format!("{}{}", t.handle, t.suffix))
}

/// The nodes of `src`, which must hold exactly one document whose root is a mapping.
/// Problems with the file are usage errors (exit 2).
pub fn scan(src: &str) -> ct_step::Result<Vec<Node>> {
    // saphyr markers count chars; map char index -> byte offset.
    let byte: Vec<usize> = src
        .char_indices()
        .map(|(i, _)| i)
        .chain([src.len()])
        .collect();
    let at = |i: usize| byte.get(i).copied().unwrap_or(src.len());
    let mut parser = Parser::new_from_str(src);
    let mut nodes: Vec<Node> = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut documents = 0;
    let mut flow_depth = 0usize;

    fn child_path(nodes: &[Node], stack: &[Frame]) -> Vec<Segment> {
        match stack.last() {
            None => Vec::new(),
            Some(Frame::Map { node, key, .. }) => {
                let mut p = nodes[*node].path.clone();
                p.push(Segment::Key(key.clone().unwrap_or_default()));
                p
            }
            Some(Frame::Seq { node, idx, .. }) => {
                let mut p = nodes[*node].path.clone();
                p.push(Segment::Index(*idx));
                p
            }
        }
    }
    fn consumed(stack: &mut [Frame], end: usize) {
        match stack.last_mut() {
            Some(Frame::Map {
                want_key, last_end, ..
            }) => {
                *want_key = true;
                *last_end = end;
            }
            Some(Frame::Seq { idx, last_end, .. }) => {
                *idx += 1;
                *last_end = end;
            }
            None => {}
        }
    }

    while let Some(ev) = parser.next_event() {
        let (ev, span) = ev.map_err(|e| StepError::usage(format!("not valid YAML: {e}")))?;
        let (s, e) = (at(span.start.index()), at(span.end.index()));
        // A key position in a mapping?
        let key_pos = matches!(stack.last(), Some(Frame::Map { want_key: true, .. }));
        match ev {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(StepError::usage(
                        "the file holds several YAML documents (---); only single-document files can be edited",
                    ));
                }
            }
            Event::Scalar(v, style, anchor, tag) if key_pos => {
                let _ = (style, anchor, tag);
                let Some(Frame::Map {
                    node,
                    key,
                    want_key,
                    seen_keys,
                    ..
                }) = stack.last_mut()
                else {
                    unreachable!("key_pos implies a mapping frame")
                };
                let k = v.to_string();
                if seen_keys.contains(&k) {
                    let mut p = nodes[*node].path.clone();
                    p.push(Segment::Key(k.clone()));
                    return Err(StepError::usage(format!(
                        "duplicate key `{}` (line {}); fix the file",
                        display_segments(&p),
                        span.start.line()
                    )));
                }
                seen_keys.push(k.clone());
                if let Kind::Mapping(m) = &mut nodes[*node].kind {
                    if m.key_col.is_none() {
                        m.key_col = Some(span.start.col());
                    }
                    m.len += 1;
                }
                *key = Some(k);
                *want_key = false;
            }
            Event::MappingStart(..) | Event::SequenceStart(..) | Event::Alias(_) if key_pos => {
                return Err(StepError::usage(format!(
                    "line {}: complex or alias mapping keys are not supported",
                    span.start.line()
                )));
            }
            Event::Scalar(v, style, anchor, tag) => {
                let style = style_of(style);
                let text = skip_properties(src, s, e.max(s));
                let implicit_empty = v.is_empty() && style == Style::Plain && s == e;
                let end = match style {
                    Style::SingleQuoted | Style::DoubleQuoted => quoted_end(src, text),
                    _ => e.max(text),
                };
                let path = child_path(&nodes, &stack);
                nodes.push(Node {
                    path,
                    kind: Kind::Scalar(ScalarInfo {
                        value: v.to_string(),
                        style,
                        tag: tag_string(tag.as_deref()),
                        anchor,
                        start: text,
                        end,
                        implicit_empty,
                    }),
                    in_flow: flow_depth > 0,
                });
                consumed(&mut stack, end);
            }
            Event::Alias(id) => {
                let path = child_path(&nodes, &stack);
                nodes.push(Node {
                    path,
                    kind: Kind::Alias(id),
                    in_flow: flow_depth > 0,
                });
                consumed(&mut stack, e);
            }
            Event::MappingStart(anchor, tag) => {
                let text = skip_properties(src, s, src.len());
                let flow = src[text..].starts_with('{');
                let path = child_path(&nodes, &stack);
                nodes.push(Node {
                    path,
                    kind: Kind::Mapping(MappingInfo {
                        flow,
                        anchor,
                        tag: tag_string(tag.as_deref()),
                        key_col: None,
                        last_end: s,
                        close: None,
                        len: 0,
                    }),
                    in_flow: flow_depth > 0,
                });
                if flow {
                    flow_depth += 1;
                }
                stack.push(Frame::Map {
                    node: nodes.len() - 1,
                    key: None,
                    want_key: true,
                    flow,
                    last_end: text,
                    seen_keys: Vec::new(),
                });
            }
            Event::SequenceStart(..) => {
                let text = skip_properties(src, s, src.len());
                let flow = src[text..].starts_with('[');
                let path = child_path(&nodes, &stack);
                nodes.push(Node {
                    path,
                    kind: Kind::Sequence,
                    in_flow: flow_depth > 0,
                });
                if flow {
                    flow_depth += 1;
                }
                stack.push(Frame::Seq {
                    node: nodes.len() - 1,
                    idx: 0,
                    flow,
                    last_end: text,
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                let Some(frame) = stack.pop() else {
                    return Err(StepError::usage("not valid YAML: unbalanced collection"));
                };
                let (flow, last_end, node) = match frame {
                    Frame::Map {
                        flow,
                        last_end,
                        node,
                        ..
                    }
                    | Frame::Seq {
                        flow,
                        last_end,
                        node,
                        ..
                    } => (flow, last_end, node),
                };
                // A flow collection ends at its closing bracket (the span may run on into a
                // trailing comment); a block collection ends with its last value.
                let closes = matches!(src.as_bytes().get(s), Some(b'}' | b']'));
                let end = if flow && closes { s + 1 } else { last_end };
                if let Kind::Mapping(m) = &mut nodes[node].kind {
                    m.last_end = last_end;
                    if flow && closes {
                        m.close = Some(s);
                    }
                }
                if flow {
                    flow_depth -= 1;
                }
                consumed(&mut stack, end);
            }
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
        }
    }
    match nodes.first() {
        None => Err(StepError::usage(
            "the file is empty; expected a YAML mapping",
        )),
        Some(n) if !matches!(n.kind, Kind::Mapping(_)) => Err(StepError::usage(
            "the document is not a mapping (key: value lines) at the top level",
        )),
        _ => Ok(nodes),
    }
}
