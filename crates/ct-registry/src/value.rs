//! `customProperties`: a map of `MetadataValue`s, each a JSON object tagged by `metadataType`.
//!
//! Values are kept as the raw JSON the server sent, so a value this crate does not change
//! (struct, proto, a type it does not know, or an extra key inside a value) goes back to the
//! server exactly as it came. Typed views ([`Typed`]) are computed on demand.

use std::fmt;

use ct_step::StepError;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// `metadataType` of a string value.
pub const STRING: &str = "MetadataStringValue";
/// `metadataType` of an int value (`int_value` is a decimal string, int32).
pub const INT: &str = "MetadataIntValue";
/// `metadataType` of a double value.
pub const DOUBLE: &str = "MetadataDoubleValue";
/// `metadataType` of a bool value.
pub const BOOL: &str = "MetadataBoolValue";
/// `metadataType` of a struct value (`struct_value` is base64 of a JSON object).
pub const STRUCT: &str = "MetadataStructValue";
/// `metadataType` of a proto value (`type` + base64 `proto_value`).
pub const PROTO: &str = "MetadataProtoValue";

/// One custom property value, as raw JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MetadataValue(Value);

/// A typed view of a [`MetadataValue`].
#[derive(Debug, Clone, PartialEq)]
pub enum Typed<'a> {
    String(&'a str),
    Int(i64),
    Double(f64),
    Bool(bool),
    /// base64 of a JSON object.
    Struct(&'a str),
    /// Type URL and base64 payload.
    Proto {
        type_url: &'a str,
        value: &'a str,
    },
    /// Anything else (unknown `metadataType`, missing or mistyped payload).
    Other,
}

impl MetadataValue {
    /// `{"metadataType":"MetadataStringValue","string_value":s}`.
    pub fn string(s: impl Into<String>) -> Self {
        Self::tagged(STRING, "string_value", Value::String(s.into()))
    }
    /// `{"metadataType":"MetadataIntValue","int_value":"n"}` (the wire form is a string).
    pub fn int(n: i32) -> Self {
        Self::tagged(INT, "int_value", Value::String(n.to_string()))
    }
    /// `{"metadataType":"MetadataDoubleValue","double_value":x}`; `None` for NaN/infinity,
    /// which JSON cannot carry.
    pub fn double(x: f64) -> Option<Self> {
        serde_json::Number::from_f64(x)
            .map(|n| Self::tagged(DOUBLE, "double_value", Value::Number(n)))
    }
    /// `{"metadataType":"MetadataBoolValue","bool_value":b}`.
    pub fn bool(b: bool) -> Self {
        Self::tagged(BOOL, "bool_value", Value::Bool(b))
    }
    /// Wrap raw JSON as received.
    pub fn from_raw(v: Value) -> Self {
        MetadataValue(v)
    }
    /// The raw JSON.
    pub fn raw(&self) -> &Value {
        &self.0
    }

    fn tagged(kind: &str, key: &str, payload: Value) -> Self {
        let mut m = Map::new();
        m.insert("metadataType".into(), Value::String(kind.into()));
        m.insert(key.into(), payload);
        MetadataValue(Value::Object(m))
    }

    /// The `metadataType` tag, if any.
    pub fn metadata_type(&self) -> Option<&str> {
        self.0.get("metadataType").and_then(Value::as_str)
    }

    /// The typed view.
    pub fn typed(&self) -> Typed<'_> {
        let get = |k: &str| self.0.get(k);
        match self.metadata_type() {
            Some(STRING) => get("string_value")
                .and_then(Value::as_str)
                .map_or(Typed::Other, Typed::String),
            Some(INT) => get("int_value")
                .and_then(|v| match v {
                    Value::String(s) => s.parse::<i64>().ok(),
                    Value::Number(n) => n.as_i64(),
                    _ => None,
                })
                .map_or(Typed::Other, Typed::Int),
            Some(DOUBLE) => get("double_value")
                .and_then(Value::as_f64)
                .map_or(Typed::Other, Typed::Double),
            Some(BOOL) => get("bool_value")
                .and_then(Value::as_bool)
                .map_or(Typed::Other, Typed::Bool),
            Some(STRUCT) => get("struct_value")
                .and_then(Value::as_str)
                .map_or(Typed::Other, Typed::Struct),
            Some(PROTO) => match (
                get("type").and_then(Value::as_str),
                get("proto_value").and_then(Value::as_str),
            ) {
                (Some(t), Some(v)) => Typed::Proto {
                    type_url: t,
                    value: v,
                },
                _ => Typed::Other,
            },
            _ => Typed::Other,
        }
    }

    /// Same type and payload (ignores key order and extra keys; raw equality for `Other`).
    pub fn same_as(&self, other: &MetadataValue) -> bool {
        match (self.typed(), other.typed()) {
            (Typed::Other, _) | (_, Typed::Other) => self.0 == other.0,
            (a, b) => a == b,
        }
    }
}

impl fmt::Display for MetadataValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.typed() {
            Typed::String(s) => write!(f, "{s:?}"),
            Typed::Int(n) => write!(f, "{n} (int)"),
            Typed::Double(x) => write!(f, "{x} (double)"),
            Typed::Bool(b) => write!(f, "{b} (bool)"),
            Typed::Struct(_) => f.write_str("<struct>"),
            Typed::Proto { type_url, .. } => write!(f, "<proto {type_url}>"),
            Typed::Other => write!(f, "{}", self.0),
        }
    }
}

/// `customProperties`: insertion-ordered, raw values. `null` or a missing map reads as empty.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(transparent)]
pub struct CustomProperties(Map<String, Value>);

impl<'de> Deserialize<'de> for CustomProperties {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(CustomProperties(
            Option::<Map<String, Value>>::deserialize(d)?.unwrap_or_default(),
        ))
    }
}

impl CustomProperties {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn contains_key(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }
    pub fn get(&self, key: &str) -> Option<MetadataValue> {
        self.0.get(key).cloned().map(MetadataValue)
    }
    /// Set `key`; an existing key keeps its position.
    pub fn insert(&mut self, key: impl Into<String>, value: MetadataValue) {
        self.0.insert(key.into(), value.0);
    }
    /// Remove `key`, keeping the order of the others.
    pub fn remove(&mut self, key: &str) -> Option<MetadataValue> {
        self.0.shift_remove(key).map(MetadataValue)
    }
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

impl From<Map<String, Value>> for CustomProperties {
    fn from(m: Map<String, Value>) -> Self {
        CustomProperties(m)
    }
}

/// Parse `KEY=VALUE` (string) or `KEY:TYPE=VALUE` with TYPE one of `string`, `int`, `double`,
/// `bool`. Errors name the input and the fix.
pub fn parse_property(spec: &str) -> ct_step::Result<(String, MetadataValue)> {
    let Some((lhs, value)) = spec.split_once('=') else {
        return Err(StepError::usage(format!(
            "--property {spec:?}: write KEY=VALUE or KEY:TYPE=VALUE (TYPE: string, int, double, bool)"
        )));
    };
    let (key, kind) = match lhs.rsplit_once(':') {
        Some((k, t)) if matches!(t, "string" | "int" | "double" | "bool") => (k, t),
        _ => (lhs, "string"),
    };
    if key.is_empty() || key.chars().any(char::is_control) {
        return Err(StepError::usage(format!(
            "--property {spec:?}: the key is empty or has control characters; write KEY=VALUE"
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(StepError::usage(format!(
            "--property {spec:?}: the value has control characters (newline?); each --property is one single-line value"
        )));
    }
    let v = match kind {
        "int" => value
            .trim()
            .parse::<i32>()
            .map(MetadataValue::int)
            .map_err(|_| {
                StepError::usage(format!(
                    "--property {spec:?}: {value:?} is not a 32-bit integer; write e.g. {key}:int=42"
                ))
            })?,
        "double" => value
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(MetadataValue::double)
            .ok_or_else(|| {
                StepError::usage(format!(
                    "--property {spec:?}: {value:?} is not a finite number; write e.g. {key}:double=0.93"
                ))
            })?,
        "bool" => match value.trim() {
            "true" => MetadataValue::bool(true),
            "false" => MetadataValue::bool(false),
            _ => {
                return Err(StepError::usage(format!(
                    "--property {spec:?}: {value:?} is not a bool; write {key}:bool=true or {key}:bool=false"
                )));
            }
        },
        _ => MetadataValue::string(value),
    };
    Ok((key.to_string(), v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_type_round_trips_byte_for_byte() {
        let text = r#"{"s":{"string_value":"x","metadataType":"MetadataStringValue"},"i":{"int_value":"-7","metadataType":"MetadataIntValue"},"d":{"double_value":0.5,"metadataType":"MetadataDoubleValue"},"b":{"bool_value":true,"metadataType":"MetadataBoolValue"},"st":{"struct_value":"eyJhIjoxfQ==","metadataType":"MetadataStructValue"},"p":{"type":"type.googleapis.com/x.Y","proto_value":"CgR0ZXN0","metadataType":"MetadataProtoValue"},"u":{"metadataType":"MetadataFutureValue","future":[1,2]}}"#;
        let cp: CustomProperties = serde_json::from_str(text).unwrap();
        assert_eq!(serde_json::to_string(&cp).unwrap(), text);
        assert_eq!(cp.get("i").unwrap().typed(), Typed::Int(-7));
        assert_eq!(cp.get("d").unwrap().typed(), Typed::Double(0.5));
        assert_eq!(cp.get("b").unwrap().typed(), Typed::Bool(true));
        assert_eq!(cp.get("st").unwrap().typed(), Typed::Struct("eyJhIjoxfQ=="));
        assert!(matches!(
            cp.get("p").unwrap().typed(),
            Typed::Proto {
                type_url: "type.googleapis.com/x.Y",
                ..
            }
        ));
        assert_eq!(cp.get("u").unwrap().typed(), Typed::Other);
    }

    #[test]
    fn null_map_is_empty_and_remove_keeps_order() {
        let cp: CustomProperties = serde_json::from_value(Value::Null).unwrap();
        assert!(cp.is_empty());
        let mut cp: CustomProperties =
            serde_json::from_value(json!({"a": {}, "b": {}, "c": {}})).unwrap();
        cp.remove("b");
        assert_eq!(cp.keys().collect::<Vec<_>>(), ["a", "c"]);
        cp.insert("a", MetadataValue::string("x"));
        assert_eq!(cp.keys().collect::<Vec<_>>(), ["a", "c"]);
    }

    #[test]
    fn same_as_compares_typed_payloads() {
        let stored = MetadataValue::from_raw(
            json!({"string_value": "run-1", "metadataType": "MetadataStringValue"}),
        );
        assert!(stored.same_as(&MetadataValue::string("run-1")));
        assert!(!stored.same_as(&MetadataValue::string("run-2")));
        assert!(!MetadataValue::int(1).same_as(&MetadataValue::string("1")));
        let n =
            MetadataValue::from_raw(json!({"int_value": "5", "metadataType": "MetadataIntValue"}));
        assert!(n.same_as(&MetadataValue::int(5)));
    }

    #[test]
    fn property_flags_parse_typed_forms() {
        let (k, v) = parse_property("accuracy:double=0.93").unwrap();
        assert_eq!((k.as_str(), v.typed()), ("accuracy", Typed::Double(0.93)));
        let (k, v) = parse_property("epochs:int=10").unwrap();
        assert_eq!(
            v.raw(),
            &json!({"metadataType": "MetadataIntValue", "int_value": "10"})
        );
        assert_eq!(k, "epochs");
        assert_eq!(
            parse_property("ok:bool=true").unwrap().1.typed(),
            Typed::Bool(true)
        );
        let (k, v) = parse_property("url=http://x:1/a=b").unwrap();
        assert_eq!(
            (k.as_str(), v.typed()),
            ("url", Typed::String("http://x:1/a=b"))
        );
        let (k, _) = parse_property("a:b=c").unwrap();
        assert_eq!(k, "a:b", "an unknown type suffix is part of the key");
        assert!(
            parse_property("n:int=3000000000")
                .unwrap_err()
                .to_string()
                .contains("32-bit")
        );
        assert!(parse_property("x:double=nan").is_err());
        assert!(
            parse_property("x:bool=yes")
                .unwrap_err()
                .to_string()
                .contains("bool=true")
        );
        let e = parse_property("novalue").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("KEY=VALUE"));
        assert!(parse_property("=v").is_err());
    }
}
