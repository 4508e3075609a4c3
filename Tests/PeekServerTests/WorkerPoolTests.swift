import Foundation
import XCTest
import Synchronization
@testable import PeekServer

/// The bounded pool behind the mail and file workers and SMTP: at most
/// `maxThreads` jobs run at once, at most `queueCapacity` wait, the rest is
/// refused (never queued), and waiting jobs run in the order they came.
final class WorkerPoolTests: XCTestCase {
    func testWorkerPool_busyThreadsAndFullQueue_refusesThenRunsTheWaitingInOrder() {
        let pool = WorkerPool(name: "test-pool", maxThreads: 1, queueCapacity: 2)
        let release = DispatchSemaphore(value: 0)
        let started = DispatchSemaphore(value: 0)
        let ran = Mutex<[Int]>([])
        let done = DispatchSemaphore(value: 0)
        XCTAssertTrue(pool.submit { started.signal(); release.wait(); ran.withLock { $0.append(0) } })
        XCTAssertEqual(started.wait(timeout: .now() + 5), .success)
        for i in 1...2 { XCTAssertTrue(pool.submit { ran.withLock { $0.append(i) }; done.signal() }) }
        XCTAssertEqual(pool.waitingJobs, 2)
        XCTAssertFalse(pool.submit { XCTFail("a job past the queue's capacity ran") }, "the third waiting job must be refused")
        release.signal()
        for _ in 1...2 { XCTAssertEqual(done.wait(timeout: .now() + 5), .success) }
        XCTAssertEqual(ran.withLock { $0 }, [0, 1, 2])
        XCTAssertEqual(pool.waitingJobs, 0)
        // Idle again: a new job finds a worker.
        XCTAssertTrue(pool.submit { done.signal() })
        XCTAssertEqual(done.wait(timeout: .now() + 5), .success)
    }
}
