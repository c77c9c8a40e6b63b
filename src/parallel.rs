//! Run a function over a list on a few threads, keeping the order of the list.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

/// Run `f` over `items` on up to `max` threads, keeping order. A panic in `f` (a bug) gives
/// `None` for that item instead of taking the caller down; if no thread can be created (task
/// limit reached), the items run on this thread.
///
/// Threads are started as the work needs them: a few at first (four per core), then, when
/// items still wait for a free thread and no item finished for a few milliseconds (the
/// threads are all stuck waiting: hung commands, slow peers), twice as many, up to `max`.
/// Quick or CPU-bound items never pay for threads they do not need; items that wait end up
/// waiting side by side.
pub fn map<T: Sync, R: Send>(
    items: &[T],
    max: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<Option<R>> {
    map_ramping(items, max, RAMP_UP, f)
}

/// [`map`], with more threads after `ramp_up` without an item finished.
fn map_ramping<T: Sync, R: Send>(
    items: &[T],
    max: usize,
    ramp_up: std::time::Duration,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<Option<R>> {
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    // set by the first thread that finds no item left: the ramp-up below is over
    let all_taken = (Mutex::new(false), Condvar::new());
    let work = || {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(i) else { break };
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(item))).ok();
            if let Ok(mut all) = results.lock() {
                all[i] = r;
            }
            done.fetch_add(1, Ordering::Relaxed);
        }
        let (flag, cv) = &all_taken;
        if let Ok(mut taken) = flag.lock() {
            if !*taken {
                *taken = true;
                cv.notify_all();
            }
        }
    };
    let max = max.max(1).min(items.len());
    let cores = cores();
    std::thread::scope(|s| {
        // how many of `n` more threads could be started
        let start = |n: usize| {
            (0..n)
                .filter(|_| std::thread::Builder::new().spawn_scoped(s, work).is_ok())
                .count()
        };
        let mut started = start((cores * 4).clamp(4, 32).min(max));
        if started == 0 {
            work();
            return;
        }
        // items not yet taken while no item finishes: every thread is stuck waiting
        let mut finished = done.load(Ordering::Relaxed);
        while next.load(Ordering::Relaxed) < items.len() && started < max {
            // wait `ramp_up`, or less if the last item is taken meanwhile: then this thread
            // has nothing left to do here but join (a plain sleep kept the pass waiting for
            // it after the work was done: 2.5 ms on average)
            let (flag, cv) = &all_taken;
            let Ok(taken) = flag.lock() else { break };
            match cv.wait_timeout_while(taken, ramp_up, |taken| !*taken) {
                Ok((taken, _)) if !*taken => {}
                _ => break,
            }
            let now = done.load(Ordering::Relaxed);
            let stuck = now == finished;
            finished = now;
            if stuck && next.load(Ordering::Relaxed) < items.len() {
                let more = start(started.min(max - started));
                if more == 0 {
                    break; // no thread to be had: those running do the rest
                }
                started += more;
            }
        }
    });
    results.into_inner().unwrap_or_default()
}

/// The processors this process may use (its affinity and its cgroup's CPU quota), read once:
/// it reads three files.
pub fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// How long items may wait for a free thread before more threads are started.
const RAMP_UP: std::time::Duration = std::time::Duration::from_millis(5);

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::Barrier;

    #[test]
    fn keeps_the_order_of_the_items() {
        let items: Vec<u32> = (0..100).collect();
        let out = map(&items, 7, |x| x * 2);
        let want: Vec<Option<u32>> = items.iter().map(|x| Some(x * 2)).collect();
        assert_eq!(out, want);
    }

    #[test]
    fn a_panic_costs_only_its_own_item() {
        let items = [1, 2, 3, 4];
        let out = map(&items, 2, |x| {
            if *x == 3 {
                panic!("a bug in one check");
            }
            *x
        });
        assert_eq!(out, vec![Some(1), Some(2), None, Some(4)]);
    }

    #[test]
    fn runs_side_by_side_up_to_max() {
        // four items that each wait for all four: only possible on four threads at once
        let barrier = Barrier::new(4);
        let items = [0, 1, 2, 3];
        let threads = Mutex::new(HashSet::new());
        let out = map(&items, 4, |x| {
            barrier.wait();
            if let Ok(mut t) = threads.lock() {
                t.insert(std::thread::current().id());
            }
            *x
        });
        assert_eq!(out.iter().flatten().count(), 4);
        assert_eq!(threads.lock().map(|t| t.len()).unwrap_or(0), 4);
    }

    #[test]
    fn done_when_the_work_is_done_not_a_ramp_up_step_later() {
        // more items than the threads started first, so the ramp-up waits; once the last
        // item is taken there is nothing to wait for
        let items: Vec<u32> = (0..200).collect();
        let t0 = std::time::Instant::now();
        let out = map_ramping(&items, 1000, std::time::Duration::from_secs(30), |x| {
            std::thread::sleep(std::time::Duration::from_millis(1));
            *x
        });
        assert_eq!(out.iter().flatten().count(), 200);
        let took = t0.elapsed();
        assert!(took < std::time::Duration::from_secs(10), "took {took:?}");
    }

    #[test]
    fn never_more_threads_than_max_and_zero_means_one() {
        let items: Vec<u32> = (0..20).collect();
        let threads = Mutex::new(HashSet::new());
        let out = map(&items, 3, |x| {
            if let Ok(mut t) = threads.lock() {
                t.insert(std::thread::current().id());
            }
            *x
        });
        assert_eq!(out.len(), 20);
        assert!(threads.lock().map(|t| t.len()).unwrap_or(0) <= 3);
        let out = map(&items, 0, |x| *x);
        assert_eq!(out.iter().flatten().count(), 20);
        let empty: [u32; 0] = [];
        assert!(map(&empty, 4, |x| *x).is_empty());
    }
}
