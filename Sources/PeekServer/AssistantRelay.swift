import Foundation
import PeekCore
import PeekEngine
import PeekHTTP
import PeekTLS
import Synchronization

/// Calls the tenants' assistants and summariser over HTTP (protocol.md
/// §11), never on a loop or the engine thread: on a bounded pool of
/// worker threads, a tenant's calls limited to its fair share of the pool
/// (`WorkerPool`'s lanes, as for mail), each call under one deadline.
///
/// An assistant's answer streams straight from the worker to the asking
/// connection through the bus (`assist_chunk` frames, then `assist_done`
/// or `error`): nothing of it is durable, so the engine need not see it,
/// and one worker writes a call's frames in order to one loop.
final class AssistantRelay: AssistantCaller {
    /// Calls at once; each is a thread blocked on a socket.
    static let maxCalls = 8
    /// Calls waiting for a worker, over every tenant.
    static let maxWaiting = 64
    /// Assists one technician may have running or waiting at once.
    static let maxPerTechnician = 2
    /// Largest answer read from an endpoint (after chunked decoding).
    static let maxAnswerBytes = 256 * 1024
    /// Largest assist text relayed: a message body's size.
    static let maxAssistTextBytes = 64 * 1024

    let workers = WorkerPool(name: "peekd-assist", maxThreads: maxCalls, queueCapacity: maxWaiting)
    let timeoutSeconds: Double
    private let smtpCA: String?
    /// Built at the first https call: a wrong CA file then fails that call
    /// (the mailer's context refuses to start peekd already).
    private let tls = Mutex<TLSContext?>(nil)
    private let perTechnician = Mutex<[TenantScopedID: Int]>([:])

    init(timeoutSeconds: Double, smtpCA: String?) {
        self.timeoutSeconds = timeoutSeconds
        self.smtpCA = smtpCA
    }

    private func tlsContext() -> TLSContext? {
        tls.withLock { slot in
            if slot == nil { slot = try? TLSContext.makeClient(caFile: smtpCA, useSystemTrust: true) }
            return slot
        }
    }

    static func busy(_ tenant: Bool) -> PeekError {
        PeekError(.rateLimited, tenant ? "Your organisation's assistant calls fill their share of the server; nothing was sent. Try again in a moment."
                                       : "The server is busy with assistant calls; nothing was sent. Try again in a moment.")
    }

    /// Starts an assist call whose answer goes to `peer` as frames for `id`,
    /// or says why not (nothing was sent).
    package func assist(url: HTTPEndpointURL, body: [UInt8], technician: TenantScopedID, peer: Peer, id: String, ticket: String,
                bus: any DeltaBus, logger: ServerLog) -> PeekError? {
        let admitted = perTechnician.withLock { counts -> Bool in
            guard counts[technician, default: 0] < Self.maxPerTechnician else { return false }
            counts[technician, default: 0] += 1
            return true
        }
        guard admitted else {
            return PeekError(.rateLimited, "You already have \(Self.maxPerTechnician) assistant answers on their way; wait for one to finish.")
        }
        let refusal = workers.submit(tenant: technician.tenant) { [self] in
            runAssist(url: url, body: body, peer: peer, id: id, ticket: ticket, bus: bus, logger: logger, tenant: technician.tenant)
            perTechnician.withLock { counts in
                counts[technician, default: 1] -= 1
                if counts[technician] == 0 { counts[technician] = nil }
            }
        }
        if let refusal {
            perTechnician.withLock { counts in
                counts[technician, default: 1] -= 1
                if counts[technician] == 0 { counts[technician] = nil }
            }
            return Self.busy(refusal == .overShare)
        }
        return nil
    }

    private func runAssist(url: HTTPEndpointURL, body: [UInt8], peer: Peer, id: String, ticket: String,
                           bus: any DeltaBus, logger: ServerLog, tenant: String) {
        var decoder = AssistantStreamDecoder()
        var text = ""
        var model: String?
        var status = 0
        var errorBody: [UInt8] = []
        var unreadable: String?
        func send(_ frame: [UInt8]) { bus.deliver([.send(peer, frame)]) }
        func take(_ pieces: [AssistantStreamDecoder.Piece]) throws(HTTPClient.Abort) {
            for piece in pieces {
                switch piece {
                case .model(let m): model = String(m.prefix(200))
                case .error(let e): throw HTTPClient.Abort(text: "the assistant reported: \(e.prefix(500))")
                case .text(let t):
                    guard text.utf8.count + t.utf8.count <= Self.maxAssistTextBytes else {
                        throw HTTPClient.Abort(text: "the assistant's answer is over \(Self.maxAssistTextBytes / 1024) KiB")
                    }
                    text += t
                    send(Self.frame("assist_chunk", id: id, ticket: ticket) { $0.field("text", t) })
                }
            }
        }
        let result = HTTPClient.post(url, body: body, accept: "application/x-ndjson", tls: url.secure ? tlsContext() : nil,
                                     timeoutSeconds: timeoutSeconds,
                                     limits: .init(maxBodyBytes: Self.maxAnswerBytes)) { (bytes: [UInt8]) throws(HTTPClient.Abort) in
            // A refusal's body is kept (a little of it) for the message.
            if errorBody.count < 2048, status == -2 { errorBody += bytes.prefix(2048 - errorBody.count); return }
            var pieces: [AssistantStreamDecoder.Piece] = []
            do throws(AssistantStreamDecoder.Failure) { try decoder.append(bytes, into: &pieces) } catch {
                unreadable = error.text
            }
            // The lines before a bad one are relayed, then the stream stops.
            try take(pieces)
            if let unreadable { throw HTTPClient.Abort(text: unreadable) }
        } onHead: { head in
            status = (200...299).contains(head.status) ? -1 : -2
        }
        var failure: String?
        switch result {
        case .failure(.timedOut):
            failure = "The assistant did not answer within \(Int(timeoutSeconds)) seconds; try again."
        case .failure(.connect(let why)):
            failure = "The assistant could not be reached (\(why)); try again."
        case .failure(.aborted) where unreadable != nil:
            failure = "The assistant's answer could not be read (\(unreadable!)); try again."
        case .failure(.aborted(let why)):
            failure = "The assistant's answer stopped: \(why); try again."
        case .failure(let f):
            failure = "The assistant's answer could not be read (\(f.text)); try again."
        case .success(let head) where !(200...299).contains(head.status):
            let snippet = String(decoding: errorBody, as: UTF8.self).prefix(300).trimmingCharacters(in: .whitespacesAndNewlines)
            failure = "The assistant answered HTTP \(head.status)\(snippet.isEmpty ? "" : ": \(snippet)"); try again."
        case .success:
            var pieces: [AssistantStreamDecoder.Piece] = []
            do throws(AssistantStreamDecoder.Failure) { try decoder.finish(into: &pieces) } catch {
                unreadable = error.text
            }
            do throws(HTTPClient.Abort) { try take(pieces) } catch {
                failure = "The assistant's answer stopped: \(error.text); try again."
            }
            if failure == nil, let unreadable {
                failure = "The assistant's answer could not be read (\(unreadable)); try again."
            }
        }
        if let failure {
            logger.log(.warn, "assist_failed", "an assistant call failed", tenant: tenant, ticket: ticket, connection: peer, error: failure)
            send(Wire.errorFrame(id: id, PeekError(.assistFailed, failure)))
            return
        }
        send(Self.frame("assist_done", id: id, ticket: ticket) { w in
            w.field("text", text)
            w.field("model", model)
        })
    }

    static func frame(_ type: String, id: String, ticket: String, _ fields: (inout JSONWriter) -> Void) -> [UInt8] {
        var w = JSONWriter()
        w.beginObject()
        w.field("type", type)
        w.field("id", id)
        w.field("ticket", ticket)
        fields(&w)
        w.endObject()
        return w.bytes
    }

    /// Calls a summariser; `completion` gets the summary's text and model,
    /// or the reason it failed. False when the pool refused the call.
    package func summarise(url: HTTPEndpointURL, body: [UInt8], tenant: String,
                           completion: @escaping @Sendable (Result<(text: String, model: String), EndpointFailure>) -> Void) -> Bool {
        workers.submit(tenant: tenant) { [self] in
            var answer: [UInt8] = []
            var ok = false
            let result = HTTPClient.post(url, body: body, accept: "application/json", tls: url.secure ? tlsContext() : nil,
                                         timeoutSeconds: timeoutSeconds, limits: .init(maxBodyBytes: 64 * 1024)) { (bytes: [UInt8]) throws(HTTPClient.Abort) in
                answer += bytes
            } onHead: { head in ok = (200...299).contains(head.status) }
            switch result {
            case .failure(let f): completion(.failure(EndpointFailure(f.text)))
            case .success(let head) where !ok:
                completion(.failure(EndpointFailure("the summariser answered HTTP \(head.status)")))
            case .success:
                guard let v = try? JSONParser.parse(answer), let text = v["text"]?.stringValue, !text.isEmpty, text.utf8.count <= 32 * 1024 else {
                    completion(.failure(EndpointFailure("the summariser's answer is not {\"text\", \"model\"} with a text of at most 32 KiB")))
                    return
                }
                let model = (v["model"]?.stringValue).map { String($0.prefix(200)) } ?? "unknown"
                completion(.success((text, model.isEmpty ? "unknown" : model)))
            }
        } == nil
    }
}
