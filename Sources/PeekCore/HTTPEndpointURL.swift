/// An `http://` or `https://` URL peekd itself calls (a tenant's assistant
/// or summariser), checked once when the back end configures it, so a
/// stored URL always has a host, a port and a path to write into a request
/// line as they are.
///
/// Accepted: `http://HOST[:PORT]/PATH[?QUERY]` and the same with `https`.
/// HOST is a DNS name, an IPv4 address or a bracketed IPv6 address. No
/// user information (a password would end up in logs and in the store's
/// plain text), no fragment, at most 2,048 bytes of printable ASCII.
public struct HTTPEndpointURL: Sendable, Equatable, CustomStringConvertible {
    public var secure: Bool
    /// Without brackets for IPv6.
    public var host: String
    public var port: Int
    /// The request target: the path and the query, starting with "/".
    public var target: String

    public static let maxBytes = 2048

    public var description: String {
        let h = host.contains(":") ? "[\(host)]" : host
        let defaultPort = secure ? 443 : 80
        return (secure ? "https://" : "http://") + h + (port == defaultPort ? "" : ":\(port)") + target
    }

    /// The `Host` header's value.
    public var hostHeader: String {
        let h = host.contains(":") ? "[\(host)]" : host
        return port == (secure ? 443 : 80) ? h : "\(h):\(port)"
    }

    public enum Refusal: Error, Equatable, Sendable {
        case invalid(String)
        public var text: String { switch self { case .invalid(let s): s } }
    }

    public init(_ text: String) throws(Refusal) {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty, bytes.count <= Self.maxBytes else { throw .invalid("must be 1 to \(Self.maxBytes) bytes") }
        guard bytes.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { throw .invalid("must be printable ASCII without spaces") }
        var rest: Substring
        if text.lowercased().hasPrefix("https://") {
            secure = true
            rest = text.dropFirst(8)
        } else if text.lowercased().hasPrefix("http://") {
            secure = false
            rest = text.dropFirst(7)
        } else {
            throw .invalid("must start with http:// or https://")
        }
        guard !rest.contains("#") else { throw .invalid("must not have a fragment (#...)") }
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
        let authority = rest[rest.startIndex..<authorityEnd]
        var path = String(rest[authorityEnd...])
        if path.hasPrefix("?") { path = "/" + path }
        if path.isEmpty { path = "/" }
        target = path
        guard !authority.contains("@") else { throw .invalid("must not carry a user name or password") }
        var hostPart: Substring
        var portPart: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw .invalid("has an unclosed [ in its host") }
            hostPart = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw .invalid("has something after its IPv6 host") }
                portPart = after.dropFirst()
            }
            guard !hostPart.isEmpty, hostPart.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) else {
                throw .invalid("has an invalid IPv6 host")
            }
        } else {
            if let colon = authority.firstIndex(of: ":") {
                hostPart = authority[authority.startIndex..<colon]
                portPart = authority[authority.index(after: colon)...]
            } else {
                hostPart = authority
            }
            guard !hostPart.isEmpty, hostPart.utf8.count <= 253,
                  hostPart.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." }) else {
                throw .invalid("needs a host name or address")
            }
        }
        host = String(hostPart).lowercased()
        if let portPart {
            guard !portPart.isEmpty, portPart.count <= 5, portPart.allSatisfy(\.isASCII), let p = Int(portPart), (1...65535).contains(p) else {
                throw .invalid("has an invalid port (1-65535)")
            }
            port = p
        } else {
            port = secure ? 443 : 80
        }
    }
}
