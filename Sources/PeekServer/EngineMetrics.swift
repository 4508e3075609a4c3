import Synchronization

/// What the engine and its commit pipeline count for /metrics: one relaxed
/// atomic add per batch, commit, sync or rare event (never per delivery),
/// read by whichever loop answers /metrics.
final class EngineMetrics: Sendable {
    let batches = Atomic<Int>(0)
    /// Jobs run in those batches (batch size = jobs / batches).
    let batchJobs = Atomic<Int>(0)
    let commits = Atomic<Int>(0)
    let commitMicros = Atomic<Int>(0)
    /// The commit pipeline's fdatasync of the write-ahead log.
    let walSyncs = Atomic<Int>(0)
    let walSyncMicros = Atomic<Int>(0)
    /// Technician commands answered `result` in a batch that committed.
    let commandsAcknowledged = Atomic<Int>(0)
    let agentsOnline = Atomic<Int>(0)
    let mailSent = Atomic<Int>(0)
    let mailFailed = Atomic<Int>(0)

    func add(_ counter: borrowing Atomic<Int>, _ amount: Int = 1) { counter.add(amount, ordering: .relaxed) }
    func value(_ counter: borrowing Atomic<Int>) -> Int { counter.load(ordering: .relaxed) }
}
