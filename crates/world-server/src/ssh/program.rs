//! What an SSH channel runs in its world, and the rules for what a client
//! may ask of it: the program (a command line, a login shell, SFTP), the
//! terminal, the environment it may pass.

use world_substrate::pty::WinSize;
use world_substrate::ExecRequest;

/// The program a channel asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Program {
    /// `exec`: a command line, run by `sh -c` as `sshd` runs it with the
    /// user's shell.
    Exec(String),
    /// `shell`: an interactive login shell (bash when the world has it).
    Shell,
    /// The `sftp` subsystem: the world's own `sftp-server`, so that every
    /// file operation happens inside the world with its limits.
    Sftp,
}

/// Where OpenSSH's `sftp-server` lives on the common distributions.
const SFTP_SERVERS: &[&str] = &[
    "/usr/lib/openssh/sftp-server",
    "/usr/libexec/openssh/sftp-server",
    "/usr/lib/ssh/sftp-server",
    "/usr/libexec/sftp-server",
];

impl Program {
    /// The argv that runs it in the world.
    pub fn argv(&self) -> Vec<String> {
        let sh = |s: String| vec!["/bin/sh".to_string(), "-c".to_string(), s];
        match self {
            Program::Exec(line) => sh(line.clone()),
            Program::Shell => sh(
                "if command -v bash >/dev/null 2>&1; then exec bash -l; else exec sh -l; fi".into(),
            ),
            Program::Sftp => {
                let list = SFTP_SERVERS.join(" ");
                sh(format!(
                    "for p in {list}; do [ -x \"$p\" ] && exec \"$p\"; done; \
                     echo 'world: this world has no sftp-server (install openssh-sftp-server in its image)' >&2; exit 127"
                ))
            }
        }
    }

    /// A subsystem name, if it is one we run.
    pub fn subsystem(name: &str) -> Option<Program> {
        (name == "sftp").then_some(Program::Sftp)
    }
}

/// Environment a client may pass (`SendEnv`): locale variables only, as
/// OpenSSH's default `AcceptEnv LANG LC_*`. Anything else (`LD_PRELOAD`,
/// `PATH`, ...) is refused.
pub fn accepted_env(name: &str, value: &str) -> bool {
    let locale = name == "LANG" || (name.starts_with("LC_") && (4..=32).contains(&name.len()));
    locale
        && name.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
        && value.len() <= 256
        && !value.contains('\0')
}

/// A terminal the client asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terminal {
    /// `TERM` (sanitised: printable ASCII, at most 64 bytes).
    pub term: String,
    /// Initial size.
    pub size: WinSize,
}

impl Terminal {
    /// From a `pty-req`.
    pub fn new(term: &str, cols: u32, rows: u32) -> Terminal {
        let ok = !term.is_empty() && term.len() <= 64 && term.bytes().all(|b| b.is_ascii_graphic());
        Terminal {
            term: if ok { term.to_string() } else { "xterm".into() },
            size: WinSize::clamped(rows, cols),
        }
    }
}

/// The exec request for a program, with the terminal and environment.
pub fn exec_request(p: &Program, tty: Option<&Terminal>, env: &[(String, String)]) -> ExecRequest {
    let mut req = ExecRequest::new(&p.argv());
    req.env = env.to_vec();
    if let Some(t) = tty {
        req.env.push(("TERM".into(), t.term.clone()));
        req.tty = true;
    }
    req
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn programs_run_through_sh() {
        assert_eq!(
            Program::Exec("echo hi".into()).argv(),
            ["/bin/sh", "-c", "echo hi"]
        );
        assert!(Program::Shell.argv()[2].contains("bash -l"));
        assert!(Program::Sftp.argv()[2].contains("/usr/lib/openssh/sftp-server"));
        assert_eq!(Program::subsystem("sftp"), Some(Program::Sftp));
        assert_eq!(Program::subsystem("netconf"), None);
    }

    #[test]
    fn only_locale_variables_pass() {
        assert!(accepted_env("LANG", "C.UTF-8"));
        assert!(accepted_env("LC_ALL", "C"));
        for n in ["LD_PRELOAD", "PATH", "LC_", "lang", "LC_x", "BASH_ENV"] {
            assert!(!accepted_env(n, "x"), "{n}");
        }
        assert!(!accepted_env("LANG", &"x".repeat(300)));
    }

    #[test]
    fn a_terminal_request_sets_tty_and_term() {
        let t = Terminal::new("xterm-256color", 100, 30);
        let r = exec_request(&Program::Shell, Some(&t), &[]);
        assert!(r.tty);
        assert!(r.env.contains(&("TERM".into(), "xterm-256color".into())));
        assert_eq!(Terminal::new("a b\u{1b}", 0, 0).term, "xterm");
        assert!(!exec_request(&Program::Shell, None, &[]).tty);
    }

    proptest! {
        /// Whatever a client sends, nothing but locale names gets in.
        #[test]
        fn env_filter_is_closed(name in "[ -~]{0,12}", value in "[ -~]{0,12}") {
            if accepted_env(&name, &value) {
                prop_assert!(name == "LANG" || name.starts_with("LC_"));
            }
        }
    }
}
