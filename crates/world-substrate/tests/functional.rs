//! Functional tests of create / exec / copy / images / destroy (as root).

mod common;

use std::io::{BufRead, BufReader};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use common::{is_root, out, Env};
use world_substrate::{
    CreateOptions, Error, ExecError, ExecRequest, ExecStdio, Limits, Substrate, WorldError,
    WorldId, WorldState,
};

#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn create_exec_inspect_destroy() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let c = env.sub.create(&CreateOptions::default()).unwrap();
    eprintln!("create {:.2} ms, warnings {:?}", c.create_ms, c.warnings);
    assert!(c.create_ms > 0.0);
    let o = env.sh(&c.id, "echo hello; echo err >&2; hostname; id -u; exit 3");
    assert_eq!(out(&o), format!("hello\n{}\n0\n", c.id));
    assert_eq!(o.stderr, b"err\n");
    assert_eq!(o.status.exit_code, 3);
    let o = env
        .sub
        .exec_output(
            &c.id,
            &ExecRequest::new(&["python3", "-c", "print(6*7)"]),
            b"",
        )
        .unwrap();
    assert_eq!(out(&o), "42\n");
    let info = env.sub.inspect(&c.id).unwrap();
    assert_eq!(info.state, WorldState::Running);
    assert!(info.memory_bytes.unwrap() > 0);
    assert!(info.pids.unwrap() >= 1);
    assert_eq!(env.sub.list().unwrap().len(), 1);
    env.sub.destroy(&c.id).unwrap();
    assert!(env.sub.list().unwrap().is_empty());
}

#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn stdin_env_cwd_and_signals() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let id = env.create();
    let mut r = ExecRequest::new(&["sh", "-c", "cat; echo \"$FOO\"; pwd"]);
    r.env.push(("FOO".into(), "bar baz".into()));
    r.cwd = Some("/tmp".into());
    let o = env.sub.exec_output(&id, &r, b"from stdin\n").unwrap();
    assert_eq!(out(&o), "from stdin\nbar baz\n/tmp\n");
    let o = env.sh(&id, "kill -TERM $$");
    assert_eq!(o.status.signal, Some(libc::SIGTERM));
    assert_eq!(o.status.exit_code, 128 + libc::SIGTERM);
    // SIGPIPE behaves as in a normal shell (not ignored).
    let o = env.sh(&id, "yes | head -n 2");
    assert_eq!(out(&o), "y\ny\n");
}

#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn output_streams_while_running() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let id = env.create();
    let (r, w) = std::io::pipe().unwrap();
    let sub = env.sub.clone();
    let id2 = id.clone();
    let t = std::thread::spawn(move || {
        let req = ExecRequest::new(&["sh", "-c", "echo first; sleep 1; echo second"]);
        let st = sub.exec(
            &id2,
            &req,
            ExecStdio {
                stdout: Some(w.as_fd()),
                ..Default::default()
            },
        );
        drop(w);
        st
    });
    let start = Instant::now();
    let mut lines = BufReader::new(r).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "first");
    assert!(start.elapsed() < Duration::from_millis(800), "not streamed");
    assert_eq!(lines.next().unwrap().unwrap(), "second");
    assert_eq!(t.join().unwrap().unwrap().exit_code, 0);
}

/// A cancel fd kills the command's whole tree (a background child too)
/// and the exec returns as killed by SIGKILL, long before its own end.
#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn cancel_kills_the_whole_tree() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let id = env.create();
    let (cancel_r, cancel_w) = std::io::pipe().unwrap();
    let sub = env.sub.clone();
    let id2 = id.clone();
    let t = std::thread::spawn(move || {
        let req = ExecRequest::new(&["sh", "-c", "sleep 300 & sleep 300"]);
        sub.exec(
            &id2,
            &req,
            ExecStdio {
                cancel: Some(cancel_r.as_fd()),
                ..Default::default()
            },
        )
    });
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    drop(cancel_w);
    let st = t.join().unwrap().unwrap();
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!((st.signal, st.exit_code), (Some(9), 137));
    let o = env.sh(&id, "cat /proc/[0-9]*/comm | grep -c '^sleep$' || true");
    assert_eq!(out(&o).trim(), "0", "no sleep is left");
}

#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn timeout_kills_whole_tree_and_concurrent_execs() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let id = env.create();
    let mut r = ExecRequest::new(&[
        "sh",
        "-c",
        "(setsid sleep 1000 &) ; (sleep 1001 &) ; sleep 1002",
    ]);
    r.timeout = Some(Duration::from_millis(300));
    let t = Instant::now();
    let o = env.sub.exec_output(&id, &r, b"").unwrap();
    assert!(o.status.timed_out);
    assert!(t.elapsed() < Duration::from_secs(5));
    let ps = env.sh(&id, "ps -eo args 2>/dev/null || ls /proc");
    let ps = out(&ps);
    assert!(!ps.contains("sleep 100"), "survivors: {ps}");

    // Many concurrent execs on one world.
    let handles: Vec<_> = (0..16)
        .map(|i| {
            let sub = env.sub.clone();
            let id = id.clone();
            std::thread::spawn(move || {
                let o = sub
                    .exec_output(
                        &id,
                        &ExecRequest::new(&["sh", "-c", &format!("sleep 0.2; echo {i}")]),
                        b"",
                    )
                    .unwrap();
                assert_eq!(out(&o), format!("{i}\n"));
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn copy_in_and_out() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let id = env.create();
    let host = tempfile::tempdir().unwrap();
    let src = host.path().join("proj");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("a.txt"), "alpha").unwrap();
    std::fs::write(src.join("sub/b.txt"), "beta").unwrap();
    env.sub.copy_in(&id, &src, "/work").unwrap();
    env.sub.copy_in(&id, &src.join("a.txt"), "/tmp/x").unwrap();
    let o = env.sh(
        &id,
        "cat /work/proj/a.txt /work/proj/sub/b.txt /tmp/x/a.txt; echo made > /work/proj/new.txt",
    );
    assert_eq!(out(&o), "alphabetaalpha");
    let dst = host.path().join("out");
    env.sub.copy_out(&id, "/work/proj", &dst).unwrap();
    assert_eq!(
        std::fs::read_to_string(dst.join("proj/new.txt")).unwrap(),
        "made\n"
    );
    assert_eq!(
        std::fs::read_to_string(dst.join("proj/sub/b.txt")).unwrap(),
        "beta"
    );
    env.sub.copy_out(&id, "/etc/hosts", &dst).unwrap();
    assert!(dst.join("hosts").exists());
    let e = env.sub.copy_out(&id, "/nope", &dst).unwrap_err();
    assert!(matches!(e, Error::Exec(ExecError::NoSuchPath(_))), "{e}");
}

#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn images_import_list_rm() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    // A tiny rootfs: a copy of busybox-free shell is not available, so use
    // the host image's /usr via a directory import that holds only files.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("etc")).unwrap();
    std::fs::write(dir.path().join("etc/marker"), "imported").unwrap();
    let info = env.sub.image_import("mini", dir.path()).unwrap();
    assert_eq!(info.name, "mini");
    // tar import of the same tree
    let tarp = dir.path().join("../mini.tar");
    let f = std::fs::File::create(&tarp).unwrap();
    let mut b = tar::Builder::new(f);
    b.append_dir_all(".", dir.path()).unwrap();
    b.into_inner().unwrap();
    env.sub.image_import("mini-tar", &tarp).unwrap();
    let names: Vec<String> = env
        .sub
        .image_list()
        .unwrap()
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert!(
        names.contains(&"host".into())
            && names.contains(&"mini".into())
            && names.contains(&"mini-tar".into())
    );
    assert!(env.sub.image_import("mini", dir.path()).is_err());
    // A world on the imported image starts; it has no shell, so exec fails
    // with "command not found".
    let id = env.create_with(CreateOptions {
        image: Some("mini".into()),
        ..Default::default()
    });
    let e = env
        .sub
        .exec(&id, &ExecRequest::new(&["sh"]), ExecStdio::default())
        .unwrap_err();
    assert_eq!(e.exit_code(), 127);
    assert!(
        env.sub.image_rm("mini").is_err(),
        "rm must refuse while in use"
    );
    env.sub.destroy(&id).unwrap();
    env.sub.image_rm("mini").unwrap();
    env.sub.image_rm("mini-tar").unwrap();
    let _ = std::fs::remove_file(tarp);
}

#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn bad_input_is_rejected_cleanly() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let e = env
        .sub
        .create(&CreateOptions {
            image: Some("nope".into()),
            ..Default::default()
        })
        .unwrap_err();
    assert!(e.to_string().contains("unknown image"), "{e}");
    for limits in [
        Limits {
            vcpu_count: 0,
            ..Default::default()
        },
        Limits {
            mem_size_mib: 1,
            ..Default::default()
        },
        Limits {
            pids_max: 0,
            ..Default::default()
        },
        Limits {
            disk_mib: Some(1),
            ..Default::default()
        },
    ] {
        let e = env
            .sub
            .create(&CreateOptions {
                limits,
                ..Default::default()
            })
            .unwrap_err();
        assert!(
            matches!(e, Error::World(WorldError::InvalidLimits(_))),
            "{e}"
        );
    }
    assert!(env.sub.list().unwrap().is_empty(), "nothing changed");
    let ghost = WorldId::new("ghost").unwrap();
    assert!(matches!(
        env.sub.inspect(&ghost),
        Err(Error::World(WorldError::NotFound(_)))
    ));
    assert!(matches!(
        env.sub.destroy(&ghost),
        Err(Error::World(WorldError::NotFound(_)))
    ));
    let id = env.create();
    let e = env
        .sub
        .exec(
            &id,
            &ExecRequest::new(&["no-such-cmd"]),
            ExecStdio::default(),
        )
        .unwrap_err();
    assert!(
        matches!(e, Error::Exec(ExecError::CommandNotFound(_))),
        "{e}"
    );
    assert_eq!(e.exit_code(), 127);
    assert!(e.to_string().contains("no-such-cmd: command not found"));
    let mut r = ExecRequest::new(&["true"]);
    r.cwd = Some("/does/not/exist".into());
    assert!(matches!(
        env.sub.exec(&id, &r, ExecStdio::default()),
        Err(Error::Exec(ExecError::NoSuchPath(_)))
    ));
    let dup = env
        .sub
        .create(&CreateOptions {
            id: Some(id.clone()),
            ..Default::default()
        })
        .unwrap_err();
    assert!(matches!(dup, Error::World(WorldError::Exists(_))), "{dup}");
    env.sub.destroy(&id).unwrap();
    let e = env
        .sub
        .exec(&id, &ExecRequest::new(&["true"]), ExecStdio::default())
        .unwrap_err();
    assert!(matches!(e, Error::World(WorldError::NotFound(_))), "{e}");
}
