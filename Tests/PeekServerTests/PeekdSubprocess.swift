#if canImport(Glibc)
import Glibc
#endif
import Foundation
import XCTest
import PeekTestSupport

/// The real `peekd` binary as a subprocess, for the operator's commands
/// (`check`, `backup`, `restore`, `migrate`) and the server they act on.
///
/// The binary is `$PEEKD_BIN` (scripts/test.sh sets it after `swift build`),
/// else `<repo>/.build/debug/peekd`; without either the test is skipped.
final class PeekdSubprocess {
    let process: Process
    private let stdout: PipeLines
    let stderr: PipeLines

    static func binary() throws -> String {
        if let path = ProcessInfo.processInfo.environment["PEEKD_BIN"], !path.isEmpty {
            guard FileManager.default.isExecutableFile(atPath: path) else {
                throw TestWebSocketClient.Failure("PEEKD_BIN=\(path) is not an executable file")
            }
            return path
        }
        let built = TestServer.repositoryRoot + "/.build/debug/peekd"
        if FileManager.default.isExecutableFile(atPath: built) { return built }
        throw XCTSkip("no peekd binary: set PEEKD_BIN or run `swift build` first (scripts/test.sh does both)")
    }

    /// The environment without stray PEEK_* variables (flags win over them
    /// anyway), plus `extra`.
    static func environment(_ extra: [String: String] = [:]) -> [String: String] {
        ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("PEEK_") }.merging(extra) { $1 }
    }

    /// Starts `peekd arguments...`.
    init(_ arguments: [String], environment extra: [String: String] = [:]) throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: try Self.binary())
        process.arguments = arguments
        process.environment = Self.environment(extra)
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        stdout = PipeLines(fd: out.fileHandleForReading.fileDescriptor)
        stderr = PipeLines(fd: err.fileHandleForReading.fileDescriptor)
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
    }

    private var readyLine: String?

    /// Waits for the ready line (§2.2) and answers the port after `name=`.
    func readyPort(_ name: String = "plain", timeout: Double = 30) throws -> UInt16 {
        if readyLine == nil {
            readyLine = try XCTUnwrap(stdout.line(timeout: timeout) { $0.hasPrefix("peekd ready") },
                                      "no ready line from peekd; stderr: \(stderr.rest())")
        }
        let ready = readyLine ?? ""
        return try XCTUnwrap(ready.split(separator: " ").first { $0.hasPrefix(name + "=") }
            .flatMap { $0.split(separator: ":").last }.flatMap { UInt16($0) }, ready)
    }

    /// SIGTERM, then the exit status (SIGKILL after `timeout`).
    @discardableResult
    func stop(timeout: Double = 20) -> Int32 {
        if process.isRunning { kill(process.processIdentifier, SIGTERM) }
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        return process.terminationStatus
    }

    struct Finished { var status: Int32; var stdout: String; var stderr: String }

    /// Runs `peekd arguments...` to its end (at most `timeout` seconds).
    static func run(_ arguments: [String], environment extra: [String: String] = [:], timeout: Double = 60) throws -> Finished {
        let child = try PeekdSubprocess(arguments, environment: extra)
        let deadline = Date().addingTimeInterval(timeout)
        var out = "", err = ""
        while child.process.isRunning && Date() < deadline {
            out += child.stdout.available(wait: 0.05)
            err += child.stderr.available(wait: 0)
        }
        XCTAssertFalse(child.process.isRunning, "peekd \(arguments.joined(separator: " ")) still running after \(timeout) s")
        child.process.waitUntilExit()
        return Finished(status: child.process.terminationStatus, stdout: out + child.stdout.rest(), stderr: err + child.stderr.rest())
    }
}

/// Lines from a pipe, with a deadline (a `poll` per read).
final class PipeLines {
    let fd: Int32
    private var buffer: [UInt8] = []
    init(fd: Int32) { self.fd = fd }

    /// Reads whatever arrives within `wait` seconds into the buffer; false at EOF.
    @discardableResult
    private func fill(wait: Double) -> Bool {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, Int32(wait * 1000)) > 0 else { return true }
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n <= 0 { return false }
        buffer += chunk[..<n]
        return true
    }

    /// The first line satisfying `predicate`; nil at EOF or the deadline.
    func line(timeout: Double, where predicate: (String) -> Bool) -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            while let newline = buffer.firstIndex(of: 10) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer.removeSubrange(...newline)
                if predicate(line) { return line }
            }
            let left = deadline.timeIntervalSinceNow
            guard left > 0, fill(wait: min(left, 0.2)) else { return nil }
        }
    }

    /// Everything buffered plus what arrives within `wait` seconds.
    func available(wait: Double) -> String {
        fill(wait: wait)
        defer { buffer.removeAll() }
        return String(decoding: buffer, as: UTF8.self)
    }

    /// Everything until EOF (the writer has exited).
    func rest() -> String {
        while fill(wait: 1) {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&p, 1, 0) == 0 { break }
        }
        defer { buffer.removeAll() }
        return String(decoding: buffer, as: UTF8.self)
    }
}

/// A test case with a fresh temporary directory per test, removed after it.
class TemporaryDirectoryTestCase: XCTestCase {
    var directory = ""

    override func setUpWithError() throws {
        try super.setUpWithError()
        directory = NSTemporaryDirectory() + "peekd-\(type(of: self))-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: directory)
        super.tearDown()
    }
}
