//! The SSH door with the real OpenSSH clients (`ssh`, `scp`, `sftp`,
//! installed by `scripts/install-deps.sh`): exec with exit codes and both
//! streams, stdin, a pty and an interactive shell, SFTP and both kinds of
//! `scp`, the two login conventions, and the refusals. Then the attacks:
//! what a program reached over SSH can touch, and whether a client or a
//! program can make the daemon hold data without bound.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::Daemon;
use serde_json::json;

/// Options for every OpenSSH client call: no host key prompts, no agent,
/// no config from the caller's home.
const OPTS: &[&str] = &[
    "-F",
    "/dev/null",
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "LogLevel=ERROR",
    "-o",
    "IdentityAgent=none",
    "-o",
    "ConnectTimeout=20",
];

fn have_openssh() -> bool {
    let ok = |p: &str| Path::new(p).exists();
    let found = ok("/usr/bin/ssh") && ok("/usr/bin/scp") && ok("/usr/bin/sftp");
    if !found {
        eprintln!("skipping: OpenSSH clients are missing (scripts/install-deps.sh installs them)");
    }
    found
}

/// A daemon with its SSH door, or `None` (with a message) without the
/// OpenSSH clients or without root.
fn start() -> Option<Daemon> {
    if !have_openssh() {
        return None;
    }
    Daemon::start()
}

struct Door<'a> {
    d: &'a Daemon,
    port: String,
}

impl<'a> Door<'a> {
    fn new(d: &'a Daemon) -> Door<'a> {
        let port = d.ssh_addr.rsplit(':').next().unwrap().to_string();
        Door { d, port }
    }

    /// `ssh` as `user` (Morph's `ID:TOKEN` convention unless told
    /// otherwise), with `extra` options, running `cmd`, fed `stdin`.
    fn ssh(&self, user: &str, extra: &[&str], cmd: &str, stdin: &[u8]) -> Output {
        let mut c = Command::new("ssh");
        c.args(OPTS)
            .args(["-o", "BatchMode=yes", "-p", &self.port])
            .args(extra)
            .arg(format!("{user}@127.0.0.1"));
        if !cmd.is_empty() {
            c.arg(cmd);
        }
        run(c, stdin)
    }

    fn user(&self, world: &str) -> String {
        format!("{world}:{}", self.d.token)
    }
}

fn run(mut c: Command, stdin: &[u8]) -> Output {
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut i = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = i.write_all(&data);
    });
    let o = child.wait_with_output().unwrap();
    let _ = feeder.join();
    o
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn world(d: &Daemon, body: serde_json::Value) -> String {
    let w = d.ok("POST", "/v1/worlds", Some(body), 201);
    w["id"].as_str().unwrap().to_string()
}

/// Exec, stdin, exit codes, a pty with job control, an interactive shell,
/// password logins, SFTP, scp both ways and legacy scp.
#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn openssh_clients_work_against_a_world() {
    let Some(d) = start() else { return };
    let door = Door::new(&d);
    let w = world(&d, json!({}));
    let u = door.user(&w);

    // exec: both streams, the exit code, stdin to its end.
    let o = door.ssh(&u, &[], "echo out; echo err >&2; exit 3", b"");
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "out\n");
    assert_eq!(text(&o.stderr), "err\n");
    let big = vec![b'x'; 3 << 20];
    let o = door.ssh(&u, &[], "cat > /root/in; wc -c < /root/in", &big);
    assert_eq!(text(&o.stdout).trim(), (3 << 20).to_string());
    // A program that is not there is 127, as under sshd.
    let o = door.ssh(&u, &[], "no-such-program", b"");
    assert_eq!(o.status.code(), Some(127));

    // A pty: the world's own terminal, controlling, with the size asked.
    let o = door.ssh(
        &u,
        &["-tt"],
        "tty; stty size; python3 -c 'import os; print(os.tcgetpgrp(0) == os.getpgrp())'",
        b"",
    );
    let out = text(&o.stdout);
    assert!(out.contains("/dev/pts/0"), "{out}");
    assert!(out.contains("24 80"), "{out}");
    assert!(out.contains("True"), "{out}");
    // An interactive shell reads its input from the terminal.
    let o = door.ssh(&u, &["-tt"], "", b"echo $((6*7))\nexit 5\n");
    assert_eq!(o.status.code(), Some(5), "{}", text(&o.stdout));
    assert!(text(&o.stdout).contains("42"), "{}", text(&o.stdout));

    // The password convention: `WORLD_ID` with the token as password.
    let dir = tempfile::tempdir().unwrap();
    let askpass = dir.path().join("askpass");
    std::fs::write(&askpass, format!("#!/bin/sh\necho '{}'\n", d.token)).unwrap();
    std::fs::set_permissions(
        &askpass,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let mut c = Command::new("ssh");
    c.args(OPTS)
        .args(["-p", &door.port, "-o", "PubkeyAuthentication=no"])
        .arg(format!("{w}@127.0.0.1"))
        .arg("echo by-password")
        .env("SSH_ASKPASS", &askpass)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env("DISPLAY", "none");
    let o = run(c, b"");
    assert_eq!(text(&o.stdout), "by-password\n", "{}", text(&o.stderr));

    // SFTP: a batch of file operations, then scp (SFTP) and scp -O (the
    // old protocol, `scp -t` in the world) both ways.
    let up = dir.path().join("up.bin");
    let data: Vec<u8> = (0..700_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&up, &data).unwrap();
    let batch = dir.path().join("batch");
    std::fs::write(
        &batch,
        format!(
            "mkdir /root/d\nput {} /root/d/x\nrename /root/d/x /root/d/y\nls -l /root/d\nget /root/d/y {}\n",
            up.display(),
            dir.path().join("got.bin").display()
        ),
    )
    .unwrap();
    let mut c = Command::new("sftp");
    c.args(OPTS)
        .args(["-P", &door.port, "-o", &format!("User={u}"), "-b"])
        .arg(&batch)
        .arg("127.0.0.1");
    let o = run(c, b"");
    assert!(o.status.success(), "sftp: {}", text(&o.stderr));
    assert_eq!(std::fs::read(dir.path().join("got.bin")).unwrap(), data);
    for legacy in [false, true] {
        let target = if legacy { "/root/l.bin" } else { "/root/s.bin" };
        let back = dir.path().join(format!("back-{legacy}"));
        for (from, to) in [
            (up.display().to_string(), format!("127.0.0.1:{target}")),
            (format!("127.0.0.1:{target}"), back.display().to_string()),
        ] {
            let mut c = Command::new("scp");
            c.args(OPTS);
            if legacy {
                c.arg("-O");
            }
            c.args(["-P", &door.port, "-o", &format!("User={u}"), &from, &to]);
            let o = run(c, b"");
            assert!(o.status.success(), "scp {from} {to}: {}", text(&o.stderr));
        }
        assert_eq!(std::fs::read(&back).unwrap(), data);
    }
    // What SSH wrote is the world's: the API sees it.
    let r = d.ok(
        "POST",
        &format!("/v1/worlds/{w}/exec"),
        Some(json!({"command": "cmp /root/d/y /root/s.bin && cmp /root/s.bin /root/l.bin && echo same"})),
        200,
    );
    assert_eq!(r["stdout"], "same\n", "{r}");
}

/// Every way a login or a request can be wrong ends as SSH ends it: a
/// refused login, a refused channel, or an error on stderr with 255.
#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn bad_logins_and_requests_are_refused() {
    let Some(d) = start() else { return };
    let door = Door::new(&d);
    let w = world(&d, json!({}));
    // A wrong token, in the name or as the password.
    let o = door.ssh(&format!("{w}:wrong"), &[], "true", b"");
    assert_eq!(o.status.code(), Some(255));
    assert!(
        text(&o.stderr).contains("Permission denied"),
        "{}",
        text(&o.stderr)
    );
    let o = door.ssh(&w, &[], "true", b"");
    assert_eq!(o.status.code(), Some(255), "no credential at all");
    // The right token for a world that is not there, or a name that is
    // no world id.
    for name in ["w-000000000000", "not-a-world", "../etc"] {
        let o = door.ssh(&door.user(name), &[], "true", b"");
        assert_eq!(o.status.code(), Some(255), "{name}");
        assert!(
            text(&o.stderr).contains("world:"),
            "{name}: {}",
            text(&o.stderr)
        );
    }
    // A paused world says so.
    d.ok("POST", &format!("/v1/worlds/{w}/pause"), None, 200);
    let o = door.ssh(&door.user(&w), &[], "true", b"");
    assert_eq!(o.status.code(), Some(255));
    assert!(text(&o.stderr).contains("paused"), "{}", text(&o.stderr));
    d.ok("POST", &format!("/v1/worlds/{w}/resume"), None, 200);
    // No forwarding of any kind: the door opens no way past the world.
    let o = door.ssh(&door.user(&w), &["-W", &d.addr], "", b"");
    assert_eq!(o.status.code(), Some(255), "stdio forwarding to the API");
    // Only locale variables pass (`SendEnv`).
    let o = door.ssh(
        &door.user(&w),
        &["-o", "SendEnv=LC_PROBE LD_PRELOAD"],
        "echo \"${LC_PROBE:-unset} ${LD_PRELOAD:-unset}\"",
        b"",
    );
    assert_eq!(text(&o.stdout), "unset unset\n");
    // Unknown subsystems are refused.
    let o = door.ssh(&door.user(&w), &["-s"], "netconf", b"");
    assert_eq!(o.status.code(), Some(255), "{}", text(&o.stderr));
    // The world still works after all that.
    let o = door.ssh(&door.user(&w), &[], "echo alive", b"");
    assert_eq!(text(&o.stdout), "alive\n");
}

/// A program reached over SSH is inside its world: its pid namespace, its
/// memory limit, its own terminal, no typing into it.
#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn attack_a_program_over_ssh_stays_in_its_world() {
    let Some(d) = start() else { return };
    let door = Door::new(&d);
    let w = world(&d, json!({"memory_mib": 64}));
    let u = door.user(&w);
    // The host's processes are not there (the daemon's pid is not).
    let o = door.ssh(
        &u,
        &[],
        &format!("test -e /proc/{} && echo seen || echo unseen", d.pid()),
        b"",
    );
    assert_eq!(text(&o.stdout), "unseen\n");
    // The world's memory limit holds for programs started over SSH.
    let o = door.ssh(
        &u,
        &[],
        "python3 -c 'b = bytearray(400 << 20); print(len(b))'",
        b"",
    );
    assert_ne!(o.status.code(), Some(0), "allocated past the limit");
    // The terminal is the world's own: its name resolves to it inside the
    // world, the host's terminals are not there, and typing into it
    // (TIOCSTI) is refused.
    let o = door.ssh(
        &u,
        &["-tt"],
        "[ /proc/self/fd/0 -ef \"$(tty)\" ] && echo own; ls /dev/pts | tr '\\n' ' '; echo; \
         python3 -c 'import fcntl, termios\ntry:\n    fcntl.ioctl(0, termios.TIOCSTI, b\"x\")\n    print(\"typed\")\nexcept OSError as e:\n    print(\"refused\", e.errno)'",
        b"",
    );
    let out = text(&o.stdout);
    assert!(out.contains("own"), "{out}");
    assert!(
        out.contains("0 ptmx"),
        "only the world's one terminal: {out}"
    );
    assert!(out.contains("refused"), "{out}");
    assert!(!out.contains("typed"), "{out}");
}

/// A client that stops reading while a program floods output, or floods
/// input to a program that never reads, must not grow the daemon: output
/// goes out only as the client's window allows, and a program that leaves
/// more than 64 MiB of input unread is ended.
#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn attack_floods_do_not_grow_the_daemon() {
    let py = std::env::var("WORLD_PYTHON")
        .unwrap_or_else(|_| "/var/cache/world-runtime/venv/bin/python3".into());
    let has_paramiko = Command::new(&py)
        .args(["-c", "import paramiko"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_paramiko {
        eprintln!("skipping: no paramiko in {py} (scripts/requirements-dev.txt installs it)");
        return;
    }
    let Some(d) = Daemon::start() else { return };
    let door = Door::new(&d);
    let w = world(&d, json!({}));
    let rss = || -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", d.pid())).unwrap();
        s.lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
            .unwrap()
    };
    // Warm the daemon up (one exec over SSH) before measuring.
    let o = door.ssh(&door.user(&w), &[], "true", b"");
    assert!(o.status.success());
    let before = rss();
    let script = r#"
import sys, threading, time, paramiko
port, user = int(sys.argv[1]), sys.argv[2]
c = paramiko.SSHClient()
c.set_missing_host_key_policy(paramiko.AutoAddPolicy())
c.connect("127.0.0.1", port=port, username=user, pkey=paramiko.Ed25519Key.from_private_key_file(sys.argv[3]),
          look_for_keys=False, allow_agent=False)
t = c.get_transport()
# Output flood, never read.
out = t.open_session()
out.exec_command("cat /dev/zero")
# Input flood into a program that never reads.
inp = t.open_session()
inp.exec_command("sleep 60")
sent = [0]
def feed():
    block = b"y" * 65536
    try:
        while sent[0] < (512 << 20):
            sent[0] += inp.send(block)
    except Exception:
        pass
threading.Thread(target=feed, daemon=True).start()
time.sleep(4)
print("sent", sent[0], flush=True)
sys.stdin.readline()
c.close()
"#;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("id");
    let k = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(k.status.success());
    let mut child = Command::new(&py)
        .args(["-c", script, &door.port, &door.user(&w)])
        .arg(&key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    let sent: u64 = line
        .trim()
        .strip_prefix("sent ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("flood client: {line:?}"));
    let grown = rss().saturating_sub(before);
    drop(child.stdin.take());
    let _ = child.wait();
    eprintln!("flood: the client pushed {sent} bytes; the daemon grew by {grown} KiB");
    // Input stops when the program is ended at 64 MiB unread, not at 512.
    assert!(sent < (128 << 20), "the client could push {sent} bytes");
    assert!(grown < 96 << 10, "the daemon grew by {grown} KiB");
}

/// Input and output both in bulk through one program (`cat`): the door
/// never holds the connection waiting on the program, so a program that
/// writes while its input is still coming does not deadlock. A client
/// that goes away takes its program with it.
#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn bulk_both_ways_and_a_gone_client_ends_its_program() {
    let Some(d) = start() else { return };
    let door = Door::new(&d);
    let w = world(&d, json!({}));
    let u = door.user(&w);
    let data = vec![7u8; 48 << 20];
    let t = std::time::Instant::now();
    let o = door.ssh(&u, &[], "cat", &data);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(o.stdout.len(), data.len(), "all of it came back");
    assert!(t.elapsed() < std::time::Duration::from_secs(120));
    // A client killed mid-command: the command goes too.
    let mut child = Command::new("ssh")
        .args(OPTS)
        .args(["-o", "BatchMode=yes", "-p", &door.port])
        .arg(format!("{u}@127.0.0.1"))
        .arg("sleep 300")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let count = || {
        let r = d.post(
            &format!("/v1/worlds/{w}/exec"),
            json!({"command": "cat /proc/[0-9]*/comm | grep -c '^sleep$' || true"}),
        );
        r.json()["stdout"].as_str().unwrap().trim().to_string()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while count() != "1" {
        assert!(
            std::time::Instant::now() < deadline,
            "the command never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    child.kill().unwrap();
    let _ = child.wait();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while count() != "0" {
        assert!(
            std::time::Instant::now() < deadline,
            "the command outlived its client"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
