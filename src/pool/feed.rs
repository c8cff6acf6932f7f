//! The feed: jobs move from the caller's iterator into the queue only as the
//! queue drains, so a run holds a bounded backlog, not its whole batch.
//!
//! The supervisor tops the queue up to [`BACKLOG`] jobs; a worker that
//! leaves it at half of that or less rings the supervisor's bell, so the
//! queue refills long before it runs dry, even with no pacing at all.

use super::books::Books;
use super::queue::{Queue, Tracked};

/// The most untried jobs the queue holds at once. A few hundred bytes a
/// job: well under a megabyte, whatever the batch's size.
pub(super) const BACKLOG: usize = 1024;

/// What a [`Source`] gave when asked for a job.
pub(super) enum Pulled<T> {
    Job(T),
    /// None at hand now; more may come (a stream read on another thread).
    NotYet,
    /// No more jobs.
    Ended,
    /// No more jobs, and the run cannot be trusted to have them all: the
    /// message says why.
    Failed(String),
}

/// Where the feed's jobs come from: the caller's iterator pulled on the
/// supervisor's thread ([`OnCaller`]), or a stream read on a thread of its
/// own (`stream.rs`).
pub(super) trait Source {
    type Job;
    /// The next job, without blocking for one that is not at hand.
    fn pull(&mut self) -> Pulled<Self::Job>;
    /// Jobs never pulled (see [`Feed::left`]).
    fn left(&mut self) -> usize;
}

/// The caller's iterator, pulled on the supervisor's thread: an iterator
/// that blocks holds the supervisor with it.
pub(super) struct OnCaller<I>(pub(super) I);

impl<I: Iterator> Source for OnCaller<I> {
    type Job = I::Item;

    fn pull(&mut self) -> Pulled<I::Item> {
        self.0.next().map_or(Pulled::Ended, Pulled::Job)
    }

    /// From the iterator's size hint when it is exact; by counting them
    /// when it has an upper bound (a filter over a list); else its lower
    /// bound. An iterator without an upper bound may be endless (a stream
    /// of work) or block until its producer ends (a channel's): draining
    /// it could never return.
    fn left(&mut self) -> usize {
        match self.0.size_hint() {
            (low, Some(high)) if low == high => low,
            (_, Some(_)) => self.0.by_ref().count(),
            (low, None) => low,
        }
    }
}

/// The caller's jobs, pulled on demand.
pub(super) struct Feed<S> {
    jobs: S,
    /// Jobs moved into the queue so far.
    fed: usize,
    /// Whether the source has ended.
    done: bool,
    /// Whether it ended by failing (its jobs left may be counted).
    failed: bool,
    /// Why the source failed, until the supervisor takes it.
    failure: Option<String>,
}

impl<S: Source> Feed<S> {
    /// A feed of `jobs`; [`Feed::top_up`] starts it.
    pub(super) fn new(jobs: S) -> Feed<S> {
        Feed {
            jobs,
            fed: 0,
            done: false,
            failed: false,
            failure: None,
        }
    }

    /// Moves jobs into `queue` until it holds [`BACKLOG`], the source has
    /// none at hand or it ends, opening each in `books` first (so the books
    /// never read zero while a fed job is unfinished). Sets the queue's
    /// low-water mark.
    pub(super) fn top_up(&mut self, queue: &Queue<S::Job>, books: &Books) {
        if self.done {
            return;
        }
        let room = BACKLOG.saturating_sub(queue.len());
        for _ in 0..room {
            match self.jobs.pull() {
                Pulled::Job(job) => {
                    books.open_one();
                    self.fed += 1;
                    queue.push(Tracked::new(job));
                }
                Pulled::NotYet => break,
                Pulled::Ended => {
                    self.done = true;
                    break;
                }
                Pulled::Failed(why) => {
                    self.done = true;
                    self.failed = true;
                    self.failure = Some(why);
                    break;
                }
            }
        }
        queue.set_low_water(if self.done { 0 } else { BACKLOG / 2 });
    }

    /// Whether every job has been fed.
    pub(super) fn done(&self) -> bool {
        self.done
    }

    /// Whether the source was seen to its end (not failed): no job can
    /// be left in it.
    pub(super) fn seen_to_end(&self) -> bool {
        self.done && !self.failed
    }

    /// Why the source failed, once: the run must stop for it.
    pub(super) fn take_failure(&mut self) -> Option<String> {
        self.failure.take()
    }

    /// Jobs fed so far.
    pub(super) fn fed(&self) -> usize {
        self.fed
    }

    /// Jobs never fed (a stopped run leaves them), as far as the source
    /// can tell without blocking.
    pub(super) fn left(&mut self) -> usize {
        if self.done && !self.failed {
            return 0;
        }
        self.jobs.left()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_is_topped_up_to_the_backlog_and_no_further() {
        let queue = Queue::new();
        let books = Books::open(0);
        let mut feed = Feed::new(OnCaller(0..BACKLOG * 3));
        feed.top_up(&queue, &books);
        assert_eq!(
            (queue.len(), feed.fed(), feed.done()),
            (BACKLOG, BACKLOG, false)
        );
        assert!(!queue.running_low());
        feed.top_up(&queue, &books);
        assert_eq!(feed.fed(), BACKLOG, "a full queue takes nothing");
        assert_eq!(feed.left(), BACKLOG * 2);
        let mut feed = Feed::new(OnCaller((0..5).filter(|_| true)));
        feed.top_up(&Queue::new(), &books);
        assert!(feed.done());
        assert_eq!(feed.left(), 0);
        let mut feed = Feed::new(OnCaller((0..BACKLOG + 7).filter(|_| true)));
        feed.top_up(&Queue::new(), &books);
        assert_eq!(feed.left(), 7, "an inexact hint with a bound is counted");
        let mut endless = Feed::new(OnCaller((0u64..).filter(|_| true)));
        endless.top_up(&Queue::new(), &books);
        assert_eq!(endless.left(), 0, "not drained: it would never end");
    }
}
