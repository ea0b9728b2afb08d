//! fake-gcp: a faithful local fake of Google's endpoints for iap-ssh's
//! tests: the IAP relay (TLS WebSocket), the OAuth token endpoint and the
//! metadata server's token URL, all on one 127.0.0.1 TLS port with a CA made
//! at start, plus Compute, OS Login and a guest-agent simulation that turns
//! published keys into a private sshd's authorized keys.
//!
//! Use it in-process ([`FakeGcp::start`], or [`FakeGcp::spawn`] on its own
//! thread for blocking tests) or as the `fake-gcp` binary.

pub mod cel;
pub mod certs;
pub mod cloud;
pub mod compute;
pub mod config;
pub mod crm;
pub mod guest;
pub mod iamcredentials;
pub mod iap;
pub mod oauth;
pub mod oslogin;
pub mod oslogin_certs;
pub mod protocol;
pub mod relay;
pub mod server;
pub mod state;
pub mod windows;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use config::{Backend, Config, Instance};
pub use state::State;

/// What a client needs to use the fake; printed as one JSON line by the binary.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReadyInfo {
    pub tunnel_url: String,
    pub api_url: String,
    pub oslogin_url: String,
    pub token_url: String,
    pub metadata_url: String,
    pub ca_file: PathBuf,
    pub access_token: String,
    pub service_account_file: PathBuf,
    pub authorized_user_file: PathBuf,
    pub tokeninfo_url: String,
    pub iap_url: String,
    /// Cloud Resource Manager v1 base URL (`IAP_SSH_CRM_URL`).
    pub crm_url: String,
    /// IAM Credentials base URL (`IAP_SSH_IAMCREDENTIALS_URL`).
    pub iamcredentials_url: String,
    /// A client certificate (chain) and key the fake trusts, and a pair it
    /// does not (another CA), as PEM files.
    pub client_cert_file: PathBuf,
    pub client_key_file: PathBuf,
    /// The client key, PKCS#8-encrypted with [`certs::CLIENT_KEY_PASSPHRASE`].
    pub client_key_encrypted_file: PathBuf,
    pub rogue_cert_file: PathBuf,
    pub rogue_key_file: PathBuf,
}

impl ReadyInfo {
    /// The `IAP_SSH_*` variables that point iap-ssh at this fake.
    pub fn iap_ssh_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("IAP_SSH_TUNNEL_URL", self.tunnel_url.clone()),
            ("IAP_SSH_COMPUTE_URL", self.api_url.clone()),
            ("IAP_SSH_OSLOGIN_URL", self.oslogin_url.clone()),
            ("IAP_SSH_TOKEN_URL", self.token_url.clone()),
            ("IAP_SSH_METADATA_URL", self.metadata_url.clone()),
            ("IAP_SSH_TOKENINFO_URL", self.tokeninfo_url.clone()),
            ("IAP_SSH_IAP_URL", self.iap_url.clone()),
            ("IAP_SSH_CRM_URL", self.crm_url.clone()),
            (
                "IAP_SSH_IAMCREDENTIALS_URL",
                self.iamcredentials_url.clone(),
            ),
            ("IAP_SSH_CA_FILE", self.ca_file.display().to_string()),
        ]
    }
}

/// A running fake.
pub struct FakeGcp {
    pub info: ReadyInfo,
    pub state: Arc<State>,
    task: Option<tokio::task::JoinHandle<()>>,
    _runtime: Option<RuntimeThread>,
}

struct RuntimeThread {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for RuntimeThread {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for FakeGcp {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

impl FakeGcp {
    /// Starts the fake on the current tokio runtime. Files (CA, credential
    /// files, backend logs) go to `state_dir`.
    pub async fn start(config: Config, state_dir: &Path) -> anyhow::Result<FakeGcp> {
        std::fs::create_dir_all(state_dir)?;
        let certs = certs::generate()?;
        let ca_file = state_dir.join("ca.pem");
        std::fs::write(&ca_file, &certs.ca_pem)?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("127.0.0.1:{}", listener.local_addr()?.port());
        let identities = oauth::Identities::generate();
        let token = config
            .access_token
            .clone()
            .unwrap_or_else(|| format!("fake-static-{}", state::random_hex(16)));
        let token_url = format!("https://{base}/token");
        let sa_file = state_dir.join("service_account.json");
        std::fs::write(&sa_file, identities.service_account_json(&token_url))?;
        let pem = |name: &str, data: &str| -> anyhow::Result<PathBuf> {
            let p = state_dir.join(name);
            std::fs::write(&p, data)?;
            Ok(p)
        };
        let client_cert_file = pem("client_cert.pem", &certs.client_cert_pem)?;
        let client_key_file = pem("client_key.pem", &certs.client_key_pem)?;
        let client_key_encrypted_file =
            pem("client_key_encrypted.pem", &certs.client_key_encrypted_pem)?;
        let rogue_cert_file = pem("rogue_cert.pem", &certs.rogue_cert_pem)?;
        let rogue_key_file = pem("rogue_key.pem", &certs.rogue_key_pem)?;
        let au_file = state_dir.join("authorized_user.json");
        std::fs::write(&au_file, identities.authorized_user_json())?;
        let state = Arc::new(State::new(
            config,
            token.clone(),
            identities,
            state_dir.to_path_buf(),
        ));
        *state.base_url.lock().unwrap() = format!("https://{base}/");
        let tls = match state.config.client_certs.as_deref() {
            None => certs.server,
            Some("ask" | "require") => certs.server_asking,
            Some("require_tls") => certs.server_requiring,
            Some(other) => anyhow::bail!("client_certs: unknown mode {other}"),
        };
        for i in state
            .config
            .instances
            .iter()
            .filter(|i| i.boot_ms.is_some())
        {
            let (state, key) = (
                state.clone(),
                (i.project.clone(), i.zone.clone(), i.name.clone()),
            );
            let ms = i.boot_ms.unwrap_or(0);
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
                if let Some((_, status)) = state.cloud.lock().unwrap().instances.get_mut(&key) {
                    *status = "RUNNING".into();
                }
                state.event(format!("instance {} booted: RUNNING", key.2));
            });
        }
        let task = tokio::spawn(server::serve(state.clone(), listener, tls));
        let info = ReadyInfo {
            tunnel_url: format!("wss://{base}"),
            api_url: format!("https://{base}/compute/v1/"),
            oslogin_url: format!("https://{base}/oslogin/v1/"),
            token_url,
            metadata_url: format!("https://{base}/computeMetadata/v1/"),
            ca_file,
            access_token: token,
            service_account_file: sa_file,
            authorized_user_file: au_file,
            tokeninfo_url: format!("https://{base}/tokeninfo"),
            iap_url: format!("https://{base}/iap/v1/"),
            crm_url: format!("https://{base}/crm/v1/"),
            iamcredentials_url: format!("https://{base}/"),
            client_cert_file,
            client_key_file,
            client_key_encrypted_file,
            rogue_cert_file,
            rogue_key_file,
        };
        guest::schedule(state.clone());
        Ok(FakeGcp {
            info,
            state,
            task: Some(task),
            _runtime: None,
        })
    }

    /// Starts the fake on a runtime of its own thread, for tests that block
    /// (running `ssh`, `scp`, …). Stopped when dropped.
    pub fn spawn(config: Config, state_dir: &Path) -> anyhow::Result<FakeGcp> {
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let dir = state_dir.to_path_buf();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                match FakeGcp::start(config, &dir).await {
                    Ok(f) => {
                        let _ = tx.send(Ok((f.info.clone(), f.state.clone())));
                        let _ = stop_rx.await;
                        drop(f);
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            });
            rt.shutdown_background();
        });
        let (info, state) = rx.recv()??;
        Ok(FakeGcp {
            info,
            state,
            task: None,
            _runtime: Some(RuntimeThread {
                stop: Some(stop_tx),
                thread: Some(thread),
            }),
        })
    }
}
