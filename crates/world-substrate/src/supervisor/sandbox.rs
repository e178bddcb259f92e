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

/// Capabilities of session interpreters: [`KEEP_CAPS`] plus
/// CAP_SYS_ADMIN (21), which `setns` needs when a template's fork enters
/// a branch child's namespaces. Held in the lineage user namespace only;
/// the agent drops it from the bounding set, so programs the session
/// executes do not get it. See the residual risks in [`crate::snapshot`].
pub const SESSION_CAPS: &[u32] = &[0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 21, 27, 29, 31];

/// Drops capabilities, sets no_new_privs and installs the seccomp filter.
/// Returns the failing step's errno on error.
pub fn lock_down(prog: &Program) -> Result<(), (&'static str, i32)> {
    lock_down_with(prog, KEEP_CAPS, KEEP_CAPS)
}

/// [`lock_down`] keeping the capabilities `keep` (bounding, permitted,
/// effective) and `inherit` (inheritable: what programs executed as root
/// later get besides the bounding set).
pub fn lock_down_with(
    prog: &Program,
    keep: &[u32],
    inherit: &[u32],
) -> Result<(), (&'static str, i32)> {
    let errno = || std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    for cap in 0..64u32 {
        if keep.contains(&cap) {
            continue;
        }
        // SAFETY: prctl with integer args.
        let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) };
        if r != 0 && errno() != libc::EINVAL {
            return Err(("drop capability", errno()));
        }
    }
    let mask: u64 = keep.iter().fold(0, |m, c| m | (1u64 << c));
    let (lo, hi) = (mask as u32, (mask >> 32) as u32);
    let imask: u64 = inherit.iter().fold(0, |m, c| m | (1u64 << c)) & mask;
    let (ilo, ihi) = (imask as u32, (imask >> 32) as u32);
    let hdr = CapHeader {
        version: 0x2008_0522,
        pid: 0,
    };
    let data = [
        CapData {
            effective: lo,
            permitted: lo,
            inheritable: ilo,
        },
        CapData {
            effective: hi,
            permitted: hi,
            inheritable: ihi,
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
