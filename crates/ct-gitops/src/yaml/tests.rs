//! Golden tests over `tests/fixtures/gitops/edit/`: `<case>.in.yaml` + `<case>.sets`
//! (`KEY=VALUE` per line, `#!create-missing` anywhere enables creation) and either
//! `<case>.expected.yaml` (exact bytes) or `<case>.error` (a substring of the error).
//! Every case also runs with CRLF line endings.

use std::path::{Path, PathBuf};

use super::*;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/gitops/edit")
}

struct Case {
    name: String,
    input: String,
    settings: Vec<Setting>,
    create: bool,
    expected: Result<String, String>,
}

fn load_cases() -> Vec<Case> {
    let dir = corpus_dir();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let n = e.unwrap().file_name().into_string().unwrap();
            n.strip_suffix(".in.yaml").map(str::to_string)
        })
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let read = |ext: &str| std::fs::read_to_string(dir.join(format!("{name}{ext}")));
            let input = read(".in.yaml").unwrap();
            let sets = read(".sets").unwrap();
            let create = sets.lines().any(|l| l == "#!create-missing");
            let settings = sets
                .lines()
                .filter(|l| !l.starts_with("#!"))
                .map(|l| Setting::parse(l).unwrap())
                .collect();
            let expected = match read(".expected.yaml") {
                Ok(e) => Ok(e),
                Err(_) => Err(read(".error").unwrap()),
            };
            Case {
                name,
                input,
                settings,
                create,
                expected,
            }
        })
        .collect()
}

fn crlf(s: &str) -> String {
    s.replace('\n', "\r\n")
}

#[test]
fn corpus_matches_golden_files_lf_and_crlf() {
    let cases = load_cases();
    assert!(cases.len() >= 20, "corpus too small: {}", cases.len());
    for c in &cases {
        for (variant, input, expected) in [
            ("lf", c.input.clone(), c.expected.clone()),
            ("crlf", crlf(&c.input), c.expected.clone().map(|e| crlf(&e))),
        ] {
            let got = apply(&input, &c.settings, c.create);
            match (&got, &expected) {
                (Ok(out), Ok(want)) => assert_eq!(
                    &out.text, want,
                    "{} ({variant}): output differs from the golden file",
                    c.name
                ),
                (Err(e), Err(want)) => assert!(
                    e.to_string().contains(want.as_str()),
                    "{} ({variant}): error `{e}` does not contain `{want}`",
                    c.name
                ),
                _ => panic!("{} ({variant}): got {got:?}, want {expected:?}", c.name),
            }
        }
    }
}

#[test]
fn same_values_again_change_nothing() {
    for c in load_cases() {
        let Ok(want) = &c.expected else { continue };
        let again = apply(want, &c.settings, c.create).unwrap();
        assert_eq!(&again.text, want, "{}: second run changed bytes", c.name);
        assert!(again.changes.is_empty(), "{}: {:?}", c.name, again.changes);
    }
}

#[test]
fn changes_report_old_and_new_values() {
    let src = "version: 1.0.0\napp: x\n";
    let s = vec![
        Setting::parse("version=1.1.0").unwrap(),
        Setting::parse("app=x").unwrap(),
    ];
    let out = apply(src, &s, false).unwrap();
    assert_eq!(out.text, "version: 1.1.0\napp: x\n");
    assert_eq!(out.changes.len(), 1);
    assert_eq!(out.changes[0].old.as_deref(), Some("1.0.0"));
    assert_eq!(out.changes[0].new, "1.1.0");
}

#[test]
fn duplicate_and_overlapping_settings_are_refused() {
    let src = "a:\n  b: 1\n";
    let e = apply(
        src,
        &[
            Setting::parse("a.b=1").unwrap(),
            Setting::parse("a.b=2").unwrap(),
        ],
        false,
    )
    .unwrap_err();
    assert!(e.to_string().contains("set twice"), "{e}");
    let e = apply(
        src,
        &[
            Setting::parse("a=1").unwrap(),
            Setting::parse("a.b=2").unwrap(),
        ],
        false,
    )
    .unwrap_err();
    assert!(e.to_string().contains("overlaps"), "{e}");
}

#[test]
fn setting_syntax_errors_are_clear() {
    assert!(
        Setting::parse("noequals")
            .unwrap_err()
            .to_string()
            .contains("KEY=VALUE")
    );
    assert!(Setting::parse("a..b=1").is_err());
    let s = Setting::parse("a=b=c").unwrap();
    assert_eq!(s.value, "b=c");
    // One --set is one setting: a newline in the value is refused, never a second key.
    for v in ["1\nimage_namespace=evil", "1\r", "a\tb", "x\0"] {
        let e = Setting::parse(&format!("version={v}")).unwrap_err();
        assert_eq!(e.exit_code(), 2, "{v:?}");
        assert!(e.to_string().contains("control character"), "{e}");
    }
    assert_eq!(Setting::parse("v=caf\u{e9}").unwrap().value, "café");
}
