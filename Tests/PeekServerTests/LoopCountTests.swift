import XCTest
@testable import PeekEngine
@testable import PeekServer

/// The default number of event loops leaves the engine a core.
final class LoopCountTests: XCTestCase {
    func testDefault_leavesOneCoreForTheEngine_butNeverGoesBelowOne() {
        XCTAssertEqual(Server.defaultLoopCount(cores: 1, echoMode: false), 1)
        XCTAssertEqual(Server.defaultLoopCount(cores: 2, echoMode: false), 1)
        XCTAssertEqual(Server.defaultLoopCount(cores: 8, echoMode: false), 7)
        XCTAssertEqual(Server.defaultLoopCount(cores: 0, echoMode: false), 1)
    }

    func testEchoMode_hasNoEngineWork_andUsesEveryCore() {
        XCTAssertEqual(Server.defaultLoopCount(cores: 2, echoMode: true), 2)
        XCTAssertEqual(Server.defaultLoopCount(cores: 1, echoMode: true), 1)
    }
}
