#!/usr/bin/env bash
# Installs what the tests and the demo need on a fresh Debian machine:
# a private OpenSSH server (run by the tests, never as a system service),
# rsync and the sftp server, ip + nft (a test drops a connection's
# packets inside a private network namespace) and tinyproxy (a real HTTP
# proxy with Basic authentication), PuTTY's plink and puttygen, and Ansible (scripts/ansible.sh,
# from PyPI). Idempotent; does nothing
# when all are present.
set -euo pipefail

need=()
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
[ -x /usr/lib/openssh/sftp-server ] || need+=(openssh-sftp-server)
command -v rsync >/dev/null 2>&1 || need+=(rsync)
command -v ssh-keygen >/dev/null 2>&1 || need+=(openssh-client)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v nft >/dev/null 2>&1 || need+=(nftables)
command -v curl >/dev/null 2>&1 || need+=(curl)
# A real HTTP proxy for the proxy tests (the executable only, no service).
command -v tinyproxy >/dev/null 2>&1 || need+=(tinyproxy-bin)
# PuTTY's command-line tools (plink, puttygen) for the PuTTY tests.
command -v plink >/dev/null 2>&1 || need+=(putty-tools)
# The Python the VMs' side of the Ansible test runs modules with.
[ -x /usr/bin/python3 ] || need+=(python3)
# Ansible itself comes from PyPI, into target/ansible.
bash "$(dirname "$0")/ansible.sh"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
fi
# The PAM service of the 2-step verification test's sshd (tests/oslogin.rs):
# a second question after the key, answered by a fixed code. Only that
# sshd (run under the name iap-ssh-test-2fa) uses it.
here="$(dirname "$0")"
if ! cmp -s "$here/pam/iap-ssh-test-2fa" /etc/pam.d/iap-ssh-test-2fa \
   || ! cmp -s "$here/pam/check-code" /usr/local/lib/iap-ssh-test/check-code; then
  $SUDO mkdir -p /usr/local/lib/iap-ssh-test
  $SUDO install -m 755 "$here/pam/check-code" /usr/local/lib/iap-ssh-test/check-code
  $SUDO install -m 644 "$here/pam/iap-ssh-test-2fa" /etc/pam.d/iap-ssh-test-2fa
fi
if [ ${#need[@]} -eq 0 ]; then
  exec bash "$(dirname "$0")/old-openssh.sh"
fi

if [ -n "$SUDO" ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-test-deps: need root (or sudo) to install: ${need[*]}" >&2; exit 1; }
fi
echo "install-test-deps: installing ${need[*]}" >&2
# Keep the package from starting a system-wide sshd.
created_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  created_policy=1
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
[ $created_policy -eq 1 ] && $SUDO rm -f /usr/sbin/policy-rc.d
# An old OpenSSH client (8.4p1) for the config tests, into target/.
exec bash "$(dirname "$0")/old-openssh.sh"
