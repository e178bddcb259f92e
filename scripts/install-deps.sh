#!/usr/bin/env bash
# Installs what WorldRuntime needs on Debian/Ubuntu: system packages (as
# root, via apt-get) and a Python venv with duckdb and just. Idempotent:
# does nothing that is already done.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh

# Debian packages: a C toolchain for crates that build C, python3 for
# code sessions, btrfs-progs for copy-on-write world filesystems,
# bubblewrap and util-linux (unshare) as benchmark baselines, OpenSSH's
# clients (the SSH door's tests) and sftp-server (worlds run the host's
# /usr, so it is what the SFTP subsystem runs inside a world). npm (to
# fetch DuckDB's prebuilt library) is installed by scripts/duckdb.sh when
# missing.
PKGS=(build-essential python3 python3-venv btrfs-progs bubblewrap util-linux iproute2 tar openssh-client openssh-sftp-server)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "install-deps: need root to install: ${missing[*]} (run: sudo $0)" >&2
    exit 1
  fi
  echo "install-deps: apt-get install ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -x "$WORLD_PYTHON" ]; then
  echo "install-deps: creating $WORLD_VENV" >&2
  mkdir -p "$(dirname "$WORLD_VENV")"
  /usr/bin/python3 -m venv "$WORLD_VENV"
fi
# Reinstall whenever requirements-dev.txt changes (a stamp in the venv).
STAMP="$WORLD_VENV/.requirements-dev.sha256"
WANT="$(sha256sum scripts/requirements-dev.txt | cut -d' ' -f1)"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
  echo "install-deps: pip install -r scripts/requirements-dev.txt" >&2
  "$WORLD_PYTHON" -m pip install --quiet --disable-pip-version-check -r scripts/requirements-dev.txt
  echo "$WANT" > "$STAMP"
fi

# The Python SDK (python/), installed into the venv so that
# `$WORLD_VENV/bin/python3 -c 'import worldruntime'` works; again whenever
# its files change.
SDK_STAMP="$WORLD_VENV/.sdk.sha256"
SDK_WANT="$(find python/pyproject.toml python/worldruntime -type f -name '*.py' -o -name pyproject.toml | sort | xargs sha256sum | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$SDK_STAMP" 2>/dev/null)" != "$SDK_WANT" ]; then
  echo "install-deps: pip install ./python (the worldruntime SDK)" >&2
  # From a copy: setuptools leaves build/ and *.egg-info beside the sources.
  SDK_TMP="$(mktemp -d)"
  cp -r python/pyproject.toml python/README.md python/worldruntime "$SDK_TMP/"
  "$WORLD_PYTHON" -m pip install --quiet --disable-pip-version-check --no-deps "$SDK_TMP"
  rm -rf "$SDK_TMP"
  echo "$SDK_WANT" > "$SDK_STAMP"
fi
