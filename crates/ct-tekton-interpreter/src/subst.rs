//! Tekton variable substitution: `$(params.x)`, `$(params.list[*])`, `$(params["x"])`,
//! `$(tasks.t.results.r)`, `$(results.r.path)`, `$(workspaces.w.path)`, `$(context.taskRun.uid)`…
//!
//! Substitution is plain text replacement, as the Tekton controller does. A reference in one of
//! Tekton's namespaces (`params`, `tasks`, `finally`, `context`, `results`, `workspaces`, `steps`, `step`)
//! that the scope cannot resolve is an error naming the reference, never an empty string; any
//! other `$(…)` text is left alone.

use std::collections::BTreeMap;
use std::fmt;

/// A resolved variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    Str(String),
    Array(Vec<String>),
}

/// A reference that could not be resolved (or was used in a way its type does not allow).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unresolved {
    /// The normalised reference, e.g. `tasks.train.results.KFP_RUN_ID`.
    pub reference: String,
    pub reason: String,
}

impl fmt::Display for Unresolved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "$({}): {}", self.reference, self.reason)
    }
}

const NAMESPACES: &[&str] = &[
    "params",
    "tasks",
    "finally",
    "context",
    "results",
    "workspaces",
    "steps",
    "step",
];

/// Variables visible at one point of a run, keyed by normalised reference (`params.version`).
#[derive(Debug, Clone, Default)]
pub struct Scope {
    values: BTreeMap<String, Resolved>,
}

impl Scope {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.values.insert(key.into(), Resolved::Str(value.into()));
    }

    pub fn set_array(&mut self, key: impl Into<String>, value: Vec<String>) {
        self.values.insert(key.into(), Resolved::Array(value));
    }

    pub fn get(&self, key: &str) -> Option<&Resolved> {
        self.values.get(key)
    }

    /// Substitute every reference in `s`; arrays may not appear inside a string.
    pub fn substitute(&self, s: &str) -> Result<String, Unresolved> {
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(start) = rest.find("$(") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find(')') else {
                out.push_str(&rest[start..]);
                return Ok(out);
            };
            let raw = &after[..end];
            match parse_ref(raw) {
                Some(r) if NAMESPACES.contains(&r.namespace()) => {
                    out.push_str(&self.resolve_scalar(&r)?);
                }
                _ => out.push_str(&rest[start..start + 2 + end + 1]),
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// Substitute a list (command, args, array param values): an element that is exactly
    /// `$(params.x[*])` expands to the array's items.
    pub fn substitute_list(&self, items: &[String]) -> Result<Vec<String>, Unresolved> {
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let t = item.trim();
            if let Some(inner) = t.strip_prefix("$(").and_then(|x| x.strip_suffix(')'))
                && let Some(r) = parse_ref(inner)
                && r.star
            {
                match self.values.get(&r.key) {
                    Some(Resolved::Array(a)) => out.extend(a.iter().cloned()),
                    Some(Resolved::Str(_)) => {
                        return Err(Unresolved {
                            reference: r.key,
                            reason: "is a string, not an array: drop the [*]".into(),
                        });
                    }
                    None => return Err(self.missing(&r.key)),
                }
                continue;
            }
            out.push(self.substitute(item)?);
        }
        Ok(out)
    }

    fn resolve_scalar(&self, r: &Ref) -> Result<String, Unresolved> {
        match (self.values.get(&r.key), r.index, r.star) {
            (None, _, _) => Err(self.missing(&r.key)),
            (Some(_), _, true) => Err(Unresolved {
                reference: format!("{}[*]", r.key),
                reason: "an array reference must be a whole list element, not part of a string"
                    .into(),
            }),
            (Some(Resolved::Str(s)), None, false) => Ok(s.clone()),
            (Some(Resolved::Array(a)), Some(i), false) => {
                a.get(i).cloned().ok_or_else(|| Unresolved {
                    reference: format!("{}[{i}]", r.key),
                    reason: format!("index out of range (array has {} items)", a.len()),
                })
            }
            (Some(Resolved::Array(_)), None, false) => Err(Unresolved {
                reference: r.key.clone(),
                reason: "is an array: use it as a whole list element with [*]".into(),
            }),
            (Some(Resolved::Str(_)), Some(_), false) => Err(Unresolved {
                reference: r.key.clone(),
                reason: "is a string, not an array".into(),
            }),
        }
    }

    fn missing(&self, key: &str) -> Unresolved {
        Unresolved {
            reference: key.to_string(),
            reason: "not defined here".into(),
        }
    }
}

/// A parsed reference: normalised key plus `[*]` / `[N]`.
#[derive(Debug, PartialEq, Eq)]
struct Ref {
    key: String,
    star: bool,
    index: Option<usize>,
}

impl Ref {
    fn namespace(&self) -> &str {
        self.key.split('.').next().unwrap_or("")
    }
}

/// `params["a.b"]` → `params.a.b`; `params.x[*]` → star; `params.x[2]` → index.
fn parse_ref(raw: &str) -> Option<Ref> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    let mut key = String::new();
    let mut star = false;
    let mut index = None;
    let mut rest = raw;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("[*]") {
            star = true;
            rest = r;
        } else if let Some(r) = rest.strip_prefix('[') {
            let close = r.find(']')?;
            let inner = &r[..close];
            let quoted = inner
                .strip_prefix('"')
                .and_then(|x| x.strip_suffix('"'))
                .or_else(|| inner.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')));
            match quoted {
                Some(name) => {
                    key.push('.');
                    key.push_str(name);
                }
                None => index = Some(inner.parse().ok()?),
            }
            rest = &r[close + 1..];
        } else {
            let end = rest.find('[').unwrap_or(rest.len());
            key.push_str(&rest[..end]);
            rest = &rest[end..];
        }
    }
    let valid = key
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    valid.then_some(Ref { key, star, index })
}

/// Every reference in a Tekton namespace that `s` contains (normalised keys, without `[*]`).
pub fn references(s: &str) -> Vec<String> {
    let mut refs = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("$(") {
        let after = &rest[start + 2..];
        let Some(end) = after.find(')') else { break };
        if let Some(r) = parse_ref(&after[..end])
            && NAMESPACES.contains(&r.namespace())
        {
            refs.push(r.key);
        }
        rest = &after[end + 1..];
    }
    refs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> Scope {
        let mut s = Scope::new();
        s.set("params.version", "abc1234");
        s.set("params.a.b", "dotted");
        s.set("tasks.train.results.KFP_RUN_ID", "run-1");
        s.set_array("params.list", vec!["x".into(), "y".into()]);
        s
    }

    #[test]
    fn substitutes_strings_and_leaves_foreign_text() {
        let s = scope();
        assert_eq!(
            s.substitute("--param=version=$(params.version) $(tasks.train.results.KFP_RUN_ID)")
                .unwrap(),
            "--param=version=abc1234 run-1"
        );
        assert_eq!(s.substitute("$(params[\"a.b\"])").unwrap(), "dotted");
        assert_eq!(s.substitute("$(params['version'])").unwrap(), "abc1234");
        assert_eq!(s.substitute("$(date) and $(").unwrap(), "$(date) and $(");
        assert_eq!(s.substitute("$(params.list[1])").unwrap(), "y");
    }

    #[test]
    fn unresolved_and_misused_references_are_errors() {
        let s = scope();
        let e = s.substitute("x $(params.nope)").unwrap_err();
        assert_eq!(e.reference, "params.nope");
        assert!(s.substitute("$(params.list)").is_err());
        assert!(s.substitute("a $(params.list[*])").is_err());
        assert!(s.substitute("$(params.list[5])").is_err());
        assert!(s.substitute("$(tasks.build.results.X)").is_err());
    }

    #[test]
    fn expands_arrays_in_lists() {
        let s = scope();
        let v = s
            .substitute_list(&[
                "a".into(),
                "$(params.list[*])".into(),
                "$(params.version)".into(),
            ])
            .unwrap();
        assert_eq!(v, ["a", "x", "y", "abc1234"]);
        assert!(s.substitute_list(&["$(params.version[*])".into()]).is_err());
    }

    #[test]
    fn lists_references() {
        assert_eq!(
            references("$(tasks.a.results.X)-$(params.v) $(shell)"),
            ["tasks.a.results.X", "params.v"]
        );
    }
}
