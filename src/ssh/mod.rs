//! Everything OpenSSH (and PuTTY's formats, `putty`): key files, the `ssh-keys` metadata format, the
//! known-hosts file, the managed section of `~/.ssh/config`, quoting, and
//! the validation that keeps API values out of config lines and commands
//! unless they are safe.

pub mod cert;
pub mod claims;
pub mod command;
pub mod config;
pub mod keys;
pub mod known_hosts;
pub mod metadata_keys;
pub mod names;
pub mod pattern;
pub mod putty;
pub mod quote;
