#if canImport(Glibc)
import Glibc
#endif
import Foundation
import PeekCore

/// The durability stage after the engine's COMMIT: one thread that makes
/// committed batches durable and only then hands their outputs to the bus.
///
/// Why a stage of its own: the engine's work per batch is CPU (commands,
/// SQLite's B-trees, encoding) and the flush is the disk. Run in turns, each
/// waits for the other; here batch N+1 runs while batch N is flushed. And
/// when several batches are waiting, one sync covers them all (the WAL is
/// one sequential file), which is group commit a second time.
///
/// Order: batches are delivered in the order they were committed, and a
/// batch's outputs in the engine's order, so "deltas in seq order, then the
/// result" holds exactly as if the engine delivered them itself.
///
/// A failed sync means the kernel may have dropped pages the store believes
/// written: nothing committed since the last good sync can be vouched for,
/// and retrying fsync does not bring them back (PostgreSQL's fsync lesson).
/// The process stops without acknowledging them; on restart SQLite recovers
/// the WAL up to its last intact frame, and clients resend.
package final class CommitPipeline: Sendable {
    private let worker: SerialWorker<[EngineOutput]>

    /// Committed batches that may wait for the sync at once. A disk that
    /// stalls would otherwise let the engine commit on and pile up outputs
    /// (and WAL) without limit; at this bound the engine waits for the disk,
    /// and new work waits in its inbox, as it would without the pipeline.
    package static let maxBatchesAwaitingSync = 64

    package init(durability: any Durability, bus: any DeltaBus, metrics: EngineMetrics = EngineMetrics(),
         logger: ServerLog = ServerLog(format: .text), clock: any TimeSource = SystemTimeSource()) {
        // Every batch waiting when the thread wakes is covered by one sync.
        worker = SerialWorker(name: "peekd-sync", capacity: Self.maxBatchesAwaitingSync, whenFull: .wait) { taken in
            do {
                let started = clock.monotonicMicros()
                try durability.sync()
                metrics.add(metrics.walSyncs)
                metrics.add(metrics.walSyncMicros, clock.monotonicMicros() - started)
            } catch {
                logger.log(.error, "wal_sync_failed", "the write-ahead log could not be synced; stopping without acknowledging unsynced changes",
                           error: "\(error)")
                logger.flush()
                exit(70)  // EX_SOFTWARE
            }
            for outputs in taken { bus.deliver(outputs) }
        }
    }

    package func start() { worker.start() }

    /// Called by the engine after a COMMIT (or a rollback: error answers
    /// keep their place in the order). Blocks only at
    /// `maxBatchesAwaitingSync` (before `start`, batches just queue).
    package func enqueue(_ outputs: [EngineOutput]) {
        guard !outputs.isEmpty else { return }
        worker.submit(outputs)
    }

    /// Delivers what is queued, then ends the thread.
    package func stop() { worker.stop() }
}
