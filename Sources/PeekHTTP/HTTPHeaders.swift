/// An ordered list of header fields as they arrived (or will be sent).
///
/// Order and repetition are kept because they carry meaning: `Set-Cookie`
/// cannot be folded, and two `Content-Length` lines are a smuggling signal the
/// parser must see. Lookups compare names case-insensitively in ASCII
/// (RFC 9110 §5.1). Lists are short (the parser caps them at
/// `Limits.maxHeaderCount`), so a linear scan beats a dictionary.
public struct HTTPHeaders: Sendable, Equatable, Sequence, ExpressibleByDictionaryLiteral {
    public typealias Field = (name: String, value: String)

    public private(set) var fields: [Field]

    public init(_ fields: [Field] = []) {
        self.fields = fields
    }

    public init(dictionaryLiteral elements: (String, String)...) {
        self.fields = elements.map { (name: $0.0, value: $0.1) }
    }

    public var count: Int { fields.count }
    public var isEmpty: Bool { fields.isEmpty }

    public func makeIterator() -> IndexingIterator<[Field]> { fields.makeIterator() }

    /// The first value of `name`, or nil.
    public func first(_ name: String) -> String? {
        fields.first { ASCII.equalsIgnoringCase($0.name, name) }?.value
    }

    /// Every value of `name`, in arrival order.
    public func all(_ name: String) -> [String] {
        fields.compactMap { ASCII.equalsIgnoringCase($0.name, name) ? $0.value : nil }
    }

    public func contains(_ name: String) -> Bool {
        fields.contains { ASCII.equalsIgnoringCase($0.name, name) }
    }

    /// True when any `name` line lists `token` among its comma-separated
    /// elements (RFC 9110 §5.6.1), ignoring case: `Connection: keep-alive, Upgrade`
    /// contains "upgrade".
    public func containsToken(_ token: String, in name: String) -> Bool {
        for value in all(name) {
            for element in value.split(separator: ",", omittingEmptySubsequences: true)
            where ASCII.equalsIgnoringCase(ASCII.trimmingWhitespace(element), token) {
                return true
            }
        }
        return false
    }

    /// The comma-separated elements of every `name` line, trimmed, empties dropped.
    public func listElements(_ name: String) -> [Substring] {
        all(name).flatMap { value in
            value.split(separator: ",", omittingEmptySubsequences: true)
                .map(ASCII.trimmingWhitespace)
                .filter { !$0.isEmpty }
        }
    }

    public mutating func add(name: String, value: String) {
        fields.append((name: name, value: value))
    }

    /// Replaces the first `name` line and drops the others, or appends one.
    public mutating func set(name: String, value: String) {
        if let i = fields.firstIndex(where: { ASCII.equalsIgnoringCase($0.name, name) }) {
            fields[i].value = value
            var seen = false
            fields.removeAll { field in
                guard ASCII.equalsIgnoringCase(field.name, name) else { return false }
                defer { seen = true }
                return seen
            }
        } else {
            add(name: name, value: value)
        }
    }

    public mutating func remove(name: String) {
        fields.removeAll { ASCII.equalsIgnoringCase($0.name, name) }
    }

    public static func == (lhs: HTTPHeaders, rhs: HTTPHeaders) -> Bool {
        lhs.fields.count == rhs.fields.count
            && zip(lhs.fields, rhs.fields).allSatisfy { $0.name == $1.name && $0.value == $1.value }
    }
}
