import Foundation
import XCTest
import PeekTestSupport

/// deploy/: what an operator installs must be valid as shipped.
final class OpsDeployTests: XCTestCase {
    /// `systemd-analyze verify` on deploy/peekd.service: unknown keys, bad
    /// values and a missing ExecStart binary are reported. It only warns on
    /// stderr for most mistakes (and exits 0), so any line naming the unit
    /// fails the test. The binary is installed to /usr/local/bin/peekd,
    /// which the test machine may lack: the copy it verifies points
    /// ExecStart and ExecStartPre at the built binary, the one thing it changes.
    func testSystemdUnit_verifiesClean() throws {
        guard let analyze = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"]
            .first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw XCTSkip("systemd-analyze is not installed")
        }
        let shipped = try String(contentsOfFile: TestServer.repositoryRoot + "/deploy/peekd.service", encoding: .utf8)
        XCTAssertTrue(shipped.contains("\nExecStart=/usr/local/bin/peekd\n"), "the README installs the binary there")
        let binary = try PeekdSubprocess.binary()
        let directory = NSTemporaryDirectory() + "peekd-unit-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let unit = directory + "/peekd.service"
        try shipped.replacingOccurrences(of: "\nExecStart=/usr/local/bin/peekd\n", with: "\nExecStart=\(binary)\n")
            .replacingOccurrences(of: "\nExecStartPre=/usr/local/bin/peekd ", with: "\nExecStartPre=\(binary) ")
            .write(toFile: unit, atomically: true, encoding: .utf8)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: analyze)
        process.arguments = ["verify", unit]
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        let err = Pipe()
        process.standardError = err
        process.standardOutput = err
        try process.run()
        let output = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, output)
        let complaints = output.split(separator: "\n").filter { $0.contains("peekd.service") }
        XCTAssertEqual(complaints, [], output)
    }

    /// The unit's drain budget and descriptor limit agree with the server's.
    func testSystemdUnit_stopTimeoutCoversDrainAndFilesCoverConnections() throws {
        let unit = try String(contentsOfFile: TestServer.repositoryRoot + "/deploy/peekd.service", encoding: .utf8)
        func value(_ key: String) -> String? {
            unit.split(separator: "\n").last { $0.hasPrefix(key + "=") }.map { String($0.dropFirst(key.count + 1)) }
        }
        XCTAssertEqual(value("KillSignal"), "SIGTERM")
        // protocol.md §2.3: up to 5 s of connection drain, then the engine's batch.
        XCTAssertGreaterThanOrEqual(Int(value("TimeoutStopSec") ?? "") ?? 0, 10)
        // --max-connections (19900 by default) plus listeners, database, loops.
        XCTAssertGreaterThanOrEqual(Int(value("LimitNOFILE") ?? "") ?? 0, 19_900 + 64)
        XCTAssertEqual(value("NoNewPrivileges"), "yes")
        XCTAssertEqual(value("ProtectSystem"), "strict")
        XCTAssertEqual(value("PrivateTmp"), "yes")
        XCTAssertEqual(value("StateDirectory"), "peekd")
        XCTAssertTrue(unit.contains("\nEnvironment=PEEK_DATA=/var/lib/peekd\n"), "--data is the state directory")
    }
}
