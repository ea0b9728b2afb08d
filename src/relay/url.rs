//! Builds `/v4/connect` and `/v4/reconnect` URLs exactly as gcloud does:
//! same key order, `newWebsocket=True`, `quote_plus` encoding.

use std::fmt;

/// A VM network interface and port to reach through IAP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub project: String,
    pub zone: String,
    pub instance: String,
    pub interface: String,
    pub port: u16,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (zone {}, project {})",
            self.instance, self.zone, self.project
        )
    }
}

fn query(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

/// `{base}/connect?project=…&port=…&newWebsocket=True&zone=…&instance=…&interface=…`
pub fn connect_url(base: &str, t: &Target) -> String {
    let port = t.port.to_string();
    format!(
        "{base}/connect?{}",
        query(&[
            ("project", &t.project),
            ("port", &port),
            ("newWebsocket", "True"),
            ("zone", &t.zone),
            ("instance", &t.instance),
            ("interface", &t.interface),
        ])
    )
}

/// `{base}/reconnect?sid=…&ack=…&newWebsocket=True&zone=…`; `ack` is the
/// total DATA bytes received in the session.
pub fn reconnect_url(base: &str, sid: &str, ack: u64, zone: &str) -> String {
    let ack = ack.to_string();
    format!(
        "{base}/reconnect?{}",
        query(&[
            ("sid", sid),
            ("ack", &ack),
            ("newWebsocket", "True"),
            ("zone", zone),
        ])
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> Target {
        Target {
            project: "p1".into(),
            zone: "us-central1-a".into(),
            instance: "inst1".into(),
            interface: "nic0".into(),
            port: 22,
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
    fn reconnect_matches_gcloud() {
        assert_eq!(
            reconnect_url(
                "wss://127.0.0.1:18093/v4",
                "fake-sid-1",
                17,
                "us-central1-a"
            ),
            "wss://127.0.0.1:18093/v4/reconnect?sid=fake-sid-1&ack=17&newWebsocket=True&zone=us-central1-a"
        );
    }

    #[test]
    fn values_are_quote_plus_encoded() {
        let mut x = t();
        x.project = "a b&c".into();
        assert!(connect_url("wss://h/v4", &x).contains("project=a+b%26c&"));
        assert!(reconnect_url("wss://h/v4", "s/=+", 0, "z").contains("sid=s%2F%3D%2B&"));
    }
}
