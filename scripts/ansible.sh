#!/usr/bin/env bash
# Installs Ansible (ansible-core from PyPI, pinned to 2.17.x, which runs
# on Python 3.10-3.12) into a private virtualenv, target/ansible, for the
# Ansible test (tests/ansible.rs). Idempotent: does nothing when
# target/ansible/bin/ansible-playbook exists.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=target/ansible
if [ -x "$dest/bin/ansible-playbook" ]; then exit 0; fi
py=$(command -v python3)
echo "ansible: installing ansible-core 2.17 into $dest ($($py --version))" >&2
rm -rf "$dest"
"$py" -m venv "$dest"
"$dest/bin/pip" install -q --disable-pip-version-check "ansible-core>=2.17,<2.18"
"$dest/bin/ansible-playbook" --version | head -1 >&2
