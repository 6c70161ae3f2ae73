//! The `filter` query parameter of the v2beta1 list calls.
//!
//! The kfp SDK sends `json.dumps({"predicates": [{"operation": 1, "key": K, "stringValue": V}]})`:
//! Python's default separators (`", "`, `": "`), the integer enum (1 = EQUALS), camelCase
//! `stringValue` and `ensure_ascii` escaping. [`equals`] writes exactly those bytes, so a
//! server (or proxy log) sees the same filter from us as from the SDK.

/// `display_name EQUALS value` and friends: the filter JSON for one EQUALS predicate on a
/// string field.
pub fn equals(key: &str, value: &str) -> String {
    format!(
        "{{\"predicates\": [{{\"operation\": 1, \"key\": {}, \"stringValue\": {}}}]}}",
        py_json_str(key),
        py_json_str(value)
    )
}

/// A JSON string literal as Python's `json.dumps` writes it (`ensure_ascii=True`).
pub fn py_json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7f => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_bytes_as_the_kfp_sdk() {
        // From the captured trace of kfp 2.9.0 (notes/kfp-client-trace.md, request 2).
        assert_eq!(
            equals("display_name", "jukebox-model-training"),
            r#"{"predicates": [{"operation": 1, "key": "display_name", "stringValue": "jukebox-model-training"}]}"#
        );
    }

    #[test]
    fn escapes_like_python_json_dumps() {
        assert_eq!(py_json_str("a\"b\\c\nd"), r#""a\"b\\c\nd""#);
        assert_eq!(py_json_str("é"), r#""\u00e9""#);
        assert_eq!(py_json_str("😀"), r#""\ud83d\ude00""#);
        assert_eq!(py_json_str("\u{1}"), r#""\u0001""#);
    }
}
