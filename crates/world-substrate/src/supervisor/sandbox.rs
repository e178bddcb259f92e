//! The last steps before a world process runs user code: capabilities cut to
//! a container-like default set, `no_new_privs`, seccomp. Runs right after
//! `fork` in a single-threaded process.

use crate::seccomp::Program;

/// Capabilities a world keeps (within its own user namespace only): the
/// Docker default set. Everything else, notably CAP_SYS_ADMIN,
/// CAP_SYS_PTRACE, CAP_SYS_MODULE, CAP_NET_ADMIN, is dropped from the
/// bounding set.
pub const KEEP_CAPS: &[u32] = &[
    0,  // CHOWN
    1,  // DAC_OVERRIDE
    3,  // FOWNER
    4,  // FSETID
    5,  // KILL
    6,  // SETGID
    7,  // SETUID
    8,  // SETPCAP
    10, // NET_BIND_SERVICE
    13, // NET_RAW
    18, // SYS_CHROOT
    27, // MKNOD
    29, // AUDIT_WRITE
    31, // SETFCAP
];

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Drops capabilities, sets no_new_privs and installs the seccomp filter.
/// Returns the failing step's errno on error.
pub fn lock_down(prog: &Program) -> Result<(), (&'static str, i32)> {
    let errno = || std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    for cap in 0..64u32 {
        if KEEP_CAPS.contains(&cap) {
            continue;
        }
        // SAFETY: prctl with integer args.
        let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) };
        if r != 0 && errno() != libc::EINVAL {
            return Err(("drop capability", errno()));
        }
    }
    let mask: u64 = KEEP_CAPS.iter().fold(0, |m, c| m | (1u64 << c));
    let (lo, hi) = (mask as u32, (mask >> 32) as u32);
    let hdr = CapHeader {
        version: 0x2008_0522,
        pid: 0,
    };
    let data = [
        CapData {
            effective: lo,
            permitted: lo,
            inheritable: lo,
        },
        CapData {
            effective: hi,
            permitted: hi,
            inheritable: hi,
        },
    ];
    // SAFETY: capset with a v3 header and a two-element data array, both
    // live locals laid out as the kernel expects.
    if unsafe { libc::syscall(libc::SYS_capset, &hdr, data.as_ptr()) } != 0 {
        return Err(("set capabilities", errno()));
    }
    // SAFETY: prctl with integer args.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        );
    }
    prog.install()
        .map_err(|_| ("install seccomp filter", errno()))
}
