import Synchronization

/// What the engine and its commit pipeline count for /metrics: one relaxed
/// atomic add per batch, commit, sync or rare event (never per delivery),
/// read by whichever loop answers /metrics.
package final class EngineMetrics: Sendable {
    package let batches = Atomic<Int>(0)
    /// Jobs run in those batches (batch size = jobs / batches).
    package let batchJobs = Atomic<Int>(0)
    package let commits = Atomic<Int>(0)
    package let commitMicros = Atomic<Int>(0)
    /// The commit pipeline's fdatasync of the write-ahead log.
    package let walSyncs = Atomic<Int>(0)
    package let walSyncMicros = Atomic<Int>(0)
    /// Technician commands answered `result` in a batch that committed.
    package let commandsAcknowledged = Atomic<Int>(0)
    package let agentsOnline = Atomic<Int>(0)
    package let mailSent = Atomic<Int>(0)
    package let mailFailed = Atomic<Int>(0)

    package func add(_ counter: borrowing Atomic<Int>, _ amount: Int = 1) { counter.add(amount, ordering: .relaxed) }
    package func value(_ counter: borrowing Atomic<Int>) -> Int { counter.load(ordering: .relaxed) }
}
