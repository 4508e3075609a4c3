import Foundation
import XCTest
import Synchronization
@testable import PeekEngine
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

    /// Issue 14: one tenant's flood held every worker and queue place, so
    /// another tenant's single job was refused, or ran after all of it. A
    /// tenant now holds at most its fair share, and waiting jobs are taken
    /// a tenant at a time in turn.
    func testWorkerPool_oneTenantFloods_refusedPastItsShare_otherTenantTakenAndRunNext() {
        let pool = WorkerPool(name: "test-fair", maxThreads: 1, queueCapacity: 31)
        let release = DispatchSemaphore(value: 0)
        let started = DispatchSemaphore(value: 0)
        let ran = Mutex<[String]>([])
        let done = DispatchSemaphore(value: 0)
        XCTAssertNil(pool.submit(tenant: "flood") { started.signal(); release.wait() })
        XCTAssertEqual(started.wait(timeout: .now() + 5), .success)
        var taken = 1
        var refused = 0
        for _ in 0..<40 {
            switch pool.submit(tenant: "flood", { ran.withLock { $0.append("flood") }; done.signal() }) {
            case nil: taken += 1
            case .overShare: refused += 1
            case .full: XCTFail("the pool filled up before the flooding tenant reached its share")
            }
        }
        // 32 places, one tenant holding them: half, with room kept for another.
        XCTAssertEqual(taken, FairShare.limit(capacity: 32, tenants: 1))
        XCTAssertEqual(taken, 16)
        XCTAssertEqual(refused, 40 - 15)
        XCTAssertNil(pool.submit(tenant: "quiet") { ran.withLock { $0.append("quiet") }; done.signal() },
                     "the other tenant's job is taken")
        release.signal()
        for _ in 0..<16 { XCTAssertEqual(done.wait(timeout: .now() + 5), .success) }
        // Tenants take turns: at most one more of the flood's jobs runs first.
        let quietAt = ran.withLock { $0 }.firstIndex(of: "quiet")
        XCTAssertNotNil(quietAt)
        XCTAssertLessThanOrEqual(quietAt ?? .max, 1, "the other tenant's job waited behind the flood")
        // Everything finished: the flooding tenant has its whole share again.
        let deadline = Date().addingTimeInterval(5)
        while !pool.isIdle && Date() < deadline { usleep(1_000) }
        XCTAssertTrue(pool.isIdle)
        for _ in 0..<16 { XCTAssertNil(pool.submit(tenant: "flood") { done.signal() }) }
        for _ in 0..<16 { XCTAssertEqual(done.wait(timeout: .now() + 5), .success) }
    }
}
