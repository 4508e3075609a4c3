/// A frame a technician client sends, decoded and validated. Validation
/// lives here, once: a frame that decodes is well-formed, and every refusal
/// carries the frame's `id` (when it had one) and a sentence to act on.
public enum ClientFrame: Equatable, Sendable {
    case hello(token: String)
    case subscribe(id: String?, ticket: String, since: Int?)
    case unsubscribe(ticket: String)
    case command(CommandRequest)
    case composing(ticket: String, mode: ComposingMode?)
    /// A new token for the same technician before the one in force expires.
    case refresh(id: String, token: String)
    /// Keystrokes for the agent's shell (protocol.md §6.1); never answered
    /// unless refused.
    case sessionInput(id: String?, ticket: String, session: String, data: String)
    /// Older messages of a ticket: up to `limit` with seq < `before`.
    case history(id: String, ticket: String, before: Int, limit: Int)
    /// Ask the tenant's assistant to draft or refine `draft` (protocol.md §11.1).
    case assist(id: String, ticket: String, mode: ComposingMode, draft: String)

    /// Largest `assist` `draft`, the size of a message body.
    public static let maxAssistDraftBytes = 64 * 1024
    /// The live queue (protocol.md §3.13): one view per connection; a new
    /// one replaces it.
    case subscribeQueue(id: String?, QueueQuery)
    case unsubscribeQueue

    /// Messages a `history` answers when it names no `limit`, and the most it may name.
    public static let historyDefaultLimit = 50
    public static let historyMaxLimit = 100

    /// The id an answer to this frame echoes (`subscribe`, `history`,
    /// `refresh` and `command` carry one; the others are never answered by id).
    public var id: String? {
        switch self {
        case .subscribe(let id, _, _): id
        case .command(let c): c.id
        case .refresh(let id, _): id
        case .sessionInput(let id, _, _, _): id
        case .history(let id, _, _, _): id
        case .assist(let id, _, _, _): id
        case .subscribeQueue(let id, _): id
        case .hello, .unsubscribe, .composing, .unsubscribeQueue: nil
        }
    }

    /// Largest `session_input` `data`: typed or pasted lines, not uploads.
    public static let maxSessionInputBytes = 4096

    public struct Refusal: Error, Equatable {
        public var id: String?
        public var error: PeekError
    }

    public static func decode(_ bytes: [UInt8]) -> Result<ClientFrame, Refusal> {
        let value: JSONValue
        do { value = try JSONParser.parse(bytes) } catch {
            return .failure(Refusal(id: nil, error: PeekError(.invalid, "The frame is not valid JSON (\(error.description)).")))
        }
        guard case .object = value else {
            return .failure(Refusal(id: nil, error: PeekError(.invalid, "A frame must be a JSON object.")))
        }
        // An id that breaks the rule is not echoed: it may be a megabyte of junk.
        let rawID = value["id"]?.stringValue
        let id = rawID.flatMap { Identifier.isValid($0) ? $0 : nil }
        func refuse(_ message: String) -> Result<ClientFrame, Refusal> {
            .failure(Refusal(id: id, error: PeekError(.invalid, message)))
        }
        guard let type = value["type"]?.stringValue else { return refuse("A frame needs a string \"type\".") }
        if rawID != nil && id == nil { return refuse(Identifier.refusal("\"id\"")) }
        if let ticket = value["ticket"]?.stringValue, !Identifier.isValid(ticket) { return refuse(Identifier.refusal("\"ticket\"")) }
        switch type {
        case "hello":
            guard let token = value["token"]?.stringValue else { return refuse("\"hello\" needs a string \"token\".") }
            return .success(.hello(token: token))
        case "subscribe":
            guard let ticket = value["ticket"]?.stringValue else { return refuse("\"subscribe\" needs a string \"ticket\".") }
            var since: Int?
            if let s = value["since"], !s.isNull {
                guard let n = s.intValue, n >= 0 else { return refuse("\"since\" must be a non-negative integer seq.") }
                since = n
            }
            return .success(.subscribe(id: id, ticket: ticket, since: since))
        case "unsubscribe":
            guard let ticket = value["ticket"]?.stringValue else { return refuse("\"unsubscribe\" needs a string \"ticket\".") }
            return .success(.unsubscribe(ticket: ticket))
        case "composing":
            guard let ticket = value["ticket"]?.stringValue else { return refuse("\"composing\" needs a string \"ticket\".") }
            let raw = value["mode"]
            if raw == nil || raw!.isNull { return .success(.composing(ticket: ticket, mode: nil)) }
            guard let s = raw?.stringValue, let mode = ComposingMode(rawValue: s) else {
                return refuse("\"mode\" must be \"reply\", \"note\" or null.")
            }
            return .success(.composing(ticket: ticket, mode: mode))
        case "refresh":
            guard let id else { return refuse("\"refresh\" needs a string \"id\".") }
            guard let token = value["token"]?.stringValue else { return refuse("\"refresh\" needs a string \"token\".") }
            return .success(.refresh(id: id, token: token))
        case "session_input":
            guard let ticket = value["ticket"]?.stringValue, let session = value["session"]?.stringValue,
                  Identifier.isValid(session), let data = value["data"]?.stringValue else {
                return refuse("\"session_input\" needs a string \"ticket\", a session id \"session\" and a string \"data\".")
            }
            guard !data.isEmpty, data.utf8.count <= Self.maxSessionInputBytes else {
                return refuse("\"session_input\" \"data\" must hold 1 to \(Self.maxSessionInputBytes) bytes; send longer input in pieces.")
            }
            return .success(.sessionInput(id: id, ticket: ticket, session: session, data: data))
        case "history":
            guard let id else { return refuse("\"history\" needs a string \"id\"; " + Identifier.refusal("it")) }
            guard let ticket = value["ticket"]?.stringValue else { return refuse("\"history\" needs a string \"ticket\".") }
            guard let before = value["before"]?.intValue, before >= 1 else {
                return refuse("\"history\" needs \"before\": a seq (integer >= 1); the messages older than it are sent.")
            }
            var limit = historyDefaultLimit
            if let l = value["limit"], !l.isNull {
                guard let n = l.intValue, (1...historyMaxLimit).contains(n) else {
                    return refuse("\"limit\" must be an integer from 1 to \(historyMaxLimit).")
                }
                limit = n
            }
            return .success(.history(id: id, ticket: ticket, before: before, limit: limit))
        case "assist":
            guard let id else { return refuse("\"assist\" needs a string \"id\"; " + Identifier.refusal("it")) }
            guard let ticket = value["ticket"]?.stringValue else { return refuse("\"assist\" needs a string \"ticket\".") }
            guard let m = value["mode"]?.stringValue, let mode = ComposingMode(rawValue: m) else {
                return refuse("\"assist\" needs \"mode\": \"reply\" or \"note\".")
            }
            var draft = ""
            if let d = value["draft"], !d.isNull {
                guard let s = d.stringValue else { return refuse("\"draft\" must be a string.") }
                guard s.utf8.count <= maxAssistDraftBytes else { return refuse("\"draft\" is over \(maxAssistDraftBytes / 1024) KiB.") }
                draft = s
            }
            return .success(.assist(id: id, ticket: ticket, mode: mode, draft: draft))
        case "subscribe_queue":
            switch QueueQuery.decode(value) {
            case .success(let q): return .success(.subscribeQueue(id: id, q))
            case .failure(let message): return refuse(message.text)
            }
        case "unsubscribe_queue":
            return .success(.unsubscribeQueue)
        case "command":
            switch CommandRequest.decode(value) {
            case .success(let c): return .success(.command(c))
            case .failure(let message): return refuse(message.text)
            }
        default:
            return refuse("Unknown frame type \"\(type)\"; expected hello, refresh, subscribe, unsubscribe, subscribe_queue, unsubscribe_queue, history, command, composing, session_input or assist.")
        }
    }
}

public struct DecodeMessage: Error { public var text: String; init(_ t: String) { text = t } }

/// A `command` frame with its op's arguments checked.
public struct CommandRequest: Equatable, Sendable {
    public var id: String
    public var ticket: String
    public var op: CommandOp
    public var args: Arguments
    public var ifVersion: Int?
    public var seen: Int?

    public enum Arguments: Equatable, Sendable {
        case reply(body: String, force: Bool, attachments: [String])
        case note(body: String, force: Bool, attachments: [String])
        case setStatus(TicketStatus)
        case setPriority(Priority)
        case assign(technician: String)
        case takeOwnership, endSession, timerStart
        case startSession(kind: SessionKind)
        case timerStop(note: String?)
        /// A manual time entry: `seconds` worked, ending now.
        case timeAdd(seconds: Int, note: String?)
        case sessionHandover(session: String, technician: String)
    }

    /// Longest body accepted for a reply or note; the frame bound
    /// (`--max-message`) applies first.
    public static let maxBodyBytes = 64 * 1024
    /// The longest manual time entry: one day.
    public static let maxManualEntrySeconds = 24 * 3600

    static func decode(_ v: JSONValue) -> Result<CommandRequest, DecodeMessage> {
        guard let id = v["id"]?.stringValue, Identifier.isValid(id) else {
            return .failure(DecodeMessage("A command needs a string \"id\"; " + Identifier.refusal("it")))
        }
        guard let ticket = v["ticket"]?.stringValue else { return .failure(DecodeMessage("A command needs a string \"ticket\".")) }
        guard let opName = v["op"]?.stringValue else { return .failure(DecodeMessage("A command needs a string \"op\".")) }
        guard let op = CommandOp(rawValue: opName) else {
            return .failure(DecodeMessage("Unknown op \"\(opName)\"; expected one of \(CommandOp.allCases.map(\.rawValue).joined(separator: ", "))."))
        }
        var ifVersion: Int?, seen: Int?
        if let x = v["if_version"], !x.isNull {
            guard let n = x.intValue else { return .failure(DecodeMessage("\"if_version\" must be an integer.")) }
            ifVersion = n
        }
        if let x = v["seen"], !x.isNull {
            guard let n = x.intValue, n >= 0 else { return .failure(DecodeMessage("\"seen\" must be a non-negative integer seq.")) }
            seen = n
        }
        let args = v["args"] ?? .object([:])
        guard case .object = args else { return .failure(DecodeMessage("\"args\" must be an object.")) }
        func body() -> Result<(String, Bool, [String]), DecodeMessage> {
            guard let b = args["body"]?.stringValue else { return .failure(DecodeMessage("\(opName) needs a string \"args.body\".")) }
            guard !b.trimmingWhitespace.isEmpty else { return .failure(DecodeMessage("The message body is empty; write something first.")) }
            guard b.utf8.count <= maxBodyBytes else { return .failure(DecodeMessage("The message body is over \(maxBodyBytes) bytes; shorten it.")) }
            var force = false
            if let f = args["force"], !f.isNull {
                guard let fb = f.boolValue else { return .failure(DecodeMessage("\"args.force\" must be a boolean.")) }
                force = fb
            }
            var attachments: [String] = []
            if let a = args["attachments"], !a.isNull {
                guard let list = a.arrayValue, list.count <= 20 else { return .failure(DecodeMessage("\"args.attachments\" must be a list of at most 20 attachment ids.")) }
                for item in list {
                    guard let s = item.stringValue, Identifier.isValid(s) else {
                        return .failure(DecodeMessage("\"args.attachments\" must hold attachment ids; " + Identifier.refusal("each")))
                    }
                    attachments.append(s)
                }
            }
            return .success((b, force, attachments))
        }
        let parsed: Arguments
        switch op {
        case .reply, .note:
            switch body() {
            case .failure(let e): return .failure(e)
            case .success(let (b, force, attachments)):
                parsed = op == .reply ? .reply(body: b, force: force, attachments: attachments) : .note(body: b, force: force, attachments: attachments)
            }
        case .setStatus:
            guard let s = args["status"]?.stringValue, let status = TicketStatus(rawValue: s) else {
                return .failure(DecodeMessage("set_status needs \"args.status\": one of \(TicketStatus.allCases.map(\.rawValue).joined(separator: ", "))."))
            }
            parsed = .setStatus(status)
        case .setPriority:
            guard let s = args["priority"]?.stringValue, let p = Priority(rawValue: s) else {
                return .failure(DecodeMessage("set_priority needs \"args.priority\": one of low, normal, high, urgent."))
            }
            parsed = .setPriority(p)
        case .assign:
            guard let t = args["technician"]?.stringValue, Identifier.isValid(t) else {
                return .failure(DecodeMessage("assign needs \"args.technician\": a technician id; " + Identifier.refusal("it")))
            }
            parsed = .assign(technician: t)
        case .takeOwnership: parsed = .takeOwnership
        case .startSession:
            var kind = SessionKind.recording
            if let k = args["kind"], !k.isNull {
                guard let name = k.stringValue, let known = SessionKind(rawValue: name) else {
                    return .failure(DecodeMessage("start_session \"args.kind\" must be one of \(SessionKind.allCases.map(\.rawValue).joined(separator: ", ")) (recording when absent)."))
                }
                kind = known
            }
            parsed = .startSession(kind: kind)
        case .endSession: parsed = .endSession
        case .timerStart: parsed = .timerStart
        case .timerStop:
            var note: String?
            if let n = args["note"], !n.isNull {
                guard let s = n.stringValue, s.utf8.count <= 4096 else { return .failure(DecodeMessage("\"args.note\" must be a string of at most 4096 bytes.")) }
                note = s
            }
            parsed = .timerStop(note: note)
        case .timeAdd:
            guard let seconds = args["seconds"]?.intValue, (60...maxManualEntrySeconds).contains(seconds) else {
                return .failure(DecodeMessage("time_add needs \"args.seconds\": whole seconds from 60 (a minute) to \(maxManualEntrySeconds) (24 hours)."))
            }
            var note: String?
            if let n = args["note"], !n.isNull {
                guard let s = n.stringValue, s.utf8.count <= 4096 else { return .failure(DecodeMessage("\"args.note\" must be a string of at most 4096 bytes.")) }
                note = s
            }
            parsed = .timeAdd(seconds: seconds, note: note)
        case .sessionHandover:
            guard let s = args["session"]?.stringValue, Identifier.isValid(s),
                  let t = args["technician"]?.stringValue, Identifier.isValid(t) else {
                return .failure(DecodeMessage("session_handover needs \"args.session\" (the shell session id) and \"args.technician\" (a technician id)."))
            }
            parsed = .sessionHandover(session: s, technician: t)
        }
        return .success(CommandRequest(id: id, ticket: ticket, op: op, args: parsed, ifVersion: ifVersion, seen: seen))
    }
}

extension String {
    var trimmingWhitespace: Substring {
        var s = self[...]
        while let f = s.first, f.isWhitespace { s = s.dropFirst() }
        while let l = s.last, l.isWhitespace { s = s.dropLast() }
        return s
    }
}
