//! A compiled pipeline package (KFP IR YAML), loaded as the kfp SDK loads it.
//!
//! `kfp.Client` reads the file with `yaml.safe_load_all`: document 1 is the PipelineSpec, every
//! later document is shallow-merged (`dict.update`) into the PlatformSpec, and the run's
//! `pipeline_spec` is the bare IR when the PlatformSpec is empty, else
//! `{"pipeline_spec": IR, "platform_spec": PlatformSpec}`. YAML is converted to JSON as is:
//! numbers keep their YAML type (`10.0` stays a float), so the body equals the SDK's.

use std::path::Path;

use serde::Deserialize;
use serde_json::{Map, Value};

use ct_step::input::{MAX_PIPELINE_PACKAGE, read_text_bounded};
use ct_step::{Result, StepError};

use crate::params::{self, ParamDecl};

/// A loaded pipeline: the IR and the merged platform spec.
#[derive(Debug, Clone)]
pub struct PipelinePackage {
    /// Document 1: the PipelineSpec (IR).
    pub ir: Value,
    /// Later documents, shallow-merged.
    pub platform: Map<String, Value>,
    /// What to call the package in messages (the path).
    pub label: String,
}

impl PipelinePackage {
    /// Read (at most [`MAX_PIPELINE_PACKAGE`]) and parse `--pipeline-package FILE`.
    pub fn load(path: &Path) -> Result<Self> {
        let label = format!("--pipeline-package {}", path.display());
        let text = read_text_bounded(path, MAX_PIPELINE_PACKAGE, "--pipeline-package")?;
        Self::parse(&text, &label)
    }

    /// Parse IR YAML text; `label` names the input in errors.
    pub fn parse(text: &str, label: &str) -> Result<Self> {
        let mut docs = Vec::new();
        for doc in serde_yaml_ng::Deserializer::from_str(text) {
            let v = Value::deserialize(doc).map_err(|e| {
                StepError::usage(format!(
                    "{label}: not valid YAML ({e}); pass the YAML written by kfp.compiler.Compiler"
                ))
            })?;
            if !v.is_null() {
                docs.push(v);
            }
        }
        let mut docs = docs.into_iter();
        let ir = docs.next().ok_or_else(|| {
            StepError::usage(format!(
                "{label}: the file is empty; pass a compiled pipeline YAML"
            ))
        })?;
        let mut platform = Map::new();
        for (i, d) in docs.enumerate() {
            match d {
                Value::Object(m) => platform.extend(m),
                _ => {
                    return Err(StepError::usage(format!(
                        "{label}: YAML document {} is not a mapping; later documents must be platform specs",
                        i + 2
                    )));
                }
            }
        }
        Self::from_spec(ir, platform, label)
    }

    /// From an IR (and platform spec) already in JSON, e.g. a stored pipeline version's
    /// `pipeline_spec`, which may be the bare IR or the `{pipeline_spec, platform_spec}` wrapper.
    pub fn from_api_spec(spec: Value, label: &str) -> Result<Self> {
        match spec {
            Value::Object(mut m) if !m.contains_key("root") && m.contains_key("pipeline_spec") => {
                let ir = m.remove("pipeline_spec").unwrap_or(Value::Null);
                let platform = match m.remove("platform_spec") {
                    Some(Value::Object(p)) => p,
                    _ => Map::new(),
                };
                Self::from_spec(ir, platform, label)
            }
            other => Self::from_spec(other, Map::new(), label),
        }
    }

    fn from_spec(ir: Value, platform: Map<String, Value>, label: &str) -> Result<Self> {
        let is_ir = ir.get("root").is_some_and(Value::is_object)
            && ir
                .pointer("/pipelineInfo/name")
                .is_some_and(Value::is_string);
        if !is_ir {
            return Err(StepError::usage(format!(
                "{label}: not a compiled KFP pipeline (no root / pipelineInfo.name); compile it with kfp.compiler.Compiler().compile(...)"
            )));
        }
        Ok(PipelinePackage {
            ir,
            platform,
            label: label.to_string(),
        })
    }

    /// `pipelineInfo.name`.
    pub fn name(&self) -> &str {
        self.ir
            .pointer("/pipelineInfo/name")
            .and_then(Value::as_str)
            .unwrap_or("pipeline")
    }

    /// The run parameters the pipeline declares.
    pub fn parameters(&self) -> Result<Vec<ParamDecl>> {
        params::declared(&self.ir, &self.label)
    }

    /// The kfp SDK's `_override_caching_options`: set `cachingOptions.enableCache` on every task
    /// of `root.dag.tasks` (creating `cachingOptions` where missing). `false` removes the key,
    /// as proto3 JSON drops a false bool (`cachingOptions: {}`). With `nested`, tasks of every
    /// `components.*.dag.tasks` are changed too (the SDK leaves those alone). Returns how many
    /// tasks were set.
    pub fn override_caching(&mut self, enable: bool, nested: bool) -> usize {
        let mut n = 0;
        if let Some(tasks) = self
            .ir
            .pointer_mut("/root/dag/tasks")
            .and_then(Value::as_object_mut)
        {
            n += set_caching(tasks, enable);
        }
        if nested && let Some(comps) = self.ir.get_mut("components").and_then(Value::as_object_mut)
        {
            for comp in comps.values_mut() {
                if let Some(tasks) = comp
                    .pointer_mut("/dag/tasks")
                    .and_then(Value::as_object_mut)
                {
                    n += set_caching(tasks, enable);
                }
            }
        }
        n
    }

    /// The run's `pipeline_spec`: the bare IR, or wrapped with the platform spec.
    pub fn pipeline_spec(&self) -> Value {
        if self.platform.is_empty() {
            self.ir.clone()
        } else {
            let mut m = Map::new();
            m.insert("pipeline_spec".into(), self.ir.clone());
            m.insert("platform_spec".into(), Value::Object(self.platform.clone()));
            Value::Object(m)
        }
    }
}

fn set_caching(tasks: &mut Map<String, Value>, enable: bool) -> usize {
    let mut n = 0;
    for task in tasks.values_mut() {
        let Some(task) = task.as_object_mut() else {
            continue;
        };
        let opts = task
            .entry("cachingOptions")
            .or_insert_with(|| Value::Object(Map::new()));
        if !opts.is_object() {
            *opts = Value::Object(Map::new());
        }
        let opts = opts.as_object_mut().expect("just made an object");
        if enable {
            opts.insert("enableCache".into(), Value::Bool(true));
        } else {
            opts.remove("enableCache");
        }
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_DOCS: &str = "pipelineInfo: {name: p}\nroot:\n  dag:\n    tasks:\n      a: {cachingOptions: {}}\n      b: {cachingOptions: {enableCache: true}}\n      c: {}\n  inputDefinitions: {parameters: {n: {parameterType: NUMBER_INTEGER, defaultValue: 10.0}}}\ncomponents:\n  comp-x:\n    dag:\n      tasks:\n        inner: {cachingOptions: {}}\n---\nplatforms: {kubernetes: {a: 1}}\n---\nother: {b: 2}\n";

    #[test]
    fn documents_are_merged_and_wrapped_only_when_needed() {
        let p = PipelinePackage::parse(TWO_DOCS, "t").unwrap();
        let spec = p.pipeline_spec();
        assert_eq!(spec["platform_spec"]["platforms"]["kubernetes"]["a"], 1);
        assert_eq!(spec["platform_spec"]["other"]["b"], 2);
        assert_eq!(p.name(), "p");
        // 10.0 stays a float, as Python's yaml → json keeps it.
        let d =
            &spec["pipeline_spec"]["root"]["inputDefinitions"]["parameters"]["n"]["defaultValue"];
        assert_eq!(serde_json::to_string(d).unwrap(), "10.0");

        let one = TWO_DOCS.split("---").next().unwrap();
        let p = PipelinePackage::parse(one, "t").unwrap();
        assert!(p.pipeline_spec().get("root").is_some(), "bare IR");
    }

    #[test]
    fn caching_override_touches_root_tasks_only_unless_nested() {
        let mut p = PipelinePackage::parse(TWO_DOCS, "t").unwrap();
        assert_eq!(p.override_caching(true, false), 3);
        for t in ["a", "b", "c"] {
            assert_eq!(
                p.ir["root"]["dag"]["tasks"][t]["cachingOptions"]["enableCache"],
                true
            );
        }
        assert_eq!(
            p.ir["components"]["comp-x"]["dag"]["tasks"]["inner"]["cachingOptions"],
            serde_json::json!({})
        );
        assert_eq!(p.override_caching(false, true), 4);
        assert_eq!(
            p.ir["root"]["dag"]["tasks"]["b"]["cachingOptions"],
            serde_json::json!({})
        );
        assert_eq!(p.override_caching(true, true), 4);
        assert_eq!(
            p.ir["components"]["comp-x"]["dag"]["tasks"]["inner"]["cachingOptions"]["enableCache"],
            true
        );
    }

    #[test]
    fn wrong_inputs_are_usage_errors() {
        for (text, want) in [
            ("", "empty"),
            ("a: [", "not valid YAML"),
            ("kind: Deployment\n", "not a compiled KFP pipeline"),
            (
                "pipelineInfo: {name: p}\nroot: {}\n---\n- 1\n",
                "document 2",
            ),
        ] {
            let e = PipelinePackage::parse(text, "--pipeline-package x.yaml").unwrap_err();
            assert_eq!(e.exit_code(), 2);
            assert!(e.to_string().contains(want), "{e}");
            assert!(
                e.to_string().starts_with("--pipeline-package x.yaml"),
                "{e}"
            );
        }
    }

    #[test]
    fn api_specs_are_unwrapped() {
        let p = PipelinePackage::parse(TWO_DOCS, "t").unwrap();
        let q = PipelinePackage::from_api_spec(p.pipeline_spec(), "v").unwrap();
        assert_eq!(q.ir, p.ir);
        assert_eq!(q.platform, p.platform);
        let r = PipelinePackage::from_api_spec(p.ir.clone(), "v").unwrap();
        assert!(r.platform.is_empty());
    }
}
