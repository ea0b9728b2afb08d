//! The VMs of a setup run as setup holds them: validated names and ids,
//! and [`Kept`], the little it keeps of each listed instance (a whole
//! [`Instance`] is kilobytes, and `setup --all-projects` holds tens of
//! thousands).

use crate::gce::compute::{Instance, Metadata};
use crate::gce::flags::{self, KeySource};
use crate::ssh::names;

/// An instance that passed validation.
#[derive(Debug, Clone)]
pub struct Vm {
    pub project: String,
    pub zone: String,
    pub name: String,
    pub id: String,
    /// The API's status; the usual ones without an allocation each.
    pub status: std::borrow::Cow<'static, str>,
    pub source: KeySource,
    pub kept: Kept,
}

/// A status as [`Vm::status`] keeps it.
pub fn status(s: &str) -> std::borrow::Cow<'static, str> {
    const KNOWN: &[&str] = &[
        "RUNNING",
        "TERMINATED",
        "STOPPED",
        "STOPPING",
        "STAGING",
        "PROVISIONING",
        "SUSPENDED",
        "SUSPENDING",
        "REPAIRING",
        "PENDING_STOP",
    ];
    match KNOWN.iter().find(|k| **k == s) {
        Some(k) => std::borrow::Cow::Borrowed(k),
        None => std::borrow::Cow::Owned(s.to_string()),
    }
}

/// The instance-level metadata flags setup reads; the rest of a VM's
/// metadata is dropped unless setup may write its keys there ([`Kept`]).
pub const KEPT_FLAGS: &[&str] = &[
    "enable-oslogin",
    "enable-oslogin-sk",
    "enable-oslogin-certificates",
    "enable-guest-attributes",
    "block-project-ssh-keys",
];

/// What setup keeps of a listed instance besides its names: a whole
/// [`Instance`] (interfaces, disks, every metadata item) is kilobytes in
/// memory, and `setup --all-projects` holds tens of thousands at once.
#[derive(Debug, Clone, Default)]
pub struct Kept {
    /// The instance's metadata: whole (with its fingerprint, so it can be
    /// written back) for a VM whose keys go into it (it blocks project
    /// keys or has legacy `sshKeys`), else only the [`KEPT_FLAGS`] items;
    /// None when that leaves nothing (most VMs). See [`Kept::metadata`].
    pub meta: Option<Box<Metadata>>,
    /// Whether `metadata` is whole.
    pub whole: bool,
    /// nic0's internal address ([`Instance::internal_ip`]).
    pub internal_ip: Option<std::net::IpAddr>,
    /// The attached service account's email, "" when none.
    pub service_account: Box<str>,
    pub windows: bool,
}

impl Kept {
    pub fn of(inst: Instance) -> Kept {
        let whole = flags::instance_keys(&inst.metadata).is_some();
        let internal_ip = inst.internal_ip();
        let windows = inst.is_windows();
        let service_account = service_account(&inst).into();
        let metadata = if whole {
            inst.metadata
        } else {
            Metadata::from_items(
                inst.metadata
                    .items
                    .into_iter()
                    .filter(|i| KEPT_FLAGS.contains(&i.key.as_str()))
                    .map(|i| (i.key, i.value)),
            )
        };
        let empty = metadata.items.is_empty() && metadata.fingerprint.is_none();
        Kept {
            meta: (!empty).then(|| Box::new(metadata)),
            whole,
            internal_ip,
            service_account,
            windows,
        }
    }

    /// [`Kept::of`] with the whole metadata kept, for a single VM.
    pub fn whole(inst: Instance) -> Kept {
        let meta = Box::new(inst.metadata.clone());
        Kept {
            meta: Some(meta),
            whole: true,
            ..Kept::of(inst)
        }
    }

    /// The metadata kept (empty when none was).
    pub fn metadata(&self) -> &Metadata {
        static EMPTY: Metadata = Metadata {
            fingerprint: None,
            items: Vec::new(),
        };
        self.meta.as_deref().unwrap_or(&EMPTY)
    }
}

impl Vm {
    /// A validated instance of `project`; its key source is worked out
    /// once the project's metadata is known ([`Vm::settle`]).
    pub fn of(project: &str, inst: Instance) -> Result<Vm, String> {
        validate(project, &inst)?;
        Ok(Vm {
            project: project.to_string(),
            zone: inst.zone_name().to_string(),
            name: inst.name.clone(),
            id: inst.id.clone(),
            status: status(&inst.status),
            source: KeySource::Project,
            kept: Kept::of(inst),
        })
    }

    /// Sets where the VM takes keys from, given its project's metadata.
    pub fn settle(&mut self, project_meta: &Metadata) {
        self.source = flags::key_source_of(project_meta, self.kept.metadata(), self.kept.windows);
    }
}

impl Vm {
    pub fn full_alias(&self) -> String {
        format!("{}.{}.{}", self.name, self.zone, self.project)
    }

    /// The region (zone minus its last `-x`).
    pub fn region(&self) -> &str {
        self.zone
            .rsplit_once('-')
            .map(|(r, _)| r)
            .unwrap_or(&self.zone)
    }
}

/// Checks an instance from the API; the reason when it must be skipped.
pub fn validate(project: &str, inst: &Instance) -> Result<(), String> {
    if !names::is_resource_name(&inst.name) {
        return Err(format!(
            "instance name `{}` in project {project} is not a valid Compute Engine name",
            inst.name.escape_default()
        ));
    }
    if !names::is_resource_name(inst.zone_name()) {
        return Err(format!(
            "zone `{}` of instance {} is not a valid zone name",
            inst.zone_name().escape_default(),
            inst.name
        ));
    }
    if !names::is_instance_id(&inst.id) {
        return Err(format!(
            "id `{}` of instance {} is not numeric",
            inst.id.escape_default(),
            inst.name
        ));
    }
    Ok(())
}

/// The VM's service account sent with the signing request ("" for none).
pub fn service_account(inst: &Instance) -> &str {
    inst.service_accounts
        .first()
        .map_or("", |s| s.email.as_str())
}
