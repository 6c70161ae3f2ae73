//! Task order: a DAG from `runAfter` and `$(tasks.X.results.Y)` references.

use std::collections::{BTreeMap, BTreeSet};

use crate::Error;
use crate::model::{ParamValue, PipelineTask};
use crate::subst::references;

/// Indices of `tasks` in an order that respects `runAfter` and result references (stable:
/// among ready tasks, declaration order).
pub fn dag_order(tasks: &[PipelineTask]) -> Result<Vec<usize>, Error> {
    let index: BTreeMap<&str, usize> = tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.as_str(), i))
        .collect();
    let mut deps: Vec<BTreeSet<usize>> = Vec::with_capacity(tasks.len());
    for t in tasks {
        let mut d = BTreeSet::new();
        for a in parents(t) {
            match index.get(a.as_str()) {
                Some(&i) => {
                    d.insert(i);
                }
                None => {
                    return Err(Error::new(format!(
                        "pipeline task {}: depends on unknown task {a}",
                        t.name
                    )));
                }
            }
        }
        deps.push(d);
    }
    let mut done = vec![false; tasks.len()];
    let mut order = Vec::with_capacity(tasks.len());
    while order.len() < tasks.len() {
        let next = (0..tasks.len()).find(|&i| !done[i] && deps[i].iter().all(|&d| done[d]));
        match next {
            Some(i) => {
                done[i] = true;
                order.push(i);
            }
            None => {
                let stuck: Vec<&str> = (0..tasks.len())
                    .filter(|&i| !done[i])
                    .map(|i| tasks[i].name.as_str())
                    .collect();
                return Err(Error::new(format!(
                    "pipeline tasks form a cycle: {}",
                    stuck.join(", ")
                )));
            }
        }
    }
    Ok(order)
}

/// A reference to a PipelineTask's result: `$(tasks.<task>.results.<result>)` (or
/// `$(finally.<task>.results.<result>)` in Pipeline results); object keys, `[*]` and `[i]` are
/// not part of it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ResultRef {
    /// `true` for `finally.<task>…` (only Pipeline results may use it).
    pub finally: bool,
    pub task: String,
    pub result: String,
}

impl ResultRef {
    /// The reference in a normalised key (`tasks.train.results.KFP_RUN_ID`), if it is one.
    pub fn parse(key: &str) -> Option<ResultRef> {
        let parts: Vec<&str> = key.split('.').collect();
        let finally = match parts.first() {
            Some(&"tasks") => false,
            Some(&"finally") => true,
            _ => return None,
        };
        (parts.len() >= 4 && parts[2] == "results").then(|| ResultRef {
            finally,
            task: parts[1].to_string(),
            result: parts[3].to_string(),
        })
    }
}

impl std::fmt::Display for ResultRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ns = if self.finally { "finally" } else { "tasks" };
        write!(f, "$({ns}.{}.results.{})", self.task, self.result)
    }
}

/// The texts of a PipelineTask Tekton resolves references in: params and `when`.
fn texts(pt: &PipelineTask) -> Vec<&str> {
    let mut texts: Vec<&str> = Vec::new();
    for p in &pt.params {
        texts.extend(param_texts(&p.value));
    }
    for w in &pt.when {
        texts.extend(w.input.as_deref());
        texts.extend(w.values.iter().map(String::as_str));
    }
    texts
}

/// The strings of a param value (string, array items, object values).
pub(crate) fn param_texts(v: &ParamValue) -> Vec<&str> {
    match v {
        ParamValue::Str(s) => vec![s.as_str()],
        ParamValue::Array(a) => a.iter().map(String::as_str).collect(),
        ParamValue::Object(o) => o.values().map(String::as_str).collect(),
    }
}

/// The result references of a PipelineTask (params and `when`), like Tekton's
/// `PipelineTaskResultRefs`. `$(tasks.status)` and `$(tasks.<name>.status)` are not results.
pub fn result_refs(pt: &PipelineTask) -> BTreeSet<ResultRef> {
    texts(pt)
        .iter()
        .flat_map(|t| references(t))
        .filter_map(|r| ResultRef::parse(&r))
        .collect()
}

/// The PipelineTasks whose results `pt` references (edges of the DAG besides `runAfter`).
pub fn result_dependencies(pt: &PipelineTask) -> BTreeSet<String> {
    result_refs(pt).into_iter().map(|r| r.task).collect()
}

/// A PipelineTask's parents in the DAG: `runAfter` and the producers of the results it uses
/// (Tekton's `node.Prev`).
pub fn parents(pt: &PipelineTask) -> BTreeSet<String> {
    pt.run_after
        .iter()
        .cloned()
        .chain(result_dependencies(pt))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_cycles_and_unknown_deps() {
        let y = |s: &str| -> Vec<PipelineTask> { serde_yaml_ng::from_str(s).unwrap() };
        let cyc = y(
            "- {name: a, taskRef: {name: t}, runAfter: [b]}\n- {name: b, taskRef: {name: t}, runAfter: [a]}\n",
        );
        assert!(dag_order(&cyc).unwrap_err().to_string().contains("cycle"));
        let unk = y(
            "- {name: a, taskRef: {name: t}, params: [{name: p, value: $(tasks.zz.results.R)}]}\n",
        );
        assert!(dag_order(&unk).unwrap_err().to_string().contains("zz"));
    }
}
