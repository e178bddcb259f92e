#!/usr/bin/env bash
# Boots Debian's cloud kernel under QEMU's software emulation (no KVM
# needed) with a busybox initramfs holding the `world` binary, its
# libraries, btrfs and loop modules and mkfs.btrfs, mounts a pure cgroup
# v2 hierarchy, and runs scripts/guest/checks.sh there: limits and
# isolation on the cgroup layout most users run (our hosts are hybrid
# v1/v2). Installs what it needs from Debian's packages. Prints the
# guest's GUEST-* lines; exits 0 only if every check passed.
#
#   scripts/cgroup-v2-guest.sh [WORLD_BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
WORLD="${1:-$CARGO_TARGET_DIR/release/world}"
[ -x "$WORLD" ] || { echo "cgroup-v2-guest: $WORLD is not built" >&2; exit 2; }

need=()
ls /boot/vmlinuz-*-cloud-amd64 >/dev/null 2>&1 || need+=(linux-image-cloud-amd64)
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
[ -x /bin/busybox ] || need+=(busybox-static)
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { echo "cgroup-v2-guest: needs root to install ${need[*]}" >&2; exit 2; }
  echo "cgroup-v2-guest: apt-get install ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
KERNEL="$(ls /boot/vmlinuz-*-cloud-amd64 | sort -V | tail -1)"
KVER="${KERNEL#/boot/vmlinuz-}"
MODS="/lib/modules/$KVER"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
R="$WORK/root"
mkdir -p "$R"/{bin,sbin,lib,lib64,usr/bin,usr/sbin,usr/lib,etc,proc,sys,dev,tmp,run,var/lib,root,mods}
cp /bin/busybox "$R/bin/busybox"
for a in $(/bin/busybox --list); do
  [ -e "$R/bin/$a" ] || ln -s busybox "$R/bin/$a"
done
# A program and every library it loads, at the same paths (rpaths hold).
add() { # SRC DEST
  mkdir -p "$R$(dirname "$2")"
  cp -L "$1" "$R$2"
  ldd "$1" | grep -o '/[^ ]*' | while read -r lib; do
    [ -e "$R$lib" ] || { mkdir -p "$R$(dirname "$lib")"; cp -L "$lib" "$R$lib"; }
  done
}
add "$WORLD" /usr/bin/world
if [ -x "$(dirname "$WORLD")/world-supervisor" ]; then
  add "$(dirname "$WORLD")/world-supervisor" /usr/bin/world-supervisor
fi
add "$(command -v mkfs.btrfs)" /usr/sbin/mkfs.btrfs
rm -f "$R/bin/mount"
add "$(command -v mount)" /bin/mount
# Modules in load order: dependencies first.
order=()
visit() {
  local m="$1" d
  for seen in "${order[@]:-}"; do [ "$seen" = "$m" ] && return 0; done
  for d in $(modinfo -k "$KVER" -F depends "$m" | tr ',' ' '); do visit "$d"; done
  order+=("$m")
}
for m in loop btrfs; do visit "$m"; done
for m in "${order[@]}"; do
  f="$(modinfo -k "$KVER" -F filename "$m")"
  case "$f" in (builtin|"") continue ;; esac
  cp "$f" "$R/mods/$m.ko"
  echo "$m" >> "$R/mods/order"
done
cp scripts/guest/checks.sh "$R/checks.sh"
# pivot_root (which worlds need) refuses the initramfs itself: the first
# init copies the tree to a tmpfs and switches to it.
cat > "$R/init" <<'INIT'
#!/bin/sh
mount -t proc proc /proc
mkdir /newroot
mount -t tmpfs -o size=3g root /newroot
for d in bin sbin lib lib64 usr etc root mods var checks.sh init2 tmp run work; do
  [ -e "/$d" ] && cp -a "/$d" /newroot/
done
mkdir -p /newroot/proc /newroot/sys /newroot/dev
umount /proc
exec switch_root /newroot /init2
INIT
cat > "$R/init2" <<'INIT'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
mount -t tmpfs run /run
mount -t cgroup2 cgroup2 /sys/fs/cgroup
for m in $(cat /mods/order); do insmod /mods/$m.ko; done
echo "root:x:0:0:root:/root:/bin/sh" > /etc/passwd
export PATH=/usr/bin:/usr/sbin:/bin:/sbin HOME=/root
sh /checks.sh
echo "GUEST-EXIT $?"
poweroff -f
INIT
chmod +x "$R/init" "$R/init2" "$R/checks.sh"
( cd "$R" && find . | cpio -o -H newc --quiet | gzip -1 ) > "$WORK/initrd.gz"
echo "cgroup-v2-guest: booting Linux $KVER under QEMU (TCG), initramfs $(du -h "$WORK/initrd.gz" | cut -f1)" >&2
timeout 900 qemu-system-x86_64 -accel tcg -m 2048 -smp 2 -nographic -no-reboot \
  -kernel "$KERNEL" -initrd "$WORK/initrd.gz" \
  -append "console=ttyS0 panic=-1 rdinit=/init quiet" > "$WORK/console.log" 2>&1 || true
grep -a "GUEST-" "$WORK/console.log" | tr -d '\r'
grep -aq "GUEST-EXIT 0" "$WORK/console.log" || {
  echo "cgroup-v2-guest: failed; the guest's console:" >&2
  tail -40 "$WORK/console.log" | tr -d '\r' >&2
  exit 1
}
