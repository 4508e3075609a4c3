import XCTest
import PeekCore

final class TokenBucketTests: XCTestCase {
    func testTokenBucket_fresh_admitsTheBurstThenRefuses() {
        var bucket = TokenBucket(ratePerSecond: 10, capacity: 20, nowMillis: 1_000)
        let admitted = (0..<25).filter { _ in bucket.take(nowMillis: 1_000) }.count
        XCTAssertEqual(admitted, 20)
    }

    func testTokenBucket_afterEmptying_refillsAtTheRate() {
        var bucket = TokenBucket(ratePerSecond: 10, capacity: 20, nowMillis: 0)
        while bucket.take(nowMillis: 0) {}
        // 10 per second: one token every 100 ms, none before.
        XCTAssertFalse(bucket.take(nowMillis: 99))
        XCTAssertTrue(bucket.take(nowMillis: 100))
        XCTAssertFalse(bucket.take(nowMillis: 100))
        // Half a second later: 5 tokens.
        XCTAssertEqual((0..<10).filter { _ in bucket.take(nowMillis: 600) }.count, 5)
    }

    func testTokenBucket_longIdle_holdsNoMoreThanItsCapacity() {
        var bucket = TokenBucket(ratePerSecond: 10, capacity: 20, nowMillis: 0)
        _ = bucket.take(nowMillis: 0)
        XCTAssertEqual((0..<100).filter { _ in bucket.take(nowMillis: 3_600_000) }.count, 20)
    }

    func testTokenBucket_clockStepsBack_addsNothingAndDoesNotDrain() {
        var bucket = TokenBucket(ratePerSecond: 10, capacity: 2, nowMillis: 10_000)
        XCTAssertTrue(bucket.take(nowMillis: 10_000))
        XCTAssertTrue(bucket.take(nowMillis: 5_000))
        XCTAssertFalse(bucket.take(nowMillis: 5_000))
        // Time is measured from the latest reading, not the stepped-back one.
        XCTAssertFalse(bucket.take(nowMillis: 10_050))
        XCTAssertTrue(bucket.take(nowMillis: 10_100))
    }

    /// A byte budget: a chunk takes its whole size or nothing.
    func testTokenBucket_takeMany_allOrNothing() {
        var bucket = TokenBucket(ratePerSecond: 1024, capacity: 2048, nowMillis: 0)
        XCTAssertTrue(bucket.take(1500, nowMillis: 0))
        XCTAssertFalse(bucket.take(600, nowMillis: 0), "548 left")
        XCTAssertTrue(bucket.take(548, nowMillis: 0), "the refused take took nothing")
        XCTAssertFalse(bucket.take(1, nowMillis: 0))
        XCTAssertTrue(bucket.take(512, nowMillis: 500), "half a second refills half the rate")
    }
}
