//! The in-memory evaluation broker: ready and delayed evaluations, one evaluation per job at a time.
//!
//! Persisted evaluations are the source of truth; the broker is only the order in which they are worked
//! on, rebuilt from the store on start.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use bh_models::Evaluation;
use tokio::sync::Notify;

/// An evaluation handed to a worker, with queued duplicates (same job, same trigger) that the worker
/// deletes along with it because one run of the scheduler answers them all.
#[derive(Debug, Clone)]
pub(crate) struct Lease {
    pub eval: Evaluation,
    pub duplicates: Vec<Evaluation>,
}

impl Lease {
    /// IDs of the leased evaluation and its duplicates.
    pub fn eval_ids(&self) -> Vec<String> {
        std::iter::once(self.eval.id.clone())
            .chain(self.duplicates.iter().map(|e| e.id.clone()))
            .collect()
    }
}

#[derive(Debug, Default)]
struct BrokerState {
    ready: VecDeque<Evaluation>,
    delayed: Vec<Evaluation>,
    /// Jobs that a worker is evaluating now.
    in_flight: HashSet<String>,
    /// Evaluations queued or leased, so that the same evaluation is never queued twice.
    known: HashSet<String>,
}

/// Queue of evaluations waiting for a worker.
#[derive(Debug, Default)]
pub(crate) struct EvalBroker {
    state: Mutex<BrokerState>,
    /// Woken when an evaluation may have become available.
    pub ready_notify: Notify,
    /// Woken when the set of delayed evaluations changed (the timer re-reads the earliest due time).
    pub delayed_notify: Notify,
}

impl EvalBroker {
    fn lock(&self) -> std::sync::MutexGuard<'_, BrokerState> {
        // A panic while holding the lock leaves plain collections behind; they stay usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `eval`; it waits until `now` reaches its WaitUntil. An evaluation already known is ignored.
    pub fn enqueue(&self, eval: Evaluation, now: i64) {
        let mut st = self.lock();
        if !st.known.insert(eval.id.clone()) {
            return;
        }
        if eval.wait_until > now {
            st.delayed.push(eval);
            drop(st);
            self.delayed_notify.notify_one();
        } else {
            st.ready.push_back(eval);
            drop(st);
            self.ready_notify.notify_waiters();
            self.ready_notify.notify_one();
        }
    }

    /// Moves delayed evaluations whose time has come to the ready queue; returns how many moved.
    pub fn release_due(&self, now: i64) -> usize {
        let mut st = self.lock();
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut st.delayed)
            .into_iter()
            .partition(|e| e.wait_until <= now);
        st.delayed = later;
        let moved = due.len();
        st.ready.extend(due);
        drop(st);
        if moved > 0 {
            self.ready_notify.notify_waiters();
            self.ready_notify.notify_one();
        }
        moved
    }

    /// The earliest WaitUntil among delayed evaluations.
    pub fn next_due(&self) -> Option<i64> {
        self.lock().delayed.iter().map(|e| e.wait_until).min()
    }

    /// Takes the first ready evaluation whose job no worker holds, with its queued duplicates.
    pub fn dequeue(&self) -> Option<Lease> {
        let mut st = self.lock();
        let pos = st
            .ready
            .iter()
            .position(|e| !st.in_flight.contains(&e.job_id))?;
        let eval = st.ready.remove(pos)?;
        let mut duplicates = Vec::new();
        let mut rest = VecDeque::with_capacity(st.ready.len());
        for other in std::mem::take(&mut st.ready) {
            if other.job_id == eval.job_id && other.triggered_by == eval.triggered_by {
                duplicates.push(other);
            } else {
                rest.push_back(other);
            }
        }
        st.ready = rest;
        st.in_flight.insert(eval.job_id.clone());
        Some(Lease { eval, duplicates })
    }

    /// A worker is done with `lease`: its job may be evaluated again.
    pub fn finish(&self, lease: &Lease) {
        let mut st = self.lock();
        st.in_flight.remove(&lease.eval.job_id);
        for id in lease.eval_ids() {
            st.known.remove(&id);
        }
        drop(st);
        self.ready_notify.notify_waiters();
        self.ready_notify.notify_one();
    }

    /// A worker could not finish `lease` (store failure): the evaluations wait until `retry_at`.
    pub fn retry_later(&self, lease: Lease, retry_at: i64) {
        let mut st = self.lock();
        st.in_flight.remove(&lease.eval.job_id);
        let mut eval = lease.eval;
        eval.wait_until = retry_at;
        st.delayed.push(eval);
        for mut dup in lease.duplicates {
            dup.wait_until = retry_at;
            st.delayed.push(dup);
        }
        drop(st);
        self.delayed_notify.notify_one();
    }

    /// Whether an evaluation of `job_id` with trigger `triggered_by` waits (ready or delayed, not leased).
    pub fn has_queued(&self, job_id: &str, triggered_by: &str) -> bool {
        let st = self.lock();
        st.ready
            .iter()
            .chain(st.delayed.iter())
            .any(|e| e.job_id == job_id && e.triggered_by == triggered_by)
    }

    /// Number of ready evaluations plus leased jobs (work that `process_pending` would still do now).
    pub fn ready_len(&self) -> usize {
        self.lock().ready.len()
    }

    /// Number of delayed evaluations.
    pub fn delayed_len(&self) -> usize {
        self.lock().delayed.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(id: &str, job: &str, trigger: &str, wait_until: i64) -> Evaluation {
        Evaluation {
            id: id.into(),
            job_id: job.into(),
            triggered_by: trigger.into(),
            wait_until,
            ..Default::default()
        }
    }

    #[test]
    fn one_eval_per_job_and_duplicates_coalesce() {
        let b = EvalBroker::default();
        b.enqueue(eval("v1", "j1", "exec-update", 0), 10);
        b.enqueue(eval("v2", "j1", "exec-update", 0), 10);
        b.enqueue(eval("v3", "j1", "job-cancel", 0), 10);
        b.enqueue(eval("v4", "j2", "job-register", 0), 10);
        b.enqueue(eval("v1", "j1", "exec-update", 0), 10);
        let first = b.dequeue().unwrap();
        assert_eq!(first.eval_ids(), vec!["v1", "v2"]);
        let second = b.dequeue().unwrap();
        assert_eq!(second.eval.id, "v4");
        assert!(b.dequeue().is_none(), "j1 is in flight");
        b.finish(&first);
        assert_eq!(b.dequeue().unwrap().eval.id, "v3");
    }

    #[test]
    fn delayed_evals_wait_for_the_clock() {
        let b = EvalBroker::default();
        b.enqueue(eval("v1", "j1", "job-queue", 100), 10);
        assert!(b.dequeue().is_none());
        assert_eq!(b.next_due(), Some(100));
        assert_eq!(b.release_due(99), 0);
        assert_eq!(b.release_due(100), 1);
        assert_eq!(b.dequeue().unwrap().eval.id, "v1");
    }
}
