//! Phase timings on stderr when `WORLD_TRACE=1`, for finding where an
//! operation spends its time (`world bench` reports the totals).

use std::time::Instant;

/// Prints `label` and the milliseconds since `t0` when tracing is on.
pub fn mark(label: &str, t0: Instant) {
    if std::env::var_os("WORLD_TRACE").is_some_and(|v| v == "1") {
        eprintln!(
            "trace: {label}: {:.2} ms",
            t0.elapsed().as_secs_f64() * 1000.0
        );
    }
}
