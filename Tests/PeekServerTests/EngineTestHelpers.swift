import Foundation
import XCTest
@testable import PeekServer
import PeekTestSupport

extension TestServer {
    /// Holds the engine thread, as a long batch would, until the returned
    /// semaphore is signalled; returns once the engine is held. Whatever
    /// arrives meanwhile is taken as one batch when it is released.
    func holdEngine(file: StaticString = #filePath, line: UInt = #line) throws -> DispatchSemaphore {
        let release = DispatchSemaphore(value: 0)
        let holding = DispatchSemaphore(value: 0)
        let engine = try XCTUnwrap(server.engine, file: file, line: line)
        // Never held for good: a test that throws before it signals must
        // not leave `stop()` waiting on the engine forever.
        engine.submit(.run { _ in holding.signal(); _ = release.wait(timeout: .now() + 30) })
        XCTAssertEqual(holding.wait(timeout: .now() + 10), .success, "the engine never took the holding job", file: file, line: line)
        return release
    }

    /// Waits until `count` jobs (by default the server's `maxEngineBacklog`)
    /// are queued behind a held engine.
    func waitForQueuedJobs(_ count: Int? = nil, timeout: Double = 10, file: StaticString = #filePath, line: UInt = #line) throws {
        let engine = try XCTUnwrap(server.engine, file: file, line: line)
        let deadline = Date().addingTimeInterval(timeout)
        while engine.queuedJobs < (count ?? engine.config.maxEngineBacklog) {
            guard Date() < deadline else { return XCTFail("the jobs never reached the engine's queue", file: file, line: line) }
            usleep(5_000)
        }
    }
}
