import Foundation
import Synchronization

/// Up to `maxThreads` threads working through a bounded FIFO of jobs: the
/// place for work that must not run on an event loop (it blocks or takes
/// long) nor on the engine thread (which commits every tenant's changes).
/// Parsing inbound mail, hashing and writing attachment files, and reading
/// them for downloads run here, so one slow or hostile input holds one
/// worker, never the engine, and the other workers keep going.
///
/// Threads start when work arrives and end when none is left, so an idle
/// pool holds no thread. The queue is bounded: `submit` refuses a job when
/// `queueCapacity` jobs are already waiting, and the caller answers that
/// refusal (429 `rate_limited`) instead of queueing without limit.
final class WorkerPool: Sendable {
    typealias Job = @Sendable () -> Void

    private struct State {
        /// A taken job's slot is set to nil at once, so its captures (a
        /// 25 MiB message) are freed when it ends, not at compaction.
        var waiting: [Job?] = []
        /// Index of the oldest waiting job: taking one is O(1); the array
        /// is compacted when the consumed prefix is half of it.
        var head = 0
        var workers = 0
        var waitingCount: Int { waiting.count - head }
    }

    let name: String
    let maxThreads: Int
    let queueCapacity: Int
    private let state = Mutex(State())

    init(name: String, maxThreads: Int, queueCapacity: Int) {
        precondition(maxThreads > 0 && queueCapacity >= 0)
        self.name = name
        self.maxThreads = maxThreads
        self.queueCapacity = queueCapacity
    }

    /// Queues `job`; false (and nothing queued) when the queue is full.
    /// Safe from any thread.
    func submit(_ job: @escaping Job) -> Bool {
        let (accepted, startWorker) = state.withLock { s -> (Bool, Bool) in
            // A job that a free worker takes at once never counts as waiting.
            let free = s.workers < maxThreads
            guard free || s.waitingCount < queueCapacity else { return (false, false) }
            s.waiting.append(job)
            guard free else { return (true, false) }
            s.workers += 1
            return (true, true)
        }
        if startWorker {
            let thread = Thread { [self] in runWorker() }
            thread.name = name
            thread.start()
        }
        return accepted
    }

    /// Jobs waiting for a worker (for tests and metrics).
    var waitingJobs: Int { state.withLock { $0.waitingCount } }

    /// Runs jobs in order until none is left, then ends; the count drops
    /// under the same lock that found the queue empty, so a job queued
    /// meanwhile always finds a worker.
    private func runWorker() {
        while true {
            let next = state.withLock { s -> Job? in
                guard s.waitingCount > 0 else {
                    s.workers -= 1
                    s.waiting.removeAll(keepingCapacity: false)
                    s.head = 0
                    return nil
                }
                let job = s.waiting[s.head]
                s.waiting[s.head] = nil
                s.head += 1
                if s.head * 2 >= s.waiting.count {
                    s.waiting.removeFirst(s.head)
                    s.head = 0
                }
                return job
            }
            guard let next else { return }
            next()
        }
    }
}
