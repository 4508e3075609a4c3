/// A close status code (RFC 6455 §7.4). A struct rather than an enum because the space is open:
/// 3000-3999 belong to libraries and frameworks, 4000-4999 to applications, and a peer may send
/// any of them; the statics name the ones peekd sends or must recognise.
public struct CloseCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16

    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public init(_ rawValue: UInt16) { self.rawValue = rawValue }

    public static let normal = CloseCode(1000)
    /// Server shutdown or a page navigating away.
    public static let goingAway = CloseCode(1001)
    public static let protocolError = CloseCode(1002)
    /// A message type the endpoint does not accept (a binary frame on `/v1/ws`).
    public static let unsupportedData = CloseCode(1003)
    /// Text that is not UTF-8, or compressed data that does not inflate.
    public static let invalidPayload = CloseCode(1007)
    public static let policyViolation = CloseCode(1008)
    public static let messageTooBig = CloseCode(1009)
    public static let internalError = CloseCode(1011)
    /// Overload or a slow consumer: the client should reconnect later.
    public static let tryAgainLater = CloseCode(1013)
    /// Application code: the token was missing, malformed, expired or wrongly signed.
    public static let unauthorized = CloseCode(4401)
    /// Application code: authenticated, but not allowed.
    public static let forbidden = CloseCode(4403)

    /// Whether a peer may put this code on the wire in a close frame (RFC 6455 §7.4.1-7.4.2).
    /// 1005, 1006 and 1015 are reserved for APIs to report "no code" / "abnormal" / "TLS failure"
    /// and "MUST NOT be set as a status code in a Close control frame"; 1004 and 1016-2999 are
    /// unassigned or reserved for future RFCs; below 1000 and from 5000 are undefined. 1012-1014
    /// (service restart, try again later, bad gateway) were registered with IANA after the RFC and
    /// are real-world codes, so they pass. Anything else received is a protocol error (1002).
    public var isValidInCloseFrame: Bool {
        switch rawValue {
        case 1000...1003, 1007...1014, 3000...4999: return true
        default: return false
        }
    }

    public var description: String { String(rawValue) }
}
