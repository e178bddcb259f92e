//! Security of branches (issue 4): siblings, parent and children of one
//! lineage must not see or change each other's files, sessions, processes
//! or network (as root).

mod common;

use common::{is_root, out, Env};
use world_substrate::snapshot::BranchOptions;
use world_substrate::WorldId;

fn val(env: &Env, id: &WorldId, code: &str) -> String {
    let r = env
        .sub
        .run_code(id, "default", code, None)
        .expect("run code");
    assert!(r.error.is_none(), "{code}: {:?}", r.error);
    r.value_repr.unwrap_or_default()
}

#[test]
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
