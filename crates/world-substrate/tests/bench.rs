//! The substrate benchmark as an ignored test that prints its table
//! (`cargo test --release -p world-substrate --test bench -- --ignored --nocapture`).
//! Not a timed test: it asserts nothing about speed.

mod common;

#[test]
#[ignore]
fn bench_substrate_table() {
    if !common::is_root() {
        return;
    }
    let env = common::Env::new();
    let n = std::env::var("BENCH_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    let idle = std::env::var("BENCH_IDLE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let rep = world_substrate::bench::bench_substrate(&env.sub, n, idle).unwrap();
    println!("{rep}");
}

/// `BENCH_N=20 BENCH_COUNTS=1,3,10,100 cargo test --release -p world-substrate
/// --test bench bench_branch_table -- --ignored --nocapture`
#[test]
#[ignore]
fn bench_branch_table() {
    if !common::is_root() {
        return;
    }
    let env = common::Env::new();
    let n = std::env::var("BENCH_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let counts: Vec<usize> = std::env::var("BENCH_COUNTS")
        .unwrap_or_else(|_| "1,3,10,100".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    use world_substrate::bench::Session;
    let rep = world_substrate::bench::bench_branch(
        &env.sub,
        n,
        &counts,
        &[Session::Idle, Session::Mb100],
    )
    .unwrap();
    println!("{rep}");
}

/// 1,000 live worlds from one snapshot (`LIVE_WORLDS` to change).
#[test]
#[ignore]
fn thousand_live_worlds_from_one_snapshot() {
    if !common::is_root() {
        return;
    }
    let total: usize = std::env::var("LIVE_WORLDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let env = common::Env::new();
    let id = env.create();
    env.sub.run_code(&id, "default", "x = 41", None).unwrap();
    let s = env.sub.snapshot(&id, None).unwrap();
    let t = std::time::Instant::now();
    let mut kids = Vec::new();
    while kids.len() < total {
        let k = (total - kids.len()).min(100);
        let b = env
            .sub
            .branch(
                &s.id,
                k,
                &world_substrate::snapshot::BranchOptions::default(),
            )
            .unwrap();
        kids.extend(b.children);
        eprintln!(
            "{} live worlds after {:.1} s",
            kids.len(),
            t.elapsed().as_secs_f64()
        );
    }
    for c in [&kids[0], &kids[total / 2], &kids[total - 1]] {
        let r = env.sub.run_code(c, "default", "x + 1", None).unwrap();
        assert_eq!(r.value_repr.as_deref(), Some("42"));
    }
    println!(
        "{total} live worlds from one snapshot in {:.1} s",
        t.elapsed().as_secs_f64()
    );
}
