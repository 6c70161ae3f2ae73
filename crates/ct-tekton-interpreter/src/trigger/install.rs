//! Installing the Triggers for one git server, as the Helm chart does with its `git_server`
//! value, and the Secrets they read.
//!
//! The push Trigger's `git-server` filter accepts only clone URLs on the configured server
//! (`body.repository.clone_url == '<server>/' + body.repository.full_name + '.git'`), and the
//! alert TriggerBinding clones `<server>/<owner>/<model>.git`. An EventListener stand-in in
//! front of a local forge installs them for that forge: the server literal is replaced by the
//! forge's base URL, where the chart puts its own; the filter is not weakened.

use regex::Regex;

use super::{Interceptor, TriggerSet};
use crate::Error;

/// A CEL string literal (single or double quotes, no escapes): the text is group 1 or 2.
const CEL_STRING: &str = r#"(?:'([^'\\]*)'|"([^"\\]*)")"#;

/// The Secrets a TriggerSet reads, by (name, key).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretRefs {
    /// The `secretRef`s of `github` interceptors (webhook signatures).
    pub signatures: Vec<(String, String)>,
    /// `compareSecret(key, name)` in CEL filters and overlays (bearer credentials).
    pub compared: Vec<(String, String)>,
}

fn literal(c: &regex::Captures<'_>, first: usize) -> String {
    c.get(first)
        .or_else(|| c.get(first + 1))
        .map_or("", |m| m.as_str())
        .to_string()
}

impl TriggerSet {
    /// The Triggers installed for the git server at `base_url` (scheme, host, port, path prefix;
    /// a trailing `/` is ignored). The `git-server` filter must compare the clone URL with
    /// exactly one server literal, and every TriggerBinding value holding a URL must start with
    /// that server; anything else is an error naming what to fix.
    pub fn install(mut self, base_url: &str) -> Result<TriggerSet, Error> {
        let base = base_url.trim_end_matches('/');
        let server_re = Regex::new(&format!(r"{CEL_STRING}\s*\+\s*body\.repository\.full_name"))
            .expect("a valid pattern");
        let mut server: Option<String> = None;
        for t in &mut self.triggers {
            for i in &mut t.interceptors {
                let Interceptor::Cel {
                    name,
                    filter: Some(filter),
                    ..
                } = i
                else {
                    continue;
                };
                if name != "git-server" {
                    continue;
                }
                let found: Vec<String> = server_re
                    .captures_iter(filter)
                    .map(|c| literal(&c, 1))
                    .collect();
                let [configured] = found.as_slice() else {
                    return Err(Error::new(format!(
                        "Trigger {}: interceptor git-server: expected one '<server>/' + body.repository.full_name comparison, found {} in {filter:?}",
                        t.name,
                        found.len()
                    )));
                };
                let Some(configured) = configured.strip_suffix('/') else {
                    return Err(Error::new(format!(
                        "Trigger {}: interceptor git-server: the server literal {configured:?} does not end with /",
                        t.name
                    )));
                };
                if server.as_deref().is_some_and(|s| s != configured) {
                    return Err(Error::new(format!(
                        "Trigger {}: interceptor git-server names {configured}, another Trigger {}",
                        t.name,
                        server.unwrap_or_default()
                    )));
                }
                let old = format!("'{configured}/'");
                let old = if filter.contains(&old) {
                    old
                } else {
                    format!("\"{configured}/\"")
                };
                *filter = filter.replacen(&old, &format!("'{base}/'"), 1);
                server = Some(configured.to_string());
            }
        }
        let Some(server) = server else {
            return Err(Error::new(
                "no Trigger has a git-server interceptor: cannot install the Triggers for a git server",
            ));
        };
        for (binding, params) in &mut self.bindings {
            for (name, value) in params.iter_mut() {
                if !value.contains("://") {
                    continue;
                }
                let Some(rest) = value.strip_prefix(&format!("{server}/")) else {
                    return Err(Error::new(format!(
                        "TriggerBinding {binding}: param {name} is {value:?}, not on the git server {server} the git-server filter accepts"
                    )));
                };
                *value = format!("{base}/{rest}");
            }
        }
        Ok(self)
    }

    /// The Secrets the Triggers read.
    pub fn secret_refs(&self) -> SecretRefs {
        let compare_re = Regex::new(&format!(
            r"\.compareSecret\(\s*{CEL_STRING}\s*,\s*{CEL_STRING}\s*\)"
        ))
        .expect("a valid pattern");
        let mut refs = SecretRefs::default();
        for i in self.triggers.iter().flat_map(|t| &t.interceptors) {
            match i {
                Interceptor::Github {
                    secret: Some(r), ..
                } => refs.signatures.push(r.clone()),
                Interceptor::Github { secret: None, .. } => {}
                Interceptor::Cel {
                    filter, overlays, ..
                } => {
                    for text in filter.iter().chain(overlays.iter().map(|(_, e)| e)) {
                        for c in compare_re.captures_iter(text) {
                            refs.compared.push((literal(&c, 3), literal(&c, 1)));
                        }
                    }
                }
            }
        }
        refs.signatures.dedup();
        refs.compared.sort();
        refs.compared.dedup();
        refs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trigger::TriggerDef;

    fn set(filter: &str, url: &str) -> TriggerSet {
        TriggerSet {
            triggers: vec![TriggerDef {
                name: "push".into(),
                interceptors: vec![
                    Interceptor::Github {
                        name: "sig".into(),
                        secret: Some(("hook".into(), "token".into())),
                        event_types: vec![],
                    },
                    Interceptor::Cel {
                        name: "git-server".into(),
                        filter: Some(filter.into()),
                        overlays: vec![],
                    },
                    Interceptor::Cel {
                        name: "auth".into(),
                        filter: Some("header.canonical('Authorization').substring(7).compareSecret('token', \"am\")".into()),
                        overlays: vec![],
                    },
                ],
                bindings: vec!["b".into()],
                template: "t".into(),
            }],
            bindings: vec![(
                "b".into(),
                vec![
                    ("git-url".into(), url.into()),
                    ("app".into(), "$(extensions.app)".into()),
                ],
            )],
            templates: Default::default(),
        }
    }

    const FILTER: &str = "body.repository.clone_url == 'https://git.example.com/' + body.repository.full_name + '.git'";

    fn filter_of(s: &TriggerSet) -> &str {
        match &s.triggers[0].interceptors[1] {
            Interceptor::Cel {
                filter: Some(f), ..
            } => f,
            _ => unreachable!(),
        }
    }

    #[test]
    fn installs_the_forge_in_the_filter_and_the_binding_urls() {
        let s = set(
            FILTER,
            "https://git.example.com/user1/$(extensions.app).git",
        )
        .install("http://127.0.0.1:3000/")
        .unwrap();
        assert_eq!(
            filter_of(&s),
            "body.repository.clone_url == 'http://127.0.0.1:3000/' + body.repository.full_name + '.git'"
        );
        assert_eq!(
            s.bindings[0].1[0].1,
            "http://127.0.0.1:3000/user1/$(extensions.app).git"
        );
        assert_eq!(s.bindings[0].1[1].1, "$(extensions.app)");
    }

    #[test]
    fn anything_but_one_server_literal_is_an_error() {
        for (filter, url, needle) in [
            (
                "body.repository.clone_url.startsWith('https://')",
                "x",
                "found 0",
            ),
            (
                &format!(
                    "{FILTER} || body.repository.clone_url == 'https://b/' + body.repository.full_name"
                )[..],
                "x",
                "found 2",
            ),
            (
                "body.repository.clone_url == 'https://git.example.com' + body.repository.full_name",
                "x",
                "does not end with /",
            ),
            (
                FILTER,
                "https://elsewhere.example.com/u/m.git",
                "not on the git server https://git.example.com",
            ),
        ] {
            let e = set(filter, url).install("http://127.0.0.1:1").unwrap_err();
            assert!(e.to_string().contains(needle), "{filter}: {e}");
        }
        let mut s = set(FILTER, "x");
        s.triggers[0].interceptors.remove(1);
        assert!(
            s.install("http://h")
                .unwrap_err()
                .to_string()
                .contains("no Trigger has a git-server")
        );
    }

    #[test]
    fn lists_the_secrets_the_triggers_read() {
        let r = set(FILTER, "x").secret_refs();
        assert_eq!(r.signatures, [("hook".to_string(), "token".to_string())]);
        assert_eq!(r.compared, [("am".to_string(), "token".to_string())]);
    }
}
