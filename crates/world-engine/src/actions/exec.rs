//! `exec` (a command, captured or streamed) and `run-code` (Python in a
//! session): their requests and responses.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use world_substrate::{CodeResult, ExecOutput};

use super::check::{no_nul, seconds};
use crate::{Error, ErrorKind, Result};

/// A command: a shell line (run with `sh -c`) or an argv.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Command {
    /// `sh -c LINE`.
    Shell(String),
    /// Program and arguments (a single element is a shell line, as in Morph).
    Argv(Vec<String>),
}

impl Command {
    /// The argv it runs (`sh -c` for shell lines), checked.
    pub fn argv(self) -> Result<Vec<String>> {
        let argv = match self {
            Command::Shell(s) => vec!["sh".into(), "-c".into(), s],
            Command::Argv(v) if v.len() == 1 => vec!["sh".into(), "-c".into(), v[0].clone()],
            Command::Argv(v) => v,
        };
        check_argv(&argv)?;
        Ok(argv)
    }
}

fn check_argv(argv: &[String]) -> Result<()> {
    if argv.first().is_none_or(String::is_empty) {
        return Err(Error::Invalid("no command given".into()));
    }
    for a in argv {
        no_nul(a, "command arguments")?;
    }
    Ok(())
}

/// `exec`: run a command in a world (`world exec`,
/// `POST /v1/worlds/{id}/exec` and `/exec/stream`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecRequest {
    /// Program and arguments (give this or `command`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argv: Option<Vec<String>>,
    /// Or a shell line (or an argv, as Morph sends it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Command>,
    /// Extra environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<BTreeMap<String, String>>,
    /// Absolute working directory in the world (default `/root`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Seconds before the whole process tree is killed (exit code 124).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<f64>,
    /// Standard input (captured exec only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<String>,
}

impl ExecRequest {
    /// The substrate's request and the standard input, checked.
    pub fn to_substrate(self) -> Result<(world_substrate::ExecRequest, Vec<u8>)> {
        let argv = match (self.argv, self.command) {
            (Some(a), None) => {
                check_argv(&a)?;
                a
            }
            (None, Some(c)) => c.argv()?,
            _ => {
                return Err(Error::Invalid(
                    "give exactly one of `argv` (a list) or `command` (a shell line)".into(),
                ))
            }
        };
        let mut req = world_substrate::ExecRequest::new(&argv);
        for (k, v) in self.env.unwrap_or_default() {
            if k.is_empty() || k.contains('=') {
                return Err(Error::Invalid(format!(
                    "env name {k:?} must be non-empty and without '='"
                )));
            }
            no_nul(&k, "env names")?;
            no_nul(&v, "env values")?;
            req.env.push((k, v));
        }
        if let Some(c) = &self.cwd {
            no_nul(c, "cwd")?;
            if !c.starts_with('/') {
                return Err(Error::Invalid(
                    "cwd must be an absolute path in the world".into(),
                ));
            }
        }
        req.cwd = self.cwd;
        req.timeout = seconds(self.timeout, "timeout")?;
        Ok((req, self.stdin.unwrap_or_default().into_bytes()))
    }
}

/// The outcome of a captured exec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ExecResponse {
    /// Shell-style exit code: the status, 128+N for signal N, 124 on
    /// timeout, 127 when the program is not found, 126 when it cannot run.
    pub exit_code: i32,
    /// The signal that killed it.
    pub signal: Option<i32>,
    /// Whether the timeout killed it.
    pub timed_out: bool,
    /// Captured stdout (invalid UTF-8 replaced).
    pub stdout: String,
    /// Captured stderr (invalid UTF-8 replaced).
    pub stderr: String,
    /// Wall time, ms.
    pub duration_ms: f64,
}

impl ExecResponse {
    /// The response for an exec's outcome: a program that is missing or
    /// cannot run is an exit code (127, 126), as in a shell; any other
    /// failure stays an error.
    pub fn from_outcome(r: Result<ExecOutput>, duration_ms: f64) -> Result<ExecResponse> {
        match r {
            Ok(o) => Ok(ExecResponse {
                exit_code: o.status.shell_code(),
                signal: o.status.signal,
                timed_out: o.status.timed_out,
                stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
                duration_ms,
            }),
            Err(e) => match e.kind().exec_exit_code() {
                Some(code) => Ok(ExecResponse {
                    exit_code: code,
                    signal: None,
                    timed_out: false,
                    stdout: String::new(),
                    stderr: format!("{e}\n"),
                    duration_ms,
                }),
                None => Err(e),
            },
        }
    }
}

impl ErrorKind {
    /// The shell's exit code for an exec that could not start: 127 for a
    /// program not found, 126 for one that cannot run.
    pub fn exec_exit_code(self) -> Option<i32> {
        match self {
            ErrorKind::CommandNotFound => Some(127),
            ErrorKind::NotExecutable => Some(126),
            _ => None,
        }
    }
}

/// `run-code`: Python in a persistent session of a world (`world
/// run-code`, `POST /v1/worlds/{id}/run-code`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunCodeRequest {
    /// The code; the value of its last expression is reported.
    pub code: String,
    /// Session name (default `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// Seconds before the run is interrupted (exit code 124).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<f64>,
}

impl RunCodeRequest {
    /// The session and the timeout, checked.
    pub fn checked(&self) -> Result<(String, Option<std::time::Duration>)> {
        no_nul(&self.code, "code")?;
        let session = self.session.clone().unwrap_or_else(|| "default".into());
        no_nul(&session, "session")?;
        Ok((session, seconds(self.timeout, "timeout")?))
    }
}

/// The result of running code in a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CodeResponse {
    /// Captured stdout.
    pub stdout: String,
    /// Captured stderr.
    pub stderr: String,
    /// `repr()` of the last expression.
    pub value: Option<String>,
    /// Traceback of an uncaught exception.
    pub error: Option<String>,
    /// Whether the timeout interrupted it.
    pub timed_out: bool,
    /// Time in the session, ms.
    pub duration_ms: f64,
    /// 0 ok, 1 exception, 124 timeout (`world run-code`'s exit code).
    pub exit_code: i32,
}

impl From<CodeResult> for CodeResponse {
    fn from(r: CodeResult) -> CodeResponse {
        CodeResponse {
            stdout: String::from_utf8_lossy(&r.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&r.stderr).into_owned(),
            exit_code: r.shell_code(),
            value: r.value_repr,
            error: r.error,
            timed_out: r.timed_out,
            duration_ms: r.duration_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn one_of_argv_or_command() {
        let both = ExecRequest {
            argv: Some(vec!["true".into()]),
            command: Some(Command::Shell("true".into())),
            ..Default::default()
        };
        assert!(both.to_substrate().is_err());
        assert!(ExecRequest::default().to_substrate().is_err());
        let line: ExecRequest = serde_json::from_str(r#"{"command": "echo hi"}"#).unwrap();
        assert_eq!(line.to_substrate().unwrap().0.argv, ["sh", "-c", "echo hi"]);
        let morph: ExecRequest = serde_json::from_str(r#"{"command": ["echo hi"]}"#).unwrap();
        assert_eq!(
            morph.to_substrate().unwrap().0.argv,
            ["sh", "-c", "echo hi"]
        );
        let rel = ExecRequest {
            argv: Some(vec!["true".into()]),
            cwd: Some("tmp".into()),
            ..Default::default()
        };
        assert!(rel.to_substrate().is_err());
        assert!(serde_json::from_str::<ExecRequest>(r#"{"argv": ["true"], "x": 1}"#).is_err());
    }

    proptest! {
        /// Whatever the argv, NUL bytes and `=` in env names never reach
        /// the substrate.
        #[test]
        fn nothing_unchecked_passes(argv in proptest::collection::vec("[a-z\0]{0,4}", 0..4),
                                    env in proptest::collection::btree_map("[A-Z=\0]{0,3}", "[a\0]{0,2}", 0..3)) {
            let r = ExecRequest { argv: Some(argv), env: Some(env), ..Default::default() };
            if let Ok((req, _)) = r.to_substrate() {
                prop_assert!(!req.argv.is_empty() && !req.argv[0].is_empty());
                prop_assert!(req.argv.iter().all(|a| !a.contains('\0')));
                prop_assert!(req.env.iter().all(|(k, v)| !k.is_empty() && !k.contains('=') && !k.contains('\0') && !v.contains('\0')));
            }
        }

        /// What a door serializes, the other reads back the same.
        #[test]
        fn round_trips(cmd in "[a-z ]{1,8}", timeout in proptest::option::of(1u32..100)) {
            let r = ExecRequest { command: Some(Command::Shell(cmd)), timeout: timeout.map(f64::from), ..Default::default() };
            let back: ExecRequest = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
            prop_assert_eq!(back, r);
        }
    }
}
