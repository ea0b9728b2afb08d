#!/usr/bin/env bash
# Builds an old OpenSSH client for the tests of what setup writes into
# ~/.ssh/config: upstream OpenSSH 8.4p1, unpatched (as on RHEL 8 / Ubuntu
# 20.04-era machines, and macOS builds before 14.x), the last series before
# 8.7's new config-line parser and before 9.6's host-name checks
# (CVE-2023-51385), so it hands a name like `$(touch x).z.p` to a
# ProxyCommand unchecked. Distribution builds of 8.4 carry the 9.6 fix as a
# backport, hence the build from the pristine tarball (Debian's .orig,
# checked against the hash in bullseye's Sources index), without OpenSSL
# (the tests only need config parsing and ProxyCommand). Result:
# target/old-openssh/ssh. Takes about a minute once. Best effort: without
# the mirror or a compiler, a warning, and the tests use the local ssh only.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=target/old-openssh
if [ -x "$dest/ssh" ]; then exit 0; fi
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
warn() { echo "old-openssh: $*; the tests will use the local ssh only" >&2; exit 0; }
for t in curl gcc make; do
  command -v $t >/dev/null 2>&1 || warn "$t is missing"
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
curl -fsS --max-time 120 "$mirror/dists/bullseye/main/source/Sources.gz" -o "$tmp/Sources.gz" \
  || warn "cannot reach $mirror"
tarball=openssh_8.4p1.orig.tar.gz
gzip -dc "$tmp/Sources.gz" > "$tmp/Sources"
sum=$(awk -v t="$tarball" '$1=="Package:"{hit=($2=="openssh")} hit&&$3==t&&length($1)==64{print $1; exit}' "$tmp/Sources")
[ -n "$sum" ] || warn "no $tarball in bullseye's Sources"
curl -fsS --max-time 300 "$mirror/pool/main/o/openssh/$tarball" -o "$tmp/$tarball" \
  || warn "cannot download $tarball"
echo "$sum  $tmp/$tarball" | sha256sum -c --quiet - || warn "$tarball does not match its hash"
tar xzf "$tmp/$tarball" -C "$tmp"
echo "old-openssh: building OpenSSH 8.4p1 (about a minute)" >&2
(
  cd "$tmp/openssh-8.4p1"
  ./configure --without-openssl --with-privsep-path="$tmp/empty" >"$tmp/configure.log" 2>&1
  make -j"$(nproc)" ssh >"$tmp/make.log" 2>&1
) || { tail -20 "$tmp"/*.log >&2; warn "the build failed"; }
mkdir -p "$dest"
cp "$tmp/openssh-8.4p1/ssh" "$dest/ssh.new"
mv "$dest/ssh.new" "$dest/ssh"
"$dest/ssh" -V 2>&1 | sed 's/^/old-openssh: /' >&2 || true
