import PeekTLS
import XCTest

/// Wires a client and a server `TLSSession` back to back in memory: what one
/// drains, the other is fed. `chunkSize` splits every transfer, to show the
/// sessions cope with bytes arriving at any boundary.
struct SessionPump {
    let client: TLSSession
    let server: TLSSession
    var chunkSize = Int.max

    init(client: TLSContext, server: TLSContext, serverName: String? = "localhost", chunkSize: Int = .max) throws {
        self.client = try TLSSession(context: client, serverName: serverName)
        self.server = try TLSSession(context: server)
        self.chunkSize = chunkSize
    }

    /// Moves everything `from` has queued into `to`; returns the byte count.
    @discardableResult
    func transfer(from: TLSSession, to: TLSSession) -> Int {
        var bytes: [UInt8] = []
        from.drainNetworkOutput(into: &bytes)
        var offset = 0
        while offset < bytes.count {
            let end = offset + min(chunkSize, bytes.count - offset)
            bytes[offset..<end].withUnsafeBytes { to.feedNetwork($0) }
            offset = end
        }
        return bytes.count
    }

    /// Runs both handshakes until neither side has anything left to send.
    func handshake() -> (client: TLSHandshakeResult, server: TLSHandshakeResult) {
        var clientResult = client.handshake()
        var serverResult = server.handshake()
        for _ in 0..<64 {
            let moved = transfer(from: client, to: server) + transfer(from: server, to: client)
            serverResult = server.handshake()
            clientResult = client.handshake()
            if moved == 0 && !client.hasNetworkOutput && !server.hasNetworkOutput { break }
        }
        return (clientResult, serverResult)
    }

    /// Handshakes and fails the test unless both sides complete.
    func establish(file: StaticString = #filePath, line: UInt = #line) {
        let (clientResult, serverResult) = handshake()
        XCTAssertEqual(clientResult, .complete, "client: \(clientResult)", file: file, line: line)
        XCTAssertEqual(serverResult, .complete, "server: \(serverResult)", file: file, line: line)
    }

    /// Sends `bytes` from one side and returns what the other side decrypted.
    func send(_ bytes: [UInt8], from sender: TLSSession, to receiver: TLSSession) throws -> [UInt8] {
        try bytes.withUnsafeBytes { try sender.writePlaintext($0).get() }
        transfer(from: sender, to: receiver)
        var received: [UInt8] = []
        while case .bytes = receiver.readPlaintext(into: &received) {}
        return received
    }

    /// What the client ends up seeing after a server-side rejection: with
    /// TLS 1.3 the client's own handshake completes first and the server's
    /// alert arrives as a failed read.
    func clientFailure() -> TLSError? {
        transfer(from: server, to: client)
        if case .failed(let error) = client.handshake() { return error }
        var ignored: [UInt8] = []
        if case .failed(let error) = client.readPlaintext(into: &ignored) { return error }
        return nil
    }
}
