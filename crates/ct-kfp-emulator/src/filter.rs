//! The v2beta1 list `filter`: `{"predicates": [{"operation", "key", "<type>_value"}]}`.
//!
//! Like the real server, the value is URL-unescaped once more after query decoding, parsed as
//! proto JSON (snake_case or camelCase names, enum as number or name), and an unknown key is a
//! 400.

use serde_json::Value;

/// A parsed predicate over string fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Predicate {
    pub op: Op,
    pub key: String,
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Equals,
    NotEquals,
    GreaterThan,
    GreaterThanEquals,
    LessThan,
    LessThanEquals,
    In,
    IsSubstring,
}

impl Op {
    fn parse(v: &Value) -> Option<Op> {
        let n = match v {
            Value::Number(n) => n.as_i64()?,
            Value::String(s) => match s.as_str() {
                "EQUALS" => 1,
                "NOT_EQUALS" => 2,
                "GREATER_THAN" => 3,
                "GREATER_THAN_EQUALS" => 5,
                "LESS_THAN" => 6,
                "LESS_THAN_EQUALS" => 7,
                "IN" => 8,
                "IS_SUBSTRING" => 9,
                _ => return None,
            },
            _ => return None,
        };
        Some(match n {
            1 => Op::Equals,
            2 => Op::NotEquals,
            3 => Op::GreaterThan,
            5 => Op::GreaterThanEquals,
            6 => Op::LessThan,
            7 => Op::LessThanEquals,
            8 => Op::In,
            9 => Op::IsSubstring,
            _ => return None,
        })
    }
}

/// Parse a `filter` query value; `keys` are the filterable fields of the resource.
pub fn parse(raw: &str, keys: &[&str]) -> Result<Vec<Predicate>, String> {
    // The server runs url.QueryUnescape on the already-decoded value.
    let text: String =
        url::form_urlencoded::parse(format!("f={}", raw.replace('&', "%26")).as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
    let v: Value = serde_json::from_str(&text).map_err(|e| {
        format!("Invalid input error: failed to parse valid filter from {raw:?}: {e}")
    })?;
    let preds = v
        .get("predicates")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut out = Vec::new();
    for p in preds {
        let key = p
            .get("key")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if !keys.contains(&key.as_str()) {
            return Err(format!(
                "Invalid input error: no support for filtering on unrecognized field {key:?}"
            ));
        }
        let op = p
            .get("operation")
            .and_then(Op::parse)
            .ok_or_else(|| format!("Invalid input error: invalid filter operation in {p}"))?;
        let get = |a: &str, b: &str| p.get(a).or_else(|| p.get(b));
        let values: Vec<String> = if let Some(s) = get("string_value", "stringValue") {
            vec![s.as_str().unwrap_or("").to_string()]
        } else if let Some(n) = get("int_value", "intValue").or(get("long_value", "longValue")) {
            vec![match n {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            }]
        } else if let Some(list) = get("string_values", "stringValues") {
            list.get("values")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        } else {
            return Err(format!(
                "Invalid input error: filter predicate has no value: {p}"
            ));
        };
        out.push(Predicate { op, key, values });
    }
    Ok(out)
}

/// Whether `obj` (an API JSON object) satisfies every predicate.
pub fn matches(preds: &[Predicate], obj: &Value) -> bool {
    preds.iter().all(|p| {
        let field = match obj.get(&p.key) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        };
        let v = p.values.first().cloned().unwrap_or_default();
        match p.op {
            Op::Equals => field == v,
            Op::NotEquals => field != v,
            Op::GreaterThan => field > v,
            Op::GreaterThanEquals => field >= v,
            Op::LessThan => field < v,
            Op::LessThanEquals => field <= v,
            Op::In => p.values.contains(&field),
            Op::IsSubstring => field.contains(&v),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sdk_filter_and_proto_json_variants() {
        let sdk =
            r#"{"predicates": [{"operation": 1, "key": "display_name", "stringValue": "a b"}]}"#;
        let p = parse(sdk, &["display_name"]).unwrap();
        assert!(matches(&p, &json!({"display_name": "a b"})));
        assert!(!matches(&p, &json!({"display_name": "a"})));
        let named = r#"{"predicates":[{"operation":"IS_SUBSTRING","key":"display_name","string_value":"jук"}]}"#;
        let p = parse(named, &["display_name"]).unwrap();
        assert!(matches(&p, &json!({"display_name": "xjукy"})));
        let e = parse(
            r#"{"predicates":[{"operation":1,"key":"nope","stringValue":"x"}]}"#,
            &["display_name"],
        );
        assert!(e.unwrap_err().contains("unrecognized field"));
        assert!(parse("not json", &["x"]).is_err());
    }

    #[test]
    fn value_is_unescaped_again_like_the_real_server() {
        // A literal '+' in the decoded value becomes a space (url.QueryUnescape).
        let p = parse(
            r#"{"predicates":[{"operation":1,"key":"k","stringValue":"a+b"}]}"#,
            &["k"],
        )
        .unwrap();
        assert_eq!(p[0].values, ["a b"]);
    }
}
