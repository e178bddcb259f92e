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
