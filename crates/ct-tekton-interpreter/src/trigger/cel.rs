//! The Triggers CEL environment: `body`, `header` and `extensions` bound, the cel-go strings
//! extension and Triggers' `truncate(n)`.

use std::sync::Arc;

use serde_json::Value;

use crate::Error;

/// Evaluate a Triggers CEL expression with `body`, `header` and `extensions` bound.
pub fn cel_eval(
    expr: &str,
    body: &Value,
    headers: &[(String, String)],
    extensions: &Value,
) -> Result<Value, Error> {
    let mut env = cel::Env::stdlib();
    env.add_extension(cel::extensions::strings)
        .map_err(|e| Error::new(format!("CEL strings extension: {e:?}")))?;
    let env = Arc::new(env);
    let program = env
        .compile(expr)
        .map_err(|e| Error::new(format!("CEL {expr:?} does not parse: {e}")))?;
    let mut ctx = cel::Context::with_env(env);
    ctx.add_function(
        "truncate",
        |cel::extractors::This(s): cel::extractors::This<Arc<String>>, n: i64| -> Arc<String> {
            let n = usize::try_from(n).unwrap_or(0);
            Arc::new(s.chars().take(n).collect())
        },
    )
    .map_err(|e| Error::new(format!("CEL truncate: {e:?}")))?;
    let mut hmap = serde_json::Map::new();
    for (k, v) in headers {
        hmap.insert(
            canonical_header(k),
            Value::Array(vec![Value::String(v.clone())]),
        );
    }
    for (name, v) in [
        ("body", body.clone()),
        ("header", Value::Object(hmap)),
        ("extensions", extensions.clone()),
    ] {
        let cv = cel::to_value(&v).map_err(|e| Error::new(format!("CEL {name}: {e}")))?;
        ctx.add_variable_from_value(name, cv);
    }
    let out = program
        .execute(&ctx)
        .map_err(|e| Error::new(format!("CEL {expr:?}: {e}")))?;
    to_json(&out)
        .ok_or_else(|| Error::new(format!("CEL {expr:?}: result {out:?} is not a JSON value")))
}

/// Scalars and lists of scalars (what filters and overlays return).
fn to_json(v: &cel::Value) -> Option<Value> {
    Some(match v {
        cel::Value::Bool(b) => Value::Bool(*b),
        cel::Value::String(s) => Value::String(s.to_string()),
        cel::Value::Int(i) => Value::from(*i),
        cel::Value::UInt(u) => Value::from(*u),
        cel::Value::Float(f) => Value::from(*f),
        cel::Value::Null => Value::Null,
        cel::Value::List(l) => Value::Array(l.iter().map(to_json).collect::<Option<_>>()?),
        _ => return None,
    })
}

/// `x-github-event` → `X-Github-Event` (Go's canonical MIME header key, as Triggers sees it).
fn canonical_header(k: &str) -> String {
    k.split('-')
        .map(|p| {
            let mut c = p.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + &c.as_str().to_ascii_lowercase(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cel_with_strings_extension_and_truncate() {
        let body = serde_json::json!({"ref": "refs/heads/main", "after": "0123456789abcdef"});
        let e = Value::Object(Default::default());
        assert_eq!(
            cel_eval("body.after.truncate(7)", &body, &[], &e).unwrap(),
            Value::String("0123456".into())
        );
        assert_eq!(
            cel_eval("body.ref.split('/')[2]", &body, &[], &e).unwrap(),
            Value::String("main".into())
        );
        assert_eq!(
            cel_eval("body.ref.startsWith('refs/heads/')", &body, &[], &e).unwrap(),
            Value::Bool(true)
        );
        assert!(cel_eval("body.nope == 1", &body, &[], &e).is_err());
    }

    #[test]
    fn canonical_headers() {
        assert_eq!(
            canonical_header("x-hub-signature-256"),
            "X-Hub-Signature-256"
        );
        assert_eq!(canonical_header("X-GitHub-Event"), "X-Github-Event");
    }
}
