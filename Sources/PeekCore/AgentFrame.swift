/// A frame an RMM agent sends, decoded and validated. Pure like `ClientFrame`,
/// so the agent socket's untrusted bytes can be tested and fuzzed without a server.
public enum AgentFrame: Equatable, Sendable {
    case chat(ticket: String, body: String)
    case telemetry(cpu: Double, ram: Double, disk: Double)
    case consent(session: String, accept: Bool)
    case sessionOutput(session: String, data: String)
    case sessionJoin(session: String, url: String, expiresAt: Int64)
    /// The asset's security posture as the agent sees it (an object, or null).
    case posture(JSONValue)

    /// Longest remote desktop join link; the vendor's links are far shorter.
    public static let maxJoinURLBytes = 2048

    /// Largest `session_output` `data`: a shell's chunk of output.
    public static let maxSessionOutputBytes = 16 * 1024

    public static func decode(_ bytes: [UInt8]) -> Result<AgentFrame, PeekError> {
        guard let v = try? JSONParser.parse(bytes), case .object = v else {
            return .failure(PeekError(.invalid, "The frame is not a JSON object."))
        }
        switch v["type"]?.stringValue {
        case "chat":
            guard let t = v["ticket"]?.stringValue, let b = v["body"]?.stringValue, !b.isEmpty, b.utf8.count <= CommandRequest.maxBodyBytes else {
                return .failure(PeekError(.invalid, "\"chat\" needs a string \"ticket\" and a non-empty \"body\" of at most 64 KiB."))
            }
            guard Identifier.isValid(t) else { return .failure(PeekError(.invalid, Identifier.refusal("\"ticket\""))) }
            return .success(.chat(ticket: t, body: b))
        case "telemetry":
            guard let c = v["cpu"]?.doubleValue, let r = v["ram"]?.doubleValue, let d = v["disk"]?.doubleValue,
                  [c, r, d].allSatisfy({ $0 >= 0 && $0 <= 100 }) else {
                return .failure(PeekError(.invalid, "\"telemetry\" needs numbers \"cpu\", \"ram\" and \"disk\" between 0 and 100 (percent)."))
            }
            return .success(.telemetry(cpu: c, ram: r, disk: d))
        case "consent":
            guard let s = v["session"]?.stringValue, let d = v["decision"]?.stringValue, d == "accept" || d == "deny" else {
                return .failure(PeekError(.invalid, "\"consent\" needs a string \"session\" and \"decision\": \"accept\" or \"deny\"."))
            }
            guard Identifier.isValid(s) else { return .failure(PeekError(.invalid, Identifier.refusal("\"session\""))) }
            return .success(.consent(session: s, accept: d == "accept"))
        case "session_output":
            guard let s = v["session"]?.stringValue, let d = v["data"]?.stringValue,
                  !d.isEmpty, d.utf8.count <= maxSessionOutputBytes else {
                return .failure(PeekError(.invalid, "\"session_output\" needs a string \"session\" and a \"data\" string of 1 to \(maxSessionOutputBytes) bytes; split longer output."))
            }
            guard Identifier.isValid(s) else { return .failure(PeekError(.invalid, Identifier.refusal("\"session\""))) }
            return .success(.sessionOutput(session: s, data: d))
        case "session_join":
            guard let s = v["session"]?.stringValue, let url = v["url"]?.stringValue,
                  let expires = v["expires_at"]?.stringValue.flatMap(Timestamp.parse) else {
                return .failure(PeekError(.invalid, "\"session_join\" needs a string \"session\", a string \"url\" and an ISO 8601 \"expires_at\"."))
            }
            guard Identifier.isValid(s) else { return .failure(PeekError(.invalid, Identifier.refusal("\"session\""))) }
            // The link opens in the technician's browser: https only, no
            // whitespace or control characters that could smuggle anything.
            guard url.utf8.count <= maxJoinURLBytes, url.lowercased().hasPrefix("https://"), url.utf8.count > "https://".utf8.count,
                  url.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value != 0x7F }) else {
                return .failure(PeekError(.invalid, "\"url\" must be an https:// link of at most \(maxJoinURLBytes) bytes without spaces or control characters."))
            }
            return .success(.sessionJoin(session: s, url: url, expiresAt: expires))
        case "posture":
            guard let p = v["posture"], p.isNull || { if case .object = p { true } else { false } }() else {
                return .failure(PeekError(.invalid, "\"posture\" needs \"posture\": an object, or null to clear it."))
            }
            return .success(.posture(p))
        case let t?:
            return .failure(PeekError(.invalid, "Unknown frame type \"\(t)\"; agents send chat, telemetry, consent, session_output, session_join or posture."))
        case nil:
            return .failure(PeekError(.invalid, "A frame needs a string \"type\"."))
        }
    }
}
