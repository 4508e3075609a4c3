import Foundation
import PeekTLS
import PeekTestSupport
import Synchronization
import XCTest

/// `TestSocket` against a real socket: a one-connection server on a thread
/// with a blocking `accept`, speaking TLS through `TestSocket.adopt`.
final class TestSocketTests: XCTestCase {
    /// Accepts one connection on 127.0.0.1 (port 0), runs `handler` on it, and
    /// records the outcome: "ok" or the error's description.
    private final class OneConnectionServer: Sendable {
        let port: UInt16
        private let listener: Int32
        private let finished = DispatchSemaphore(value: 0)
        private let outcome = Outcome()

        /// A box, because a `Mutex` cannot be captured by the thread's closure.
        private final class Outcome: Sendable {
            private let text = Mutex<String?>(nil)
            func set(_ value: String) { text.withLock { $0 = value } }
            func get() -> String? { text.withLock { $0 } }
        }

        init(tls: TLSContext, handler: @escaping @Sendable (TestSocket) throws -> Void) throws {
            let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
            guard listener >= 0 else { throw TestSocketError.system(call: "socket", errno: errno) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian  // 127.0.0.1
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                    bind(listener, pointer, length) == 0 && listen(listener, 4) == 0
                        && getsockname(listener, pointer, &length) == 0
                }
            }
            guard bound else {
                let code = errno
                _ = close(listener)
                throw TestSocketError.system(call: "bind/listen", errno: code)
            }
            self.listener = listener
            port = UInt16(bigEndian: address.sin_port)

            let (finished, outcome) = (finished, outcome)
            Thread {
                defer { finished.signal() }
                let fd = accept(listener, nil, nil)
                guard fd >= 0 else { return outcome.set("accept failed") }
                do {
                    let connection = try TestSocket.adopt(fd: fd, tls: tls)
                    try handler(connection)
                    connection.close()
                    outcome.set("ok")
                } catch {
                    outcome.set("\(error)")
                }
            }.start()
        }

        /// Waits for the handler to finish and returns its outcome.
        func result(timeout: Double = 5) -> String? {
            guard finished.wait(timeout: .now() + timeout) == .success else { return "server still running" }
            return outcome.get()
        }

        deinit {
            // SHUT_RDWR wakes a thread still blocked in accept (Linux).
            _ = shutdown(listener, Int32(SHUT_RDWR))
            _ = close(listener)
        }
    }

    func testTestSocket_mutualTLSEcho_serverSeesClientCNAndClientGetsReply() throws {
        let pki = try CertFactory()
        let agent = try pki.makeClient(commonName: "agent-echo")
        let server = try OneConnectionServer(tls: pki.makeMutualServerContext()) { connection in
            let request = try connection.read(timeout: 5)
            let name = connection.peerIdentity?.commonName ?? "nobody"
            try connection.write(Array("hello \(name): ".utf8) + request)
            try connection.shutdownWrite()
            _ = try connection.read(timeout: 5)  // the client's close_notify, so close() sends no RST
        }

        let client = try TestSocket.connect(port: server.port, tls: pki.makeClientContext(presenting: agent),
                                            serverName: "localhost")
        XCTAssertEqual(client.peerIdentity?.commonName, "localhost")
        try client.write(Array("ping".utf8))
        let reply = try client.readUntil({ String(decoding: $0, as: UTF8.self).hasSuffix("ping") }, timeout: 5)
        XCTAssertEqual(String(decoding: reply, as: UTF8.self), "hello agent-echo: ping")
        XCTAssertEqual(try client.read(timeout: 5), [])
        XCTAssertTrue(client.peerClosed)
        try client.shutdownWrite()
        XCTAssertEqual(server.result(), "ok")
        client.close()
    }

    func testTestSocket_mutualTLSWithoutCertificate_firstReadThrowsAlert116() throws {
        let pki = try CertFactory()
        let server = try OneConnectionServer(tls: pki.makeMutualServerContext()) { _ in
            XCTFail("handshake without a client certificate succeeded")
        }
        let client = try TestSocket.connect(port: server.port, tls: pki.makeClientContext(), serverName: "localhost")
        XCTAssertThrowsError(try client.read(timeout: 5)) { error in
            let tlsError = (error as? TestSocketError)?.tlsError
            XCTAssertTrue(tlsError?.mentions("alert certificate required") ?? false, "\(error)")
        }
        let serverOutcome = try XCTUnwrap(server.result())
        XCTAssertTrue(serverOutcome.contains("peer did not return a certificate"), serverOutcome)
    }

    func testTestSocket_nothingArrives_readTimesOut() throws {
        let pki = try CertFactory()
        let release = DispatchSemaphore(value: 0)
        let server = try OneConnectionServer(tls: pki.makeServerContext()) { _ in _ = release.wait(timeout: .now() + 5) }
        let client = try TestSocket.connect(port: server.port, tls: pki.makeClientContext())  // checks 127.0.0.1 SAN
        let start = Date()
        XCTAssertThrowsError(try client.read(timeout: 0.2)) { error in
            guard case .timedOut = error as? TestSocketError else { return XCTFail("\(error)") }
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 2)
        release.signal()
        XCTAssertEqual(server.result(), "ok")
    }
}
