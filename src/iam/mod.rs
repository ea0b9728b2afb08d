//! IAM policies of IAP's tunnel resources, as pure logic: the resource
//! names ([`Resource`]), member validation, the condition built from
//! `grant`'s flags ([`condition`]), and editing a fetched policy
//! ([`policy`]) so that everything we do not touch (other roles, other
//! conditions, fields we do not know) goes back exactly as it came.
//! The calls themselves are in [`crate::gce::iap`].

pub mod condition;
pub mod policy;

use crate::error::{UserError, exit};
use crate::ssh::names;

/// The role that lets a principal open IAP TCP tunnels.
pub const TUNNEL_ROLE: &str = "roles/iap.tunnelResourceAccessor";

/// An IAP tunnel resource whose policy `grant` edits (admin-windows-putty
/// §1.1). Project by ID and instance by name, as gcloud's own checks send
/// them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Resource {
    Project(String),
    Zone(String, String),
    Instance(String, String, String),
    DestGroup(String, String, String),
}

impl Resource {
    /// From `grant`'s flags, every name validated (they end up in URLs).
    pub fn from_flags(
        project: &str,
        zone: Option<&str>,
        instance: Option<&str>,
        region: Option<&str>,
        dest_group: Option<&str>,
    ) -> Result<Resource, UserError> {
        names::require_project(project)?;
        let name = |what: &str, v: &str| -> Result<String, UserError> {
            if names::is_resource_name(v) {
                Ok(v.to_string())
            } else {
                Err(UserError::new(
                    exit::USAGE,
                    format!("--{what} `{}` is not a valid name", v.escape_debug()),
                )
                .with_fix(
                    "names are lowercase letters, digits and hyphens, starting with a letter",
                ))
            }
        };
        let p = project.to_string();
        Ok(match (zone, instance, region, dest_group) {
            (None, None, None, None) => Resource::Project(p),
            (Some(z), None, None, None) => Resource::Zone(p, name("zone", z)?),
            (Some(z), Some(i), None, None) => {
                Resource::Instance(p, name("zone", z)?, name("instance", i)?)
            }
            (None, None, Some(r), Some(g)) => {
                Resource::DestGroup(p, name("region", r)?, name("dest-group", g)?)
            }
            (None, Some(_), _, _) => {
                return Err(UserError::new(exit::USAGE, "--instance needs --zone")
                    .with_fix("name the VM's zone: --zone ZONE --instance VM"));
            }
            (None, None, Some(_), None) | (None, None, None, Some(_)) => {
                return Err(
                    UserError::new(exit::USAGE, "--region and --dest-group go together").with_fix(
                        "a destination group is named by both: --region REGION --dest-group GROUP",
                    ),
                );
            }
            _ => {
                return Err(UserError::new(
                    exit::USAGE,
                    "--zone/--instance and --region/--dest-group name different resources",
                )
                .with_fix("grant on a VM (--zone, --instance) or on a destination group (--region, --dest-group), one at a time"));
            }
        })
    }

    /// The project the resource belongs to.
    pub fn project(&self) -> &str {
        match self {
            Resource::Project(p)
            | Resource::Zone(p, _)
            | Resource::Instance(p, ..)
            | Resource::DestGroup(p, ..) => p,
        }
    }

    /// `projects/P/iap_tunnel[/zones/Z[/instances/VM]]` or
    /// `projects/P/iap_tunnel/locations/R/destGroups/G`.
    pub fn path(&self) -> String {
        match self {
            Resource::Project(p) => format!("projects/{p}/iap_tunnel"),
            Resource::Zone(p, z) => format!("projects/{p}/iap_tunnel/zones/{z}"),
            Resource::Instance(p, z, i) => {
                format!("projects/{p}/iap_tunnel/zones/{z}/instances/{i}")
            }
            Resource::DestGroup(p, r, g) => {
                format!("projects/{p}/iap_tunnel/locations/{r}/destGroups/{g}")
            }
        }
    }

    /// `project P`, `zone Z of P`, `VM I in Z of P`, `destination group …`.
    pub fn describe(&self) -> String {
        match self {
            Resource::Project(p) => format!("every VM of {p}"),
            Resource::Zone(p, z) => format!("every VM in {z} of {p}"),
            Resource::Instance(p, z, i) => format!("{i} in {z} of {p}"),
            Resource::DestGroup(p, r, g) => format!("destination group {g} in {r} of {p}"),
        }
    }
}

/// Checks a member in IAM's syntax (`user:`, `group:`, `serviceAccount:`,
/// `domain:`, `principal://`, `principalSet://`). `allUsers` and
/// `allAuthenticatedUsers` are refused: a tunnel grant to them lets anyone
/// with a Google account reach the VMs' ports.
pub fn check_member(m: &str) -> Result<(), String> {
    let printable =
        |s: &str| !s.is_empty() && s.len() <= 512 && s.bytes().all(|b| b.is_ascii_graphic());
    let email = |s: &str| {
        printable(s)
            && s.split_once('@')
                .is_some_and(|(local, dom)| !local.is_empty() && !dom.contains('@') && domain(dom))
    };
    if matches!(m, "allUsers" | "allAuthenticatedUsers") {
        return Err(format!(
            "`{m}` would let anyone with a Google account reach these ports; grant to users, groups or a domain instead"
        ));
    }
    let ok = if let Some(v) = m.strip_prefix("user:") {
        email(v)
    } else if let Some(v) = m.strip_prefix("group:") {
        email(v)
    } else if let Some(v) = m.strip_prefix("serviceAccount:") {
        email(v)
    } else if let Some(v) = m.strip_prefix("domain:") {
        domain(v)
    } else if let Some(v) = m
        .strip_prefix("principal://")
        .or_else(|| m.strip_prefix("principalSet://"))
    {
        printable(v) && v.contains('/')
    } else {
        let hint = if email(m) {
            let kind = if m.ends_with(".gserviceaccount.com") {
                "serviceAccount"
            } else {
                "user"
            };
            format!(" (did you mean {kind}:{m}?)")
        } else {
            String::new()
        };
        return Err(format!(
            "`{}` is not an IAM member{hint}; use user:EMAIL, group:EMAIL, serviceAccount:EMAIL, domain:DOMAIN, principal://… or principalSet://…",
            m.escape_debug()
        ));
    };
    if ok {
        Ok(())
    } else {
        Err(format!("`{}` is not a valid IAM member", m.escape_debug()))
    }
}

fn domain(d: &str) -> bool {
    crate::net::endpoints::valid_universe(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_checked() {
        for ok in [
            "user:alice@example.com",
            "group:ops@example.com",
            "serviceAccount:ci@p.iam.gserviceaccount.com",
            "domain:example.com",
            "principal://iam.googleapis.com/locations/global/workforcePools/p/subject/alice",
            "principalSet://iam.googleapis.com/locations/global/workforcePools/p/group/ops",
        ] {
            assert_eq!(check_member(ok), Ok(()), "{ok}");
        }
        let e = check_member("alice@example.com").unwrap_err();
        assert!(e.contains("did you mean user:alice@example.com?"), "{e}");
        let e = check_member("ci@p.iam.gserviceaccount.com").unwrap_err();
        assert!(e.contains("serviceAccount:ci@"), "{e}");
        assert!(check_member("allUsers").unwrap_err().contains("anyone"));
        assert!(check_member("allAuthenticatedUsers").is_err());
        for bad in [
            "user:",
            "user:alice",
            "user:a@b@c.com",
            "user:al ice@example.com",
            "domain:nodot",
            "group:x@example.com\n",
            "principal://",
            "role:x",
        ] {
            assert!(check_member(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn resources_from_flags() {
        let r = |z, i, reg, g| Resource::from_flags("proj-1", z, i, reg, g).map(|r| r.path());
        assert_eq!(
            r(None, None, None, None).unwrap(),
            "projects/proj-1/iap_tunnel"
        );
        assert_eq!(
            r(Some("us-east1-b"), None, None, None).unwrap(),
            "projects/proj-1/iap_tunnel/zones/us-east1-b"
        );
        assert_eq!(
            r(Some("us-east1-b"), Some("vm"), None, None).unwrap(),
            "projects/proj-1/iap_tunnel/zones/us-east1-b/instances/vm"
        );
        assert_eq!(
            r(None, None, Some("us-east1"), Some("corp")).unwrap(),
            "projects/proj-1/iap_tunnel/locations/us-east1/destGroups/corp"
        );
        assert!(r(None, Some("vm"), None, None).is_err());
        assert!(r(None, None, Some("us-east1"), None).is_err());
        assert!(r(Some("z"), None, Some("r"), Some("g")).is_err());
        assert!(r(Some("us-east1-b"), Some("../x"), None, None).is_err());
        assert!(Resource::from_flags("P/../x", None, None, None, None).is_err());
    }
}
