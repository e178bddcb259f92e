//! Minimal host program for the supervisor entry point, used by this
//! crate's tests and benchmarks. The `world` CLI embeds the same call.

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args
        .get(1)
        .is_some_and(|a| a == world_substrate::SUPERVISOR_ARG)
    {
        world_substrate::supervisor_main(&args[2..]);
    }
    eprintln!(
        "usage: world-supervisor {} <launch-spec-json>",
        world_substrate::SUPERVISOR_ARG
    );
    std::process::exit(2);
}
