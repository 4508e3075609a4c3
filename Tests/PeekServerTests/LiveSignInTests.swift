import Foundation
import XCTest
import PeekCore
import PeekTestSupport

/// Sign-ins expire (protocol.md §3.3): at the token's `exp` an open
/// connection gets `error` `unauthorized` "Your sign-in expired" and close
/// 4401, unless a `refresh` with a token for the same technician moved it.
final class LiveSignInTests: XCTestCase {
    /// A signed-in socket, its `welcome`, and its token's `exp`.
    private func signIn(_ server: TestServer, user: String = "tech-1", tenant: String = "acme",
                        expiresIn: Int64) throws -> (TestWebSocketClient, JSONValue, Int) {
        let exp = Int(Date().timeIntervalSince1970) + Int(expiresIn)
        let token = JWT.sign(TechnicianClaims(subject: user, tenant: tenant, name: user, expiresAt: Int64(exp)), secret: Array(server.config.jwtSecret.utf8))
        let client = try TestWebSocketClient(port: server.port)
        try client.send(["type": "hello", "token": .string(token)])
        return (client, try client.next(type: "welcome"), exp)
    }

    func testTokenExpiringOnAnOpenConnection_getsErrorThenClose4401() throws {
        let server = try TestServer()
        defer { server.stop() }
        _ = try server.seed()
        let (client, welcome, exp) = try signIn(server, expiresIn: 2)
        defer { client.close() }

        // Sweeps run once a second: the error comes within a few of exp.
        let error = try client.next(type: "error", timeout: 15)
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince1970, Double(exp) - 0.5, "closed before the token expired")
        XCTAssertEqual(error["code"]?.stringValue, "unauthorized")
        XCTAssertEqual(error["message"]?.stringValue, "Your sign-in expired")
        XCTAssertNil(error["id"]?.stringValue)
        XCTAssertEqual(try client.awaitClose(timeout: 10), 4401)
        XCTAssertEqual(welcome["exp"]?.intValue, exp, "welcome carries the token's exp")
    }

    func testRefreshedSignIn_staysOpenPastTheFirstExp() throws {
        let server = try TestServer()
        defer { server.stop() }
        let ticket = try server.seed()[0]
        let (client, _, firstExp) = try signIn(server, expiresIn: 2)
        defer { client.close() }

        let fresh = server.token(tenant: "acme", user: "tech-1", expiresIn: 600)
        try client.send(["type": "refresh", "id": "r1", "token": .string(fresh)])
        let refreshed = try client.next(type: "refreshed")
        XCTAssertEqual(refreshed["id"]?.stringValue, "r1")
        XCTAssertGreaterThan(refreshed["exp"]?.intValue ?? 0, firstExp + 500)

        // Past the first exp by more than two sweeps: still open, still working.
        while Date().timeIntervalSince1970 < Double(firstExp) + 2.5 { usleep(100_000) }
        let frames = client.drain(for: 0.5)
        XCTAssertFalse(frames.contains { $0["type"]?.stringValue == "error" }, "\(frames)")
        XCTAssertEqual(try client.subscribe(ticket)["type"]?.stringValue, "snapshot")
    }

    /// An `exp` so far away that it overflows milliseconds is "never", not a trap.
    func testTokenWithAFarAwayExp_staysSignedIn() throws {
        let server = try TestServer()
        defer { server.stop() }
        let ticket = try server.seed()[0]
        let client = try TestWebSocketClient(port: server.port)
        defer { client.close() }
        let far = JWT.sign(TechnicianClaims(subject: "tech-1", tenant: "acme", name: "Tech 1", expiresAt: Int64.max / 2),
                           secret: Array(server.config.jwtSecret.utf8))
        try client.send(["type": "hello", "token": .string(far)])
        _ = try client.next(type: "welcome")
        Thread.sleep(forTimeInterval: 1.5)   // at least one sweep
        XCTAssertEqual(try client.subscribe(ticket)["type"]?.stringValue, "snapshot")
    }

    func testRefreshWithAnotherTechniciansToken_isUnauthorizedAndTheConnectionKeepsWorking() throws {
        let server = try TestServer()
        defer { server.stop() }
        let ticket = try server.seed()[0]
        try server.seed(tenant: "globex", technicians: 1, tickets: 0)
        let (client, _, _) = try signIn(server, expiresIn: 600)
        defer { client.close() }

        let refusals: [(String, String)] = [
            ("another technician", server.token(tenant: "acme", user: "tech-2", expiresIn: 600)),
            ("the same id in another tenant", server.token(tenant: "globex", user: "tech-1", expiresIn: 600)),
            ("an expired token", server.token(tenant: "acme", user: "tech-1", expiresIn: -10)),
            ("a forged token", server.token(tenant: "acme", user: "tech-1", expiresIn: 600) + "x"),
        ]
        for (index, (what, token)) in refusals.enumerated() {
            try client.send(["type": "refresh", "id": .string("bad-\(index)"), "token": .string(token)])
            let error = try client.next(type: "error")
            XCTAssertEqual(error["code"]?.stringValue, "unauthorized", what)
            XCTAssertEqual(error["id"]?.stringValue, "bad-\(index)", what)
            XCTAssertFalse(error["message"]?.stringValue?.isEmpty ?? true, what)
        }
        XCTAssertEqual(try client.subscribe(ticket)["type"]?.stringValue, "snapshot")
        XCTAssertEqual(try client.run("after-refusals", ticket, "note", ["body": "Still signed in."])["type"]?.stringValue, "result")
    }
}
