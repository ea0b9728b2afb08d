//! iap-ssh: reach Compute Engine VMs through Identity-Aware Proxy TCP
//! forwarding with plain OpenSSH.
//!
//! # Layers
//!
//! Imports point down this table, never up; modules in one layer may use
//! each other but never in a circle. `tests/layers.rs` reads this table and
//! fails the build's tests on an upward import, a circle (between modules,
//! or between the files of one module), or a `cli` import outside `cli`.
//! Inside `cli`, a subcommand's file imports only `cli::args`.
//!
//! | layer | modules | what they own |
//! |---|---|---|
//! | 1 command line | `cli`, `fuzzing` | clap definitions, one file per subcommand, printing; `cli::args` holds what subcommands share. `fuzzing` is the fuzz targets' entry points (test support; nothing imports it) |
//! | 2 features | `setup`, `doctor`, `rdp`, `grant` | publishing keys and writing Host blocks; the ordered checks of `doctor`; Windows passwords through the guest agent, and RDP clients; editing and listing who may tunnel |
//! | 3 services | `gce`, `iam`, `auth` | Compute, OS Login, IAP and Resource Manager clients; IAM policy documents and conditions; credentials and tokens |
//! | 4 transport | `tunnel`, `relay` | moving bytes between a local stream and a relay session (resume, ACKs, listeners); the IAP relay protocol (frames, session state, WebSocket connect) |
//! | 5 network | `net` | endpoints and universes, proxies and dialing, TLS trust, the mTLS client identity, the HTTP client |
//! | 6 leaves | `ssh`, `gcloud`, `timefmt`, `fsutil`, `error` | ssh formats (keys, config, known_hosts, quoting, PuTTY); reading gcloud's configuration; durations and dates; atomic, locked file writes; `UserError` and exit statuses |
//!
//! The binary (`main.rs`) sits above them all and only calls `cli`.

pub mod auth;
pub mod cli;
pub mod doctor;
pub mod error;
pub mod fsutil;
pub mod fuzzing;
pub mod gce;
pub mod gcloud;
pub mod grant;
pub mod iam;
pub mod net;
pub mod rdp;
pub mod relay;
pub mod setup;
pub mod ssh;
pub mod timefmt;
pub mod tunnel;
