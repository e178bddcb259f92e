#!/usr/bin/env bash
# Installs what WorldRuntime needs on Debian/Ubuntu: system packages (as
# root, via apt-get) and a Python venv with duckdb and just. Idempotent:
# does nothing that is already done.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh

# Debian packages: a C/C++ toolchain for the bundled DuckDB, python3 for
# code sessions, btrfs-progs for copy-on-write world filesystems,
# bubblewrap and util-linux (unshare) as benchmark baselines.
PKGS=(build-essential python3 python3-venv btrfs-progs bubblewrap util-linux iproute2 tar)
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
