//! Does the coordinator need a fair RwLock? A writer (a channel becoming ready, a block)
//! must get the lock within a bounded time while readers (every cross-shard forward) flood
//! it. Measured for std's RwLock and parking_lot's; figures in docs/ENGINE.md.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const READERS: usize = 4;
const WRITES: usize = 30;
/// How long each reader holds the lock: with 4 readers on 2 cores, the lock is never free
/// of readers unless new readers are held back.
const HOLD: Duration = Duration::from_micros(50);

fn spin(d: Duration) {
    let t = Instant::now();
    while t.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// Readers hammer the lock through `read`; the writer takes it through `write` `WRITES`
/// times; returns each write's wait, sorted.
fn measure<L: Send + Sync + 'static>(lock: Arc<L>, read: fn(&L), write: fn(&L)) -> Vec<Duration> {
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..READERS)
        .map(|_| {
            let (lock, stop) = (lock.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    read(&lock);
                    n += 1;
                }
                n
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(20));
    let mut waits = Vec::new();
    for _ in 0..WRITES {
        let t = Instant::now();
        write(&lock);
        waits.push(t.elapsed());
        std::thread::sleep(Duration::from_millis(2));
    }
    stop.store(true, Ordering::Relaxed);
    let reads: u64 = readers.into_iter().map(|h| h.join().expect("reader")).sum();
    assert!(
        reads > 100,
        "readers really flooded the lock: {reads} reads"
    );
    waits.sort();
    waits
}

fn report(name: &str, waits: &[Duration]) {
    let median = waits[waits.len() / 2];
    let max = waits[waits.len() - 1];
    eprintln!(
        "{name}: writer wait under {READERS} readers holding {HOLD:?} each: median {median:?}, max {max:?} over {} writes",
        waits.len()
    );
    // Bounded: a reader-preferring lock would starve the writer for as long as the
    // flood lasts (seconds here); a fair one admits it within a few read holds.
    assert!(
        max < Duration::from_millis(200),
        "{name}: writer waited {max:?}"
    );
}

#[test]
fn writer_gets_std_rwlock_within_bounded_time_under_reader_flood() {
    let waits = measure(
        Arc::new(std::sync::RwLock::new(0u64)),
        |l| {
            let g = l.read().expect("not poisoned");
            spin(HOLD);
            drop(g);
        },
        |l| *l.write().expect("not poisoned") += 1,
    );
    report("std::sync::RwLock", &waits);
}

#[test]
fn writer_gets_parking_lot_rwlock_within_bounded_time_under_reader_flood() {
    let waits = measure(
        Arc::new(parking_lot::RwLock::new(0u64)),
        |l| {
            let g = l.read();
            spin(HOLD);
            drop(g);
        },
        |l| *l.write() += 1,
    );
    report("parking_lot::RwLock", &waits);
}

/// A reader-preferring lock (readers enter whenever no writer holds it): the control that
/// shows the measurement can tell a fair lock from one that starves writers.
struct ReaderPreferring(std::sync::atomic::AtomicI64);

impl ReaderPreferring {
    fn read(&self) {
        loop {
            let s = self.0.load(Ordering::Acquire);
            if s >= 0
                && self
                    .0
                    .compare_exchange(s, s + 1, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            {
                return;
            }
            std::hint::spin_loop();
        }
    }

    fn read_unlock(&self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }

    /// Takes the write lock, giving up after `limit`; returns whether it got it.
    fn write(&self, limit: Duration) -> bool {
        let t = Instant::now();
        while t.elapsed() < limit {
            if self
                .0
                .compare_exchange(0, -1, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                self.0.store(0, Ordering::Release);
                return true;
            }
            std::thread::yield_now();
        }
        false
    }
}

#[test]
fn a_reader_preferring_lock_starves_its_writer_under_the_same_flood() {
    const LIMIT: Duration = Duration::from_millis(300);
    let waits = measure(
        Arc::new(ReaderPreferring(std::sync::atomic::AtomicI64::new(0))),
        |l| {
            l.read();
            spin(HOLD);
            l.read_unlock();
        },
        |l| {
            let _ = l.write(LIMIT);
        },
    );
    let max = waits[waits.len() - 1];
    let median = waits[waits.len() / 2];
    eprintln!(
        "reader-preferring control: writer wait median {median:?}, max {max:?} (gives up at {LIMIT:?})"
    );
    assert!(
        max >= Duration::from_millis(200),
        "the flood starves a writer that readers may overtake: max wait {max:?}"
    );
}
