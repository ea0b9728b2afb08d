//! State shared by every endpoint of the fake: the configuration, the
//! tokens it accepts, relay sessions, counters and an event log that tests
//! can assert on.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::oauth::Identities;
use crate::relay::RelaySession;

/// Counters, readable from tests.
#[derive(Debug, Default)]
pub struct Stats {
    pub token_requests: AtomicU64,
    pub metadata_token_requests: AtomicU64,
    pub connects: AtomicU64,
    pub reconnects: AtomicU64,
}

impl Stats {
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::SeqCst)
    }
}

pub struct State {
    pub config: Config,
    pub cloud: Mutex<crate::cloud::Cloud>,
    /// IAP's IAM policies on tunnel resources.
    pub iap: Mutex<crate::iap::Policies>,
    /// Windows agents: serial port 4 and the passwords they set.
    pub windows: Mutex<crate::windows::Agents>,
    /// (project, zone, name) → position in `config.instances`.
    pub instance_index: HashMap<(String, String, String), usize>,
    pub static_token: String,
    minted: Mutex<HashMap<String, Instant>>,
    /// Tokens minted by IAM Credentials: token → (expiry, service account).
    impersonated: Mutex<HashMap<String, (Instant, String)>>,
    pub stats: Stats,
    events: Mutex<Vec<String>>,
    pub sessions: Mutex<HashMap<String, Arc<RelaySession>>>,
    pub identities: Identities,
    pub base_url: Mutex<String>,
    pub state_dir: PathBuf,
    next_sid: AtomicU64,
    refused: AtomicU64,
    connects_seen: AtomicU64,
    reconnects_seen: AtomicU64,
    api_calls_seen: AtomicU64,
    token_calls_seen: AtomicU64,
    /// Connects seen by the `connect_close` fault.
    pub connect_closes: AtomicU64,
    /// Times the `close_at_bytes` fault fired.
    pub close_at_fired: AtomicU64,
    /// Relay handshakes between the upgrade request and the 101, now.
    pub handshakes_in_flight: AtomicU64,
    /// The most handshakes ever in flight at once (admitted ones).
    pub handshakes_peak: AtomicU64,
    /// Handshakes refused with 429 by `max_concurrent_handshakes`.
    pub handshakes_refused: AtomicU64,
    /// Reconnects the `chaos` fault's `429` has yet to refuse.
    pub chaos_429_due: AtomicU64,
}

impl State {
    pub fn new(
        config: Config,
        static_token: String,
        identities: Identities,
        state_dir: PathBuf,
    ) -> Self {
        State {
            instance_index: config.instances.iter().enumerate().rev().fold(
                HashMap::new(),
                |mut m, (k, i)| {
                    // The first of duplicates wins, as a linear search.
                    m.insert((i.project.clone(), i.zone.clone(), i.name.clone()), k);
                    m
                },
            ),
            cloud: Mutex::new(crate::cloud::Cloud::new(&config)),
            windows: Mutex::new(Default::default()),
            iap: Mutex::new(crate::iap::Policies::new(
                &config.iap_policies.clone().unwrap_or_default(),
                config.faults.iap_policy_conflicts,
            )),
            config,
            static_token,
            minted: Mutex::new(HashMap::new()),
            impersonated: Mutex::new(HashMap::new()),
            stats: Stats::default(),
            events: Mutex::new(Vec::new()),
            sessions: Mutex::new(HashMap::new()),
            identities,
            base_url: Mutex::new(String::new()),
            state_dir,
            next_sid: AtomicU64::new(1),
            refused: AtomicU64::new(0),
            connects_seen: AtomicU64::new(0),
            reconnects_seen: AtomicU64::new(0),
            api_calls_seen: AtomicU64::new(0),
            token_calls_seen: AtomicU64::new(0),
            connect_closes: AtomicU64::new(0),
            close_at_fired: AtomicU64::new(0),
            handshakes_in_flight: AtomicU64::new(0),
            handshakes_peak: AtomicU64::new(0),
            handshakes_refused: AtomicU64::new(0),
            chaos_429_due: AtomicU64::new(0),
        }
    }

    /// Records an event (also printed to stderr by the binary with --log).
    pub fn event(&self, e: impl Into<String>) {
        let e = e.into();
        if std::env::var_os("FAKE_GCP_LOG").is_some() {
            eprintln!("fake-gcp: {e}");
        }
        self.events.lock().unwrap().push(e);
    }

    pub fn events(&self) -> Vec<String> {
        self.events.lock().unwrap().clone()
    }

    /// Mints a new access token valid for the configured lifetime.
    pub fn mint_token(&self) -> String {
        let t = format!("ya29.fake-{}", random_hex(24));
        let now = Instant::now();
        let exp = now
            .checked_add(Duration::from_secs(self.config.token_lifetime_secs))
            .unwrap_or(now + Duration::from_secs(10 * 365 * 86_400));
        self.minted.lock().unwrap().insert(t.clone(), exp);
        t
    }

    /// Mints a service account's token (IAM Credentials), valid for
    /// `lifetime`.
    pub fn mint_impersonated(&self, account: &str, lifetime: Duration) -> (String, Instant) {
        let t = format!("ya29.fake-imp-{}", random_hex(24));
        let exp = Instant::now() + lifetime;
        self.impersonated
            .lock()
            .unwrap()
            .insert(t.clone(), (exp, account.to_string()));
        (t, exp)
    }

    fn impersonated_account(&self, token: &str) -> Option<String> {
        self.impersonated
            .lock()
            .unwrap()
            .get(token)
            .filter(|(exp, _)| *exp > Instant::now())
            .map(|(_, a)| a.clone())
    }

    /// Is `token` a valid bearer token right now?
    pub fn token_valid(&self, token: &str) -> bool {
        if token == self.static_token || self.config.extra_tokens.contains_key(token) {
            return true;
        }
        if self.impersonated_account(token).is_some() {
            return true;
        }
        self.minted
            .lock()
            .unwrap()
            .get(token)
            .is_some_and(|exp| *exp > Instant::now())
    }

    /// The account a valid token belongs to.
    pub fn token_account(&self, token: &str) -> Option<String> {
        if let Some(a) = self.config.extra_tokens.get(token) {
            return Some(a.clone());
        }
        if let Some(a) = self.impersonated_account(token) {
            return Some(a);
        }
        self.token_valid(token)
            .then(|| self.config.account.email.clone())
    }

    /// Forgets every minted token (as if revoked): they stop working at
    /// once, cached copies included.
    pub fn revoke_minted(&self) {
        self.minted.lock().unwrap().clear();
        self.impersonated.lock().unwrap().clear();
    }

    /// The HTTP status the `connect_http` / `reconnect_http` fault wants
    /// for this upgrade, if any (each status is used once, in order).
    pub fn upgrade_fault(&self, reconnect: bool) -> Option<u16> {
        let (list, seen) = if reconnect {
            (&self.config.faults.reconnect_http, &self.reconnects_seen)
        } else {
            (&self.config.faults.connect_http, &self.connects_seen)
        };
        let n = seen.fetch_add(1, Ordering::SeqCst) as usize;
        list.get(n).copied()
    }

    /// The HTTP status the `api_http` fault wants for this REST call to
    /// `path`, if any (each status is used once, in order).
    pub fn api_fault(&self, path: &str) -> Option<u16> {
        let f = &self.config.faults;
        if f.api_http_path
            .as_deref()
            .is_some_and(|p| !path.contains(p))
        {
            return None;
        }
        let n = self.api_calls_seen.fetch_add(1, Ordering::SeqCst) as usize;
        self.config.faults.api_http.get(n).copied()
    }

    /// The HTTP status the `token_http` fault wants for this token
    /// request, if any (each status is used once, in order).
    pub fn token_fault(&self) -> Option<u16> {
        let n = self.token_calls_seen.fetch_add(1, Ordering::SeqCst) as usize;
        self.config.faults.token_http.get(n).copied()
    }

    /// When a minted token expires (None for the static token or unknown ones).
    pub fn token_expiry(&self, token: &str) -> Option<Instant> {
        if let Some((exp, _)) = self.impersonated.lock().unwrap().get(token) {
            return Some(*exp);
        }
        self.minted.lock().unwrap().get(token).copied()
    }

    /// Counts reconnect attempts refused by the `refuse_reconnects` fault;
    /// true while this one must be refused.
    pub fn refuse_reconnect(&self) -> bool {
        let n = self.refused.fetch_add(1, Ordering::SeqCst);
        n < self.config.faults.refuse_reconnects as u64
    }

    pub fn new_sid(&self) -> String {
        format!(
            "fake-sid-{}-{}",
            self.next_sid.fetch_add(1, Ordering::SeqCst),
            random_hex(8)
        )
    }
}

pub fn random_hex(n: usize) -> String {
    use rand::RngCore;
    let mut b = vec![0u8; n];
    rand::thread_rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}
