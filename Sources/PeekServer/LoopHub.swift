import PeekEngine
import PeekCore
import PeekNet
import PeekWebSocket

/// A loop's share of the server: its WebSocket sessions by id, which of
/// them view which ticket, and the deflate codec every connection on the
/// loop shares. Lives in `EventLoop.context`; touched only on that loop
/// (asserted in debug builds at every entry point).
final class LoopHub {
    let loop: EventLoop
    let server: ServerShared
    var sessions: [UInt64: WebSocketSession] = [:]
    /// Each ticket's viewers on this loop, in no particular order.
    var subscriptions: [String: TicketViewerList] = [:]
    private var nextID: UInt64 = 1
    /// One deflate/inflate pair per loop (uWebSockets' shared compressor):
    /// the server negotiates no-context-takeover both ways, so a message
    /// compresses the same for every connection and the streams reset after
    /// each one. Per-connection zlib state would cost ~300 KiB each.
    let deflate = PerMessageDeflateCodec()

    // Counters for /metrics, summed across loops on demand.
    var framesIn = 0
    var deltasDelivered = 0
    var ephemeralShed = 0
    var slowConsumersClosed = 0
    /// Commands, subscribes, agent chat and API calls refused while the
    /// engine was `maxEngineBacklog` behind.
    var refusedBusy = 0
    /// Messages dropped for going over `framesPerSecond`.
    var refusedRateLimited = 0

    /// The slow-consumer limits, read on every delivery (copied from the config).
    let softOutputLimit: Int
    let hardOutputLimit: Int

    init(loop: EventLoop, server: ServerShared) {
        self.loop = loop
        self.server = server
        softOutputLimit = server.config.softOutputLimit
        hardOutputLimit = server.config.hardOutputLimit
    }

    static func of(_ loop: EventLoop) -> LoopHub {
        // Set in the loop's set-up closure before any connection exists.
        unsafeDowncast(loop.context!, to: LoopHub.self)
    }

    func register(_ session: WebSocketSession) -> Peer {
        loop.assertInLoop()
        let id = nextID
        nextID += 1
        sessions[id] = session
        return Peer(loop: loop.index, id: id)
    }

    func unregister(_ session: WebSocketSession) {
        loop.assertInLoop()
        sessions[session.peer.id] = nil
    }

    func subscribe(_ session: TechnicianSession, to ticket: String) {
        loop.assertInLoop()
        guard session.tickets[ticket] == nil else { return }
        let list: TicketViewerList
        if let existing = subscriptions[ticket] { list = existing } else {
            list = TicketViewerList()
            subscriptions[ticket] = list
        }
        session.tickets[ticket] = list.sessions.count
        list.sessions.append(session)
    }

    /// O(1): the last viewer takes the leaving one's slot. When ten thousand
    /// viewers of one ticket go at once (a proxy restarts), removal by
    /// search would cost fifty million steps on the loop; this costs ten
    /// thousand.
    func unsubscribe(_ session: TechnicianSession, from ticket: String) {
        loop.assertInLoop()
        guard let slot = session.tickets.removeValue(forKey: ticket), let list = subscriptions[ticket] else { return }
        let last = list.sessions.removeLast()
        if slot < list.sessions.count {
            list.sessions[slot] = last
            last.tickets[ticket] = slot
        }
        if list.sessions.isEmpty { subscriptions[ticket] = nil }
    }

    /// Fans one delta out to this loop's viewers of `ticket`, if it has
    /// any. The WebSocket frame is built here, once per loop that has
    /// viewers (not on the engine's or the sync thread); a compressed copy
    /// is made at most once per loop, and only if some viewer negotiated
    /// deflate.
    func publish(ticket: String, delta payload: [UInt8], durable: Bool) {
        loop.assertInLoop()
        guard let viewers = subscriptions[ticket]?.sessions else { return }
        let frame = ByteChunk.textFrame(payload)
        var compressed: [Int: ByteChunk] = [:]
        let compressible = payload.count >= deflate.minimumCompressedBytes
        for session in viewers {
            guard compressible, let bits = session.deflateWindowBits else {
                session.deliver(frame, durable: durable)
                continue
            }
            if let c = compressed[bits] {
                session.deliver(c, durable: durable)
            } else {
                let c = ByteChunk.textFrame(deflate.compress(payload, windowBits: bits), compressed: true)
                compressed[bits] = c
                session.deliver(c, durable: durable)
            }
        }
        deltasDelivered += viewers.count
    }
}

/// A class, so that a subscription change mutates the one array in place:
/// a copied-out array value would be copied whole (retaining every session)
/// on each change.
final class TicketViewerList {
    var sessions: [TechnicianSession] = []
}
