//! A spin-then-park barrier for the executor's short steps.
//!
//! Steps of a block take tens to hundreds of microseconds, so parking a
//! thread (a futex round trip) at every step would cost about as much as
//! the step when every thread has a core. Waiters therefore spin a little
//! first; if the others are late (their core is busy with something else),
//! they park on a condition variable, so a loaded machine does not make
//! them burn or yield their cores. If a thread panics, its guard poisons
//! the barrier so the others panic too instead of waiting forever.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;

/// Spins before a waiter parks (a few microseconds).
const SPINS: u32 = 4096;

/// A reusable barrier for a fixed number of threads.
pub(super) struct Barrier {
    n: usize,
    arrived: AtomicUsize,
    generation: AtomicUsize,
    poisoned: AtomicBool,
    /// Guards parking: the generation only moves while it is held.
    lock: Mutex<()>,
    wake: Condvar,
}

impl Barrier {
    pub(super) fn new(n: usize) -> Barrier {
        Barrier {
            n: n.max(1),
            arrived: AtomicUsize::new(0),
            generation: AtomicUsize::new(0),
            poisoned: AtomicBool::new(false),
            lock: Mutex::new(()),
            wake: Condvar::new(),
        }
    }

    /// Waits until all `n` threads have called `wait`.
    ///
    /// # Panics
    /// If another thread panicked while the barrier was in use.
    pub(super) fn wait(&self) {
        let generation = self.generation.load(Ordering::Acquire);
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == self.n {
            self.arrived.store(0, Ordering::Relaxed);
            let _held = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
            self.generation
                .store(generation.wrapping_add(1), Ordering::Release);
            self.wake.notify_all();
            return;
        }
        for _ in 0..SPINS {
            if self.generation.load(Ordering::Acquire) != generation {
                return;
            }
            std::hint::spin_loop();
        }
        let mut held = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        while self.generation.load(Ordering::Acquire) == generation {
            if self.poisoned.load(Ordering::Relaxed) {
                panic!("another parallel executor thread panicked");
            }
            // The timeout only bounds how late a poisoning is noticed.
            held = self
                .wake
                .wait_timeout(held, Duration::from_millis(50))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// A guard that poisons the barrier if its thread unwinds.
    pub(super) fn guard(&self) -> PoisonOnPanic<'_> {
        PoisonOnPanic(self)
    }
}

/// Poisons its barrier when dropped during a panic.
pub(super) struct PoisonOnPanic<'a>(&'a Barrier);

impl Drop for PoisonOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.poisoned.store(true, Ordering::Relaxed);
            self.0.wake.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    #[test]
    fn threads_meet_at_every_step() {
        let b = Barrier::new(3);
        let counter = AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    for step in 1..=50u64 {
                        counter.fetch_add(1, Ordering::SeqCst);
                        b.wait();
                        // Everyone has counted this step before anyone goes on.
                        assert!(counter.load(Ordering::SeqCst) >= 3 * step);
                        b.wait();
                    }
                });
            }
        });
        assert_eq!(counter.load(Ordering::SeqCst), 150);
    }

    #[test]
    fn a_panic_releases_the_others() {
        let b = Barrier::new(2);
        let r = std::thread::scope(|s| {
            let waiter = s.spawn(|| b.wait());
            let panicker = s.spawn(|| {
                let _g = b.guard();
                panic!("boom");
            });
            (waiter.join().is_err(), panicker.join().is_err())
        });
        assert_eq!(r, (true, true));
    }
}
