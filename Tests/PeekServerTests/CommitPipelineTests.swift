import Foundation
import Synchronization
import XCTest
import PeekCore
import PeekStore
@testable import PeekEngine
@testable import PeekServer

/// The durability stage without sockets: outputs leave only after a sync,
/// in commit order, and a stalled disk holds the engine at the bound.
final class CommitPipelineTests: XCTestCase {
    /// A disk whose syncs wait until the test lets them through.
    private final class GatedDisk: Durability, @unchecked Sendable {
        let gate = DispatchSemaphore(value: 0)
        let syncs = Atomic<Int>(0)
        func sync() throws(StoreError) {
            gate.wait()
            syncs.add(1, ordering: .relaxed)
        }
    }

    private final class RecordingBus: DeltaBus, @unchecked Sendable {
        let delivered = Mutex<[UInt64]>([])
        func deliver(_ outputs: [EngineOutput]) {
            for case .send(let peer, _) in outputs { delivered.withLock { $0.append(peer.id) } }
        }
    }

    private func batch(_ n: UInt64) -> [EngineOutput] { [.send(Peer(loop: 0, id: n), [])] }

    private func waitUntil(_ condition: () -> Bool) {
        let deadline = Date().addingTimeInterval(10)
        while !condition() && Date() < deadline { Thread.sleep(forTimeInterval: 0.005) }
    }

    func testStalledDisk_nothingDeliveredBeforeTheSync_andTheEngineWaitsAtTheBound() {
        let disk = GatedDisk()
        let bus = RecordingBus()
        let pipeline = CommitPipeline(durability: disk, bus: bus)
        pipeline.start()

        pipeline.enqueue(batch(0))                 // taken at once; its sync is held
        Thread.sleep(forTimeInterval: 0.05)        // let the thread take batch 0 and reach the gate
        for n in 1...UInt64(CommitPipeline.maxBatchesAwaitingSync) { pipeline.enqueue(batch(n)) }
        XCTAssertEqual(bus.delivered.withLock { $0 }, [], "nothing leaves before its sync")

        // One more than the bound: the engine must wait for the disk.
        let overflowEnqueued = Atomic<Bool>(false)
        let overflow = batch(1_000)
        let engine = Thread {
            pipeline.enqueue(overflow)
            overflowEnqueued.store(true, ordering: .relaxed)
        }
        engine.start()
        Thread.sleep(forTimeInterval: 0.2)
        XCTAssertFalse(overflowEnqueued.load(ordering: .relaxed), "enqueued past the bound while the disk stalled")

        for _ in 0..<3 { disk.gate.signal() }      // the held sync, the backlog's, the last one's
        waitUntil { overflowEnqueued.load(ordering: .relaxed) && bus.delivered.withLock { $0.count } == 66 }
        XCTAssertTrue(overflowEnqueued.load(ordering: .relaxed))
        let expected = [UInt64](0...UInt64(CommitPipeline.maxBatchesAwaitingSync)) + [1_000]
        XCTAssertEqual(bus.delivered.withLock { $0 }, expected, "delivered in commit order")
        for _ in 0..<10 { disk.gate.signal() }
        pipeline.stop()
    }
}
