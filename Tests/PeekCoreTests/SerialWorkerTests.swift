import Foundation
import Synchronization
import XCTest
import PeekCore

/// The one background-thread lifecycle: order, batching, the two answers to
/// a full queue, and a stop that runs what is queued before it returns.
final class SerialWorkerTests: XCTestCase {
    func testRunsInOrder_andStopRunsWhatIsQueuedFirst() {
        let seen = Mutex<[Int]>([])
        let worker = SerialWorker<Int>(name: "test-worker") { batch in seen.withLock { $0 += batch } }
        for i in 0..<100 { worker.submit(i) }   // queued before start
        worker.start()
        for i in 100..<1000 { worker.submit(i) }
        worker.stop()
        XCTAssertEqual(seen.withLock { $0 }, Array(0..<1000), "stop returns after every queued item ran, in order")
    }

    func testCoalescing_neverBlocks_andDropsWhatAQueuedItemCovers() {
        let release = DispatchSemaphore(value: 0)
        let passes = Mutex(0)
        let worker = SerialWorker<Void>(name: "test-coalesce", capacity: 1, whenFull: .coalesce) { _ in
            passes.withLock { $0 += 1 }
            release.wait()
        }
        worker.start()
        worker.submit(())                          // taken at once; the pass blocks
        while passes.withLock({ $0 }) == 0 { Thread.sleep(forTimeInterval: 0.001) }
        for _ in 0..<50 { worker.submit(()) }      // one queued, 49 covered by it
        release.signal(); release.signal()
        worker.stop()
        XCTAssertEqual(passes.withLock { $0 }, 2)
    }

    func testWaitAtCapacity_holdsTheSubmitterUntilTheThreadTakesTheQueue() {
        let release = DispatchSemaphore(value: 0)
        let taken = Mutex<[Int]>([])
        let worker = SerialWorker<Int>(name: "test-wait", capacity: 2, whenFull: .wait) { batch in
            taken.withLock { $0 += batch }
            if batch == [0] { release.wait() }
        }
        worker.start()
        worker.submit(0)
        while taken.withLock({ $0 }).isEmpty { Thread.sleep(forTimeInterval: 0.001) }
        worker.submit(1); worker.submit(2)         // the queue is full now
        let third = DispatchSemaphore(value: 0)
        Thread { worker.submit(3); third.signal() }.start()
        XCTAssertEqual(third.wait(timeout: .now() + 0.3), .timedOut, "a full queue holds the submitter")
        release.signal()
        XCTAssertEqual(third.wait(timeout: .now() + 10), .success, "taking the queue lets it go on")
        worker.stop()
        XCTAssertEqual(taken.withLock { $0 }, [0, 1, 2, 3])
    }
}
