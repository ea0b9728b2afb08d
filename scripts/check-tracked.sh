#!/usr/bin/env bash
# Fails when a generated file is tracked: anything .gitignore excludes
# (build output, Python bytecode, editor backups), or a file of a kind that
# is always generated, wherever it sits. The shipped completion scripts are
# generated too, on purpose; tests/cli.rs fails when they are stale.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  echo "check-tracked: not a git checkout; skipped" >&2
  exit 0
fi
bad=$(
  {
    git ls-files -ci --exclude-standard
    git ls-files | grep -E '(^|/)(__pycache__|target|node_modules)/|\.(py[co]|rs\.bk|o|a|so|profraw|orig|rej|swp)$|(^|/)\.DS_Store$' || true
  } | sort -u
)
if [ -n "$bad" ]; then
  echo "check-tracked: generated files are tracked (git rm --cached them; .gitignore covers them):" >&2
  echo "$bad" | sed 's/^/  /' >&2
  exit 1
fi
