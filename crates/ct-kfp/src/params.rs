//! Run parameters, typed by the pipeline's `root.inputDefinitions.parameters`.
//!
//! Values come from `--parameters-file` (a JSON object, e.g. `default_parameters.json`) and then
//! repeatable `--param KEY=VALUE` flags, later ones winning (Python `dict.update` order: a key
//! keeps its first position). Flag values are text and are coerced to the declared type; file
//! values must already have the right JSON type. Every problem (unknown key, wrong type,
//! required parameter unset) is a usage error raised before any request.

use std::fmt;
use std::path::Path;

use serde_json::{Map, Number, Value};

use ct_step::input::{MAX_PARAMETERS_FILE, read_text_bounded};
use ct_step::{Result, StepError};

/// The IR `parameterType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    String,
    Integer,
    Double,
    Boolean,
    List,
    Struct,
}

impl ParamType {
    /// From `parameterType` (or the pre-2.1 IR `type`: STRING/INT/DOUBLE).
    pub fn parse(s: &str) -> Option<ParamType> {
        Some(match s {
            "STRING" => ParamType::String,
            "NUMBER_INTEGER" | "INT" => ParamType::Integer,
            "NUMBER_DOUBLE" | "DOUBLE" => ParamType::Double,
            "BOOLEAN" => ParamType::Boolean,
            "LIST" => ParamType::List,
            "STRUCT" => ParamType::Struct,
            _ => return None,
        })
    }

    fn hint(self) -> &'static str {
        match self {
            ParamType::String => "pass any text",
            ParamType::Integer => "pass an integer",
            ParamType::Double => "pass a number",
            ParamType::Boolean => "pass true or false",
            ParamType::List => "pass a JSON array, e.g. [1, 2]",
            ParamType::Struct => "pass a JSON object, e.g. {\"k\": 1}",
        }
    }

    /// Coerce flag text to this type.
    pub fn coerce(self, text: &str) -> Option<Value> {
        match self {
            ParamType::String => Some(Value::String(text.to_string())),
            ParamType::Integer => text.trim().parse::<i64>().ok().map(Value::from),
            ParamType::Double => text
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(Number::from_f64)
                .map(Value::Number),
            ParamType::Boolean => match text.trim().to_ascii_lowercase().as_str() {
                "true" => Some(Value::Bool(true)),
                "false" => Some(Value::Bool(false)),
                _ => None,
            },
            ParamType::List => serde_json::from_str::<Value>(text)
                .ok()
                .filter(Value::is_array),
            ParamType::Struct => serde_json::from_str::<Value>(text)
                .ok()
                .filter(Value::is_object),
        }
    }

    /// Whether a JSON value (from the parameters file) fits this type.
    pub fn accepts(self, v: &Value) -> bool {
        match self {
            ParamType::String => v.is_string(),
            ParamType::Integer => {
                v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0)
            }
            ParamType::Double => v.is_number(),
            ParamType::Boolean => v.is_boolean(),
            ParamType::List => v.is_array(),
            ParamType::Struct => v.is_object(),
        }
    }
}

impl fmt::Display for ParamType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParamType::String => "STRING",
            ParamType::Integer => "NUMBER_INTEGER",
            ParamType::Double => "NUMBER_DOUBLE",
            ParamType::Boolean => "BOOLEAN",
            ParamType::List => "LIST",
            ParamType::Struct => "STRUCT",
        })
    }
}

/// One declared pipeline parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamDecl {
    pub name: String,
    pub ty: ParamType,
    pub default: Option<Value>,
    pub optional: bool,
}

impl ParamDecl {
    /// Must be given a value: no default and not optional.
    pub fn required(&self) -> bool {
        self.default.is_none() && !self.optional
    }
}

/// The parameters of `root.inputDefinitions.parameters`, in IR order.
pub fn declared(ir: &Value, label: &str) -> Result<Vec<ParamDecl>> {
    let Some(params) = ir.pointer("/root/inputDefinitions/parameters") else {
        return Ok(Vec::new());
    };
    let Some(params) = params.as_object() else {
        return Err(StepError::usage(format!(
            "{label}: root.inputDefinitions.parameters is not a mapping"
        )));
    };
    params
        .iter()
        .map(|(name, spec)| {
            let ty_text = spec
                .get("parameterType")
                .or_else(|| spec.get("type"))
                .and_then(Value::as_str)
                .unwrap_or("");
            let ty = ParamType::parse(ty_text).ok_or_else(|| {
                StepError::usage(format!(
                    "{label}: parameter {name} has unknown type `{ty_text}`; recompile with a supported kfp SDK"
                ))
            })?;
            Ok(ParamDecl {
                name: name.clone(),
                ty,
                default: spec.get("defaultValue").filter(|v| !v.is_null()).cloned(),
                optional: spec
                    .get("isOptional")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            })
        })
        .collect()
}

/// Split one `--param KEY=VALUE` at the first `=`. The value is one value, whatever it holds
/// (a newline in it does not start another parameter); the key has no control character.
pub fn parse_param_flag(s: &str) -> Result<(String, String)> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() && !k.chars().any(char::is_control) => {
            Ok((k.trim().to_string(), v.to_string()))
        }
        _ => Err(StepError::usage(format!(
            "--param {s:?}: write KEY=VALUE, e.g. --param epochs=10"
        ))),
    }
}

/// Read `--parameters-file` (at most [`MAX_PARAMETERS_FILE`]): a JSON object.
pub fn load_parameters_file(path: &Path) -> Result<Map<String, Value>> {
    let label = format!("--parameters-file {}", path.display());
    let text = read_text_bounded(path, MAX_PARAMETERS_FILE, "--parameters-file")?;
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(StepError::usage(format!(
            "{label}: must be a JSON object of parameter names to values"
        ))),
        Err(e) => Err(StepError::usage(format!("{label}: not valid JSON: {e}"))),
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn unknown(source: &str, key: &str, decls: &[ParamDecl]) -> StepError {
    let names: Vec<&str> = decls.iter().map(|d| d.name.as_str()).collect();
    let declares = if names.is_empty() {
        "it declares no parameters".to_string()
    } else {
        format!("it declares: {}", names.join(", "))
    };
    StepError::usage(format!(
        "{source}: the pipeline has no parameter {key}; {declares}"
    ))
}

/// The run's `runtime_config.parameters`: the file's values, then the flags, type-checked.
/// `file` is `(label, object)` for messages, e.g. `("--parameters-file p.json", map)`.
pub fn resolve(
    decls: &[ParamDecl],
    file: Option<(&str, Map<String, Value>)>,
    flags: &[(String, String)],
) -> Result<Map<String, Value>> {
    let find = |k: &str| decls.iter().find(|d| d.name == k);
    let mut out = Map::new();
    if let Some((label, values)) = file {
        for (k, v) in values {
            let d = find(&k).ok_or_else(|| unknown(label, &k, decls))?;
            if !d.ty.accepts(&v) {
                return Err(StepError::usage(format!(
                    "{label}: {k} is {} but the file has {} ({}); {}",
                    d.ty,
                    json_kind(&v),
                    v,
                    d.ty.hint()
                )));
            }
            out.insert(k, v);
        }
    }
    for (k, text) in flags {
        let source = format!("--param {k}={text}");
        let d = find(k).ok_or_else(|| unknown(&source, k, decls))?;
        let v = d.ty.coerce(text).ok_or_else(|| {
            StepError::usage(format!("{source}: {k} is {}; {}", d.ty, d.ty.hint()))
        })?;
        out.insert(k.clone(), v);
    }
    let missing: Vec<&str> = decls
        .iter()
        .filter(|d| d.required() && !out.contains_key(&d.name))
        .map(|d| d.name.as_str())
        .collect();
    if let Some(first) = missing.first() {
        return Err(StepError::usage(format!(
            "required pipeline parameter{} {} not set (no default in the pipeline); pass --param {first}=VALUE or put {} in --parameters-file",
            if missing.len() > 1 { "s" } else { "" },
            missing.join(", "),
            if missing.len() > 1 { "them" } else { "it" },
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decls() -> Vec<ParamDecl> {
        let ir = json!({"root": {"inputDefinitions": {"parameters": {
            "version": {"parameterType": "STRING"},
            "epochs": {"parameterType": "NUMBER_INTEGER", "defaultValue": 10.0, "isOptional": true},
            "lr": {"parameterType": "NUMBER_DOUBLE", "defaultValue": 0.05, "isOptional": true},
            "prod": {"parameterType": "BOOLEAN", "defaultValue": false, "isOptional": true},
            "tags": {"parameterType": "LIST", "isOptional": true},
            "cfg": {"parameterType": "STRUCT", "isOptional": true}
        }}}});
        declared(&ir, "t").unwrap()
    }

    fn flags(v: &[&str]) -> Vec<(String, String)> {
        v.iter().map(|s| parse_param_flag(s).unwrap()).collect()
    }

    #[test]
    fn flags_are_coerced_to_the_declared_type() {
        let out = resolve(
            &decls(),
            None,
            &flags(&[
                "version=abc",
                "epochs=12",
                "lr=1",
                "prod=True",
                "tags=[1,\"a\"]",
                "cfg={\"k\":{\"n\":1}}",
            ]),
        )
        .unwrap();
        assert_eq!(
            Value::Object(out),
            json!({"version": "abc", "epochs": 12, "lr": 1.0, "prod": true,
                   "tags": [1, "a"], "cfg": {"k": {"n": 1}}})
        );
    }

    #[test]
    fn file_values_keep_their_json_type_and_flags_override_in_place() {
        let file = json!({"version": "0000000", "epochs": 10, "lr": 0.05, "prod": false});
        let file = file.as_object().unwrap().clone();
        let out = resolve(
            &decls(),
            Some(("--parameters-file p.json", file)),
            &flags(&["prod=true", "version=abc1234"]),
        )
        .unwrap();
        let keys: Vec<_> = out.keys().cloned().collect();
        assert_eq!(
            keys,
            ["version", "epochs", "lr", "prod"],
            "dict.update order"
        );
        assert_eq!(
            serde_json::to_string(&out).unwrap(),
            r#"{"version":"abc1234","epochs":10,"lr":0.05,"prod":true}"#
        );
    }

    #[test]
    fn wrong_values_are_usage_errors_naming_the_input() {
        let cases: &[(&[&str], &str)] = &[
            (
                &["version=a", "epochs=ten"],
                "--param epochs=ten: epochs is NUMBER_INTEGER; pass an integer",
            ),
            (&["version=a", "epochs=1.5"], "NUMBER_INTEGER"),
            (
                &["version=a", "lr=fast"],
                "--param lr=fast: lr is NUMBER_DOUBLE; pass a number",
            ),
            (&["version=a", "prod=yes"], "pass true or false"),
            (&["version=a", "tags={}"], "LIST"),
            (&["version=a", "cfg=[1]"], "STRUCT"),
            (
                &["version=a", "nope=1"],
                "--param nope=1: the pipeline has no parameter nope; it declares: version, epochs",
            ),
            (&["epochs=1"], "required pipeline parameter version not set"),
        ];
        for (f, want) in cases {
            let e = resolve(&decls(), None, &flags(f)).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{f:?}");
            assert!(e.to_string().contains(want), "{f:?}: {e}");
        }
        let e = parse_param_flag("epochs").unwrap_err();
        assert!(e.to_string().contains("KEY=VALUE"));
    }

    #[test]
    fn file_type_mismatches_are_reported() {
        for (file, want) in [
            (
                json!({"version": "a", "prod": "True"}),
                "prod is BOOLEAN but the file has a string",
            ),
            (
                json!({"version": "a", "epochs": 1.5}),
                "epochs is NUMBER_INTEGER",
            ),
            (
                json!({"version": 7}),
                "version is STRING but the file has a number",
            ),
            (
                json!({"version": "a", "extra": 1}),
                "--parameters-file p.json: the pipeline has no parameter extra",
            ),
            (json!({"version": null}), "null"),
        ] {
            let e = resolve(
                &decls(),
                Some((
                    "--parameters-file p.json",
                    file.as_object().unwrap().clone(),
                )),
                &[],
            )
            .unwrap_err();
            assert!(e.to_string().contains(want), "{e}");
        }
        // An integral float is accepted for an integer, as the server does.
        let ok = json!({"version": "a", "epochs": 10.0});
        resolve(&decls(), Some(("f", ok.as_object().unwrap().clone())), &[]).unwrap();
    }

    #[test]
    fn legacy_type_field_and_unknown_types() {
        let ir = json!({"root": {"inputDefinitions": {"parameters": {"n": {"type": "INT"}}}}});
        assert_eq!(declared(&ir, "t").unwrap()[0].ty, ParamType::Integer);
        let ir = json!({"root": {"inputDefinitions": {"parameters": {"n": {"parameterType": "TASK_FINAL_STATUS"}}}}});
        assert!(
            declared(&ir, "t")
                .unwrap_err()
                .to_string()
                .contains("TASK_FINAL_STATUS")
        );
    }
}
