//! The world's root filesystem, built by its init inside the new mount
//! namespace: bind of the world subvolume, read-only host binds (host
//! image), fresh /proc, minimal /dev, pivot_root; plus hostname and
//! loopback. Nothing is mounted in the host's namespace, so a world's mounts
//! vanish with its processes.

use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::Path;

use super::LaunchSpec;
use crate::sys::{self, mount};

const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

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

/// Builds the root and pivots into it.
pub fn build(spec: &LaunchSpec) -> io::Result<()> {
    let root = &spec.root;
    mount(
        None,
        Path::new("/"),
        None,
        libc::MS_REC | libc::MS_PRIVATE,
        None,
    )?;
    mount(Some(root), root, None, libc::MS_BIND | libc::MS_REC, None)?;
    for b in &spec.binds {
        let (src, dst) = (Path::new("/").join(b), root.join(b));
        mount(Some(&src), &dst, None, libc::MS_BIND | libc::MS_REC, None)?;
        remount(&dst, libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV)?;
    }
    for d in ["proc", "dev"] {
        let p = root.join(d);
        if fs::symlink_metadata(&p).is_err() {
            fs::create_dir(&p)?;
        }
    }
    let nse = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    mount(None, &root.join("proc"), Some("proc"), nse, None)?;
    build_dev(&root.join("dev"))?;
    sys::pivot_to(root)?;
    remount(Path::new("/"), libc::MS_NOSUID | libc::MS_NODEV)?;
    Ok(())
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
