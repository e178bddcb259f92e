//! Security tests of what the host reads from worlds and from host trees:
//! every read ends in bounded time (code that blocks its interrupt, a
//! command without a timeout), and a tree copied into a world is read
//! without following symlinks someone swaps in while it is read.

mod common;

use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use common::Env;
use world_substrate::{ExecRequest, Substrate};

/// Runs `f` on a thread and fails the test if it takes longer than `max`
/// (the old code waited for good: the test must fail, not hang).
fn within<T: Send + 'static>(max: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(max)
        .unwrap_or_else(|_| panic!("the host still waits after {max:?}"))
}

/// User code that ignores the interrupt of its timeout (and any cell could:
/// it shares the interpreter with the agent) used to hold the caller for
/// good. Now the host waits the timeout plus a grace, kills the session
/// and says so; the next run starts a fresh session.
#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn code_that_blocks_its_interrupt_cannot_hold_the_host() {
    let env = Arc::new(Env::new());
    let id = env.create();
    let (e, i) = (env.clone(), id.clone());
    let t0 = Instant::now();
    let r = within(Duration::from_secs(40), move || {
        e.sub.run_code(
            &i,
            "default",
            "import signal, time\nsecret = 42\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\n\
             while True:\n    time.sleep(0.05)",
            Some(Duration::from_secs(1)),
        )
    });
    let took = t0.elapsed();
    let err = r.expect_err("the run must fail").to_string();
    assert!(
        err.contains("did not stop") && err.contains("killed"),
        "{err}"
    );
    assert!(took < Duration::from_secs(15), "took {took:?}");
    // A fresh session answers; the old one's variables are gone.
    let r = env
        .sub
        .run_code(
            &id,
            "default",
            "'secret' in globals()",
            Some(Duration::from_secs(30)),
        )
        .unwrap();
    assert_eq!(r.value_repr.as_deref(), Some("False"));
    env.sub.destroy(&id).unwrap();
}

/// A command run without a timeout ends at the configured default: the
/// host never waits without end (a caller may still ask for longer).
#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn a_command_without_a_timeout_ends_at_the_default() {
    let env = Arc::new(Env::new_with(|c| c.exec_timeout = Duration::from_secs(1)));
    let id = env.create();
    let (e, i) = (env.clone(), id.clone());
    let o = within(Duration::from_secs(30), move || {
        e.sub
            .exec_output(&i, &ExecRequest::new(&["sleep", "60"]), b"")
            .unwrap()
    });
    assert!(o.status.timed_out, "{:?}", o.status);
    // So does code in a session.
    let (e, i) = (env.clone(), id.clone());
    let r = within(Duration::from_secs(30), move || {
        e.sub
            .run_code(&i, "default", "import time\ntime.sleep(60)", None)
            .unwrap()
    });
    assert!(r.timed_out, "{r:?}");
    // An explicit longer timeout is honoured.
    let mut req = ExecRequest::new(&["sh", "-c", "sleep 2; echo done"]);
    req.timeout = Some(Duration::from_secs(20));
    let o = env.sub.exec_output(&id, &req, b"").unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "done\n");
    env.sub.destroy(&id).unwrap();
}

/// `world cp` into a world from a directory someone else can change while
/// it is read: a host user flips an entry between a plain file and a
/// symlink to a root-only secret. The copy used to go through the tar
/// crate's walk, which checks an entry and then opens it by name,
/// following whatever is there by then; no copy may hold the secret.
#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn copy_in_never_follows_a_swapped_in_symlink() {
    let env = Env::new();
    let id = env.create();
    let flip = common::Flipper::start();
    let root = env.sub.world_root(&id);
    let (mut copied, mut leaked) = (0, 0);
    for i in 0..300 {
        let dest = format!("/work/c{i}");
        env.sh(&id, &format!("mkdir -p {dest}"));
        if env.sub.copy_in(&id, &flip.src, &dest).is_ok() {
            copied += 1;
            if common::Flipper::leaked(&root.join(format!("work/c{i}/src/f"))) {
                leaked += 1;
            }
        }
    }
    drop(flip);
    assert!(copied > 0, "no copy went through");
    assert_eq!(leaked, 0, "{leaked} of {copied} copies held the secret");
    env.sub.destroy(&id).unwrap();
}
