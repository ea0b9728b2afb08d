//! Command lines for the system `ssh` and `scp`: the options a setup Host
//! block carries, as `-i`/`-o` arguments, and the parsing of scp's
//! `[USER@]INSTANCE:PATH` arguments. Pure.

use std::path::Path;

use super::config::{Route, Strict};
use super::quote;

/// How to reach one VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnOptions {
    pub identity_file: String,
    pub known_hosts: String,
    pub host_key_alias: String,
    pub strict: Strict,
    pub route: Route,
    /// An OS Login certificate to offer (`CertificateFile`).
    pub certificate: Option<String>,
}

/// `-i KEY -o K=V …` in gcloud's order (options sorted by name).
pub fn options(c: &ConnOptions) -> Vec<String> {
    let strict = match c.strict {
        Strict::Yes => "yes",
        Strict::AcceptNew => "accept-new",
    };
    let mut v = vec!["-i".to_string(), c.identity_file.replace('%', "%%")];
    let mut opts = vec![
        "CheckHostIP=no".to_string(),
        "HashKnownHosts=no".to_string(),
        format!("HostKeyAlias={}", c.host_key_alias),
        "IdentitiesOnly=yes".to_string(),
        match &c.route {
            Route::Proxy(cmd) => format!("ProxyCommand={cmd}"),
            Route::Direct(ip) => format!("HostName={ip}"),
        },
        format!("StrictHostKeyChecking={strict}"),
        format!("UserKnownHostsFile={}", c.known_hosts),
    ];
    if let Some(cert) = &c.certificate {
        opts.push(format!("CertificateFile={}", cert.replace('%', "%%")));
    }
    opts.sort_by(|a, b| a.split('=').next().cmp(&b.split('=').next()));
    for o in opts {
        v.push("-o".into());
        v.push(o);
    }
    v
}

/// An scp argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScpArg {
    Local(String),
    Remote {
        user: Option<String>,
        instance: String,
        path: String,
    },
}

/// `[USER@]INSTANCE:PATH` is remote (no `/` before the first `:`);
/// anything else is a local path.
pub fn parse_scp_arg(s: &str) -> ScpArg {
    if let Some(i) = s.find(':') {
        let head = &s[..i];
        if !head.is_empty() && !head.contains('/') {
            let (user, instance) = match head.rsplit_once('@') {
                Some((u, h)) => (Some(u.to_string()), h.to_string()),
                None => (None, head.to_string()),
            };
            return ScpArg::Remote {
                user,
                instance,
                path: s[i + 1..].to_string(),
            };
        }
    }
    ScpArg::Local(s.to_string())
}

/// The known-hosts path as an ssh option value.
pub fn known_hosts_value(p: &Path) -> Option<String> {
    quote::config_value(&p.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_list() {
        let o = options(&ConnOptions {
            identity_file: "/h/.ssh/k%1".into(),
            known_hosts: "\"/h/my dir/kh\"".into(),
            host_key_alias: "compute.7".into(),
            strict: Strict::Yes,
            route: Route::Proxy("/bin/iap-ssh proxy --project p --zone z vm %p".into()),
            certificate: None,
        });
        assert_eq!(o[..2], ["-i", "/h/.ssh/k%%1"]);
        assert!(
            o.contains(&"ProxyCommand=/bin/iap-ssh proxy --project p --zone z vm %p".to_string())
        );
        assert!(o.contains(&"UserKnownHostsFile=\"/h/my dir/kh\"".to_string()));
        assert!(o.contains(&"StrictHostKeyChecking=yes".to_string()));
    }

    #[test]
    fn scp_args() {
        assert_eq!(
            parse_scp_arg("bob@vm-1:/tmp/x"),
            ScpArg::Remote {
                user: Some("bob".into()),
                instance: "vm-1".into(),
                path: "/tmp/x".into()
            }
        );
        assert_eq!(
            parse_scp_arg("vm-1.z.proj:"),
            ScpArg::Remote {
                user: None,
                instance: "vm-1.z.proj".into(),
                path: String::new()
            }
        );
        assert_eq!(parse_scp_arg("./a:b"), ScpArg::Local("./a:b".into()));
        assert_eq!(parse_scp_arg("/abs/a:b"), ScpArg::Local("/abs/a:b".into()));
        assert_eq!(parse_scp_arg("plain"), ScpArg::Local("plain".into()));
    }
}
