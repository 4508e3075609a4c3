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
package final class WorkerPool: Sendable {
    package typealias Job = @Sendable () -> Void

    /// Why `submit` did not take a job.
    package enum Refusal: Error, Equatable {
        /// `queueCapacity` jobs are already waiting.
        case full
        /// The job's tenant already holds its fair share of the pool.
        case overShare
    }

    /// One tenant's jobs. A taken job's slot is set to nil at once, so its
    /// captures (a 25 MiB message) are freed when it ends, not at compaction.
    private struct Lane {
        var waiting: [Job?] = []
        /// Index of the oldest waiting job: taking one is O(1); the array is
        /// compacted when the consumed prefix is half of it.
        var head = 0
        /// Waiting or running: what the lane's share is judged by.
        var admitted = 0
        var waitingCount: Int { waiting.count - head }

        mutating func take() -> Job {
            let job = waiting[head]!
            waiting[head] = nil
            head += 1
            if head == waiting.count {
                waiting.removeAll(keepingCapacity: false)
                head = 0
            } else if head * 2 >= waiting.count {
                waiting.removeFirst(head)
                head = 0
            }
            return job
        }
    }

    private struct State {
        var lanes: [String: Lane] = [:]
        /// Lanes with jobs waiting, served in turn: one job from each before
        /// a second from any, so a tenant that queued many does not make
        /// another's single job wait behind all of them.
        var turns: [String] = []
        var nextTurn = 0
        var waitingCount = 0
        var workers = 0
    }

    package let name: String
    package let maxThreads: Int
    package let queueCapacity: Int
    private let state = Mutex(State())

    package init(name: String, maxThreads: Int, queueCapacity: Int) {
        precondition(maxThreads > 0 && queueCapacity >= 0)
        self.name = name
        self.maxThreads = maxThreads
        self.queueCapacity = queueCapacity
    }

    /// Queues `job`, or says why not (and queues nothing). Safe from any
    /// thread. `tenant`: whose fair share of the pool's places (threads plus
    /// queue) the job counts against while it waits or runs (`FairShare`);
    /// nil for work that is nobody's in particular, bounded only by the queue.
    package func submit(tenant: String?, _ job: @escaping Job) -> Refusal? {
        let lane = tenant ?? ""
        let (refusal, startWorker) = state.withLock { s -> (Refusal?, Bool) in
            // A job that a free worker takes at once never counts as waiting.
            let free = s.workers < maxThreads
            guard free || s.waitingCount < queueCapacity else { return (.full, false) }
            let mine = s.lanes[lane]?.admitted ?? 0
            if tenant != nil {
                let tenants = s.lanes.count + (mine == 0 ? 1 : 0)
                let places = queueCapacity >= Int.max - maxThreads ? Int.max : queueCapacity + maxThreads
                guard mine < FairShare.limit(capacity: places, tenants: tenants) else { return (.overShare, false) }
            }
            if s.lanes[lane, default: Lane()].waitingCount == 0 { s.turns.append(lane) }
            s.lanes[lane, default: Lane()].waiting.append(job)
            s.lanes[lane]!.admitted += 1
            s.waitingCount += 1
            guard free else { return (nil, false) }
            s.workers += 1
            return (nil, true)
        }
        if startWorker {
            let thread = Thread { [self] in runWorker() }
            thread.name = name
            thread.start()
        }
        return refusal
    }

    /// `submit(tenant: nil, job)`, true when queued.
    package func submit(_ job: @escaping Job) -> Bool { submit(tenant: nil, job) == nil }

    /// Jobs waiting for a worker (for tests and metrics).
    package var waitingJobs: Int { state.withLock { $0.waitingCount } }

    /// No job waiting or running, and every share free (for tests: a job
    /// has signalled its end before its worker counts it finished).
    package var isIdle: Bool { state.withLock { $0.workers == 0 && $0.lanes.isEmpty } }

    /// Runs jobs, a lane at a time in turn, until none is left, then ends;
    /// the count drops under the same lock that found the queue empty, so a
    /// job queued meanwhile always finds a worker.
    private func runWorker() {
        var finished: String?
        while true {
            let next = state.withLock { s -> (String, Job)? in
                if let lane = finished {
                    s.lanes[lane]!.admitted -= 1
                    if s.lanes[lane]!.admitted == 0 { s.lanes[lane] = nil }
                }
                guard s.waitingCount > 0 else {
                    s.workers -= 1
                    return nil
                }
                if s.nextTurn >= s.turns.count { s.nextTurn = 0 }
                let lane = s.turns[s.nextTurn]
                let job = s.lanes[lane]!.take()
                s.waitingCount -= 1
                if s.lanes[lane]!.waitingCount == 0 {
                    s.turns.remove(at: s.nextTurn)
                } else {
                    s.nextTurn += 1
                }
                return (lane, job)
            }
            guard let (lane, job) = next else { return }
            job()
            finished = lane
        }
    }
}

/// The fair-share rule every shared queue uses (the engine's backlog, the
/// mail and file workers, replies in flight): while `tenants` tenants
/// (the asking one included) hold places, each may hold at most an even
/// split of `capacity` with one share kept free for a tenant that holds
/// none yet, so the others' floods leave it room. A single flooding tenant
/// thus holds at most half; with two, a third each. Never below `minimum`
/// (or the whole capacity, if smaller), so each of many busy tenants still
/// gets a few places; the capacity itself bounds the sum.
package enum FairShare {
    package static let minimum = 8

    package static func limit(capacity: Int, tenants: Int) -> Int {
        max(capacity / (tenants + 1), min(capacity, minimum))
    }
}
