//! Background work in short slices: head cuts, compaction and searches share their thread
//! with the connections and the shard loop, whose acknowledgements must not wait behind them.
//!
//! A background task calls [`Slice::tick`] between units of work. Once the slice has run for
//! [`BACKGROUND_SLICE`], it gives way with [`yield_to_foreground`], which returns only after
//! the ring has been entered and its completions reaped: every task that was ready (or became
//! ready through a completion: a socket read, a WAL fsync) runs before the slice goes on. So
//! an acknowledgement waits for at most one slice per ring round trip.
//!
//! A plain re-scheduling yield (wake, then `Pending`) does not do that: monoio runs a task
//! that keeps re-queueing itself several times per round before it reaps completions, so a
//! cut of a few hundred milliseconds delayed every acknowledgement by as much (measured:
//! export p99 847 ms at half load, every request in flight stuck during each cut).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// How long a background task runs before it gives way, when not urgent.
pub const BACKGROUND_SLICE: Duration = Duration::from_micros(250);
/// How long an urgent background task (a head cut with memory nearly full) runs at most
/// before it gives way.
pub const BACKGROUND_SLICE_URGENT_MAX: Duration = Duration::from_millis(10);
const _: () = assert!(BACKGROUND_SLICE.as_nanos() < BACKGROUND_SLICE_URGENT_MAX.as_nanos());

/// The time budget of one background task between two yields.
pub(super) struct Slice {
    resumed: Instant,
}

impl Slice {
    pub(super) fn new() -> Slice {
        Slice {
            resumed: Instant::now(),
        }
    }

    /// Gives way to foreground work once the slice has run for [`BACKGROUND_SLICE`].
    pub(super) async fn tick(&mut self) {
        self.tick_urgent(0.0).await;
    }

    /// As [`Slice::tick`], for work whose `urgency` (0 to 1) says how close the shard is to
    /// refusing appends because it is not done: above 0 the slice grows, up to
    /// [`BACKGROUND_SLICE_URGENT_MAX`] at 1, so a head cut keeps up under full load.
    pub(super) async fn tick_urgent(&mut self, urgency: f64) {
        let ran = self.resumed.elapsed();
        let urgency = urgency.clamp(0.0, 1.0);
        let extra = (BACKGROUND_SLICE_URGENT_MAX - BACKGROUND_SLICE).mul_f64(urgency);
        if ran < BACKGROUND_SLICE + extra {
            return;
        }
        yield_to_foreground().await;
        self.resumed = Instant::now();
    }
}

thread_local! {
    /// `/dev/zero`, read one byte at a time by [`yield_to_foreground`]; `None` when it could
    /// not be opened (then the yield is a plain re-schedule).
    static ZERO: RefCell<Option<Option<Rc<monoio::fs::File>>>> = const { RefCell::new(None) };
}

fn zero_file() -> Option<Rc<monoio::fs::File>> {
    ZERO.with(|zero| {
        zero.borrow_mut()
            .get_or_insert_with(|| {
                let file = std::fs::File::open("/dev/zero")
                    .and_then(monoio::fs::File::from_std)
                    .map(Rc::new);
                if let Err(err) = &file {
                    log::warn!("cannot open /dev/zero for background yields: {err}");
                }
                file.ok()
            })
            .clone()
    })
}

/// Returns after a trip through the ring: a one-byte read of `/dev/zero` completes at once,
/// but its completion is reaped only when the runtime enters the ring, after the tasks that
/// were ready have run.
pub(super) async fn yield_to_foreground() {
    match zero_file() {
        Some(file) => {
            let (_, _) = file.read_at(Vec::with_capacity(1), 0).await;
        }
        None => yield_now().await,
    }
}

/// Gives the other tasks of this thread a turn (without reaping completions: see the module
/// documentation for why background work uses [`yield_to_foreground`] instead).
pub(super) async fn yield_now() {
    struct YieldNow(bool);
    impl std::future::Future for YieldNow {
        type Output = ();
        fn poll(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<()> {
            if self.0 {
                return std::task::Poll::Ready(());
            }
            self.0 = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    }
    YieldNow(false).await;
}
