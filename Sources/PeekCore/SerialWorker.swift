import Foundation

/// One named background thread that takes what it is handed, in order, and
/// runs `body` on it: the one lifecycle every long-lived background thread
/// of the server shares (the durability stage, the WAL checkpointer), so
/// start, back-pressure and stop are written and tested once.
///
/// `body` gets everything queued since it last ran, so a burst is handled
/// in one pass (one fsync for many batches, one checkpoint for many
/// commits). `stop` runs what is queued, then ends the thread, and waits
/// for that on a condition, not by polling.
///
/// What happens at `capacity` queued items is the owner's choice: `.wait`
/// blocks the submitter until the thread takes them (back-pressure: the
/// engine waits for the disk), `.coalesce` drops the new item because one
/// already queued covers it (a wake-up that must never block the writer).
/// Before `start`, items just queue.
public final class SerialWorker<Work>: @unchecked Sendable {
    public enum WhenFull: Sendable { case wait, coalesce }

    private let name: String
    private let capacity: Int
    private let whenFull: WhenFull
    private let body: ([Work]) -> Void
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var queued: [Work] = []
    private var running = false
    private var stopping = false
    private var stopped = false

    public init(name: String, capacity: Int = .max, whenFull: WhenFull = .wait, body: @escaping ([Work]) -> Void) {
        precondition(capacity > 0)
        self.name = name
        self.capacity = capacity
        self.whenFull = whenFull
        self.body = body
    }

    public func start() {
        condition.lock()
        running = true
        condition.unlock()
        let thread = Thread { [self] in run() }
        thread.name = name
        thread.start()
    }

    /// Safe from any thread. Blocks only with `.wait`, at `capacity`, while
    /// the thread runs and is not stopping.
    public func submit(_ work: Work) {
        condition.lock()
        defer { condition.unlock() }
        if queued.count >= capacity {
            if whenFull == .coalesce { return }
            while running && !stopping && queued.count >= capacity { condition.wait() }
        }
        queued.append(work)
        condition.broadcast()
    }

    /// True once `stop` was called: a long `body` checks it between steps.
    public var isStopping: Bool {
        condition.lock()
        defer { condition.unlock() }
        return stopping
    }

    /// Runs what is queued, then ends the thread; returns once it has.
    /// Without `start`, returns at once (nothing runs what was queued).
    public func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        while running && !stopped { condition.wait() }
        condition.unlock()
    }

    private func run() {
        while true {
            condition.lock()
            while queued.isEmpty && !stopping { condition.wait() }
            if queued.isEmpty {
                stopped = true
                condition.broadcast()
                condition.unlock()
                return
            }
            let taken = queued
            queued.removeAll(keepingCapacity: true)
            condition.broadcast()   // a submitter waiting at the bound may go on
            condition.unlock()
            body(taken)
        }
    }
}
