//! Scalar typing and rendering: when does a plain scalar stop being a string, and how to
//! write a string so every YAML 1.1 or 1.2 reader (Argo CD, Helm, kustomize, PyYAML) reads it
//! back as that same string.

/// Quote style of a scalar in the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    Literal,
    Folded,
}

/// Whether a *plain* scalar with this text resolves to something other than a string under
/// the YAML 1.2 core schema or YAML 1.1 (null, bool, int, float, timestamp, merge, value).
pub fn plain_is_ambiguous(v: &str) -> bool {
    if v.is_empty() {
        return true; // null
    }
    let lower = v.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "~" | "null" | "true" | "false" | "yes" | "no" | "y" | "n" | "on" | "off" | "<<" | "="
    ) {
        return true;
    }
    // Rust's float parser accepts 1e3, 1., .5, inf, infinity, nan: all numbers somewhere.
    if v.parse::<f64>().is_ok() {
        return true;
    }
    looks_numeric(v) || looks_timestamp(v)
}

/// YAML 1.1/1.2 int and float forms Rust's parser does not cover: `0x1F`, `0o17`, `0b101`,
/// `1_000`, `+.inf`, `.NaN`, sexagesimal `1:30`, `1_0.5`.
fn looks_numeric(v: &str) -> bool {
    let body = v.strip_prefix(['+', '-']).unwrap_or(v);
    if body.is_empty() {
        return false;
    }
    let lower = body.to_ascii_lowercase();
    if lower == ".inf" || lower == ".nan" {
        return true;
    }
    for (prefix, ok) in [
        (
            "0x",
            (|c: char| c.is_ascii_hexdigit() || c == '_') as fn(char) -> bool,
        ),
        ("0o", |c: char| ('0'..='7').contains(&c) || c == '_'),
        ("0b", |c: char| c == '0' || c == '1' || c == '_'),
    ] {
        if let Some(rest) = lower.strip_prefix(prefix) {
            return !rest.is_empty() && rest.chars().all(ok);
        }
    }
    // Digits with `_`, `:` (sexagesimal), one `.`, and an exponent: a number in YAML 1.1
    // as soon as it starts with a digit or `.digit` and contains nothing else.
    let first_ok = body.starts_with(|c: char| c.is_ascii_digit())
        || (body.starts_with('.') && body[1..].starts_with(|c: char| c.is_ascii_digit()));
    if !first_ok {
        return false;
    }
    let mut dots = 0;
    let mut chars = body.chars().peekable();
    let mut seen_exp = false;
    while let Some(c) = chars.next() {
        match c {
            '0'..='9' | '_' | ':' => {}
            '.' => {
                dots += 1;
                if dots > 1 || seen_exp {
                    return false;
                }
            }
            'e' | 'E' if !seen_exp => {
                seen_exp = true;
                if let Some(&s) = chars.peek()
                    && (s == '+' || s == '-')
                {
                    chars.next();
                }
                if !chars.peek().is_some_and(char::is_ascii_digit) {
                    return false;
                }
            }
            _ => return false,
        }
    }
    true
}

/// YAML 1.1 timestamps (`2001-12-14`, `2001-12-14t21:59:43.10-05:00`): any value starting with
/// `YYYY-M-D` is treated as one.
fn looks_timestamp(v: &str) -> bool {
    let b = v.as_bytes();
    if b.len() < 8 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return false;
    }
    let rest = &v[5..];
    let mut parts = rest.splitn(2, '-');
    let month = parts.next().unwrap_or("");
    let Some(tail) = parts.next() else {
        return false;
    };
    let day: String = tail.chars().take_while(char::is_ascii_digit).collect();
    (1..=2).contains(&month.len())
        && month.chars().all(|c| c.is_ascii_digit())
        && (1..=2).contains(&day.len())
}

/// Characters YAML does not allow (or readers mangle) in a plain or single-quoted scalar.
fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}' | '\u{feff}')
}

/// Whether `v` can be written as a plain scalar (as a value, in block or flow context) and be
/// read back as exactly the string `v`.
pub fn plain_is_safe(v: &str, flow: bool) -> bool {
    if plain_is_ambiguous(v) || v.chars().any(needs_escape) {
        return false;
    }
    if v.starts_with([' ', '\t']) || v.ends_with([' ', '\t']) {
        return false;
    }
    if v.starts_with("---") || v.starts_with("...") {
        return false;
    }
    let mut chars = v.chars();
    let first = chars.next().unwrap_or(' ');
    let second = chars.next();
    if matches!(
        first,
        ',' | '['
            | ']'
            | '{'
            | '}'
            | '#'
            | '&'
            | '*'
            | '!'
            | '|'
            | '>'
            | '\''
            | '"'
            | '%'
            | '@'
            | '`'
    ) {
        return false;
    }
    // `?x` and `:x` are plain in YAML 1.2 but some readers (libyaml in flow context) refuse them.
    if matches!(first, '?' | ':') {
        return false;
    }
    if first == '-' {
        match second {
            None | Some(' ') | Some('\t') => return false,
            Some(c) if flow && matches!(c, ',' | '[' | ']' | '{' | '}') => return false,
            _ => {}
        }
    }
    if v.contains(": ")
        || v.contains(":\t")
        || v.ends_with(':')
        || v.contains(" #")
        || v.contains("\t#")
    {
        return false;
    }
    if flow && v.contains([',', '[', ']', '{', '}', ':']) {
        return false;
    }
    true
}

/// `"…"` with YAML escapes.
pub fn double_quoted(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 2);
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c if needs_escape(c) => {
                let n = c as u32;
                if n <= 0xff {
                    out.push_str(&format!("\\x{n:02x}"));
                } else {
                    out.push_str(&format!("\\u{n:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `'…'` (quotes doubled), or `None` when the value cannot be single-quoted on one line.
pub fn single_quoted(v: &str) -> Option<String> {
    if v.chars().any(needs_escape) {
        return None;
    }
    // Leading/trailing spaces are kept inside quotes on a single line.
    Some(format!("'{}'", v.replace('\'', "''")))
}

/// Write `v` as a string scalar, keeping `style` when possible: single and double quotes
/// stay, a plain scalar stays plain unless that would change its type or break the
/// document (then it is double-quoted). `flow` is true inside `{…}` / `[…]`.
pub fn render(v: &str, style: Style, flow: bool) -> String {
    match style {
        Style::SingleQuoted => single_quoted(v).unwrap_or_else(|| double_quoted(v)),
        Style::Plain if plain_is_safe(v, flow) => v.to_string(),
        _ => double_quoted(v),
    }
}

/// Whether a scalar written in `style` with decoded text `v` is read as a string.
pub fn is_string(v: &str, style: Style, str_tag: bool) -> bool {
    str_tag || style != Style::Plain || !plain_is_ambiguous(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ambiguous_plain_values_are_detected() {
        for v in [
            "1.10",
            "1e3",
            "0123",
            "true",
            "null",
            "yes",
            "~",
            "NO",
            "On",
            "",
            "0x1F",
            "0o17",
            "0b101",
            "1_000",
            "+.inf",
            ".NaN",
            "-.5",
            "1:30",
            "190:20:30.15",
            "2001-12-14",
            "2024-1-5t10:00:00",
            "<<",
            "=",
            "12",
            "-3",
            "inf",
            "1.",
            "3.0e-2",
        ] {
            assert!(plain_is_ambiguous(v), "{v:?} should be ambiguous");
        }
        for v in [
            "v1.10",
            "1.2.3",
            "abc123",
            "2Gi",
            "500m",
            "sha256:0123",
            "user1-test",
            "1.3.0",
            "0.1.0-rc1",
            "e3",
            "1e",
            "deadbeef",
            "yesterday",
            "nulls",
            "12-3",
            "1_2_3a",
        ] {
            assert!(!plain_is_ambiguous(v), "{v:?} should be a string");
        }
    }

    #[test]
    fn plain_safety_covers_syntax() {
        for v in [
            "a: b",
            "a #b",
            "#x",
            "- x",
            "-",
            ":",
            "? x",
            "&a",
            "*a",
            "!t",
            "|",
            ">",
            "'a",
            "\"a",
            "%x",
            "@x",
            "`x",
            " a",
            "a ",
            "a:",
            "---x",
            "...",
            "a\nb",
            "a\tb\u{7}",
            "[x]",
            "{x}",
            ",x",
            ":x",
            "?x",
        ] {
            assert!(!plain_is_safe(v, false), "{v:?} must be quoted");
        }
        for v in [
            "a:b",
            "quay.io:443/acme/m",
            "a#b",
            "-x",
            "--port",
            "a, b",
            "x]",
        ] {
            assert!(
                plain_is_safe(v, false),
                "{v:?} can stay plain in block context"
            );
        }
        for v in ["a, b", "x]", "a{b", "-[x", "a:b", ":A"] {
            assert!(
                !plain_is_safe(v, true),
                "{v:?} must be quoted in a flow collection"
            );
        }
    }

    #[test]
    fn rendering_keeps_style_and_escapes() {
        assert_eq!(render("1.3.0", Style::DoubleQuoted, false), "\"1.3.0\"");
        assert_eq!(render("it's", Style::SingleQuoted, false), "'it''s'");
        assert_eq!(render("1.10", Style::Plain, false), "\"1.10\"");
        assert_eq!(render("v2", Style::Plain, false), "v2");
        assert_eq!(
            render("a\"b\\c\nd\u{1}", Style::DoubleQuoted, false),
            "\"a\\\"b\\\\c\\nd\\x01\""
        );
        assert_eq!(render("x\ny", Style::SingleQuoted, false), "\"x\\ny\"");
        assert_eq!(render("a, b", Style::Plain, true), "\"a, b\"");
    }
}
