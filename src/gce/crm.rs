//! Cloud Resource Manager v1: the projects the caller can see
//! (`projects.list`, every page), for `setup --all-projects` and
//! `list --all-projects`; a project's own IAM policy
//! (`projects.getIamPolicy`), whose bindings every IAP tunnel resource of
//! the project inherits, for `grant --list`.

use http::Method;
use serde::Deserialize;

use super::{Api, ApiError};

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Project {
    #[serde(default)]
    project_id: String,
    #[serde(default)]
    lifecycle_state: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Page {
    #[serde(default)]
    projects: Vec<Project>,
    #[serde(default)]
    next_page_token: Option<String>,
}

/// Most pages read (500 projects each): a bound on a server that keeps
/// answering with a next page.
const MAX_PAGES: usize = 1000;

impl Api {
    /// The project's own IAM policy (version 3, so conditions are shown).
    pub async fn project_iam_policy(&self, project: &str) -> Result<serde_json::Value, ApiError> {
        let body = serde_json::json!({"options": {"requestedPolicyVersion": 3}});
        self.call(
            Method::POST,
            &format!("{}projects/{project}:getIamPolicy", self.endpoints.crm),
            Some(&body),
            &format!("IAM policy of project {project}"),
        )
        .await
    }

    /// IDs of the ACTIVE projects the caller can see, sorted. IDs that
    /// are not valid project IDs are left out (they would reach URLs and
    /// config lines).
    pub async fn active_projects(&self) -> Result<Vec<String>, ApiError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut q = form_urlencoded::Serializer::new(String::new());
            q.append_pair("filter", "lifecycleState:ACTIVE");
            q.append_pair("pageSize", "500");
            if let Some(t) = &token {
                q.append_pair("pageToken", t);
            }
            let url = format!("{}projects?{}", self.endpoints.crm, q.finish());
            let page: Page = self
                .call(
                    Method::GET,
                    &url,
                    None,
                    "listing your projects (Cloud Resource Manager)",
                )
                .await?;
            for p in page.projects {
                if p.lifecycle_state == "ACTIVE" && crate::ssh::names::is_project_id(&p.project_id)
                {
                    out.push(p.project_id);
                } else if p.lifecycle_state == "ACTIVE" {
                    tracing::warn!("skipping project with an unexpected id {:?}", p.project_id);
                }
            }
            match page.next_page_token.filter(|t| !t.is_empty()) {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }
}
