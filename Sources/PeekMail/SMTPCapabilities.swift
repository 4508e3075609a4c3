/// What a server advertised in its EHLO answer (RFC 5321 §4.1.1.1: the first line is
/// the server's name, every further line one extension keyword with parameters).
public struct SMTPCapabilities: Sendable, Equatable {
    /// Extension keywords, uppercased: `STARTTLS`, `PIPELINING`, `8BITMIME` ...
    public var keywords: Set<String>
    /// AUTH mechanisms, uppercased, from `AUTH PLAIN LOGIN` and the pre-RFC 4954
    /// `AUTH=PLAIN LOGIN` form some servers still send.
    public var authMechanisms: Set<String>
    /// The SIZE extension's limit (RFC 1870); nil when absent or 0 (no fixed limit).
    public var maxMessageBytes: Int?

    public init() {
        keywords = []
        authMechanisms = []
        maxMessageBytes = nil
    }

    public init(ehloReply reply: SMTPReply) {
        self.init()
        for line in reply.lines.dropFirst() {
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map { $0.uppercased() }
            guard var keyword = words.first else { continue }
            var parameters = Array(words.dropFirst())
            if keyword.hasPrefix("AUTH=") {
                parameters.insert(String(keyword.dropFirst(5)), at: 0)
                keyword = "AUTH"
            }
            keywords.insert(keyword)
            switch keyword {
            case "AUTH":
                authMechanisms.formUnion(parameters.filter { !$0.isEmpty })
            case "SIZE":
                if let first = parameters.first, let size = Int(first), size > 0 { maxMessageBytes = size }
            default:
                break
            }
        }
    }

    public var supportsStartTLS: Bool { keywords.contains("STARTTLS") }
}
