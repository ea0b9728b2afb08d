//! Pure parts of setup: which instances get a Host block and under which
//! aliases, the blocks themselves, and the ProxyCommand. Every value from
//! the API is validated here before it can reach a config line.

use std::collections::BTreeMap;

use crate::gce::flags::KeySource;
use crate::ssh::claims::Claims;
use crate::ssh::config::{HostBlock, Route, Strict};
use crate::ssh::{known_hosts, quote};

pub use super::vm::{KEPT_FLAGS, Kept, Vm, status, validate};

/// The ProxyCommand for `vm`: `EXE proxy --project P --zone Z NAME %p`,
/// the executable shell-quoted (ssh runs it with `sh -c`) and `%` doubled.
/// `global` holds options that go before `proxy` (`--impersonate-service-account=…`,
/// validated to be shell-safe), empty or starting with a space.
pub fn proxy_command(exe: &str, global: &str, project: &str, zone: &str, name: &str) -> String {
    proxy_command_with(exe, global, "", project, zone, name)
}

/// [`proxy_command`] with options for `proxy` itself (`local`, e.g.
/// ` --wait=120s`: validated, shell-safe, empty or starting with a space).
pub fn proxy_command_with(
    exe: &str,
    global: &str,
    local: &str,
    project: &str,
    zone: &str,
    name: &str,
) -> String {
    format!(
        "{}{global} proxy{local} --project {project} --zone {zone} {name} %p",
        quote::shell_word(exe).replace('%', "%%")
    )
}

/// The certificate check ssh runs for an OS Login certificate VM (in a
/// `Match host … exec "…"` line): the words shell-quoted, `%` doubled (ssh
/// expands tokens in it). None when a path has a `"`, which cannot sit in
/// the double-quoted exec argument.
#[allow(clippy::too_many_arguments)]
pub fn cert_check_command(
    exe: &str,
    global: &str,
    project: &str,
    zone: &str,
    name: &str,
    instance_id: &str,
    service_account: &str,
    key_file: &str,
    cert_file: &str,
) -> Option<String> {
    let mut cmd = format!(
        "{}{global} oslogin-cert --project {project} --zone {zone} --instance {name} --instance-id {instance_id}",
        quote::shell_word(exe)
    );
    if !service_account.is_empty() {
        cmd.push_str(&format!(
            " --service-account {}",
            quote::shell_word(service_account)
        ));
    }
    cmd.push_str(&format!(
        " --key-file {} --cert-file {}",
        quote::shell_word(key_file),
        quote::shell_word(cert_file)
    ));
    let cmd = cmd.replace('%', "%%");
    (!cmd.contains('"') && !cmd.chars().any(char::is_control)).then_some(cmd)
}

/// The wildcard ProxyCommand: `%n` is the name as typed (NAME.ZONE.PROJECT),
/// substituted by ssh verbatim into a line it runs with `sh -c`. OpenSSH
/// before 9.6 passes any name through (`ssh '$(touch x).z.p'`), so `%n`
/// sits inside single quotes, where nothing but `'` is special, and the
/// wildcard block never matches a name with `'` in it
/// ([`wildcard_patterns`]); `--` keeps a name starting with `-` from
/// reading as an option. `proxy` validates each part again.
pub fn wildcard_proxy_command(exe: &str, global: &str) -> String {
    format!(
        "{}{global} proxy -- '%n' %p",
        quote::shell_word(exe).replace('%', "%%")
    )
}

/// The wildcard block's patterns for `project`: every NAME.ZONE.PROJECT,
/// except names with a `'` (which could close the quotes around `%n`).
/// The negation is double-quoted, which OpenSSH reads the same way before
/// and after 8.7 (when single quotes became quote characters too).
pub fn wildcard_patterns(project: &str) -> Vec<String> {
    vec![format!("*.*.{project}"), "\"!*'*\"".to_string()]
}

/// A short alias left out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Withheld {
    pub name: String,
    /// The alias that reaches the VM instead.
    pub full: String,
    pub why: String,
}

/// Everything the blocks need besides the VMs.
pub struct Context<'a> {
    pub exe: &'a str,
    /// Options before `proxy` in every ProxyCommand (see [`proxy_command`]).
    pub global_args: &'a str,
    /// Connection sharing for every block: (`ControlPath`, `ControlPersist`).
    pub control: Option<(&'a str, &'a str)>,
    pub identity_file: &'a str,
    pub known_hosts_path: &'a str,
    /// Host names the known-hosts file has keys for.
    pub known_aliases: &'a std::collections::HashSet<&'a str>,
    /// User for metadata-key VMs.
    pub metadata_user: &'a str,
    /// User for OS Login VMs, per project (POSIX accounts are per project).
    pub oslogin_users: &'a BTreeMap<String, String>,
    /// Projects whose project-wide metadata turns OS Login on.
    pub oslogin_projects: &'a [String],
    pub projects: &'a [String],
    /// Names the user already means something by (no short alias).
    pub claims: &'a Claims,
    /// `HostName` = the internal address instead of a ProxyCommand.
    pub internal_ip: bool,
    /// OS Login certificate VMs by instance id: (certificate file, the
    /// VM's service account or "") and the private key file (raw path).
    pub certs: &'a BTreeMap<String, (String, String)>,
    pub key_file: &'a str,
    /// VMs (by instance id) that take security keys only
    /// (`enable-oslogin-sk`), and the `IdentityFile` value of the user's
    /// `sk-` key for them, when one was found.
    pub sk_vms: &'a std::collections::BTreeSet<String>,
    pub sk_identity: Option<&'a str>,
}

/// How often each instance name occurs among the VMs set up together.
pub struct NameCounts<'a>(BTreeMap<&'a str, usize>);

impl<'a> NameCounts<'a> {
    pub fn of(vms: &'a [Vm]) -> NameCounts<'a> {
        let mut count = BTreeMap::new();
        for v in vms {
            *count.entry(v.name.as_str()).or_default() += 1;
        }
        NameCounts(count)
    }

    /// A VM's Host patterns: NAME when no other VM has that name and the
    /// user does not already use it, then NAME.ZONE.PROJECT (always). The
    /// second value says why NAME was left out, when the user uses it.
    pub fn patterns(&self, v: &Vm, claims: &Claims) -> (Vec<String>, Option<Withheld>) {
        let mut p = vec![];
        let mut withheld = None;
        if self.0.get(v.name.as_str()) == Some(&1) {
            match claims.why(&v.name) {
                None => p.push(v.name.clone()),
                Some(why) => {
                    withheld = Some(Withheld {
                        name: v.name.clone(),
                        full: v.full_alias(),
                        why,
                    })
                }
            }
        }
        p.push(v.full_alias());
        (p, withheld)
    }
}

/// Host blocks for `vms` (sorted by project, zone, name), then one
/// wildcard block per project; and the short aliases withheld.
pub fn blocks(vms: &[Vm], cx: &Context) -> (Vec<HostBlock>, Vec<Withheld>) {
    let plan = Plan::new(vms, cx);
    (plan.blocks().collect(), plan.withheld())
}

/// The Host blocks of a run, made one at a time when asked for: a large
/// fleet's blocks are written out as they are made, never all held.
pub struct Plan<'a> {
    sorted: Vec<&'a Vm>,
    names: NameCounts<'a>,
    cx: &'a Context<'a>,
}

/// Counts for the summary: VM blocks, those whose host keys are known,
/// and the first VM's first alias.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub hosts: usize,
    pub known: usize,
    pub first: Option<String>,
}

impl<'a> Plan<'a> {
    pub fn new(vms: &'a [Vm], cx: &'a Context<'a>) -> Plan<'a> {
        let mut sorted: Vec<&Vm> = vms
            .iter()
            .filter(|v| v.source != KeySource::Windows)
            .collect();
        sorted.sort_by(|a, b| (&a.project, &a.zone, &a.name).cmp(&(&b.project, &b.zone, &b.name)));
        Plan {
            sorted,
            names: NameCounts::of(vms),
            cx,
        }
    }

    /// The short aliases left out, and why.
    pub fn withheld(&self) -> Vec<Withheld> {
        self.sorted
            .iter()
            .filter_map(|v| self.names.patterns(v, self.cx.claims).1)
            .collect()
    }

    /// The blocks, in order: one per VM, then the wildcards.
    pub fn blocks(&self) -> impl Iterator<Item = HostBlock> + '_ {
        self.sorted
            .iter()
            .map(|v| self.vm_block(v))
            .chain(self.cx.projects.iter().map(|p| self.wildcard_block(p)))
    }

    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for b in self.blocks().filter(|b| b.host_key_alias.is_some()) {
            c.hosts += 1;
            c.known += usize::from(b.strict == Strict::Yes);
            if c.first.is_none() {
                c.first = b.patterns.into_iter().next();
            }
        }
        c
    }

    fn vm_block(&self, v: &Vm) -> HostBlock {
        let cx = self.cx;
        let (patterns, _) = self.names.patterns(v, cx.claims);
        let alias = known_hosts::alias(&v.id);
        let user = match v.source {
            KeySource::OsLogin => cx
                .oslogin_users
                .get(&v.project)
                .map_or(cx.metadata_user, String::as_str),
            _ => cx.metadata_user,
        };
        HostBlock {
            comment: format!(
                "{} in {} of {}; key via {}{}{}",
                v.name,
                v.zone,
                v.project,
                v.source.describe(),
                if v.status == "RUNNING" {
                    String::new()
                } else {
                    format!(" ({})", v.status.to_lowercase())
                },
                match (cx.internal_ip, v.kept.internal_ip) {
                    (true, Some(_)) => "; direct to its internal IP",
                    (true, None) => "; through IAP (no internal IP)",
                    _ => "",
                }
            ),
            patterns,
            user: user.to_string(),
            identity_file: match cx.sk_identity {
                Some(sk) if cx.sk_vms.contains(&v.id) => sk.to_string(),
                _ => cx.identity_file.to_string(),
            },
            strict: if cx.known_aliases.contains(alias.as_str()) {
                Strict::Yes
            } else {
                Strict::AcceptNew
            },
            host_key_alias: Some(alias),
            known_hosts: cx.known_hosts_path.to_string(),
            route: match v.kept.internal_ip.filter(|_| cx.internal_ip) {
                Some(ip) => Route::Direct(ip),
                None => Route::Proxy(proxy_command(
                    cx.exe,
                    cx.global_args,
                    &v.project,
                    &v.zone,
                    &v.name,
                )),
            },
            control: cx.control.map(|(a, b)| (a.to_string(), b.to_string())),
            certificate: cx.certs.get(&v.id).and_then(|(file, sa)| {
                let check = cert_check_command(
                    cx.exe,
                    cx.global_args,
                    &v.project,
                    &v.zone,
                    &v.name,
                    &v.id,
                    sa,
                    cx.key_file,
                    file,
                )?;
                Some((quote::config_value(file)?, check))
            }),
        }
    }

    fn wildcard_block(&self, p: &str) -> HostBlock {
        let cx = self.cx;
        let user = if cx.oslogin_projects.iter().any(|o| o == p) {
            cx.oslogin_users
                .get(p)
                .or_else(|| cx.oslogin_users.values().next())
                .map_or(cx.metadata_user, String::as_str)
        } else {
            cx.metadata_user
        };
        HostBlock {
            comment: format!(
                "any other VM of {p}, e.g. one created after setup: ssh NAME.ZONE.{p}"
            ),
            patterns: wildcard_patterns(p),
            user: user.to_string(),
            identity_file: cx.identity_file.to_string(),
            host_key_alias: None,
            known_hosts: cx.known_hosts_path.to_string(),
            strict: Strict::AcceptNew,
            // A VM unknown at setup has no address here: through IAP.
            route: Route::Proxy(wildcard_proxy_command(cx.exe, cx.global_args)),
            control: cx.control.map(|(a, b)| (a.to_string(), b.to_string())),
            certificate: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gce::compute::Instance;

    fn vm(project: &str, zone: &str, name: &str, id: &str, source: KeySource) -> Vm {
        Vm {
            project: project.into(),
            zone: zone.into(),
            name: name.into(),
            id: id.into(),
            status: status("RUNNING"),
            source,
            kept: Kept::default(),
        }
    }

    fn listed(v: serde_json::Value) -> Instance {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn aliases_users_and_strictness() {
        let vms = vec![
            vm("proj-b", "z-1", "web", "2", KeySource::Project),
            vm("proj-a", "z-1", "web", "1", KeySource::OsLogin),
            vm("proj-a", "z-2", "db", "3", KeySource::Instance),
            vm("proj-a", "z-2", "win", "4", KeySource::Windows),
        ];
        let projects = vec!["proj-a".to_string(), "proj-b".to_string()];
        let cx = Context {
            exe: "/opt/my tools/iap-ssh",
            global_args: "",
            control: None,
            identity_file: "/h/.ssh/k",
            known_hosts_path: "/h/.ssh/kh",
            known_aliases: &known_hosts::aliases("compute.3 ssh-ed25519 AAAA\n"),
            metadata_user: "bob",
            oslogin_users: &[("proj-a".to_string(), "alice_example_com".to_string())]
                .into_iter()
                .collect(),
            oslogin_projects: &[],
            projects: &projects,
            claims: &Claims::new(),
            internal_ip: false,
            certs: &Default::default(),
            key_file: "/h/.ssh/k",
            sk_vms: &Default::default(),
            sk_identity: None,
        };
        let (b, withheld) = blocks(&vms, &cx);
        assert!(withheld.is_empty());
        assert_eq!(b.len(), 5, "3 VMs (Windows skipped) + 2 wildcards");
        assert_eq!(
            b[0].patterns,
            vec!["web.z-1.proj-a"],
            "ambiguous short name left out"
        );
        assert_eq!(b[0].user, "alice_example_com");
        assert_eq!(b[1].patterns, vec!["db", "db.z-2.proj-a"]);
        assert_eq!(b[1].strict, Strict::Yes);
        assert_eq!(b[0].strict, Strict::AcceptNew);
        assert_eq!(b[2].user, "bob");
        assert_eq!(
            b[1].route,
            Route::Proxy("'/opt/my tools/iap-ssh' proxy --project proj-a --zone z-2 db %p".into())
        );
        assert_eq!(b[3].patterns, vec!["*.*.proj-a", "\"!*'*\""]);
        assert_eq!(
            b[3].route,
            Route::Proxy("'/opt/my tools/iap-ssh' proxy -- '%n' %p".into())
        );

        // --internal-ip: HostName for VMs with an address, IAP otherwise.
        let mut vms = vms;
        vms[2].kept = Kept::of(listed(serde_json::json!({
            "id": "3", "name": "db", "zone": "https://x/zones/z-2",
            "networkInterfaces": [{"networkIP": "10.1.2.3"}]
        })));
        vms[0].kept = Kept::of(listed(serde_json::json!({
            "id": "2", "name": "web", "zone": "https://x/zones/z-1",
            "networkInterfaces": [{"networkIP": "10.1.2.3\n    ProxyCommand evil", "stackType": "IPV6_ONLY", "ipv6Address": "fd20::5"}]
        })));
        let cx = Context {
            internal_ip: true,
            ..cx
        };
        let (b, _) = blocks(&vms, &cx);
        assert_eq!(b[1].route, Route::Direct("10.1.2.3".parse().unwrap()));
        assert!(
            b[1].comment.ends_with("; direct to its internal IP"),
            "{}",
            b[1].comment
        );
        assert_eq!(b[2].route, Route::Direct("fd20::5".parse().unwrap()));
        assert!(matches!(b[0].route, Route::Proxy(_)));
        assert!(
            b[0].comment.ends_with("; through IAP (no internal IP)"),
            "{}",
            b[0].comment
        );
        assert!(
            matches!(b[3].route, Route::Proxy(_)),
            "wildcards go through IAP"
        );
    }

    #[test]
    fn validation() {
        let mut i =
            listed(serde_json::json!({"id": "1", "name": "ok", "zone": "https://x/zones/z"}));
        assert!(validate("p", &i).is_ok());
        i.name = "bad\nHost *".into();
        assert!(validate("p", &i).unwrap_err().contains("bad\\nHost *"));
        i.name = "ok".into();
        i.id = "1 2".into();
        assert!(validate("p", &i).is_err());
        i.id = "1".into();
        i.zone = "zones/Z;".into();
        assert!(validate("p", &i).is_err());
    }

    #[test]
    fn names_the_user_already_uses_get_no_short_alias() {
        let vms = vec![
            vm("proj-a", "z-1", "bastion", "1", KeySource::Project),
            vm("proj-a", "z-1", "localhost", "2", KeySource::Project),
            vm("proj-a", "z-1", "web", "3", KeySource::Project),
        ];
        let mut claims = Claims::new();
        claims.add_config(
            "Host bastion
  ForwardAgent yes
",
            "cfg",
        );
        let projects = vec!["proj-a".to_string()];
        let cx = Context {
            exe: "/bin/iap-ssh",
            global_args: "",
            control: None,
            identity_file: "/h/.ssh/k",
            known_hosts_path: "/h/.ssh/kh",
            known_aliases: &Default::default(),
            metadata_user: "bob",
            oslogin_users: &Default::default(),
            oslogin_projects: &[],
            projects: &projects,
            claims: &claims,
            internal_ip: false,
            certs: &Default::default(),
            key_file: "/h/.ssh/k",
            sk_vms: &Default::default(),
            sk_identity: None,
        };
        let (b, withheld) = blocks(&vms, &cx);
        assert_eq!(b[0].patterns, vec!["bastion.z-1.proj-a"]);
        assert_eq!(b[1].patterns, vec!["localhost.z-1.proj-a"]);
        assert_eq!(b[2].patterns, vec!["web", "web.z-1.proj-a"]);
        assert_eq!(withheld.len(), 2);
        assert_eq!(withheld[0].name, "bastion");
        assert_eq!(withheld[0].full, "bastion.z-1.proj-a");
        assert!(withheld[0].why.contains("`Host bastion` (cfg line 1)"));
        assert!(withheld[1].why.contains("local"));
    }

    #[test]
    fn percent_in_exe_is_escaped() {
        assert_eq!(
            proxy_command("/x%y/iap-ssh", "", "p", "z", "n"),
            "/x%%y/iap-ssh proxy --project p --zone z n %p"
        );
    }
}
