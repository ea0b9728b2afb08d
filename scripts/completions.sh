#!/bin/sh
# Regenerates the shipped completion scripts from the clap definitions
# (tests/cli.rs fails when they are stale).
set -eu
cd "$(dirname "$0")/.."
cargo build -q
bin=target/debug/iap-ssh
$bin completions bash > completions/iap-ssh.bash
$bin completions zsh > completions/_iap-ssh
$bin completions fish > completions/iap-ssh.fish
[ -f completions/iap-ssh.elv ] && $bin completions elvish > completions/iap-ssh.elv
[ -f completions/_iap-ssh.ps1 ] && $bin completions powershell > completions/_iap-ssh.ps1
true
