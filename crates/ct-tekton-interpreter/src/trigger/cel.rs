//! The Triggers CEL environment: `body`, `header` and `extensions` bound, the cel-go strings
//! extension and the Triggers extensions `truncate(n)`, `header.canonical(name)` and
//! `<string>.compareSecret(key, secretName)`.

use std::sync::Arc;

use cel::ExecutionError;
use cel::extractors::This;
use serde_json::Value;

use super::Secrets;
use crate::Error;

/// Evaluate a Triggers CEL expression with `body`, `header` and `extensions` bound;
/// `compareSecret` reads `secrets`.
pub fn cel_eval(
    expr: &str,
    body: &Value,
    headers: &[(String, String)],
    extensions: &Value,
    secrets: &Secrets,
) -> Result<Value, Error> {
    let mut env = cel::Env::stdlib();
    env.add_extension(cel::extensions::strings)
        .map_err(|e| Error::new(format!("CEL strings extension: {e:?}")))?;
    let env = Arc::new(env);
    let program = env
        .compile(expr)
        .map_err(|e| Error::new(format!("CEL {expr:?} does not parse: {e}")))?;
    let mut ctx = cel::Context::with_env(env);
    let declare = |e: cel::DeclarationError| Error::new(format!("CEL extension: {e:?}"));
    ctx.add_function(
        "truncate",
        |This(s): This<Arc<String>>, n: i64| -> Arc<String> {
            let n = usize::try_from(n).unwrap_or(0);
            Arc::new(s.chars().take(n).collect())
        },
    )
    .map_err(declare)?;
    // `header.canonical(name)`: the first value of the header, "" when absent (Go's
    // `http.Header.Get` on the canonical key).
    let canonical: Arc<Vec<(String, String)>> = Arc::new(
        headers
            .iter()
            .map(|(k, v)| (canonical_header(k), v.clone()))
            .collect(),
    );
    let headers_for_canonical = canonical.clone();
    ctx.add_function(
        "canonical",
        move |This(_header): This<cel::Value>, name: Arc<String>| -> Arc<String> {
            let key = canonical_header(&name);
            Arc::new(
                headers_for_canonical
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default(),
            )
        },
    )
    .map_err(declare)?;
    // `<string>.compareSecret(key, secretName)`: constant-time comparison with a Secret's key in
    // the EventListener's namespace; a Secret or key that does not exist is an evaluation error
    // (the delivery is not processed), as in Triggers.
    let secrets = Arc::new(secrets.clone());
    ctx.add_function(
        "compareSecret",
        move |This(value): This<Arc<String>>,
              key: Arc<String>,
              name: Arc<String>|
              -> cel::ResolveResult {
            match secrets.get(&(name.to_string(), key.to_string())) {
                Some(secret) => Ok(constant_time_eq(secret.as_bytes(), value.as_bytes()).into()),
                None => Err(ExecutionError::function_error(
                    "compareSecret",
                    format!("secret {name:?} with key {key:?} not found"),
                )),
            }
        },
    )
    .map_err(declare)?;
    // `header`: canonical name → every value, as Triggers binds `request.Header`.
    let mut hmap = serde_json::Map::new();
    for (k, v) in canonical.iter() {
        match hmap
            .entry(k.clone())
            .or_insert_with(|| Value::Array(Vec::new()))
        {
            Value::Array(values) => values.push(Value::String(v.clone())),
            _ => unreachable!("only arrays are inserted"),
        }
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

/// Compare without an early exit on the first difference (Go's `subtle.ConstantTimeCompare`).
pub(super) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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

    fn eval(expr: &str, body: &Value, headers: &[(String, String)]) -> Result<Value, Error> {
        let mut secrets = Secrets::new();
        secrets.insert(("am-token".into(), "token".into()), "s3cret".into());
        cel_eval(
            expr,
            body,
            headers,
            &Value::Object(Default::default()),
            &secrets,
        )
    }

    #[test]
    fn cel_with_strings_extension_and_truncate() {
        let body = serde_json::json!({"ref": "refs/heads/main", "after": "0123456789abcdef"});
        assert_eq!(
            eval("body.after.truncate(7)", &body, &[]).unwrap(),
            Value::String("0123456".into())
        );
        assert_eq!(
            eval("body.ref.split('/')[2]", &body, &[]).unwrap(),
            Value::String("main".into())
        );
        assert_eq!(
            eval("body.ref.startsWith('refs/heads/')", &body, &[]).unwrap(),
            Value::Bool(true)
        );
        assert!(eval("body.nope == 1", &body, &[]).is_err());
    }

    #[test]
    fn header_canonical_and_every_value_of_a_header() {
        let h = vec![
            ("authorization".to_string(), "Bearer a".to_string()),
            ("X-Thing".to_string(), "1".to_string()),
            ("x-thing".to_string(), "2".to_string()),
        ];
        let b = Value::Null;
        let s = |x: &str| Value::String(x.into());
        assert_eq!(
            eval("header.canonical('Authorization')", &b, &h).unwrap(),
            s("Bearer a")
        );
        assert_eq!(
            eval("header.canonical('AUTHORIZATION')", &b, &h).unwrap(),
            s("Bearer a")
        );
        assert_eq!(eval("header.canonical('x-thing')", &b, &h).unwrap(), s("1"));
        assert_eq!(eval("header.canonical('Missing')", &b, &h).unwrap(), s(""));
        assert_eq!(
            eval("header['X-Thing']", &b, &h).unwrap(),
            serde_json::json!(["1", "2"])
        );
    }

    #[test]
    fn compare_secret_matches_exactly_and_a_missing_secret_is_an_error() {
        let b = Value::Null;
        let t = |x: &str| eval(x, &b, &[]).unwrap();
        assert_eq!(
            t("'s3cret'.compareSecret('token', 'am-token')"),
            Value::Bool(true)
        );
        assert_eq!(
            t("'s3cre'.compareSecret('token', 'am-token')"),
            Value::Bool(false)
        );
        assert_eq!(
            t("'s3cret '.compareSecret('token', 'am-token')"),
            Value::Bool(false)
        );
        assert_eq!(
            t("''.compareSecret('token', 'am-token')"),
            Value::Bool(false)
        );
        let e = eval("'x'.compareSecret('token', 'other')", &b, &[]).unwrap_err();
        assert!(e.to_string().contains("\"other\""), "{e}");
        let e = eval("'x'.compareSecret('key', 'am-token')", &b, &[]).unwrap_err();
        assert!(e.to_string().contains("\"key\""), "{e}");
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
