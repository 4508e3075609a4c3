import PeekTLS

/// One client socket of the generator. Only the client's single thread
/// touches it; `index` is its slot, which rides in the epoll event data.
final class BenchConnection {
    enum State: UInt8 { case free, connecting, tls, upgrading, hello, subscribing, ready, closing, dead }
    enum Role: UInt8 { case viewer, publisher, probe, agent }

    let index: Int
    var fd: Int32 = -1
    var state = State.free
    var role = Role.viewer
    /// Viewer: index of the ticket it watches. Publisher/agent: its publisher index.
    var ticket = 0
    /// The last durable `seq` seen on the viewed ticket (from the snapshot, then deltas); -1 before.
    var lastSeq = -1
    var tls: TLSSession?
    /// Input not yet parsed (a frame split across reads), and how long the
    /// frame in it will be once complete (0: unknown).
    var carry: [UInt8] = []
    var need = 0
    /// Output the kernel did not take yet.
    var out: [UInt8] = []
    var outOffset = 0
    var fragment: [UInt8] = []
    var fragmentOpcode: UInt8 = 0
    /// The Sec-WebSocket-Accept value the server must answer with.
    var expectedAccept: [UInt8] = []
    var startedNanos: UInt64 = 0
    /// Counted as ready once (setup statistics).
    var counted = false

    init(index: Int) { self.index = index }

    var isAlive: Bool { state != .dead && state != .free }

    func reset() {
        fd = -1
        state = .free
        lastSeq = -1
        tls = nil
        carry = []
        need = 0
        out = []
        outOffset = 0
        fragment = []
        expectedAccept = []
        counted = false
    }
}
