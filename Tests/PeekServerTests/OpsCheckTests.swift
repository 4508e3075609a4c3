import Foundation
import XCTest
import PeekTestSupport

/// `peekd check` as an operator runs it: 0 and one OK line when every file
/// loads and the data directory is usable; non-zero and the reason when not.
final class OpsCheckTests: TemporaryDirectoryTestCase {
    private var pki: CertFactory!

    override func setUpWithError() throws {
        try super.setUpWithError()
        pki = try CertFactory()
    }

    private func check(_ flags: [String]) throws -> PeekdSubprocess.Finished {
        try PeekdSubprocess.run(["check", "--client", TestServer.repositoryRoot + "/client",
                                 "--jwt-secret", String(repeating: "k", count: 32), "--service-token", "check-service"] + flags)
    }

    private var goodFlags: [String] {
        ["--tls-port", "8443", "--tls-cert", pki.serverCertFile, "--tls-key", pki.serverKeyFile,
         "--agent-port", "8444", "--agent-ca", pki.caFile, "--agent-crl", pki.crlFile]
    }

    func testCheck_everythingLoads_exits0WithOneOKLine() throws {
        // A data directory with a database in it, as a server leaves it.
        let data = directory + "/data"
        let server = try TestServer(directory: data)
        _ = try server.seed(tickets: 1)
        server.stop()
        let r = try check(goodFlags + ["--data", data])
        XCTAssertEqual(r.status, 0, r.stderr)
        let lines = r.stdout.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, r.stdout)
        XCTAssertTrue(r.stdout.hasPrefix("peekd check: OK ("), r.stdout)
        XCTAssertTrue(r.stdout.contains("database opens"), r.stdout)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: data).filter { $0.hasPrefix(".peekd-check") }, [])

        let fresh = try check(["--data", directory + "/not-yet"])
        XCTAssertEqual(fresh.status, 0, fresh.stderr)
        XCTAssertTrue(fresh.stdout.contains("will be created"), fresh.stdout)
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory + "/not-yet"), "check created --data")
    }

    func testCheck_eachBrokenInput_exitsNonZeroNamingIt() throws {
        let garbage = directory + "/garbage.pem"
        try Data("not a PEM file\n".utf8).write(to: URL(fileURLWithPath: garbage))
        let notADirectory = directory + "/file"
        try Data("x".utf8).write(to: URL(fileURLWithPath: notADirectory))
        let badDatabase = directory + "/bad-db"
        try FileManager.default.createDirectory(atPath: badDatabase, withIntermediateDirectories: true)
        try Data(repeating: 0x5A, count: 8192).write(to: URL(fileURLWithPath: badDatabase + "/peek.sqlite"))
        let data = ["--data", directory + "/data"]
        let otherKey = try pki.makeClient(commonName: "other").keyFile

        let cases: [(flags: [String], reason: String)] = [
            (["--tls-port", "8443", "--tls-cert", directory + "/missing.pem", "--tls-key", pki.serverKeyFile] + data, "missing.pem"),
            (["--tls-port", "8443", "--tls-cert", pki.serverCertFile, "--tls-key", garbage] + data, "garbage.pem"),
            // A key that is not the certificate's.
            (["--tls-port", "8443", "--tls-cert", pki.serverCertFile, "--tls-key", otherKey] + data, "do not load"),
            (["--tls-cert", pki.serverCertFile] + data, "must be given together"),
            (["--agent-port", "8444", "--agent-ca", garbage] + data, "--agent-ca \(garbage)"),
            (["--agent-port", "8444", "--agent-ca", pki.caFile, "--agent-crl", garbage] + data, "--agent-crl \(garbage)"),
            (["--smtp-ca", garbage] + data, "--smtp-ca"),
            (["--data", notADirectory], "is not a directory"),
            (["--data", badDatabase], "does not open"),
            (["--port", "70000"] + data, "--port must be"),
            (["--jwt-secret", "short"] + data, "at least 32 bytes"),
        ]
        for (flags, reason) in cases {
            let r = try check(flags)
            XCTAssertNotEqual(r.status, 0, "accepted: \(flags)\n\(r.stdout)")
            XCTAssertTrue(r.stderr.contains(reason), "\(flags): expected \(reason) in\n\(r.stderr)")
            XCTAssertFalse(r.stdout.contains("OK"), r.stdout)
        }
    }
}
