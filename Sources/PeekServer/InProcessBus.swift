import PeekCore
import PeekEngine
import PeekNet
import PeekWebSocket

final class InProcessBus: DeltaBus {
    let loops: [EventLoop]

    init(loops: [EventLoop]) { self.loops = loops }

    /// Groups outputs by loop, keeping their order, and posts one job per
    /// loop per batch: order within a loop is the engine's order, which is
    /// what makes "deltas in seq order, then the result" hold.
    func deliver(_ outputs: [EngineOutput]) {
        guard !outputs.isEmpty else { return }
        var perLoop = [[LoopAction]](repeating: [], count: loops.count)
        // API answers go out after the deltas are posted to the loops, so
        // the back end never hears "done" before the viewers are handed it.
        var replies: [(@Sendable (APIResponse) -> Void, APIResponse)] = []
        var afterDurable: [@Sendable () -> Void] = []
        for output in outputs {
            switch output {
            case .publish(let ticket, let payload, let durable, let mask):
                // Encoded into a WebSocket frame once, shared by every loop.
                let frame = SharedChunk(ByteChunk.textFrame(payload))
                for i in loops.indices where mask.contains(i) {
                    perLoop[i].append(.publish(ticket: ticket, frame: frame, payload: payload, durable: durable))
                }
            case .send(let peer, let bytes), .result(let peer, _, let bytes), .agentSend(let peer, let bytes):
                guard loops.indices.contains(peer.loop) else { continue }
                perLoop[peer.loop].append(.send(peer.id, bytes))
            case .welcome(let peer, let bytes, let signIn):
                guard loops.indices.contains(peer.loop) else { continue }
                perLoop[peer.loop].append(.welcome(peer.id, bytes, signIn))
            case .subscribe(let peer, _, let ticket, let frames):
                guard loops.indices.contains(peer.loop) else { continue }
                perLoop[peer.loop].append(.subscribe(peer.id, ticket: ticket, frames: frames))
            case .unsubscribe(let peer, let ticket):
                guard loops.indices.contains(peer.loop) else { continue }
                perLoop[peer.loop].append(.unsubscribe(peer.id, ticket: ticket))
            case .close(let peer, let code, let reason):
                guard loops.indices.contains(peer.loop) else { continue }
                perLoop[peer.loop].append(.close(peer.id, code: code, reason: reason))
            case .http(let reply, let response):
                replies.append((reply, response))
            case .afterDurable(let work, _):
                afterDurable.append(work)
            }
        }
        for (i, actions) in perLoop.enumerated() where !actions.isEmpty {
            loops[i].execute { loop in
                let hub = LoopHub.of(loop)
                for action in actions { action.run(on: hub) }
            }
        }
        for (reply, response) in replies { reply(response) }
        for work in afterDurable { work() }
    }
}

enum LoopAction: Sendable {
    case publish(ticket: String, frame: SharedChunk, payload: [UInt8], durable: Bool)
    case send(UInt64, [UInt8])
    case welcome(UInt64, [UInt8], SignIn)
    case subscribe(UInt64, ticket: String, frames: [[UInt8]])
    case unsubscribe(UInt64, ticket: String)
    case close(UInt64, code: UInt16, reason: String)

    func run(on hub: LoopHub) {
        switch self {
        case .publish(let ticket, let frame, let payload, let durable):
            hub.publish(ticket: ticket, frame: frame.chunk, payload: payload, durable: durable)
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
