/// permessage-deflate negotiation (RFC 7692 §5, §7.1).
///
/// peekd shares one deflate and one inflate stream per event loop between all its connections,
/// resetting them after every message (uWebSockets' SHARED_COMPRESSOR). That is only correct
/// when neither side keeps an LZ77 window between messages, so every accepted offer is answered
/// with both `server_no_context_takeover` and `client_no_context_takeover`: §7.1.1.1 and §7.1.1.2
/// let a server add either even when the client did not ask. Idle connections then carry no
/// zlib state (a context-takeover stream costs ~300 KiB per connection).
public enum PerMessageDeflate {
    public static let extensionName = "permessage-deflate"

    /// Picks the first acceptable permessage-deflate offer from the `Sec-WebSocket-Extensions`
    /// header values (all of them, in order; each may list several offers). Offers of other
    /// extensions, and permessage-deflate offers with an unknown, repeated or malformed parameter,
    /// are declined and the next one is tried (§5: "the server ... declines an offer" it cannot
    /// accept, it does not fail the handshake). Nil when nothing is acceptable.
    public static func negotiate(offers headerValues: [String]) -> PerMessageDeflateParameters? {
        for value in headerValues {
            for offer in ExtensionHeader.parse(value) where WebSocketHandshake.asciiLowercased(offer.name) == extensionName {
                if let accepted = accept(offer) { return accepted }
            }
        }
        return nil
    }

    /// Validates one offer's parameters (§7.1); nil declines it.
    static func accept(_ offer: ExtensionHeader.Element) -> PerMessageDeflateParameters? {
        var seen = Set<String>()
        var serverMaxWindowBits: UInt8?
        var clientMaxWindowBits: UInt8?
        for (rawName, value) in offer.parameters {
            let name = WebSocketHandshake.asciiLowercased(rawName)
            // §7.1: "A client MUST NOT include multiple ... of the same parameter"; the server
            // declines such an offer.
            guard seen.insert(name).inserted else { return nil }
            switch name {
            case "server_no_context_takeover", "client_no_context_takeover":
                guard value == nil else { return nil }
            case "server_max_window_bits":
                // §7.1.2.1: the value is mandatory in an offer.
                guard let value, let bits = windowBits(value) else { return nil }
                serverMaxWindowBits = bits
            case "client_max_window_bits":
                // §7.1.2.2: optional in an offer; when present it must be valid.
                if let value {
                    guard let bits = windowBits(value) else { return nil }
                    clientMaxWindowBits = bits
                }
            default:
                return nil
            }
        }
        return PerMessageDeflateParameters(serverMaxWindowBits: serverMaxWindowBits,
                                           clientMaxWindowBits: clientMaxWindowBits)
    }

    /// "a decimal integer value without leading zeroes between 8 to 15, inclusive" (§7.1.2.1).
    static func windowBits(_ text: String) -> UInt8? {
        switch text {
        case "8": return 8
        case "9": return 9
        case "10": return 10
        case "11": return 11
        case "12": return 12
        case "13": return 13
        case "14": return 14
        case "15": return 15
        default: return nil
        }
    }
}
