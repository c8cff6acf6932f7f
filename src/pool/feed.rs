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

/// The caller's jobs, pulled on demand.
pub(super) struct Feed<I> {
    jobs: I,
    /// Jobs moved into the queue so far.
    fed: usize,
    /// Whether the iterator has ended.
    done: bool,
}

impl<I: Iterator> Feed<I> {
    /// A feed of `jobs`; [`Feed::top_up`] starts it.
    pub(super) fn new(jobs: I) -> Feed<I> {
        Feed {
            jobs,
            fed: 0,
            done: false,
        }
    }

    /// Moves jobs into `queue` until it holds [`BACKLOG`] or the iterator
    /// ends, opening each in `books` first (so the books never read zero
    /// while a fed job is unfinished). Sets the queue's low-water mark.
    pub(super) fn top_up(&mut self, queue: &Queue<I::Item>, books: &Books) {
        if self.done {
            return;
        }
        let room = BACKLOG.saturating_sub(queue.len());
        for _ in 0..room {
            let Some(job) = self.jobs.next() else {
                self.done = true;
                break;
            };
            books.open_one();
            self.fed += 1;
            queue.push(Tracked::new(job));
        }
        queue.set_low_water(if self.done { 0 } else { BACKLOG / 2 });
    }

    /// Whether every job has been fed.
    pub(super) fn done(&self) -> bool {
        self.done
    }

    /// Jobs fed so far.
    pub(super) fn fed(&self) -> usize {
        self.fed
    }

    /// Jobs never fed (a stopped run leaves them): from the iterator's size
    /// hint when it is exact; by counting them when it has an upper bound
    /// (a filter over a list); else its lower bound. An iterator without an
    /// upper bound may be endless (a stream of work) or block until its
    /// producer ends (a channel's): draining it could never return.
    pub(super) fn left(&mut self) -> usize {
        if self.done {
            return 0;
        }
        match self.jobs.size_hint() {
            (low, Some(high)) if low == high => low,
            (_, Some(_)) => self.jobs.by_ref().count(),
            (low, None) => low,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_is_topped_up_to_the_backlog_and_no_further() {
        let queue = Queue::new();
        let books = Books::open(0);
        let mut feed = Feed::new(0..BACKLOG * 3);
        feed.top_up(&queue, &books);
        assert_eq!(
            (queue.len(), feed.fed(), feed.done()),
            (BACKLOG, BACKLOG, false)
        );
        assert!(!queue.running_low());
        feed.top_up(&queue, &books);
        assert_eq!(feed.fed(), BACKLOG, "a full queue takes nothing");
        assert_eq!(feed.left(), BACKLOG * 2);
        let mut feed = Feed::new((0..5).filter(|_| true));
        feed.top_up(&Queue::new(), &books);
        assert!(feed.done());
        assert_eq!(feed.left(), 0);
        let mut feed = Feed::new((0..BACKLOG + 7).filter(|_| true));
        feed.top_up(&Queue::new(), &books);
        assert_eq!(feed.left(), 7, "an inexact hint with a bound is counted");
        let mut endless = Feed::new((0u64..).filter(|_| true));
        endless.top_up(&Queue::new(), &books);
        assert_eq!(endless.left(), 0, "not drained: it would never end");
    }
}
