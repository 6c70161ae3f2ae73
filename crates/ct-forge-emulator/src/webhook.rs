//! Push webhooks in Gitea's format: the `PushPayload` JSON (two-space indented, no trailing
//! newline), Gitea's, Gogs' and GitHub's event headers, and HMAC-SHA256 signatures over the
//! raw body. Delivered once after each push (Gitea does not retry), recorded for inspection.

use std::sync::Arc;

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha1::Sha1;
use sha2::Sha256;

use crate::git;
use crate::git_http::{PushEvent, ZERO_SHA};
use crate::gitea::render::{Gitea, payload_commit};
use crate::state::ForgeState;
use crate::store::{Delivery, HookRec};

/// Most commits listed in one payload (Gitea's default `[webhook] PAYLOAD_COMMIT_LIMIT`-like cap).
const MAX_COMMITS: usize = 20;

/// Hex HMAC-SHA256 of `body` keyed by `secret`; empty when there is no secret, as Gitea sends.
pub fn signature(secret: &str, body: &[u8]) -> String {
    hmac_hex::<Hmac<Sha256>>(secret, body)
}

/// Hex HMAC-SHA1 of `body` (the legacy `X-Hub-Signature`); empty without a secret.
pub fn signature_sha1(secret: &str, body: &[u8]) -> String {
    hmac_hex::<Hmac<Sha1>>(secret, body)
}

fn hmac_hex<M: Mac + KeyInit>(secret: &str, body: &[u8]) -> String {
    if secret.is_empty() {
        return String::new();
    }
    let mut mac = <M as KeyInit>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Called by the git server after a push: build one payload per updated branch and deliver it
/// to the repository's active push hooks in the background.
pub(crate) fn on_push(forge: Arc<ForgeState>, ev: PushEvent) {
    let Some((owner, name)) = ev.repo.trim_end_matches(".git").split_once('/') else {
        return;
    };
    let (owner, name) = (owner.to_string(), name.to_string());
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return;
    };
    rt.spawn(async move {
        for u in ev
            .updates
            .iter()
            .filter(|u| u.refname.starts_with("refs/heads/"))
        {
            // Gitea sends a `delete` event, not a push, when a branch is removed.
            if u.new == ZERO_SHA {
                continue;
            }
            let Some((hooks, body)) =
                payload(&forge, &owner, &name, &ev.user, &u.refname, &u.old, &u.new)
            else {
                continue;
            };
            for hook in hooks {
                deliver(&forge, &format!("{owner}/{name}"), &hook, &body).await;
            }
        }
    });
}

/// The hooks to call and the payload bytes for one ref update.
fn payload(
    forge: &ForgeState,
    owner: &str,
    name: &str,
    pusher: &str,
    refname: &str,
    before: &str,
    after: &str,
) -> Option<(Vec<HookRec>, Vec<u8>)> {
    let dir = forge.repo_dir(owner, name);
    let full = format!("{owner}/{name}");
    // New branch: the commits not on any other branch; update: before..after.
    let exclude: Vec<String> = if before == ZERO_SHA {
        git::branches(&dir)
            .into_iter()
            .filter(|(b, _)| format!("refs/heads/{b}") != refname)
            .map(|(_, sha)| sha)
            .collect()
    } else {
        vec![before.to_string()]
    };
    let shas = git::rev_list(&dir, after, &exclude, MAX_COMMITS);
    let commits: Vec<Value> = shas
        .iter()
        .filter_map(|sha| git::commit_info(&dir, sha).ok())
        .map(|c| payload_commit(&forge.base, &full, &c))
        .collect();
    let head_commit = match commits.first() {
        Some(c) => c.clone(),
        None => git::commit_info(&dir, after)
            .map(|c| payload_commit(&forge.base, &full, &c))
            .unwrap_or(Value::Null),
    };
    let s = forge.lock();
    let ri = s.repo_idx(owner, name)?;
    let r = &s.repos[ri];
    let hooks: Vec<HookRec> = r
        .hooks
        .iter()
        .filter(|h| h.active && h.events.iter().any(|e| e == "push"))
        .cloned()
        .collect();
    if hooks.is_empty() {
        return None;
    }
    let g = Gitea {
        store: &s,
        base: &forge.base,
    };
    let user = s
        .user_by_login(pusher)
        .map(|u| g.user(u, true))
        .unwrap_or(Value::Null);
    let v = json!({
        "ref": refname,
        "before": before,
        "after": after,
        "compare_url": format!("{}/{full}/compare/{before}...{after}", forge.base),
        "commits": commits,
        "total_commits": commits.len(),
        "head_commit": head_commit,
        "repository": g.repo(r, true, false, true),
        "pusher": user,
        "sender": user,
    });
    let body = serde_json::to_vec_pretty(&v).ok()?;
    Some((hooks, body))
}

/// POST one payload to one hook and record the outcome.
async fn deliver(forge: &ForgeState, repo: &str, hook: &HookRec, body: &[u8]) {
    let uuid = uuid::Uuid::new_v4().to_string();
    let sig = signature(&hook.secret, body);
    let mut req = forge
        .http()
        .post(&hook.url)
        .header("X-Gitea-Delivery", &uuid)
        .header("X-Gitea-Event", "push")
        .header("X-Gitea-Event-Type", "push")
        .header("X-Gitea-Signature", &sig)
        .header("X-Gogs-Delivery", &uuid)
        .header("X-Gogs-Event", "push")
        .header("X-Gogs-Event-Type", "push")
        .header("X-Gogs-Signature", &sig)
        .header(
            "X-Hub-Signature",
            format!("sha1={}", signature_sha1(&hook.secret, body)),
        )
        .header("X-Hub-Signature-256", format!("sha256={sig}"))
        .header("X-GitHub-Delivery", &uuid)
        .header("X-GitHub-Event", "push")
        .header("X-GitHub-Event-Type", "push");
    req = if hook.content_type == "form" {
        let form = format!(
            "payload={}",
            url::form_urlencoded::byte_serialize(body).collect::<String>()
        );
        req.header("Content-Type", "application/x-www-form-urlencoded")
            .body(form)
    } else {
        req.header("Content-Type", "application/json")
            .body(body.to_vec())
    };
    let (status, error) = match req.send().await {
        Ok(resp) => {
            let st = resp.status();
            if !st.is_success() {
                tracing::warn!("webhook {} to {}: HTTP {st}", hook.id, hook.url);
            }
            (Some(st.as_u16()), None)
        }
        Err(e) => {
            tracing::warn!("webhook {} to {}: {e}", hook.id, hook.url);
            (None, Some(e.to_string()))
        }
    };
    forge.lock().deliveries.push(Delivery {
        hook_id: hook.id,
        repo: repo.to_string(),
        uuid,
        event: "push".to_string(),
        url: hook.url.clone(),
        body: body.to_vec(),
        status,
        error,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hex_hmac_sha256_and_empty_without_secret() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(signature("", b"x"), "");
        // RFC 2202 test case 2.
        assert_eq!(
            signature_sha1("Jefe", b"what do ya want for nothing?"),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
        assert_eq!(signature_sha1("", b"x"), "");
    }
}
