//! Evaluate targets on a few threads and hand each result to the pass as soon as it is ready,
//! so that a target can be acted on while another's slow check still runs (issue 18 M4: one
//! slow check must never cost the other targets their recovery).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long items may wait for a free thread before more threads are started (as
/// `parallel::map`).
const RAMP_UP: Duration = Duration::from_millis(5);

/// What [`each`] tells its caller.
pub enum Step<R> {
    /// The items at these indexes are done (`None`: `f` panicked, a bug): all those finished
    /// since the last step.
    Done(Vec<(usize, Option<R>)>),
    /// No item finished for the `idle_after` given.
    Idle,
}

/// Run `f` over `items` on up to `max` threads; `on` is called on this thread with each
/// item's result as it finishes, and with [`Step::Idle`] each time no item finished for
/// `idle_after`. Threads start as `parallel::map` starts them: a few first, twice as many
/// whenever items wait and none finished for a few milliseconds. If no thread can be
/// created, the items run here.
pub fn each<T: Sync, R: Send>(
    items: &[T],
    max: usize,
    f: impl Fn(&T) -> R + Sync,
    mut on: impl FnMut(Step<R>),
    idle_after: Duration,
) {
    if items.is_empty() {
        return;
    }
    let next = AtomicUsize::new(0);
    let run =
        |i: usize| std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&items[i]))).ok();
    let (tx, rx) = mpsc::channel::<(usize, Option<R>)>();
    let work = |tx: mpsc::Sender<(usize, Option<R>)>| loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= items.len() || tx.send((i, run(i))).is_err() {
            break;
        }
    };
    let max = max.max(1).min(items.len());
    std::thread::scope(|s| {
        let start = |n: usize| {
            (0..n)
                .filter(|_| {
                    let tx = tx.clone();
                    std::thread::Builder::new()
                        .spawn_scoped(s, || work(tx))
                        .is_ok()
                })
                .count()
        };
        let mut started = start((crate::parallel::cores() * 4).clamp(4, 32).min(max));
        if started == 0 {
            // no thread to be had: one after the other, here
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= items.len() {
                    return;
                }
                on(Step::Done(vec![(i, run(i))]));
            }
        }
        let mut received = 0;
        let mut finished_at_ramp = 0;
        let mut last_done = Instant::now();
        while received < items.len() {
            let ramping = started < max && next.load(Ordering::Relaxed) < items.len();
            let idle_in = idle_after.saturating_sub(last_done.elapsed());
            let wait = if ramping {
                RAMP_UP.min(idle_in)
            } else {
                idle_in
            };
            match rx.recv_timeout(wait) {
                Ok(first) => {
                    let mut batch = vec![first];
                    batch.extend(rx.try_iter());
                    received += batch.len();
                    last_done = Instant::now();
                    on(Step::Done(batch));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if ramping && received == finished_at_ramp {
                        // every thread is stuck waiting: hung commands, slow peers
                        started += start(started.min(max - started));
                    }
                    finished_at_ramp = received;
                    if last_done.elapsed() >= idle_after {
                        on(Step::Idle);
                        last_done = Instant::now();
                    }
                }
                // every worker gone with items left (cannot happen: each sends once per item)
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Condvar, Mutex};

    #[test]
    fn results_come_as_they_are_ready_not_in_the_order_of_the_items() {
        // item 0 waits until item 1's result has been handed over: in order, this would hang
        let gate = (Mutex::new(false), Condvar::new());
        let mut seen = Vec::new();
        each(
            &[0, 1],
            2,
            |&x| {
                if x == 0 {
                    let (m, cv) = &gate;
                    let open = m.lock().unwrap();
                    let _ = cv
                        .wait_timeout_while(open, Duration::from_secs(20), |o| !*o)
                        .unwrap();
                }
                x * 10
            },
            |step| {
                if let Step::Done(done) = step {
                    for (i, r) in done {
                        seen.push((i, r));
                        if i == 1 {
                            let (m, cv) = &gate;
                            *m.lock().unwrap() = true;
                            cv.notify_all();
                        }
                    }
                }
            },
            Duration::from_secs(60),
        );
        assert_eq!(seen, vec![(1, Some(10)), (0, Some(0))]);
    }

    #[test]
    fn a_panic_costs_only_its_own_item_and_a_stall_is_told() {
        // item 3 hangs until the pass is told that nothing finished for a while
        let gate = (Mutex::new(false), Condvar::new());
        let mut seen = Vec::new();
        let mut idles = 0;
        each(
            &[1, 2, 3],
            3,
            |&x| {
                if x == 2 {
                    panic!("a bug in one check");
                }
                if x == 3 {
                    let (m, cv) = &gate;
                    let open = m.lock().unwrap();
                    let _ = cv
                        .wait_timeout_while(open, Duration::from_secs(20), |o| !*o)
                        .unwrap();
                }
                x
            },
            |step| match step {
                Step::Done(done) => seen.extend(done),
                Step::Idle => {
                    idles += 1;
                    let (m, cv) = &gate;
                    *m.lock().unwrap() = true;
                    cv.notify_all();
                }
            },
            Duration::from_millis(50),
        );
        seen.sort();
        assert_eq!(seen, vec![(0, Some(1)), (1, None), (2, Some(3))]);
        assert!(idles >= 1);
    }
}
