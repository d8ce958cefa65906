//! The requests one connection is running, polled by the connection's own task.
//!
//! A request that cannot be answered at once (a held `event` read) waits here instead of in a
//! tokio task of its own. Each slot has a waker that records the slot in a shared ready list
//! and wakes the connection's task, so when one registry change wakes thousands of reads, each
//! connection is scheduled once and answers all of its woken reads in one pass and one write.
//! Removing a slot drops its future at once, which is what Tflush and the end of a connection
//! need (a dropped `event` read frees its fid for the next read immediately).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use futures_util::task::AtomicWaker;

use super::FsError;
use super::conn::lock;
use crate::styx::msg::Body;

/// A request's work: its reply body or the error to answer with.
pub(super) type Work = Pin<Box<dyn Future<Output = Result<Body, FsError>> + Send>>;

/// Slots whose futures were woken, and the connection task to wake for them.
#[derive(Default)]
struct ReadyList {
    slots: Mutex<Vec<usize>>,
    task: AtomicWaker,
}

/// The waker of one slot.
struct SlotWaker {
    slot: usize,
    /// Already in the ready list: a second wake need not add it again.
    queued: AtomicBool,
    ready: Arc<ReadyList>,
}

impl Wake for SlotWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            lock(&self.ready.slots).push(self.slot);
            self.ready.task.wake();
        }
    }
}

struct Slot {
    waker: Arc<SlotWaker>,
    job: Option<(u16, Work)>,
}

/// The running requests of one connection, by tag.
#[derive(Default)]
pub(super) struct Tasks {
    slots: Vec<Slot>,
    free: Vec<usize>,
    by_tag: HashMap<u16, usize>,
    ready: Arc<ReadyList>,
    /// Scratch for [`Tasks::poll_ready`], kept to save an allocation per pass.
    woken: Vec<usize>,
}

impl Tasks {
    /// Runs `work` for `tag` until it first waits: returns its result if it finished, else
    /// keeps it to be polled again when it is woken.
    pub(super) fn start(
        &mut self,
        tag: u16,
        mut work: Work,
    ) -> Option<(u16, Result<Body, FsError>)> {
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                let slot = self.slots.len();
                self.slots.push(Slot {
                    waker: Arc::new(SlotWaker {
                        slot,
                        queued: AtomicBool::new(false),
                        ready: self.ready.clone(),
                    }),
                    job: None,
                });
                slot
            }
        };
        let waker = Waker::from(self.slots[slot].waker.clone());
        match work.as_mut().poll(&mut Context::from_waker(&waker)) {
            Poll::Ready(r) => {
                self.free.push(slot);
                Some((tag, r))
            }
            Poll::Pending => {
                self.slots[slot].job = Some((tag, work));
                self.by_tag.insert(tag, slot);
                None
            }
        }
    }

    /// Drops the request under `tag`, if it is still waiting.
    pub(super) fn cancel(&mut self, tag: u16) {
        if let Some(slot) = self.by_tag.remove(&tag) {
            self.slots[slot].job = None;
            self.free.push(slot);
        }
    }

    /// Drops every waiting request.
    pub(super) fn clear(&mut self) {
        for slot in self.by_tag.drain().map(|(_, s)| s) {
            self.slots[slot].job = None;
            self.free.push(slot);
        }
    }

    /// Polls the woken requests, passing each finished one's result to `done`. Registers `cx`
    /// to be woken when more are.
    pub(super) fn poll_ready(
        &mut self,
        cx: &mut Context<'_>,
        mut done: impl FnMut(u16, Result<Body, FsError>),
    ) -> bool {
        self.ready.task.register(cx.waker());
        let mut woken = std::mem::take(&mut self.woken);
        std::mem::swap(&mut woken, &mut *lock(&self.ready.slots));
        let any = !woken.is_empty();
        for &slot in &woken {
            let Some(s) = self.slots.get_mut(slot) else {
                continue;
            };
            // Cleared before the poll, so a wake during it queues the slot again.
            s.waker.queued.store(false, Ordering::Release);
            let Some((tag, work)) = s.job.as_mut() else {
                continue;
            };
            let tag = *tag;
            let waker = Waker::from(s.waker.clone());
            if let Poll::Ready(r) = work.as_mut().poll(&mut Context::from_waker(&waker)) {
                s.job = None;
                self.by_tag.remove(&tag);
                self.free.push(slot);
                done(tag, r);
            }
        }
        woken.clear();
        self.woken = woken;
        any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use tokio::sync::oneshot;

    /// Counts its drops, so the tests can see when a future is gone.
    struct Dropped(Arc<AtomicUsize>);

    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn waiting(rx: oneshot::Receiver<u32>, drops: &Arc<AtomicUsize>) -> Work {
        let guard = Dropped(drops.clone());
        Box::pin(async move {
            let _guard = guard;
            let count = rx.await.unwrap_or(0);
            Ok(Body::Rwrite { count })
        })
    }

    fn noop_cx() -> Context<'static> {
        Context::from_waker(Waker::noop())
    }

    #[test]
    fn a_request_done_at_once_is_not_kept() {
        let mut tasks = Tasks::default();
        let r = tasks.start(3, Box::pin(async { Ok(Body::Rclunk) }));
        assert_eq!(r, Some((3, Ok(Body::Rclunk))));
        assert!(tasks.by_tag.is_empty());
        assert_eq!(tasks.free, [0]);
    }

    #[test]
    fn a_woken_request_is_polled_and_answered() {
        let drops = Arc::new(AtomicUsize::new(0));
        let mut tasks = Tasks::default();
        let (tx1, rx1) = oneshot::channel();
        let (_tx2, rx2) = oneshot::channel();
        assert_eq!(tasks.start(1, waiting(rx1, &drops)), None);
        assert_eq!(tasks.start(2, waiting(rx2, &drops)), None);
        let mut done = Vec::new();
        assert!(!tasks.poll_ready(&mut noop_cx(), |t, r| done.push((t, r))));
        tx1.send(5).unwrap();
        assert!(tasks.poll_ready(&mut noop_cx(), |t, r| done.push((t, r))));
        assert_eq!(done, [(1, Ok(Body::Rwrite { count: 5 }))]);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        // The freed slot serves the next request.
        let (_tx3, rx3) = oneshot::channel();
        assert_eq!(tasks.start(3, waiting(rx3, &drops)), None);
        assert_eq!(tasks.slots.len(), 2);
    }

    #[test]
    fn cancel_and_clear_drop_the_futures_at_once() {
        let drops = Arc::new(AtomicUsize::new(0));
        let mut tasks = Tasks::default();
        let (tx1, rx1) = oneshot::channel();
        let (_tx2, rx2) = oneshot::channel();
        let (_tx3, rx3) = oneshot::channel();
        tasks.start(1, waiting(rx1, &drops));
        tasks.start(2, waiting(rx2, &drops));
        tasks.start(3, waiting(rx3, &drops));
        tasks.cancel(1);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        // A wake of the cancelled request finds nothing to poll.
        let _ = tx1.send(1);
        let mut done = Vec::new();
        tasks.poll_ready(&mut noop_cx(), |t, r| done.push((t, r)));
        assert!(done.is_empty());
        tasks.clear();
        assert_eq!(drops.load(Ordering::SeqCst), 3);
        assert!(tasks.by_tag.is_empty());
    }
}
