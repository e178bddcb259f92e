//! The seccomp policy of world processes: a versioned JSON denylist
//! (`policy/seccomp-default.json`, compiled into the binary) turned into a
//! classic BPF program once per supervisor and installed in every process
//! the supervisor starts, after `no_new_privs`.
//!
//! A rule names a syscall and, optionally, conditions on its arguments
//! (`{"index", "mask", "value", "op"}`: the argument's low 32 bits, masked,
//! compared `eq` (default) or `ne` with `value`; all conditions of a rule
//! must hold for it to deny). Every name must be known on the architecture
//! being compiled for: an unknown name is an error, never a rule silently
//! left out. A rule for a syscall that exists only on some architectures
//! says so with `"arch": ["x86_64"]` and is skipped elsewhere.

use std::io;

use serde::Deserialize;

/// The policy file, embedded at build time.
pub const DEFAULT_POLICY: &str = include_str!("../policy/seccomp-default.json");
/// Changes for session interpreters (`remove` drops default rules by
/// syscall name, `rules` are added), embedded at build time.
pub const SESSION_POLICY: &str = include_str!("../policy/seccomp-session.json");

/// Errors of policy parsing and installation.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// The policy JSON is malformed.
    #[error("seccomp policy: {0}")]
    Parse(#[from] serde_json::Error),
    /// Unsupported policy version.
    #[error("seccomp policy version {0} unsupported (want 1)")]
    Version(u32),
    /// A rule names a syscall this build does not know on this
    /// architecture (a typo, or a missing `arch` list).
    #[error("seccomp policy: unknown syscall {0:?} on this architecture")]
    UnknownSyscall(String),
    /// A rule's `arch` names an architecture this compiler does not know
    /// (a typo would drop the rule everywhere).
    #[error("seccomp policy: unknown architecture {0:?} (use x86_64, aarch64 or x86)")]
    UnknownArch(String),
    /// An argument condition has an operator other than `eq` or `ne`.
    #[error("seccomp policy: unknown argument operator {0:?} (use eq or ne)")]
    Operator(String),
    /// The program grew beyond what BPF jumps can express.
    #[error("seccomp policy too large")]
    TooLarge,
    /// The kernel refused the program.
    #[error("install seccomp filter: {0}")]
    Install(#[source] io::Error),
}

#[derive(Debug, Deserialize)]
struct Policy {
    version: u32,
    default_errno: u32,
    #[serde(default)]
    remove: Vec<String>,
    rules: Vec<Rule>,
}

#[derive(Debug, Deserialize)]
struct Rule {
    syscall: String,
    #[serde(default)]
    errno: Option<u32>,
    #[serde(default)]
    args: Vec<ArgCond>,
    /// Architectures the syscall exists on (`x86_64`, `aarch64`); all
    /// when absent.
    #[serde(default)]
    arch: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
struct ArgCond {
    index: u32,
    mask: u32,
    value: u32,
    /// `eq` (default) or `ne`.
    #[serde(default)]
    op: Option<String>,
}

/// The architecture name rules use in `arch`.
const ARCH: &str = std::env::consts::ARCH;
/// Names a rule's `arch` may hold (`x86` is i386, which WorldRuntime does
/// not run on: its rules document calls that exist only there).
const KNOWN_ARCHES: [&str; 3] = ["x86_64", "aarch64", "x86"];

/// A compiled filter, ready to install.
#[derive(Debug, Clone)]
pub struct Program(Vec<libc::sock_filter>);

macro_rules! sys_table {
    ($($name:ident),* $(,)?) => {
        &[$((stringify!($name), libc::$name as i64)),*]
    };
}

const COMMON: &[(&str, i64)] = sys_table!(
    SYS_kexec_load,
    SYS_kexec_file_load,
    SYS_init_module,
    SYS_finit_module,
    SYS_delete_module,
    SYS_keyctl,
    SYS_add_key,
    SYS_request_key,
    SYS_bpf,
    SYS_perf_event_open,
    SYS_lookup_dcookie,
    SYS_clock_settime,
    SYS_clock_adjtime,
    SYS_settimeofday,
    SYS_adjtimex,
    SYS_reboot,
    SYS_swapon,
    SYS_swapoff,
    SYS_acct,
    SYS_mount,
    SYS_umount2,
    SYS_pivot_root,
    SYS_move_mount,
    SYS_open_tree,
    SYS_fsopen,
    SYS_fsconfig,
    SYS_fsmount,
    SYS_fspick,
    SYS_mount_setattr,
    SYS_unshare,
    SYS_setns,
    SYS_clone3,
    SYS_clone,
    SYS_userfaultfd,
    SYS_ptrace,
    SYS_process_vm_readv,
    SYS_process_vm_writev,
    SYS_open_by_handle_at,
    SYS_name_to_handle_at,
    SYS_quotactl,
    SYS_quotactl_fd,
    SYS_nfsservctl,
    SYS_vhangup,
    SYS_io_uring_setup,
    SYS_io_uring_enter,
    SYS_io_uring_register,
    SYS_ioctl,
    SYS_kill,
    SYS_pidfd_open,
    SYS_pidfd_getfd,
    SYS_kcmp,
    SYS_process_madvise,
    SYS_prlimit64,
    SYS_setpriority,
    SYS_sched_setscheduler,
    SYS_sched_setparam,
    SYS_sched_setaffinity,
    SYS_sched_setattr,
    SYS_ioprio_set,
    SYS_fcntl,
    SYS_migrate_pages,
    SYS_move_pages,
    SYS_get_robust_list,
    SYS_getpgid,
    SYS_getsid,
    SYS_getpriority,
    SYS_sched_getscheduler,
    SYS_sched_getparam,
    SYS_sched_getaffinity,
    SYS_sched_getattr,
    SYS_sched_rr_get_interval,
    SYS_ioprio_get,
);

#[cfg(target_arch = "x86_64")]
const ARCH_ONLY: &[(&str, i64)] = sys_table!(
    SYS_iopl,
    SYS_ioperm,
    SYS_uselib,
    SYS_ustat,
    SYS_sysfs,
    SYS__sysctl,
);
#[cfg(not(target_arch = "x86_64"))]
const ARCH_ONLY: &[(&str, i64)] = &[];
/// Syscalls the kernel removed long ago (they fail with ENOSYS) but whose
/// numbers x86_64 still reserves; the `libc` crate does not name them.
#[cfg(target_arch = "x86_64")]
const REMOVED: &[(&str, i64)] = &[
    ("SYS_create_module", 174),
    ("SYS_get_kernel_syms", 177),
    ("SYS_query_module", 178),
];
#[cfg(not(target_arch = "x86_64"))]
const REMOVED: &[(&str, i64)] = &[];

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;

fn nr(name: &str) -> Option<i64> {
    let want = format!("SYS_{name}");
    COMMON
        .iter()
        .chain(ARCH_ONLY)
        .chain(REMOVED)
        .find(|(n, _)| *n == want)
        .map(|(_, v)| *v)
}

const LD_ABS: u16 = 0x20;
const JEQ: u16 = 0x15;
const JGE: u16 = 0x35;
const AND: u16 = 0x54;
const RET: u16 = 0x06;
const RET_ALLOW: u32 = 0x7fff_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const RET_KILL: u32 = 0x8000_0000;

fn ins(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

impl Program {
    /// Compiles the embedded default policy.
    pub fn default_policy() -> Result<Program, SeccompError> {
        Program::compile(DEFAULT_POLICY)
    }

    /// Compiles the policy of session interpreters: the default policy
    /// changed by [`SESSION_POLICY`].
    pub fn session_policy() -> Result<Program, SeccompError> {
        let mut base: Policy = serde_json::from_str(DEFAULT_POLICY)?;
        let extra: Policy = serde_json::from_str(SESSION_POLICY)?;
        if extra.version != 1 {
            return Err(SeccompError::Version(extra.version));
        }
        base.rules.retain(|r| !extra.remove.contains(&r.syscall));
        base.rules.extend(extra.rules);
        Program::compile_policy(&base)
    }

    /// Compiles a policy given as JSON text.
    pub fn compile(json: &str) -> Result<Program, SeccompError> {
        let p: Policy = serde_json::from_str(json)?;
        Program::compile_policy(&p)
    }

    fn compile_policy(p: &Policy) -> Result<Program, SeccompError> {
        if p.version != 1 {
            return Err(SeccompError::Version(p.version));
        }
        let mut f = vec![
            ins(LD_ABS, 0, 0, 4),
            ins(JEQ, 1, 0, AUDIT_ARCH),
            ins(RET, 0, 0, RET_KILL),
        ];
        if cfg!(target_arch = "x86_64") {
            // Deny the x32 ABI (syscall numbers with bit 30 set) outright.
            f.push(ins(LD_ABS, 0, 0, 0));
            f.push(ins(JGE, 0, 1, 0x4000_0000));
            f.push(ins(RET, 0, 0, RET_ERRNO | 1));
        }
        for r in &p.rules {
            if let Some(bad) = r
                .arch
                .iter()
                .flatten()
                .find(|a| !KNOWN_ARCHES.contains(&a.as_str()))
            {
                return Err(SeccompError::UnknownArch(bad.clone()));
            }
            if r.arch
                .as_ref()
                .is_some_and(|a| !a.iter().any(|x| x == ARCH))
            {
                continue;
            }
            let n =
                nr(&r.syscall).ok_or_else(|| SeccompError::UnknownSyscall(r.syscall.clone()))?;
            let len = 3 + 3 * r.args.len();
            if len > 250 {
                return Err(SeccompError::TooLarge);
            }
            let errno = r.errno.unwrap_or(p.default_errno) & 0xffff;
            f.push(ins(LD_ABS, 0, 0, 0));
            f.push(ins(JEQ, 0, (len - 2) as u8, n as u32));
            for (i, c) in r.args.iter().enumerate() {
                let pos = 2 + 3 * i;
                // On a failed condition, jump past this rule's RET.
                let skip = (len - (pos + 2) - 1) as u8;
                f.push(ins(LD_ABS, 0, 0, 16 + 8 * c.index));
                f.push(ins(AND, 0, 0, c.mask));
                match c.op.as_deref().unwrap_or("eq") {
                    "eq" => f.push(ins(JEQ, 0, skip, c.value)),
                    "ne" => f.push(ins(JEQ, skip, 0, c.value)),
                    other => return Err(SeccompError::Operator(other.to_string())),
                }
            }
            f.push(ins(RET, 0, 0, RET_ERRNO | errno));
        }
        f.push(ins(RET, 0, 0, RET_ALLOW));
        if f.len() > 4096 {
            return Err(SeccompError::TooLarge);
        }
        Ok(Program(f))
    }

    /// Number of BPF instructions.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the program is empty (never, once compiled).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Sets `no_new_privs` and installs the filter on the calling thread.
    /// Async-signal-safe: no allocation, usable right after `fork`.
    pub fn install(&self) -> Result<(), SeccompError> {
        let prog = libc::sock_fprog {
            len: self.0.len() as u16,
            filter: self.0.as_ptr().cast_mut(),
        };
        // SAFETY: prctl with integer args; then a valid sock_fprog whose
        // filter array outlives the call (the kernel copies it).
        unsafe {
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return Err(SeccompError::Install(io::Error::last_os_error()));
            }
            if libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &prog as *const libc::sock_fprog,
            ) != 0
            {
                return Err(SeccompError::Install(io::Error::last_os_error()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policy_compiles_and_names_resolve() {
        let p = Program::default_policy().unwrap();
        assert!(p.len() > 50);
        for n in ["kexec_load", "bpf", "mount", "ptrace", "clone", "ioctl"] {
            assert!(nr(n).is_some(), "{n}");
        }
    }

    #[test]
    fn unknown_names_and_operators_are_errors() {
        let e = Program::compile(
            r#"{"version":1,"default_errno":1,"rules":[{"syscall":"no_such_call"}]}"#,
        );
        assert!(matches!(e, Err(SeccompError::UnknownSyscall(n)) if n == "no_such_call"));
        let e = Program::compile(
            r#"{"version":1,"default_errno":1,"rules":[{"syscall":"kill","args":[{"index":0,"mask":1,"value":1,"op":"lt"}]}]}"#,
        );
        assert!(matches!(e, Err(SeccompError::Operator(o)) if o == "lt"));
        // A rule for another architecture is skipped, not an error.
        let p = Program::compile(
            r#"{"version":1,"default_errno":1,"rules":[{"syscall":"vm86","arch":["x86"]}]}"#,
        )
        .unwrap();
        assert_eq!(
            p.len(),
            Program::compile(r#"{"version":1,"default_errno":1,"rules":[]}"#)
                .unwrap()
                .len()
        );
        let e = Program::compile(
            r#"{"version":1,"default_errno":1,"rules":[{"syscall":"kill","arch":["x86-64"]}]}"#,
        );
        assert!(matches!(e, Err(SeccompError::UnknownArch(a)) if a == "x86-64"));
    }

    #[test]
    fn bad_version_is_rejected() {
        let e = Program::compile(r#"{"version":2,"default_errno":1,"rules":[]}"#);
        assert!(matches!(e, Err(SeccompError::Version(2))));
    }

    #[test]
    fn session_policy_compiles() {
        let d = Program::default_policy().unwrap();
        let s = Program::session_policy().unwrap();
        assert!(s.len() > d.len());
        for n in ["kill", "pidfd_open", "kcmp"] {
            assert!(nr(n).is_some(), "{n}");
        }
    }
}
