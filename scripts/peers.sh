#!/usr/bin/env bash
# Installs the local sandboxes `world bench peers` measures us against,
# from Debian's packages, and builds the OCI bundles they share. Never
# part of the tests. Run as root:
#
#   ./scripts/peers.sh            # install + bundles
#   world bench peers             # the table (--json for scripts)
#
# What it installs: bubblewrap, util-linux's unshare, crun, runc,
# systemd-nspawn (systemd-container), podman, CRIU. gVisor's `runsc` is not
# packaged by Debian: install it from gVisor's own apt repository if you
# want its rows (https://gvisor.dev/docs/user_guide/install/); the bench
# uses it when it is on the PATH and says so when it is not.
#
# The bundles live in $WORLD_PEERS_DIR (default
# /var/cache/world-runtime/peers):
#   rootfs/        an empty root with the merged-/usr symlinks; every peer
#                  binds the host's /usr read-only onto it (no registry)
#   bundle/        OCI config: pid, ipc, uts, mount, network namespaces
#   bundle-userns/ the same plus a user namespace (root -> 2000000000)
# Both configs are `runc spec` output with the process, root and /usr
# mount set by this script, so crun and runc run the same container.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "peers.sh: run as root (it installs packages and builds bundles)" >&2
    exit 1
fi

dir=${WORLD_PEERS_DIR:-/var/cache/world-runtime/peers}
pkgs=(bubblewrap util-linux crun runc systemd-container podman criu python3)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

echo "== bundles in $dir" >&2
mkdir -p "$dir"
rm -rf "$dir/rootfs.new"
mkdir -p "$dir/rootfs.new"/{usr,proc,dev,sys,tmp,etc,root,run}
for l in bin lib lib64 sbin; do
    ln -s "usr/$l" "$dir/rootfs.new/$l"
done
: > "$dir/rootfs.new/etc/hostname"
rm -rf "$dir/rootfs"
mv "$dir/rootfs.new" "$dir/rootfs"

for kind in bundle bundle-userns; do
    b="$dir/$kind"
    rm -rf "$b"
    mkdir -p "$b"
    (cd "$b" && runc spec)
    python3 - "$b/config.json" "$dir/rootfs" "$kind" <<'EOF'
import json, sys
path, rootfs, kind = sys.argv[1:4]
c = json.load(open(path))
c["process"]["terminal"] = False
c["process"]["args"] = ["/usr/bin/true"]
c["root"] = {"path": rootfs, "readonly": True}
c["mounts"].append({"destination": "/usr", "type": "bind", "source": "/usr",
                    "options": ["rbind", "ro", "nosuid", "nodev"]})
c["hostname"] = "peer"
ns = c["linux"]["namespaces"]
if kind == "bundle-userns":
    ns.append({"type": "user"})
    c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 2000000000, "size": 65536}]
    c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 2000000000, "size": 65536}]
    # sysfs cannot be mounted in a user namespace without its own net ns
    # owner; bind the host's read-only like rootless runc does.
    c["mounts"] = [m for m in c["mounts"] if m["destination"] != "/sys"] + [
        {"destination": "/sys", "type": "none", "source": "/sys",
         "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}]
    # cgroup and mqueue mounts need privileges the user namespace lacks.
    c["mounts"] = [m for m in c["mounts"] if m["type"] not in ("cgroup", "mqueue")]
json.dump(c, open(path, "w"), indent=1)
EOF
done
echo "== peers ready: world bench peers" >&2
