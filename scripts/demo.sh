#!/usr/bin/env bash
# Runs the main job locally: starts fake-gcp (a local stand-in for Google's
# IAP relay, OAuth, Compute and OS Login, with a simulated guest agent) and
# a private sshd behind it; runs ssh and scp through `iap-ssh proxy`, then
# `iap-ssh setup` in a scratch HOME and plain `ssh demo-vm` with the config
# it wrote. Touches nothing outside a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-test-deps.sh
cargo build --workspace --bins --locked -q
BIN="$PWD/target/debug"

D="$(mktemp -d)"
cleanup() { [ -n "${FAKE_PID:-}" ] && kill "$FAKE_PID" 2>/dev/null; rm -rf "$D"; }
trap cleanup EXIT

# A private sshd, started per tunnel session (inetd style) by the fake VM.
mkdir -p /run/sshd 2>/dev/null || true
ssh-keygen -q -t ed25519 -N '' -C demo-host -f "$D/hostkey"
ssh-keygen -q -t ed25519 -N '' -C demo-client -f "$D/client"
cp "$D/client.pub" "$D/authorized_keys"
cat > "$D/sshd_config" <<CFG
HostKey $D/hostkey
PidFile none
AuthorizedKeysFile $D/authorized_keys $D/keys/%u
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
Subsystem sftp /usr/lib/openssh/sftp-server
CFG
hostkey="$(cut -d' ' -f1,2 "$D/hostkey.pub")"
cat > "$D/fake.json" <<CFG
{"instances": [{"project": "demo-project", "zone": "us-central1-a", "name": "demo-vm",
  "id": "1234567890123456789", "host_keys": ["$hostkey"], "guest_keys_dir": "$D/keys",
  "ports": {"22": {"exec": ["/usr/sbin/sshd", "-i", "-e", "-f", "$D/sshd_config"]}}}],
 "projects": [{"id": "demo-project", "metadata": {"enable-guest-attributes": "TRUE"}}]}
CFG

"$BIN/fake-gcp" --state-dir "$D/fake" --config "$D/fake.json" > "$D/ready.json" &
FAKE_PID=$!
for _ in $(seq 100); do [ -s "$D/ready.json" ] && break; sleep 0.1; done
ready="$(cat "$D/ready.json")"
field() { sed -E "s/.*\"$1\":\"([^\"]*)\".*/\1/" <<<"$ready"; }

export IAP_SSH_TUNNEL_URL="$(field tunnel_url)"
export IAP_SSH_CA_FILE="$(field ca_file)"
export IAP_SSH_TOKEN_URL="$(field token_url)"
export IAP_SSH_ACCESS_TOKEN="$(field access_token)"
export IAP_SSH_COMPUTE_URL="$(field api_url)"
export IAP_SSH_OSLOGIN_URL="$(field oslogin_url)"
export IAP_SSH_TOKENINFO_URL="$(field tokeninfo_url)"
echo "fake-gcp relay at $IAP_SSH_TUNNEL_URL"

ssh_opts=(-F /dev/null -i "$D/client" -o IdentitiesOnly=yes -o StrictHostKeyChecking=no
  -o "UserKnownHostsFile=$D/known_hosts" -o BatchMode=yes -o LogLevel=ERROR
  -o "ProxyCommand=$BIN/iap-ssh proxy %h %p")
host="$(id -un)@demo-vm.us-central1-a.demo-project"

echo "\$ ssh -o 'ProxyCommand=iap-ssh proxy %h %p' $host 'echo hello from \$(hostname); uname -sr'"
ssh "${ssh_opts[@]}" "$host" 'echo hello from $(hostname); uname -sr'

head -c 8388608 /dev/urandom > "$D/file.bin"
echo "\$ scp file.bin (8 MiB) there and back"
scp -q "${ssh_opts[@]}" "$D/file.bin" "$host:$D/remote.bin"
scp -q "${ssh_opts[@]}" "$host:$D/remote.bin" "$D/back.bin"
cmp "$D/file.bin" "$D/back.bin" && echo "checksums equal: $(sha256sum < "$D/back.bin" | cut -c1-16)…"

echo
echo "\$ iap-ssh setup --project demo-project      # in a scratch HOME"
export HOME="$D/home"
mkdir -p "$HOME"
"$BIN/iap-ssh" setup --project demo-project
sleep 1   # the simulated guest agent applies the new key
echo "\$ ssh demo-vm 'echo hello through the Host block'"
ssh -F "$HOME/.ssh/config" -o BatchMode=yes demo-vm 'echo hello through the Host block'
echo "\$ iap-ssh ssh --dry-run demo-vm -- uname -sr"
"$BIN/iap-ssh" ssh --dry-run --project demo-project demo-vm -- uname -sr
echo "demo OK"
