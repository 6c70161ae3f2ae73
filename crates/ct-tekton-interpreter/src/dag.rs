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
        for a in t.run_after.iter().cloned().chain(result_dependencies(t)) {
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

/// References to other PipelineTasks' results in a PipelineTask (params and when).
pub fn result_dependencies(pt: &PipelineTask) -> BTreeSet<String> {
    let mut texts: Vec<&str> = Vec::new();
    for p in &pt.params {
        match &p.value {
            ParamValue::Str(s) => texts.push(s),
            ParamValue::Array(a) => texts.extend(a.iter().map(String::as_str)),
            ParamValue::Object(o) => texts.extend(o.values().map(String::as_str)),
        }
    }
    for w in &pt.when {
        texts.extend(w.input.as_deref());
        texts.extend(w.values.iter().map(String::as_str));
    }
    texts
        .iter()
        .flat_map(|t| references(t))
        .filter_map(|r| {
            // Only `tasks.<name>.results.<r>`: `tasks.status` and `tasks.<name>.status` are
            // finally-only and order nothing.
            let parts: Vec<&str> = r.split('.').collect();
            (parts.len() >= 4 && parts[0] == "tasks" && parts[2] == "results")
                .then(|| parts[1].to_string())
        })
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
