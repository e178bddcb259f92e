//! Security of branches (issue 4): siblings, parent and children of one
//! lineage must not see or change each other's files, sessions, processes
//! or network (as root).

mod common;

use common::{is_root, out, Env};
use world_substrate::snapshot::BranchOptions;
use world_substrate::{Substrate, WorldId};

fn val(env: &Env, id: &WorldId, code: &str) -> String {
    let r = env
        .sub
        .run_code(id, "default", code, None)
        .expect("run code");
    assert!(r.error.is_none(), "{code}: {:?}", r.error);
    r.value_repr.unwrap_or_default()
}

#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn siblings_parent_and_children_are_isolated() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let p = env.create();
    // A listening socket and an open file in the parent's session before
    // the snapshot: children must not get them.
    val(
        &env,
        &p,
        "import socket, os\nsrv = socket.socket(); srv.bind(('127.0.0.1', 7777)); srv.listen()\nf = open('/work/held', 'w')",
    );
    let s = env.sub.snapshot(&p, None).unwrap();
    let b = env.sub.branch(&s.id, 2, &BranchOptions::default()).unwrap();
    let (a, c) = (&b.children[0], &b.children[1]);
    for w in [a, c] {
        let r = env
            .sub
            .run_code(w, "default", "srv.accept()", None)
            .unwrap();
        assert!(
            r.error.unwrap().contains("Bad file descriptor"),
            "socket carried into {w}"
        );
        let r = env
            .sub
            .run_code(w, "default", "f.write('x'); f.flush()", None)
            .unwrap();
        assert!(r.error.is_some(), "file carried into {w}");
    }
    assert_eq!(out(&env.sh(&p, "wc -c < /work/held")), "0\n");
    // Files: a sibling's writes are invisible; the snapshot never changes.
    val(&env, a, "open('/work/secret-a','w').write('A')");
    env.sh(c, "echo C > /work/secret-c");
    for (w, own, other) in [(a, "a", "c"), (c, "c", "a")] {
        let o = env.sh(
            w,
            &format!("cat /work/secret-{own}; cat /work/secret-{other} 2>&1; echo rc=$?"),
        );
        assert!(out(&o).contains("rc=1"), "{w}: {}", out(&o));
        assert!(
            !out(&o).contains(&other.to_uppercase()),
            "{w} sees {other}: {}",
            out(&o)
        );
    }
    let o = env.sh(&p, "ls /work");
    assert!(
        !out(&o).contains("secret"),
        "parent sees children's files: {}",
        out(&o)
    );
    let b2 = env.sub.branch(&s.id, 1, &BranchOptions::default()).unwrap();
    let o = env.sh(&b2.children[0], "ls /work");
    assert_eq!(out(&o), "held\n", "snapshot changed");
    // Processes: each world sees only its own; parent and child alike.
    env.sh(a, "sleep 1001 >/dev/null 2>&1 &");
    env.sh(&p, "sleep 1002 >/dev/null 2>&1 &");
    for (w, mine, theirs) in [
        (a, "1001", "1002"),
        (&p, "1002", "1001"),
        (c, "none", "100"),
    ] {
        let o = env.sh(w, "ps -eo args");
        let s = out(&o);
        assert!(!s.contains(&format!("sleep {theirs}")), "{w} sees: {s}");
        if mine != "none" {
            assert!(s.contains(&format!("sleep {mine}")), "{w}: {s}");
        }
        // From the session interpreter: /proc shows only the world's pids.
        let n = val(
            &env,
            w,
            "len([d for d in os.listdir('/proc') if d.isdigit()])",
        );
        assert!(
            n.parse::<usize>().unwrap() < 10,
            "{w} session sees {n} pids"
        );
    }
    // Sessions: what one child's session defines is not in a sibling's.
    val(&env, a, "only_a = 1");
    assert_eq!(val(&env, c, "'only_a' in globals()"), "False");
    assert_eq!(val(&env, &p, "'only_a' in globals()"), "False");
    // Network: a server in one child is not reachable from a sibling or
    // the parent (separate network namespaces), on the same port.
    val(
        &env,
        a,
        "import socket\nsa = socket.socket(); sa.bind(('127.0.0.1', 8888)); sa.listen()",
    );
    for w in [c, &p] {
        let v = val(
            &env,
            w,
            "import socket\ntry:\n    socket.create_connection(('127.0.0.1', 8888), 1); r = 'connected'\nexcept OSError as e:\n    r = 'refused'\nr",
        );
        assert_eq!(v, "'refused'", "{w} reached a sibling's server");
    }
    val(
        &env,
        c,
        "sc = socket.socket(); sc.bind(('127.0.0.1', 8888)); sc.listen()",
    );
    // Session interpreters live in the lineage pid namespace: the calls
    // that would turn a pid of another world into access are denied.
    let code = "import ctypes, os\nl = ctypes.CDLL(None, use_errno=True)\nr = []\n\
for nr, args in [(434, (1, 0)), (62, (-1, 0)), (438, (3, 3, 0)), (312, (1, 1, 0, 0, 0))]:\n    \
v = l.syscall(nr, *args); r.append((v, ctypes.get_errno()))\nr";
    let v = val(&env, a, code);
    assert_eq!(
        v, "[(-1, 1), (-1, 1), (-1, 1), (-1, 1)]",
        "pidfd_open/kill(-1)/pidfd_getfd/kcmp"
    );
    // The namespace files of the world's init are not open to sessions.
    let v = val(&env, a, "import os\ntry:\n    os.open('/proc/1/ns/net', 0); r='open'\nexcept OSError as e:\n    r=e.errno\nr");
    assert_ne!(v, "'open'");
    // Programs a session starts do not hold CAP_SYS_ADMIN.
    let r = env
        .sub
        .run_code(
            a,
            "default",
            "import subprocess; subprocess.run(['grep', 'CapEff', '/proc/self/status'])",
            None,
        )
        .unwrap();
    assert!(
        String::from_utf8_lossy(&r.stdout).contains("00000000a80425fb"),
        "{:?}",
        r
    );
}

/// Python helpers defined in every session of the signal test: raw
/// signal syscalls returning `(result, errno)`.
const SIG_HELPERS: &str = r#"
import ctypes, os, signal, struct, subprocess, threading, time
_l = ctypes.CDLL(None, use_errno=True)
def _sys(nr, *a):
    ctypes.set_errno(0)
    r = _l.syscall(nr, *[ctypes.c_long(x) if isinstance(x, int) else x for x in a])
    return (r, ctypes.get_errno() if r < 0 else 0)
def _info(sig):
    b = ctypes.create_string_buffer(128)
    struct.pack_into('iii', b, 0, sig, 0, -1)  # SI_QUEUE
    return b
def attack(pid):
    K = signal.SIGKILL
    return [
        _sys(62, pid, K),                 # kill
        _sys(200, pid, K),                # tkill
        _sys(234, pid, pid, K),           # tgkill
        _sys(129, pid, K, _info(K)),      # rt_sigqueueinfo
        _sys(297, pid, pid, K, _info(K)), # rt_tgsigqueueinfo
        _sys(62, -pid, K),                # kill(-pgid): sessions lead their group
        _sys(62, pid, 0),                 # kill(pid, 0): probe
    ]
victim = subprocess.Popen(['sleep', '1000'])
"#;

/// Worlds of one lineage: parent, two siblings, a grandchild. What the
/// test needs of each: the session's pid and a subprocess's pid, both in
/// the lineage pid namespace (what `os.getpid()` / `Popen.pid` report in
/// a session).
struct Pids {
    session: i64,
    victim: i64,
}

fn pids(env: &Env, w: &WorldId) -> Pids {
    let v = val(env, w, "(os.getpid(), victim.pid)");
    let v = v.trim_matches(|c| c == '(' || c == ')');
    let mut it = v.split(',').map(|s| s.trim().parse::<i64>().unwrap());
    Pids {
        session: it.next().unwrap(),
        victim: it.next().unwrap(),
    }
}

#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn sessions_cannot_signal_other_worlds_of_their_lineage() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let p = env.create();
    val(&env, &p, SIG_HELPERS);
    let s = env.sub.snapshot(&p, None).unwrap();
    let b = env.sub.branch(&s.id, 2, &BranchOptions::default()).unwrap();
    let (a, c) = (b.children[0].clone(), b.children[1].clone());
    // A child of `a` (grandchild of p).
    let g = env
        .sub
        .branch_world(&a, 1, &BranchOptions::default())
        .unwrap()
        .children[0]
        .clone();
    // Fresh victims in every world (the snapshot's `victim` object is a
    // dead handle in children: processes are not carried).
    for w in [&a, &c, &g] {
        val(&env, w, "victim = subprocess.Popen(['sleep', '1000'])");
    }
    let ids: Vec<(&str, &WorldId)> = vec![("p", &p), ("a", &a), ("c", &c), ("g", &g)];
    let pid: Vec<Pids> = ids.iter().map(|(_, w)| pids(&env, w)).collect();
    // Each attacker against every other world: sibling, parent, child,
    // grandparent, grandchild.
    for (i, (an, aw)) in ids.iter().enumerate() {
        for (j, (tn, _)) in ids.iter().enumerate() {
            if i == j {
                continue;
            }
            for (what, t) in [("session", pid[j].session), ("process", pid[j].victim)] {
                let v = val(&env, aw, &format!("attack({t})"));
                // Every call is ESRCH, as for a free pid: a process of
                // another world does not exist for the attacker, so even
                // the kill(pid, 0) probe learns nothing.
                let want = "[(-1, 3), (-1, 3), (-1, 3), (-1, 3), (-1, 3), (-1, 3), (-1, 3)]";
                assert_eq!(v, want, "{an} signalled the {what} of {tn}");
            }
        }
    }
    // Every session and victim survived.
    for (n, w) in &ids {
        assert_eq!(
            val(&env, w, "victim.poll() is None"),
            "True",
            "victim of {n} died"
        );
    }
    // A session still controls its own processes and itself.
    let own = r#"
r = {}
q = subprocess.Popen(['sleep', '1000']); q.terminate(); r['terminate'] = q.wait()
q = subprocess.Popen(['sleep', '1000']); q.kill(); r['kill'] = q.wait()
q = subprocess.Popen(['sleep', '1000']); r['tkill'] = _sys(200, q.pid, 15); r['tkill_rc'] = q.wait()
q = subprocess.Popen(['sleep', '1000']); r['tgkill'] = _sys(234, q.pid, q.pid, 9); r['tgkill_rc'] = q.wait()
q = subprocess.Popen(['sleep', '1000']); r['sigqueue'] = _sys(129, q.pid, 15, _info(15)); r['sigqueue_rc'] = q.wait()
q = subprocess.Popen(['sleep', '1000']); r['tgsigqueue'] = _sys(297, q.pid, q.pid, 9, _info(9)); r['tgsigqueue_rc'] = q.wait()
q = subprocess.Popen(['sleep', '1000'], start_new_session=True); os.killpg(q.pid, signal.SIGTERM); r['killpg'] = q.wait()
got = []
old = signal.signal(signal.SIGUSR1, lambda *a: got.append(1))
os.kill(os.getpid(), signal.SIGUSR1); signal.raise_signal(signal.SIGUSR1)
signal.pthread_kill(threading.main_thread().ident, signal.SIGUSR1)
os.kill(0, 0)
signal.signal(signal.SIGUSR1, old)
r['self'] = len(got)
r['probe'] = _sys(62, victim.pid, 0)
sorted(r.items())
"#;
    for (n, w) in &ids {
        let v = val(&env, w, own);
        assert_eq!(
            v,
            "[('kill', -9), ('killpg', -15), ('probe', (0, 0)), ('self', 3), \
('sigqueue', (0, 0)), ('sigqueue_rc', -15), ('terminate', -15), ('tgkill', (0, 0)), \
('tgkill_rc', -9), ('tgsigqueue', (0, 0)), ('tgsigqueue_rc', -9), ('tkill', (0, 0)), \
('tkill_rc', -15)]",
            "own signals in {n}"
        );
    }
    // Programs a session runs (in the world's pid namespace) still signal
    // each other normally.
    let v = val(
        &env,
        &a,
        "subprocess.run(['sh', '-c', 'sleep 1000 & kill -9 $!; wait $!; echo $?'], capture_output=True).stdout",
    );
    assert_eq!(v, "b'137\\n'");
    // A snapshot's template is not the session's to kill either: kill(0)
    // from the parent session leaves branching from its snapshot working.
    val(
        &env,
        &p,
        "signal.signal(signal.SIGUSR2, signal.SIG_IGN); os.kill(0, signal.SIGUSR2)",
    );
    let b2 = env.sub.branch(&s.id, 1, &BranchOptions::default()).unwrap();
    assert_eq!(val(&env, &b2.children[0], "1 + 1"), "2");
}

#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn pooled_worlds_see_no_shells_and_hold_no_manager_fds() {
    if !is_root() {
        return;
    }
    // An fd the caller leaves open without O_CLOEXEC must not reach the
    // lineage (the supervisor closes all but its standard streams).
    // SAFETY: open of a constant path; the fd stays open on purpose.
    let leak = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY) };
    assert!(leak > 2);
    let env = Env::new();
    let p = env.create();
    val(&env, &p, "x = 1");
    let s = env.sub.snapshot(&p, None).unwrap();
    world_substrate::bench::fill_pool(&env.sub, &s.id, 4).unwrap();
    let b = env.sub.branch(&s.id, 2, &BranchOptions::default()).unwrap();
    // Every process a world sees, but its init, has its parent in the
    // world too; a process from outside (a shell waiting in the pool, the
    // manager) would show parent 0.
    let outsiders = "for d in /proc/[0-9]*; do [ \"$d\" = /proc/1 ] && continue; \
                     awk '/^PPid:/ {print $2}' $d/status 2>/dev/null; done | grep -cx 0";
    for w in b.children.iter().chain([&p]) {
        assert_eq!(out(&env.sh(w, outsiders)), "0\n", "{w}");
    }
    for w in &b.children {
        // A command holds its stdio and nothing of the manager (a shell's
        // channel would let it hand a shell any root).
        let fds = out(&env.sh(w, "ls /proc/self/fd | tr '\\n' ' '"));
        assert_eq!(fds, "0 1 2 3 ", "{w}");
    }
}

/// Python helpers of the cross-process test: each call that acts on
/// another process by pid, returning its errno name (`ok` if allowed).
const XPROC_HELPERS: &str = r#"
import ctypes, errno, fcntl, os, resource, socket, struct, subprocess
_l = ctypes.CDLL(None, use_errno=True)
def _raw(nr, *a):
    ctypes.set_errno(0)
    r = _l.syscall(nr, *[ctypes.c_long(x) for x in a])
    if r < 0:
        raise OSError(ctypes.get_errno(), 'syscall')
def _t(f):
    try:
        f()
        return 'ok'
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
def xattack(pid):
    s = socket.socket()
    r = [
        _t(lambda: resource.prlimit(pid, resource.RLIMIT_NPROC, (0, 0))),
        _t(lambda: resource.prlimit(pid, resource.RLIMIT_CPU, (1, 1))),
        _t(lambda: resource.prlimit(pid, resource.RLIMIT_NOFILE)),
        _t(lambda: os.setpriority(os.PRIO_PROCESS, pid, 19)),
        _t(lambda: os.setpriority(os.PRIO_USER, 0, 19)),
        _t(lambda: os.setpriority(os.PRIO_PGRP, 0, 19)),
        _t(lambda: os.sched_setaffinity(pid, {0})),
        _t(lambda: os.sched_setscheduler(pid, os.SCHED_BATCH, os.sched_param(0))),
        _t(lambda: os.sched_setparam(pid, os.sched_param(0))),
        _t(lambda: _raw(251, 1, pid, (2 << 13) | 7)),  # ioprio_set(WHO_PROCESS, pid, BE/7)
        _t(lambda: _raw(251, 3, 0, (2 << 13) | 7)),    # ioprio_set(WHO_USER, own uid)
        _t(lambda: fcntl.fcntl(s.fileno(), fcntl.F_SETOWN, pid)),
        _t(lambda: fcntl.fcntl(s.fileno(), fcntl.F_SETOWN, -pid)),
        _t(lambda: _raw(256, pid, 0, 0, 0)),           # migrate_pages(pid)
        _t(lambda: fcntl.ioctl(s.fileno(), 0x8901, struct.pack('i', pid))),  # FIOSETOWN
        _t(lambda: fcntl.ioctl(s.fileno(), 0x8902, struct.pack('i', pid))),  # SIOCSPGRP
    ]
    s.close()
    return r
def xprobe(pid):
    return [
        _t(lambda: os.getpgid(pid)),
        _t(lambda: os.getsid(pid)),
        _t(lambda: os.getpriority(os.PRIO_PROCESS, pid)),
        _t(lambda: os.sched_getaffinity(pid)),
        _t(lambda: os.sched_getscheduler(pid)),
        _t(lambda: os.sched_getparam(pid)),
        _t(lambda: os.sched_rr_get_interval(pid)),
        _t(lambda: _raw(252, 1, pid)),                 # ioprio_get(WHO_PROCESS, pid)
        _t(lambda: os.kill(pid, 0)),
    ]
"#;

/// Sessions live in the lineage pid namespace with the uid of every
/// process of the lineage, so the kernel's own checks would let them
/// limit, renice, reschedule or own (F_SETOWN: SIGIO to any pid) the
/// lineage manager, templates and other worlds' processes. Each such call
/// on another pid is refused; the same calls on the session itself still
/// work; and after the attacks the lineage still branches (a session that
/// set the manager's RLIMIT_NPROC to 0 used to break every later branch).
#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn sessions_cannot_limit_renice_or_own_other_processes_of_their_lineage() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let env = Env::new();
    let p = env.create();
    val(&env, &p, XPROC_HELPERS);
    val(&env, &p, "victim = subprocess.Popen(['sleep', '1000'])");
    let s = env.sub.snapshot(&p, None).unwrap();
    let b = env.sub.branch(&s.id, 1, &BranchOptions::default()).unwrap();
    let c = b.children[0].clone();
    val(&env, &c, "victim = subprocess.Popen(['sleep', '1000'])");
    let child = pids(&env, &c);
    let own_victim = pids(&env, &p).victim;
    // pid 1 of the lineage pid namespace is the lineage manager.
    for (what, pid) in [
        ("the lineage manager", 1),
        ("another world's session", child.session),
        ("another world's process", child.victim),
        ("its own subprocess (by lineage pid)", own_victim),
    ] {
        let v = val(&env, &p, &format!("xattack({pid})"));
        let refused: Vec<&str> = v
            .trim_matches(|c| c == '[' || c == ']')
            .split(", ")
            .map(|x| x.trim_matches('\''))
            .collect();
        assert_eq!(refused.len(), 16, "{v}");
        assert!(
            refused.iter().all(|r| *r == "EPERM"),
            "a session acted on {what} (pid {pid}): {v}"
        );
    }
    // Reading another process by pid answers exactly as for a free pid,
    // so nothing outside the session's own process can be probed.
    let free = val(&env, &p, "xprobe(4194000)");
    assert_eq!(free, format!("[{}]", ["'ESRCH'"; 9].join(", ")));
    for pid in [1, child.session, child.victim] {
        assert_eq!(
            val(&env, &p, &format!("xprobe({pid})")),
            free,
            "probe of pid {pid}"
        );
    }
    assert_eq!(
        val(&env, &p, "[_t(lambda: os.getpgid(0)), _t(lambda: os.sched_getaffinity(0)), _t(lambda: os.getpriority(os.PRIO_PROCESS, 0))]"),
        "['ok', 'ok', 'ok']"
    );
    // A branched session's programs hold none of its agent's fds either.
    let fds = val(
        &env,
        &c,
        "subprocess.run('ls /proc/self/fd', shell=True, close_fds=False, capture_output=True).stdout.split()",
    );
    for leaked in ["b'4'", "b'5'", "b'6'"] {
        assert!(
            !fds.contains(leaked),
            "agent fd {leaked} reached a program of a branch: {fds}"
        );
    }
    // On itself, the same calls work.
    let v = val(
        &env,
        &p,
        "s = socket.socket(); [_t(lambda: resource.prlimit(0, resource.RLIMIT_NOFILE)), \
         _t(lambda: os.setpriority(os.PRIO_PROCESS, 0, 1)), \
         _t(lambda: os.sched_setaffinity(0, os.sched_getaffinity(0))), \
         _t(lambda: fcntl.fcntl(s.fileno(), fcntl.F_SETOWN, 0))]",
    );
    assert_eq!(v, "['ok', 'ok', 'ok', 'ok']");
    // Programs the session runs (in the world's pid namespace) keep them.
    let v = val(
        &env,
        &p,
        "subprocess.run(['sh', '-c', 'sleep 100 & renice -n 5 -p $! >/dev/null && echo renice=ok; kill $!'], capture_output=True).stdout",
    );
    assert_eq!(v, "b'renice=ok\\n'");
    // The lineage still makes new worlds.
    let b2 = env.sub.branch(&s.id, 2, &BranchOptions::default()).unwrap();
    assert_eq!(b2.children.len(), 2);
    assert_eq!(val(&env, &b2.children[1], "1 + 1"), "2");
}

/// A snapshot's templates are forks of its sessions, so they run code of
/// the world (here a fork hook that starts a thread which allocates
/// 400 MB a moment later). They wait under the world's own limits, which
/// hold after the world is destroyed, and `snapshot_info` shows what they
/// use. The old code left them in an unlimited cgroup: the template held
/// the 400 MB past the world's 128 MB limit.
#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn snapshot_templates_run_under_the_worlds_limits() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    use world_substrate::{CreateOptions, Limits};
    let env = Env::new();
    let id = env.create_with(CreateOptions {
        limits: Limits {
            mem_size_mib: 128,
            pids_max: 64,
            ..Default::default()
        },
        ..Default::default()
    });
    val(
        &env,
        &id,
        "import os, threading, time\n\
         def _hog():\n    time.sleep(1.0)\n    globals()['hog'] = b'x' * (400 << 20)\n\
         os.register_at_fork(after_in_child=lambda: threading.Thread(target=_hog, daemon=True).start())",
    );
    let s = env.sub.snapshot(&id, None).unwrap();
    env.sub.destroy(&id).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(3000));
    let info = env.sub.snapshot_info(&s.id).unwrap();
    let mem = info
        .template_memory_bytes
        .expect("template memory is reported");
    assert!(
        mem <= 128 << 20,
        "templates hold {} MiB past the world's 128 MiB limit",
        mem >> 20
    );
    assert!(info.template_pids.is_some());
}

/// Templates and branch children are forks of session code, so they get
/// no file the host opened: they used to be handed `cgroup.procs` files
/// of the snapshot's cgroup (templates) and of the new world (branch
/// children), through which their fork hooks moved the lineage manager
/// (pid 1 of the lineage) into a cgroup that is later killed, killing
/// every world of the lineage with it. Templates also run only while
/// they serve a branch: frozen between branches, a ticking thread in
/// one stops. (Only the template ticks: a branch child with a second
/// thread could not enter its world's namespaces.)
#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn templates_get_no_cgroup_file_and_are_frozen_between_branches() {
    use std::time::Duration;
    let env = Env::new();
    let id = env.create();
    val(
        &env,
        &id,
        "import os, stat, threading, time\n\
         gen = 0\n\
         def _tick(n):\n    while True:\n        with open('/work/tick-%d' % n, 'a') as f: f.write('.')\n        time.sleep(0.05)\n\
         def _grab():\n    global gen\n    gen += 1\n    hits = []\n    for fd in range(3, 512):\n        try:\n            if not stat.S_ISREG(os.fstat(fd).st_mode):\n                continue\n            os.write(fd, b'1')\n            hits.append(fd)\n        except OSError:\n            pass\n    with open('/work/grab-%d' % gen, 'a') as f: f.write(repr(hits) + '\\n')\n    if gen == 1:\n        threading.Thread(target=_tick, args=(gen,), daemon=True).start()\n\
         os.register_at_fork(after_in_child=_grab)",
    );
    let s = env.sub.snapshot(&id, None).unwrap();
    let b = env.sub.branch(&s.id, 2, &BranchOptions::default()).unwrap();
    // No cgroup file reached the template (gen 1) or the children (gen 2;
    // their hook runs before they enter their worlds, so it writes here).
    let grabs = out(&env.sh(&id, "cat /work/grab-1"));
    assert_eq!(grabs.trim(), "[]", "the template could write to {grabs}");
    let grabs = out(&env.sh(&id, "cat /work/grab-2"));
    assert_eq!(grabs, "[]\n[]\n", "a branch child could write to {grabs}");
    // Frozen between branches: the template's ticks stop.
    std::thread::sleep(Duration::from_millis(500));
    let count = || {
        out(&env.sh(&id, "wc -c < /work/tick-1"))
            .trim()
            .parse::<u64>()
            .unwrap()
    };
    let n1 = count();
    std::thread::sleep(Duration::from_millis(1000));
    let n2 = count();
    assert_eq!(
        n1, n2,
        "the template ran while it waited ({n1} then {n2} ticks)"
    );
    // The lineage is whole after the children and the snapshot are gone.
    for c in &b.children {
        env.sub.destroy(c).unwrap();
    }
    env.sub.delete_snapshot(&s.id).unwrap();
    assert_eq!(val(&env, &id, "6 * 7"), "42");
    let s2 = env.sub.snapshot(&id, None).unwrap();
    let b2 = env
        .sub
        .branch(&s2.id, 1, &BranchOptions::default())
        .unwrap();
    assert_eq!(val(&env, &b2.children[0], "6 * 7"), "42");
}

/// The disk limit counts what a world holds, not only what it wrote: a
/// branch child starts with its snapshot's data and may write only the
/// rest of its limit. It used to get the whole limit again on top (a
/// 64 MiB world held 80 MiB after one branch, more with each generation),
/// since quotas charge shared data to the world that wrote it.
#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn branch_children_count_what_they_inherit_against_their_disk_limit() {
    use world_substrate::{CreateOptions, Limits};
    let env = Env::new();
    let id = env.create_with(CreateOptions {
        limits: Limits {
            disk_mib: Some(64),
            ..Default::default()
        },
        ..Default::default()
    });
    let fill = |w: &WorldId, name: &str, mib: u32| {
        out(&env.sh(
            w,
            &format!(
                "head -c {} /dev/urandom > /work/{name} 2>&1 && sync && echo ok || echo failed",
                mib << 20
            ),
        ))
    };
    assert_eq!(fill(&id, "a", 40), "ok\n");
    let s = env.sub.snapshot(&id, None).unwrap();
    let b = env.sub.branch(&s.id, 1, &BranchOptions::default()).unwrap();
    let c = &b.children[0];
    let used = env.sub.inspect(c).unwrap().disk_bytes.unwrap_or(0);
    assert!(
        used >= 40 << 20,
        "the child's usage counts its 40 MiB: {used}"
    );
    // 40 MiB inherited + 16 MiB fits in 64; another 40 does not.
    assert_eq!(fill(c, "b", 16), "ok\n");
    let r = fill(c, "c", 40);
    assert!(
        r.contains("failed"),
        "the child wrote 40 MiB past 56 MiB held: {r}"
    );
    // A grandchild starts with all of it.
    let s2 = env.sub.snapshot(c, None).unwrap();
    let b2 = env
        .sub
        .branch(&s2.id, 1, &BranchOptions::default())
        .unwrap();
    let r = fill(&b2.children[0], "d", 40);
    assert!(
        r.contains("failed"),
        "the grandchild wrote 40 MiB more: {r}"
    );
}
