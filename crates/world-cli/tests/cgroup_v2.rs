//! Limits and isolation on a cgroup v2-only host, the layout most users
//! run (current Debian, Ubuntu, Fedora); our own hosts are hybrid v1/v2,
//! where worlds use the v1 controllers. `scripts/cgroup-v2-guest.sh`
//! boots Debian's cloud kernel under QEMU's software emulation with a
//! busybox initramfs holding this `world` binary and runs
//! `scripts/guest/checks.sh` there: memory, pids and CPU limits, the OOM
//! kill contained in the world, process isolation, snapshot (freezer),
//! branch, destroy and repair. Needs root (it installs the kernel, QEMU
//! and busybox from Debian's packages when missing).

use std::process::Command;

#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn limits_and_isolation_hold_on_a_cgroup_v2_only_guest() {
    // The package's directory as cargo gives it at run time: a test
    // binary built from another clone sharing the target directory keeps
    // that clone's path in `env!`.
    let script = format!(
        "{}/../../scripts/cgroup-v2-guest.sh",
        std::env::var("CARGO_MANIFEST_DIR")
            .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string())
    );
    let out = Command::new("bash")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_world"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}");
    assert!(
        out.status.success(),
        "the cgroup v2 guest's checks failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("GUEST-DONE failures=0"), "{stdout}");
    assert!(stdout.contains("GUEST-OK oom_contained"), "{stdout}");
    assert!(!stdout.contains("GUEST-FAIL"), "{stdout}");
}
