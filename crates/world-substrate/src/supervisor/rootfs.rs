//! The world's root filesystem, built by its init inside the new mount
//! namespace in two steps. [`stage`] needs no root: read-only host binds
//! (host image), fresh /proc, minimal /dev, a /sys with only the host's
//! transparent-huge-page settings (read-only), all on a private staging
//! tmpfs. [`enter`] binds the world subvolume, moves the staged mounts into
//! it and pivots. Plus hostname and loopback. Nothing is mounted in the
//! host's namespace, so a world's mounts vanish with its processes.

use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::Path;

use crate::sys::{self, mount};

const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

/// Files of a world's /proc that tell about the host (kernel memory,
/// timers and tasks of every CPU, keys, latency traces) or act on it
/// (sysrq): each is covered by the empty, read-only file of the stage, as
/// container runtimes mask them. Missing ones are skipped.
pub const MASKED_PROC_FILES: &[&str] = &[
    "kcore",
    "keys",
    "key-users",
    "timer_list",
    "timer_stats",
    "sched_debug",
    "latency_stats",
    "sysrq-trigger",
];
/// Directories of a world's /proc hidden under an empty read-only tmpfs.
pub const MASKED_PROC_DIRS: &[&str] = &["acpi", "scsi", "asound"];
/// Directories of a world's /proc made read-only (kernel tunables, IRQ
/// affinities, buses, file systems).
pub const READ_ONLY_PROC: &[&str] = &["sys", "irq", "bus", "fs"];

/// Mount flags that the kernel locks on a bind mount in a user namespace and
/// that therefore must be repeated on a remount.
fn locked_flags(p: &Path) -> io::Result<libc::c_ulong> {
    let c = sys::cpath(p)?;
    // SAFETY: statvfs on a valid path into a zeroed out-struct.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: see above.
    sys::cvt(unsafe { libc::statvfs(c.as_ptr(), &mut st) } as libc::c_long)?;
    let mut f = 0;
    for (st_flag, ms) in [
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
    ] {
        if st.f_flag & st_flag != 0 {
            f |= ms;
        }
    }
    Ok(f)
}

fn remount(target: &Path, extra: libc::c_ulong) -> io::Result<()> {
    let flags = libc::MS_BIND | libc::MS_REMOUNT | locked_flags(target)? | extra;
    mount(None, target, None, flags, None)
}

/// Prepares, in the caller's fresh mount namespace, every mount a world's
/// root gets that does not depend on the root itself: a private tmpfs on
/// `stage` (the lineage's run directory, hidden in this namespace only)
/// holding a fresh /proc, the minimal /dev, the /sys of [`build_sys`] and
/// the read-only binds of the image's host directories. [`enter`] later
/// moves them into a root. A pooled world shell does this long before it
/// knows its root.
pub fn stage(stage: &Path, binds: &[String]) -> io::Result<()> {
    mount(
        None,
        Path::new("/"),
        None,
        libc::MS_REC | libc::MS_PRIVATE,
        None,
    )?;
    let nse = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    mount(None, stage, Some("tmpfs"), nse, Some("mode=700,size=64k"))?;
    for (i, b) in binds.iter().enumerate() {
        let (src, dst) = (Path::new("/").join(b), stage.join(format!("b{i}")));
        fs::create_dir(&dst)?;
        mount(Some(&src), &dst, None, libc::MS_BIND | libc::MS_REC, None)?;
        remount(&dst, libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV)?;
    }
    for d in ["proc", "dev", "sys"] {
        fs::create_dir(stage.join(d))?;
    }
    mount(None, &stage.join("proc"), Some("proc"), nse, None)?;
    mask_proc(stage, &stage.join("proc"))?;
    build_dev(&stage.join("dev"))?;
    build_sys(&stage.join("sys"))
}

/// Binds `root` onto itself, moves the mounts [`stage`] prepared into it
/// (the image's binds, /proc, /dev, and /sys when the root has a `sys`
/// directory) and pivots into it. The stage goes with the old root.
pub fn enter(root: &Path, stage: &Path, binds: &[String]) -> io::Result<()> {
    mount(Some(root), root, None, libc::MS_BIND | libc::MS_REC, None)?;
    for (i, b) in binds.iter().enumerate() {
        move_mount(&stage.join(format!("b{i}")), &root.join(b))?;
    }
    for d in ["proc", "dev"] {
        let p = root.join(d);
        if fs::symlink_metadata(&p).is_err() {
            fs::create_dir(&p)?;
        }
        move_mount(&stage.join(d), &p)?;
    }
    let sys_dir = root.join("sys");
    if sys_dir.is_dir() && !fs::symlink_metadata(&sys_dir)?.is_symlink() {
        move_mount(&stage.join("sys"), &sys_dir)?;
    }
    sys::pivot_to(root)?;
    remount(Path::new("/"), libc::MS_NOSUID | libc::MS_NODEV)?;
    Ok(())
}

/// Masks the host-revealing parts of the fresh /proc at `proc` (see
/// [`MASKED_PROC_FILES`], [`MASKED_PROC_DIRS`], [`READ_ONLY_PROC`]). The
/// mounts move with /proc into the root.
fn mask_proc(stage: &Path, proc: &Path) -> io::Result<()> {
    let ro = libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    // One empty, read-only file on the stage's tmpfs covers every file.
    let empty = stage.join("empty");
    fs::File::create(&empty)?;
    for f in MASKED_PROC_FILES {
        let p = proc.join(f);
        if fs::symlink_metadata(&p).is_ok_and(|m| m.is_file()) {
            mount(Some(&empty), &p, None, libc::MS_BIND, None)?;
            remount(&p, ro)?;
        }
    }
    for d in MASKED_PROC_DIRS {
        let p = proc.join(d);
        if fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) {
            mount(None, &p, Some("tmpfs"), ro, Some("size=0,mode=555"))?;
        }
    }
    for d in READ_ONLY_PROC {
        let p = proc.join(d);
        if fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) {
            mount(Some(&p), &p, None, libc::MS_BIND | libc::MS_REC, None)?;
            remount(&p, ro)?;
        }
    }
    Ok(())
}

fn move_mount(from: &Path, to: &Path) -> io::Result<()> {
    mount(Some(from), to, None, libc::MS_MOVE, None)
}

fn build_dev(dev: &Path) -> io::Result<()> {
    let ns = libc::MS_NOSUID | libc::MS_NOEXEC;
    mount(None, dev, Some("tmpfs"), ns, Some("mode=755,size=1024k"))?;
    for d in DEVICES {
        let p = dev.join(d);
        fs::File::create(&p)?;
        let host = Path::new("/dev").join(d);
        mount(Some(&host), &p, None, libc::MS_BIND, None)?;
    }
    fs::create_dir(dev.join("pts"))?;
    mount(
        None,
        &dev.join("pts"),
        Some("devpts"),
        ns,
        Some("newinstance,ptmxmode=0666,mode=620,gid=5"),
    )?;
    symlink("pts/ptmx", dev.join("ptmx"))?;
    fs::create_dir(dev.join("shm"))?;
    mount(
        None,
        &dev.join("shm"),
        Some("tmpfs"),
        ns | libc::MS_NODEV,
        Some("mode=1777,size=65536k"),
    )?;
    for (l, t) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        symlink(t, dev.join(l))?;
    }
    Ok(())
}

/// Host directory of the transparent-huge-page settings that glibc's
/// malloc reads at start when asked to use huge pages (the sessions'
/// `GLIBC_TUNABLES`, see `session::MALLOC_TUNABLES`).
const THP_DIR: &str = "sys/kernel/mm/transparent_hugepage";

/// A read-only `/sys` holding only the host's transparent-huge-page
/// settings (a read-only bind), so that session interpreters can ask
/// malloc for huge pages. Nothing else of the host's sysfs is visible.
/// Without that host directory (no THP in the kernel) it is an empty
/// read-only tmpfs (still a mount, which [`enter`] moves); a root without
/// a `sys` directory does not get it.
fn build_sys(sysdir: &Path) -> io::Result<()> {
    let ro = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    mount(None, sysdir, Some("tmpfs"), ro, Some("mode=555,size=16k"))?;
    let host = Path::new("/").join(THP_DIR);
    if host.is_dir() {
        let dst = sysdir.join("kernel/mm/transparent_hugepage");
        fs::create_dir_all(&dst)?;
        mount(Some(&host), &dst, None, libc::MS_BIND, None)?;
        remount(&dst, libc::MS_RDONLY | ro)?;
    }
    mount(
        None,
        sysdir,
        None,
        libc::MS_REMOUNT | libc::MS_RDONLY | ro,
        None,
    )
}

/// Sets the UTS hostname.
pub fn set_hostname(name: &str) -> io::Result<()> {
    // SAFETY: pointer and length of a live byte string.
    sys::cvt(unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) } as libc::c_long)
        .map(drop)
}

/// Brings up `lo` in the world's network namespace.
pub fn loopback_up() -> io::Result<()> {
    // SAFETY: a datagram socket used only for interface ioctls; the ifreq is
    // a zeroed local with a NUL-terminated name.
    unsafe {
        let s = sys::cvt(
            libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) as libc::c_long,
        )? as i32;
        let mut ifr: libc::ifreq = std::mem::zeroed();
        ifr.ifr_name[0] = b'l' as libc::c_char;
        ifr.ifr_name[1] = b'o' as libc::c_char;
        let r = (|| {
            sys::cvt(libc::ioctl(s, libc::SIOCGIFFLAGS, &mut ifr) as libc::c_long)?;
            ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            sys::cvt(libc::ioctl(s, libc::SIOCSIFFLAGS, &ifr) as libc::c_long)
        })();
        libc::close(s);
        r.map(drop)
    }
}
