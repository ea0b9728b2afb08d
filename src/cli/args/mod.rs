//! What the subcommands share, and the only module of `cli` that the
//! subcommand files import: target and tunnel options and the relay client
//! ([`target`]), VM selection and key lifetime ([`select`]), local
//! addresses and signals ([`local`]), the process around a command
//! ([`process`]).

pub mod local;
pub mod process;
pub mod select;
pub mod target;

pub use local::{bind_local, parse_host_port, shutdown_signal};
pub use process::{color_enabled, exe_path, home_file, invoked_path, runtime};
pub use select::{SelectionArgs, Ttl, dedup, parse_ttl, projects_or_default};
pub use target::{TargetArgs, TunnelArgs, parse_wait, relay_from_env, usage};
