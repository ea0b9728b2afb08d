//! Names a short `Host NAME` alias must not take, because the user already
//! means something by them: names their own ssh config matches (`Host`
//! and `Match host` patterns, evaluated as ssh does), names in their
//! known-hosts files (hashed entries included), this machine's own names,
//! and anything local or IP-like. Anyone who can create a VM picks its
//! name, so a VM called `bastion` must not capture `ssh bastion` (with the
//! user's `ForwardAgent yes` for bastion still applied). Pure: the caller
//! reads the files.

use std::collections::BTreeSet;

use base64::Engine;

use super::pattern::{self, ListMatch};

#[derive(Debug, Clone)]
enum Rule {
    /// A `Host` line's patterns (catch-alls removed).
    Host(Vec<String>),
    /// A `Match host` / `Match originalhost` pattern list.
    MatchHost(String),
}

#[derive(Debug, Clone)]
struct ConfigRule {
    rule: Rule,
    /// The line as written, for the message.
    text: String,
    /// `FILE line N`.
    origin: String,
}

#[derive(Debug, Clone)]
enum Known {
    /// Comma-separated patterns (`[host]:port` reduced to the host).
    Patterns(String),
    /// `|1|salt|hash`: HMAC-SHA1 of the name.
    Hashed { salt: Vec<u8>, hash: Vec<u8> },
}

/// Everything that claims names; [`Claims::why`] asks about one.
#[derive(Debug, Clone, Default)]
pub struct Claims {
    config: Vec<ConfigRule>,
    known: Vec<(Known, String)>,
    local: BTreeSet<String>,
}

/// Names no alias may take whatever the files say.
const LOCAL_NAMES: &[&str] = &[
    "localhost",
    "localhost.localdomain",
    "ip6-localhost",
    "ip6-loopback",
    "broadcasthost",
];

/// An address, or something that reads like one.
pub fn is_ip_like(name: &str) -> bool {
    name.parse::<std::net::IpAddr>().is_ok()
        || (!name.is_empty() && name.bytes().all(|c| c.is_ascii_digit() || c == b'.'))
        || (name.contains(':') && name.bytes().all(|c| c.is_ascii_hexdigit() || c == b':'))
}

impl Claims {
    pub fn new() -> Claims {
        Claims::default()
    }

    /// Reads `Host` and `Match` lines of one config file's text (what lies
    /// outside iap-ssh's own section). Returns the arguments of its
    /// `Include` lines, for the caller to resolve and add.
    pub fn add_config(&mut self, text: &str, file: &str) -> Vec<String> {
        let mut includes = vec![];
        for (n, line) in text.lines().enumerate() {
            let Some((kw, args)) = pattern::keyword_line(line) else {
                continue;
            };
            let origin = format!("{file} line {}", n + 1);
            match kw.as_str() {
                "host" => {
                    let pats: Vec<String> = args
                        .into_iter()
                        .filter(|p| !pattern::is_catch_all(p))
                        .collect();
                    if pats.iter().any(|p| !p.starts_with('!')) {
                        self.config.push(ConfigRule {
                            rule: Rule::Host(pats),
                            text: line.trim().to_string(),
                            origin,
                        });
                    }
                }
                "match" => self.add_match(&args, line, origin),
                "include" => includes.extend(args),
                _ => {}
            }
        }
        includes
    }

    fn add_match(&mut self, args: &[String], line: &str, origin: String) {
        let mut i = 0;
        while i < args.len() {
            let crit = args[i].to_ascii_lowercase();
            i += 1;
            let (negated, crit) = match crit.strip_prefix('!') {
                Some(c) => (true, c.to_string()),
                None => (false, crit),
            };
            if matches!(crit.as_str(), "all" | "canonical" | "final") {
                continue;
            }
            let Some(arg) = args.get(i) else { break };
            i += 1;
            let catch_all = arg
                .split(',')
                .all(|p| pattern::is_catch_all(p.trim_start_matches('!')));
            // `!host x` matches every other name: a catch-all, no claim.
            if matches!(crit.as_str(), "host" | "originalhost") && !negated && !catch_all {
                self.config.push(ConfigRule {
                    rule: Rule::MatchHost(arg.clone()),
                    text: line.trim().to_string(),
                    origin: origin.clone(),
                });
            }
        }
    }

    /// Reads a known-hosts file's host fields.
    pub fn add_known_hosts(&mut self, text: &str, file: &str) {
        for line in text.lines() {
            let mut words = line.split_whitespace();
            let Some(mut hosts) = words.next() else {
                continue;
            };
            if hosts.starts_with('#') {
                continue;
            }
            if hosts.starts_with('@') {
                match words.next() {
                    Some(h) => hosts = h,
                    None => continue,
                }
            }
            if let Some(h) = hosts.strip_prefix("|1|") {
                let e = base64::engine::general_purpose::STANDARD;
                if let Some((salt, hash)) = h.split_once('|')
                    && let (Ok(salt), Ok(hash)) = (e.decode(salt), e.decode(hash))
                {
                    self.known
                        .push((Known::Hashed { salt, hash }, file.to_string()));
                }
                continue;
            }
            let items: Vec<String> = hosts
                .split(',')
                .map(|h| {
                    let (neg, h) = match h.strip_prefix('!') {
                        Some(r) => ("!", r),
                        None => ("", h),
                    };
                    let h = h
                        .strip_prefix('[')
                        .and_then(|r| r.split_once("]:"))
                        .map_or(h, |(host, _)| host);
                    format!("{neg}{h}")
                })
                .filter(|h| !pattern::is_catch_all(h))
                .collect();
            if items.iter().any(|h| !h.starts_with('!')) {
                self.known
                    .push((Known::Patterns(items.join(",")), file.to_string()));
            }
        }
    }

    /// Adds names this machine answers to (`/etc/hosts`, its host name).
    pub fn add_local_names<I: IntoIterator<Item = String>>(&mut self, names: I) {
        self.local
            .extend(names.into_iter().map(|n| n.to_ascii_lowercase()));
    }

    /// Why `name` must not become a short alias, or None when it may.
    pub fn why(&self, name: &str) -> Option<String> {
        if LOCAL_NAMES.contains(&name) || is_ip_like(name) {
            return Some("a local or IP-like name".into());
        }
        if self.local.contains(name) {
            return Some("a name of this machine (/etc/hosts or its host name)".into());
        }
        for r in &self.config {
            let hit = match &r.rule {
                Rule::Host(p) => pattern::host_line_applies(name, p),
                Rule::MatchHost(l) => pattern::match_list(name, l, true) == ListMatch::Yes,
            };
            if hit {
                return Some(format!("your `{}` ({})", r.text, r.origin));
            }
        }
        for (k, file) in &self.known {
            let hit = match k {
                Known::Patterns(l) => pattern::match_list(name, l, true) == ListMatch::Yes,
                Known::Hashed { salt, hash } => {
                    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, salt);
                    ring::hmac::verify(&key, name.as_bytes(), hash).is_ok()
                }
            };
            if hit {
                return Some(format!("a host in {file}"));
            }
        }
        None
    }
}

/// The names a hosts file (`/etc/hosts` format) gives.
pub fn hosts_file_names(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .flat_map(|l| l.split_whitespace().skip(1))
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(config: &str) -> Claims {
        let mut c = Claims::new();
        c.add_config(config, "~/.ssh/config");
        c
    }

    #[test]
    fn host_patterns_claim_names_as_ssh_matches_them() {
        let c = claims(
            "Host bastion\n  ForwardAgent yes\nHost *\n  ServerAliveInterval 30\n\
             Host db-* !db-test\nHost * !jump\nHost \"web?\"\n",
        );
        assert!(
            c.why("bastion")
                .unwrap()
                .contains("`Host bastion` (~/.ssh/config line 1)")
        );
        assert!(c.why("db-prod").is_some());
        assert!(c.why("db-test").is_none(), "negated in the user's own line");
        assert!(
            c.why("jump").is_none(),
            "catch-all with an exception claims nothing"
        );
        assert!(c.why("web1").is_some());
        assert!(c.why("web12").is_none());
        assert!(c.why("app").is_none(), "`Host *` claims nothing");
    }

    #[test]
    fn match_host_lines() {
        let c = claims(
            "Match host jump,!jump-test user admin\nMatch originalhost Git*\n\
             Match !host x\nMatch all\nMatch host *\nMatch exec \"true\" host db\n",
        );
        assert!(c.why("jump").is_some());
        assert!(c.why("jump-test").is_none());
        assert!(
            c.why("github").is_some(),
            "Match host lists are case-insensitive"
        );
        assert!(c.why("db").is_some(), "host after exec");
        assert!(c.why("other").is_none());
    }

    #[test]
    fn includes_are_returned() {
        let mut c = Claims::new();
        let inc = c.add_config("Include config.d/* ~/.ssh/other\nHost x\n", "f");
        assert_eq!(inc, vec!["config.d/*", "~/.ssh/other"]);
    }

    #[test]
    fn known_hosts_plain_ported_wildcard_and_hashed() {
        let mut c = Claims::new();
        // A hashed entry for "secret", made like ssh-keygen -H does.
        let salt = [7u8; 20];
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &salt);
        let tag = ring::hmac::sign(&key, b"secret");
        let e = base64::engine::general_purpose::STANDARD;
        let hashed = format!("|1|{}|{} ssh-ed25519 AAAA\n", e.encode(salt), e.encode(tag));
        c.add_known_hosts(
            &format!(
                "gitlab,10.0.0.1 ssh-rsa AAAA\n[build]:2222 ssh-ed25519 AAAA\n\
                 *.corp,!x.corp ssh-rsa A\n@cert-authority * ssh-rsa A\n# ci x y\n{hashed}"
            ),
            "~/.ssh/known_hosts",
        );
        assert!(c.why("gitlab").is_some());
        assert!(c.why("build").is_some());
        assert!(c.why("secret").unwrap().contains("known_hosts"));
        assert!(c.why("ci").is_none());
        assert!(c.why("web").is_none(), "@cert-authority * claims nothing");
    }

    #[test]
    fn local_and_ip_like() {
        let mut c = Claims::new();
        c.add_local_names(hosts_file_names(
            "127.0.0.1 localhost\n10.1.1.1 nas nas.home # comment\n",
        ));
        assert!(c.why("localhost").is_some());
        assert!(c.why("nas").is_some());
        for n in ["127.0.0.1", "10", "::1", "fe80::1"] {
            assert!(is_ip_like(n), "{n}");
        }
        assert!(!is_ip_like("web-1"));
        assert!(c.why("web-1").is_none());
    }
}
