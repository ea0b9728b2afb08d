//! iap-ssh: reach Compute Engine VMs through Identity-Aware Proxy TCP
//! forwarding with plain OpenSSH.
//!
//! Layout: [`relay`] speaks the IAP relay protocol, [`tunnel`] moves bytes
//! between a local stream and a relay session, [`auth`] finds credentials
//! and tokens, [`endpoints`]/[`tls`]/[`mtls`]/[`http`]/[`proxy`] reach Google, [`gce`] holds the
//! Compute, OS Login and IAP clients, [`iam`] edits tunnel IAM policies, [`gcloud`] reads gcloud's configuration,
//! [`ssh`] owns key files, metadata key lines, known_hosts and the ssh
//! config section, [`setup`] publishes keys and writes Host blocks, [`cli`]
//! is the command line, [`windows`] the Windows password protocol.

pub mod auth;
pub mod cli;
pub mod endpoints;
pub mod error;
pub mod fsutil;
pub mod fuzzing;
pub mod gce;
pub mod gcloud;
pub mod http;
pub mod iam;
pub mod mtls;
pub mod proxy;
pub mod relay;
pub mod setup;
pub mod ssh;
pub mod timefmt;
pub mod tls;
pub mod tunnel;
pub mod windows;
