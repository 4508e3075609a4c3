import PeekCore
import PeekEngine
import PeekNet
import PeekWebSocket

/// The bus of one process: the engine's outputs to this process's loops.
/// It alone knows which loop holds a connection (`Peer` packs the loop
/// into its id) and it asks no one which loops view a ticket: each loop
/// keeps its own viewers (`LoopHub.subscriptions`), so a delta goes to
/// every loop in the batch's one job per loop, and a loop with no viewer
/// of the ticket drops it after one dictionary lookup.
final class InProcessBus: DeltaBus {
    let loops: [EventLoop]
    let replies: PendingReplies

    init(loops: [EventLoop], replies: PendingReplies) {
        self.loops = loops
        self.replies = replies
    }

    /// Groups outputs by loop, keeping their order, and posts one job per
    /// loop per batch: order within a loop is the engine's order, which is
    /// what makes "deltas in seq order, then the result" hold.
    func deliver(_ outputs: [EngineOutput]) {
        guard !outputs.isEmpty else { return }
        var perLoop = [[LoopAction]](repeating: [], count: loops.count)
        // API answers go out after the deltas are posted to the loops, so
        // the back end never hears "done" before the viewers are handed it.
        var answers: [(APIReplyID, APIResponse)] = []
        var afterDurable: [@Sendable () -> Void] = []
        func post(_ peer: Peer, _ action: LoopAction) {
            guard loops.indices.contains(peer.loop) else { return }
            perLoop[peer.loop].append(action)
        }
        for output in outputs {
            switch output {
            case .publish(let ticket, let seq, let delta):
                for i in perLoop.indices { perLoop[i].append(.publish(ticket: ticket, delta: delta, durable: seq != nil)) }
            case .publishTopic(let topic, let delta):
                for i in perLoop.indices { perLoop[i].append(.publish(ticket: topic, delta: delta, durable: true)) }
            case .send(let peer, let bytes), .result(let peer, _, let bytes), .agentSend(let peer, let bytes):
                post(peer, .send(peer.id, bytes))
            case .welcome(let peer, let bytes, let signIn):
                post(peer, .welcome(peer.id, bytes, signIn))
            case .subscribe(let peer, _, let ticket, let frames):
                post(peer, .subscribe(peer.id, ticket: ticket, frames: frames))
            case .unsubscribe(let peer, let ticket):
                post(peer, .unsubscribe(peer.id, ticket: ticket))
            case .close(let peer, let code, let reason):
                post(peer, .close(peer.id, code: code, reason: reason))
            case .http(let id, let response):
                answers.append((id, response))
            case .afterDurable(let work, _):
                afterDurable.append(work)
            case .clusterPresence:
                continue
            }
        }
        for (i, actions) in perLoop.enumerated() where !actions.isEmpty {
            loops[i].execute { loop in
                let hub = LoopHub.of(loop)
                for action in actions { action.run(on: hub) }
            }
        }
        for (id, response) in answers { replies.answer(id, response) }
        for work in afterDurable { work() }
    }
}

extension Peer {
    /// A connection of this process: its loop in the top 16 bits, its id
    /// on that loop below. Only the server reads these; the engine sees
    /// one opaque number.
    init(loop: Int, id: UInt64) {
        precondition(loop >= 0 && loop < 1 << 16 && id < 1 << 48, "a loop index or connection id out of range")
        self.init(raw: UInt64(loop) << 48 | id)
    }

    var loop: Int { Int(raw >> 48) }
    var id: UInt64 { raw & (1 << 48 - 1) }
}

enum LoopAction: Sendable {
    case publish(ticket: String, delta: [UInt8], durable: Bool)
    case send(UInt64, [UInt8])
    case welcome(UInt64, [UInt8], SignIn)
    case subscribe(UInt64, ticket: String, frames: [[UInt8]])
    case unsubscribe(UInt64, ticket: String)
    case close(UInt64, code: UInt16, reason: String)

    func run(on hub: LoopHub) {
        switch self {
        case .publish(let ticket, let delta, let durable):
            hub.publish(ticket: ticket, delta: delta, durable: durable)
        case .send(let id, let bytes):
            hub.sessions[id]?.sendText(bytes)
        case .welcome(let id, let bytes, let signIn):
            (hub.sessions[id] as? TechnicianSession)?.signedIn(signIn)
            hub.sessions[id]?.sendText(bytes)
        case .subscribe(let id, let ticket, let frames):
            guard let session = hub.sessions[id] as? TechnicianSession, !session.isClosing else { return }
            // Registered in the same job as the snapshot, so the first
            // delta this loop sees after it is the one after the snapshot.
            hub.subscribe(session, to: ticket)
            for f in frames { session.sendText(f) }
        case .unsubscribe(let id, let ticket):
            guard let session = hub.sessions[id] as? TechnicianSession else { return }
            hub.unsubscribe(session, from: ticket)
        case .close(let id, let code, let reason):
            hub.sessions[id]?.close(code: CloseCode(code), reason: reason)
        }
    }
}
