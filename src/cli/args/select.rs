//! Which VMs a command covers (`--project`, `--all-projects`, `--filter`,
//! `--zone`), and `--key-ttl`.

use crate::error::UserError;

/// Which VMs `setup` and `list` cover.
#[derive(Debug, Clone, clap::Args)]
pub struct SelectionArgs {
    /// Project (repeatable; default: gcloud's core/project)
    #[arg(long = "project", value_name = "PROJECT")]
    pub projects: Vec<String>,
    /// Every active project you can see (Cloud Resource Manager); projects
    /// without the Compute Engine API or access to it are skipped
    #[arg(long, conflicts_with = "projects")]
    pub all_projects: bool,
    /// Only VMs matching this Compute list filter (aggregatedList's
    /// `filter`), e.g. labels.env=prod or "name eq web-.*"
    #[arg(long, value_name = "EXPR")]
    pub filter: Option<String>,
    /// Only VMs in this zone (repeatable)
    #[arg(long = "zone", value_name = "ZONE")]
    pub zones: Vec<String>,
}

impl SelectionArgs {
    /// The selection, projects defaulting to gcloud's `core/project`;
    /// every value validated.
    pub fn selection(&self) -> Result<crate::setup::Selection, UserError> {
        let projects = if self.all_projects {
            vec![]
        } else {
            projects_or_default(&self.projects)?
        };
        let s = crate::setup::Selection {
            projects,
            all_projects: self.all_projects,
            filter: self.filter.clone(),
            zones: dedup(self.zones.clone()),
        };
        crate::setup::check_selection(&s)?;
        Ok(s)
    }
}

/// `--project` values, else gcloud's `core/project`; each validated.
pub fn projects_or_default(given: &[String]) -> Result<Vec<String>, UserError> {
    let mut projects = given.to_vec();
    if projects.is_empty() {
        projects.extend(crate::gcloud::GcloudConfig::process().project.clone());
    }
    if projects.is_empty() {
        return Err(
            UserError::new(crate::error::exit::USAGE, "no project given").with_fix(
                "pass --project PROJECT (repeatable), or `gcloud config set project PROJECT`",
            ),
        );
    }
    for p in &projects {
        crate::ssh::names::require_project(p)?;
    }
    Ok(dedup(projects))
}

/// `v` without repeats, first occurrences kept in order.
pub fn dedup(v: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    v.into_iter().filter(|x| seen.insert(x.clone())).collect()
}

/// A parsed `--key-ttl` (None: never expires).
#[derive(Debug, Clone, Copy)]
pub struct Ttl(pub Option<u64>);

pub fn parse_ttl(s: &str) -> Result<Ttl, String> {
    crate::setup::parse_ttl(s).map(Ttl)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_projects_are_dropped_in_order() {
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(dedup(v(&["a", "b", "a", "c", "b"])), v(&["a", "b", "c"]));
    }
}
