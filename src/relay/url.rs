//! Builds `/v4/connect` and `/v4/reconnect` URLs exactly as gcloud does:
//! same key order, `newWebsocket=True`, `quote_plus` encoding, for VM
//! instances and for hosts reached through IAP destination groups.

use std::fmt;

/// What to reach inside the project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dest {
    /// A VM's network interface.
    Instance {
        zone: String,
        instance: String,
        interface: String,
    },
    /// An IP address or FQDN in a VPC network (on-premises or other
    /// non-GCE hosts), through an IAP destination group.
    Host {
        region: String,
        network: String,
        host: String,
        group: Option<String>,
    },
}

/// A port on a VM or host to reach through IAP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub project: String,
    pub port: u16,
    pub dest: Dest,
}

impl Target {
    /// A VM target with the default interface.
    pub fn instance(project: &str, zone: &str, instance: &str, port: u16) -> Target {
        Target {
            project: project.into(),
            port,
            dest: Dest::Instance {
                zone: zone.into(),
                instance: instance.into(),
                interface: "nic0".into(),
            },
        }
    }

    /// The location key and value repeated on reconnect (`zone` or `region`).
    fn location(&self) -> (&'static str, &str) {
        match &self.dest {
            Dest::Instance { zone, .. } => ("zone", zone),
            Dest::Host { region, .. } => ("region", region),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.dest {
            Dest::Instance { zone, instance, .. } => {
                write!(f, "{instance} (zone {zone}, project {})", self.project)
            }
            Dest::Host {
                region,
                network,
                host,
                ..
            } => write!(
                f,
                "host {host} (region {region}, network {network}, project {})",
                self.project
            ),
        }
    }
}

fn query(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

/// `{base}/connect?project=…&port=…&newWebsocket=True&` then
/// `zone=…&instance=…&interface=…` (VM) or
/// `region=…&network=…&host=…[&group=…]` (host).
pub fn connect_url(base: &str, t: &Target) -> String {
    let port = t.port.to_string();
    let mut pairs: Vec<(&str, &str)> = vec![
        ("project", &t.project),
        ("port", &port),
        ("newWebsocket", "True"),
    ];
    match &t.dest {
        Dest::Instance {
            zone,
            instance,
            interface,
        } => pairs.extend([
            ("zone", zone.as_str()),
            ("instance", instance.as_str()),
            ("interface", interface.as_str()),
        ]),
        Dest::Host {
            region,
            network,
            host,
            group,
        } => {
            pairs.extend([
                ("region", region.as_str()),
                ("network", network.as_str()),
                ("host", host.as_str()),
            ]);
            if let Some(g) = group {
                pairs.push(("group", g));
            }
        }
    }
    format!("{base}/connect?{}", query(&pairs))
}

/// `{base}/reconnect?sid=…&ack=…&newWebsocket=True&zone=…` (or `region=…`);
/// `ack` is the total DATA bytes received in the session.
pub fn reconnect_url(base: &str, sid: &str, ack: u64, t: &Target) -> String {
    let ack = ack.to_string();
    let (k, v) = t.location();
    format!(
        "{base}/reconnect?{}",
        query(&[
            ("sid", sid),
            ("ack", &ack),
            ("newWebsocket", "True"),
            (k, v)
        ])
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> Target {
        Target::instance("p1", "us-central1-a", "inst1", 22)
    }

    fn host(group: Option<&str>) -> Target {
        Target {
            project: "p1".into(),
            port: 22,
            dest: Dest::Host {
                region: "us-central1".into(),
                network: "default".into(),
                host: "10.1.2.3".into(),
                group: group.map(Into::into),
            },
        }
    }

    #[test]
    fn connect_matches_gcloud() {
        assert_eq!(
            connect_url("wss://tunnel.cloudproxy.app/v4", &t()),
            "wss://tunnel.cloudproxy.app/v4/connect?project=p1&port=22&newWebsocket=True&zone=us-central1-a&instance=inst1&interface=nic0"
        );
    }

    #[test]
    fn host_target_matches_gcloud() {
        assert_eq!(
            connect_url("wss://h/v4", &host(Some("grp1"))),
            "wss://h/v4/connect?project=p1&port=22&newWebsocket=True&region=us-central1&network=default&host=10.1.2.3&group=grp1"
        );
        assert_eq!(
            connect_url("wss://h/v4", &host(None)),
            "wss://h/v4/connect?project=p1&port=22&newWebsocket=True&region=us-central1&network=default&host=10.1.2.3"
        );
        assert_eq!(
            reconnect_url("wss://h/v4", "s", 5, &host(None)),
            "wss://h/v4/reconnect?sid=s&ack=5&newWebsocket=True&region=us-central1"
        );
        assert_eq!(
            host(None).to_string(),
            "host 10.1.2.3 (region us-central1, network default, project p1)"
        );
    }

    #[test]
    fn reconnect_matches_gcloud() {
        assert_eq!(
            reconnect_url("wss://127.0.0.1:18093/v4", "fake-sid-1", 17, &t()),
            "wss://127.0.0.1:18093/v4/reconnect?sid=fake-sid-1&ack=17&newWebsocket=True&zone=us-central1-a"
        );
    }

    #[test]
    fn values_are_quote_plus_encoded() {
        let mut x = t();
        x.project = "a b&c".into();
        assert!(connect_url("wss://h/v4", &x).contains("project=a+b%26c&"));
        assert!(reconnect_url("wss://h/v4", "s/=+", 0, &t()).contains("sid=s%2F%3D%2B&"));
    }
}
