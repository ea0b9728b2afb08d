//! IAP's IAM calls on tunnel resources (admin-windows-putty §1.3):
//! getIamPolicy (always asking for version 3, so conditions come back as
//! they are) and setIamPolicy. Policies stay JSON values so that
//! [`crate::iam::policy`] can send back what it does not know.

use http::Method;
use serde_json::{Value, json};

use super::{Api, ApiError};
use crate::iam::Resource;

impl Api {
    fn iap_url(&self, r: &Resource, verb: &str) -> String {
        // Resource names are validated ([a-z0-9-]); nothing to encode.
        format!("{}{}:{verb}", self.endpoints.iap, r.path())
    }

    pub async fn get_iam_policy(&self, r: &Resource) -> Result<Value, ApiError> {
        let body = json!({"options": {"requestedPolicyVersion": 3}});
        self.call(
            Method::POST,
            &self.iap_url(r, "getIamPolicy"),
            Some(&body),
            &format!("IAM policy of {}", r.path()),
        )
        .await
    }

    /// `body` as [`crate::iam::policy::for_set`] makes it. A stale etag is
    /// HTTP 409 (or 412); the caller reads again and redoes its change.
    pub async fn set_iam_policy(&self, r: &Resource, body: &Value) -> Result<Value, ApiError> {
        self.call(
            Method::POST,
            &self.iap_url(r, "setIamPolicy"),
            Some(body),
            &format!("setting the IAM policy of {}", r.path()),
        )
        .await
    }
}

/// What one read-modify-write did.
pub struct Edited<T> {
    pub before: Value,
    pub after: Value,
    /// What the change function returned on the last (written) round.
    pub outcome: T,
    /// Whether setIamPolicy was called (false: no change, or a dry run).
    pub written: bool,
    /// Rounds lost to a concurrent change (409/412).
    pub conflicts: u32,
}

/// Rounds of get → change → set before a stream of concurrent changes
/// is reported instead of retried.
const EDIT_ROUNDS: u32 = 5;

impl Api {
    /// getIamPolicy, `change` (which returns whether it changed
    /// anything), setIamPolicy with the fetched etag; on a stale etag
    /// (409 ABORTED, 412) the whole round again on a fresh read, backing
    /// off (a quarter of the relay's outage backoff, with jitter), at most [`EDIT_ROUNDS`]
    /// times. Nothing is written when `change` reports no change or on a
    /// dry run.
    pub async fn edit_iam_policy<T>(
        &self,
        r: &Resource,
        dry_run: bool,
        mut change: impl FnMut(&mut Value) -> (bool, T),
    ) -> Result<Edited<T>, ApiError> {
        let mut conflicts = 0;
        loop {
            let before = self.get_iam_policy(r).await?;
            let mut after = before.clone();
            let (changed, outcome) = change(&mut after);
            if !changed || dry_run {
                return Ok(Edited {
                    before,
                    after,
                    outcome,
                    written: false,
                    conflicts,
                });
            }
            let body = crate::iam::policy::for_set(after.clone());
            match self.set_iam_policy(r, &body).await {
                Ok(stored) => {
                    return Ok(Edited {
                        before,
                        after: stored,
                        outcome,
                        written: true,
                        conflicts,
                    });
                }
                Err(e) if matches!(e.status(), Some(409 | 412)) && conflicts + 1 < EDIT_ROUNDS => {
                    conflicts += 1;
                    tracing::info!("{}: changed meanwhile ({e}); reading it again", r.path());
                    let pause = crate::relay::retry::pause(conflicts) / 4;
                    tokio::time::sleep(pause + crate::tunnel::jitter() / 4).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Api {
    /// Gives `members` the tunnel role on `r` under `cond` (or, with
    /// `remove`, takes it away) through [`Api::edit_iam_policy`]; the
    /// outcome lists the members whose grant changed.
    pub async fn edit_tunnel_grant(
        &self,
        r: &Resource,
        members: &[String],
        cond: Option<&crate::iam::condition::Condition>,
        remove: bool,
        dry_run: bool,
    ) -> Result<Edited<Vec<String>>, ApiError> {
        use crate::iam::{TUNNEL_ROLE, policy};
        self.edit_iam_policy(r, dry_run, |p| {
            let touched = if remove {
                policy::remove(p, TUNNEL_ROLE, members, cond)
            } else {
                policy::add(p, TUNNEL_ROLE, members, cond)
            };
            (!touched.is_empty(), touched)
        })
        .await
    }
}
