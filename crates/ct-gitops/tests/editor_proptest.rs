//! Property tests of the YAML editor: it never panics, every generated document accepts any
//! string value, and only the targeted bytes change.

use ct_gitops::keypath::{KeyPath, Segment};
use ct_gitops::yaml::{self, Setting};
use proptest::prelude::*;

/// A scalar in one of the three inline styles.
fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9._/-]{0,12}",
        "[0-9]{1,3}(\\.[0-9]{1,3}){0,2}",
        Just("true".to_string()),
        Just("~".to_string()),
        "[a-z ]{0,8}".prop_map(|s| format!("'{}'", s)),
        "[a-z0-9 :#]{0,8}".prop_map(|s| format!("\"{}\"", s)),
    ]
}

/// Trailing decoration after a value.
fn trailer() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("   # note".to_string()),
        Just(" #x".to_string()),
    ]
}

#[derive(Debug, Clone)]
enum Val {
    Scalar(String, String),
    Block(Vec<(String, Val)>),
    Flow(Vec<(String, String)>),
}

fn key() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_]{0,6}"
}

fn dedup<T>(entries: Vec<(String, T)>) -> Vec<(String, T)> {
    let mut seen = std::collections::HashSet::new();
    entries
        .into_iter()
        .filter(|(k, _)| seen.insert(k.clone()))
        .collect()
}

fn value(depth: u32) -> BoxedStrategy<Val> {
    let leaf = prop_oneof![
        4 => (scalar(), trailer()).prop_map(|(s, t)| Val::Scalar(s, t)),
        1 => prop::collection::vec((key(), "[a-z0-9]{1,5}"), 0..4).prop_map(|e| Val::Flow(dedup(e))),
    ];
    if depth == 0 {
        return leaf.boxed();
    }
    prop_oneof![
        3 => leaf,
        1 => prop::collection::vec((key(), value(depth - 1)), 1..4).prop_map(|e| Val::Block(dedup(e))),
    ]
    .boxed()
}

fn render(entries: &[(String, Val)], indent: usize, blank_after: &[bool], out: &mut String) {
    for (i, (k, v)) in entries.iter().enumerate() {
        let pad = " ".repeat(indent);
        match v {
            Val::Scalar(s, t) => out.push_str(&format!("{pad}{k}: {s}{t}\n")),
            Val::Flow(e) => {
                let inner: Vec<String> = e.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                out.push_str(&format!("{pad}{k}: {{{}}}\n", inner.join(", ")));
            }
            Val::Block(e) => {
                out.push_str(&format!("{pad}{k}:   # nested\n"));
                render(e, indent + 2, &[], out);
            }
        }
        if blank_after.get(i).copied().unwrap_or(false) {
            out.push('\n');
        }
    }
}

/// Paths to every scalar and every mapping (for inserts).
fn paths(
    entries: &[(String, Val)],
    prefix: &[Segment],
    scalars: &mut Vec<Vec<Segment>>,
    maps: &mut Vec<Vec<Segment>>,
) {
    maps.push(prefix.to_vec());
    for (k, v) in entries {
        let mut p = prefix.to_vec();
        p.push(Segment::Key(k.clone()));
        match v {
            Val::Scalar(..) => scalars.push(p),
            Val::Flow(e) => {
                maps.push(p.clone());
                for (fk, _) in e {
                    let mut q = p.clone();
                    q.push(Segment::Key(fk.clone()));
                    scalars.push(q);
                }
            }
            Val::Block(e) => paths(e, &p, scalars, maps),
        }
    }
}

fn doc() -> impl Strategy<Value = (String, Vec<(String, Val)>)> {
    (
        prop::collection::vec((key(), value(2)), 1..6).prop_map(dedup),
        prop::collection::vec(any::<bool>(), 6),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(entries, blanks, header, crlf)| {
            let mut s = String::new();
            if header {
                s.push_str("# generated\n---\n");
            }
            render(&entries, 0, &blanks, &mut s);
            if crlf {
                s = s.replace('\n', "\r\n");
            }
            (s, entries)
        })
}

/// Any string a user might pass, ambiguous and hostile ones included.
fn new_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("1.10".to_string()),
        Just("yes".to_string()),
        Just("null".to_string()),
        Just("0123".to_string()),
        Just("a: b # c".to_string()),
        Just("".to_string()),
        Just("it's \"quoted\" \\ here".to_string()),
        "[a-zA-Z0-9 .:#'\"\\-{}\\[\\],&*!|>%@`~]{0,16}",
        any::<String>().prop_map(|s| s.replace('\0', "")),
    ]
}

fn common_prefix(a: &str, b: &str) -> usize {
    a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count()
}

fn common_suffix(a: &str, b: &str) -> usize {
    a.bytes()
        .rev()
        .zip(b.bytes().rev())
        .take_while(|(x, y)| x == y)
        .count()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, .. ProptestConfig::default() })]

    #[test]
    fn setting_an_existing_scalar_changes_only_its_bytes(
        (src, entries) in doc(), pick in any::<prop::sample::Index>(), v in new_value()
    ) {
        let (mut scalars, mut maps) = (Vec::new(), Vec::new());
        paths(&entries, &[], &mut scalars, &mut maps);
        prop_assume!(!scalars.is_empty());
        let path = pick.get(&scalars).clone();
        let key = KeyPath::from_segments(path).unwrap();
        let nodes = yaml::scan::scan(&src).unwrap();
        let node = nodes.iter().find(|n| n.path == key.segments()).unwrap();
        let yaml::scan::Kind::Scalar(sc) = &node.kind else { panic!("not a scalar") };
        let (start, end) = (sc.start, sc.end);
        let out = yaml::apply(&src, &[Setting { key: key.clone(), value: v.clone() }], false)
            .unwrap_or_else(|e| panic!("{key}={v:?} on\n{src}\nfailed: {e}"));
        prop_assert!(out.text.starts_with(&src[..start]), "bytes before the value changed");
        prop_assert!(out.text.ends_with(&src[end..]), "bytes after the value changed");
        // Idempotent.
        let again = yaml::apply(&out.text, &[Setting { key, value: v }], false).unwrap();
        prop_assert_eq!(again.text, out.text);
    }

    #[test]
    fn creating_a_key_inserts_one_chunk(
        (src, entries) in doc(), pick in any::<prop::sample::Index>(), name in "[a-z]{1,5}_new", v in new_value()
    ) {
        let (mut scalars, mut maps) = (Vec::new(), Vec::new());
        paths(&entries, &[], &mut scalars, &mut maps);
        let mut path = pick.get(&maps).clone();
        path.push(Segment::Key(name));
        let key = KeyPath::from_segments(path).unwrap();
        let out = yaml::apply(&src, &[Setting { key: key.clone(), value: v.clone() }], true)
            .unwrap_or_else(|e| panic!("create {key}={v:?} on\n{src}\nfailed: {e}"));
        let (p, s) = (common_prefix(&src, &out.text), common_suffix(&src, &out.text));
        prop_assert!(p + s >= src.len(), "more than one region changed:\n{src}\n---\n{}", out.text);
        prop_assert!(out.text.len() > src.len());
    }

    #[test]
    fn arbitrary_input_never_panics(src in any::<String>(), k in "[a-z.\\[\\]0-9]{1,8}", v in any::<String>()) {
        if let Ok(key) = k.parse::<KeyPath>() {
            let _ = yaml::apply(&src, &[Setting { key: key.clone(), value: v.clone() }], false);
            let _ = yaml::apply(&src, &[Setting { key, value: v }], true);
        }
    }

    #[test]
    fn yaml_like_garbage_never_panics(
        src in "([a-z]{1,3}|: |- |\\{|\\}|\\[|\\]|, |#|'|\"|\n|  |&a|\\*a|!!str |\\||>|---|\\.\\.\\.|\r\n|%YAML 1.2\n){0,40}",
        v in new_value()
    ) {
        for k in ["a", "a.b", "a[0]", "b.a"] {
            let key: KeyPath = k.parse().unwrap();
            let _ = yaml::apply(&src, &[Setting { key: key.clone(), value: v.clone() }], true);
        }
    }
}
