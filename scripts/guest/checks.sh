#!/bin/sh
# Runs inside the cgroup v2-only guest (scripts/cgroup-v2-guest.sh): the
# limits and isolation of worlds, through the real `world` binary. Prints
# one "GUEST-OK name" or "GUEST-FAIL name: ..." line per check; exits 0
# only if every check passed.
export WORLD_DB=/tmp/world.duckdb WORLD_NO_DAEMON=1 WORLD_POOL_MAX=0
fails=0
check() { # NAME GOT WANT
  if [ "$2" = "$3" ]; then echo "GUEST-OK $1"; else echo "GUEST-FAIL $1: got '$2', want '$3'"; fails=$((fails + 1)); fi
}
CG=/sys/fs/cgroup/world-runtime

check hierarchy "$(grep -c cgroup2 /proc/mounts)/$(grep -c ' cgroup ' /proc/mounts)" "1/0"
world doctor > /tmp/doctor.txt 2>&1
check doctor_exit "$?" 0 || true
grep -v '^ok' /tmp/doctor.txt
check doctor_v2 "$(grep -c 'cgroups *v2 (unified)' /tmp/doctor.txt)" 1

id=$(world create --memory 64 --pids 32 --vcpus 1 2>/tmp/create.err)
check create "$?" 0
[ -n "$id" ] || { cat /tmp/create.err; echo "GUEST-FAIL no world"; exit 1; }
check memory_max "$(cat $CG/$id/memory.max)" 67108864
check pids_max "$(cat $CG/$id/pids.max)" 32
check cpu_max "$(cut -d' ' -f1 $CG/$id/cpu.max)" 100000

# Memory: a command holding 100 MB in a 64 MiB world is OOM-killed inside
# the world; the world and the guest go on.
# (One process grows: the OOM killer's choice is then certain.)
world exec "$id" -- awk 'BEGIN { s = "x"; while (length(s) < 200000000) s = s s; print "survived" }' >/tmp/mem.out 2>&1
check oom_contained "$?" 137
check oom_events "$(grep -c 'oom_kill [1-9]' $CG/$id/memory.events)" 1
check alive_after_oom "$(world exec "$id" -- echo alive)" alive

# Pids: no more than 32 processes, however many are asked for.
world exec "$id" -- sh -c 'i=0; while [ $i -lt 100 ]; do sleep 4 & i=$((i + 1)); done' >/dev/null 2>&1
cur=$(cat $CG/$id/pids.current)
[ "$cur" -le 32 ] && cur=ok
check pids_contained "$cur" ok
check pids_limit_hit "$(grep -c '^max [1-9]' $CG/$id/pids.events)" 1
sleep 5

# Isolation: the world sees its own processes only, not the guest's.
guest=$(ls /proc | grep -c '^[0-9]')
inside=$(world exec "$id" -- sh -c 'ls /proc | grep -c "^[0-9]"')
[ "${inside:-999}" -lt "$guest" ] && [ "$inside" -le 40 ] && inside=own
check own_pids "$inside" own

# Snapshot (freezes the world through cgroup.freeze) and branch.
world snapshot "$id" --name s1 >/dev/null 2>/tmp/snap.err
check snapshot "$?" 0
check thawed "$(cat $CG/$id/cgroup.freeze)" 0
kids=$(world --json branch s1 --count 2 2>/tmp/branch.err | grep -c '"w-')
check branch "$kids" 2
for c in $(world --json list | grep -o '"id": *"w-[0-9a-f]*"' | grep -o 'w-[0-9a-f]*'); do
  [ "$c" = "$id" ] && continue
  check "child_memory_max" "$(cat $CG/$c/memory.max)" 67108864
done

# Pause and resume go through the freezer too.
world destroy $(world --json list | grep -o '"id": *"w-[0-9a-f]*"' | grep -o 'w-[0-9a-f]*') >/dev/null
check destroyed "$(ls $CG | grep -c '^w-')" 0
world snapshots rm s1 >/dev/null
world repair >/dev/null
check released "$(ls $CG | grep -c -e '^snap\.' -e '^lineage\.')" 0

echo "GUEST-DONE failures=$fails"
[ "$fails" = 0 ]
