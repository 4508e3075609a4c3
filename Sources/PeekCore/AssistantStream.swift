/// The streamed answer of a tenant's assistant (protocol.md §11.2): a body
/// of newline-delimited JSON objects, each adding to the answer. Pure:
/// body bytes in, pieces out, so the relay's reading and this decoding are
/// tested apart and the decoder fuzzed (Fuzz/Targets/http_response.swift).
///
/// Each line is an object with any of `text` (the next piece of the
/// answer), `model` (who wrote it) and `error` (a sentence: the assistant
/// failed and the answer ends here). Blank lines are skipped; a line that
/// is not such an object is a failure. A last line without its newline is
/// read at `finish`.
public struct AssistantStreamDecoder: Sendable {
    public enum Piece: Equatable, Sendable {
        case text(String)
        case model(String)
        case error(String)
    }

    public enum Failure: Error, Equatable, Sendable {
        case lineTooLong
        case notAnObject(String)
        public var text: String {
            switch self {
            case .lineTooLong: "a line of the assistant's answer is too long"
            case .notAnObject(let why): "a line of the assistant's answer is not a JSON object with \"text\" (\(why))"
            }
        }
    }

    public let maxLineBytes: Int
    private var line: [UInt8] = []

    public init(maxLineBytes: Int = 64 * 1024) { self.maxLineBytes = maxLineBytes }

    /// Adds the pieces of every line `bytes` completes to `pieces`. On a
    /// failure, the pieces of the lines before the bad one are there
    /// already: how the body was cut does not change what was decoded.
    public mutating func append(_ bytes: [UInt8], into pieces: inout [Piece]) throws(Failure) {
        var from = 0
        for i in bytes.indices where bytes[i] == 0x0A {
            line.append(contentsOf: bytes[from..<i])
            from = i + 1
            guard line.count <= maxLineBytes else { throw .lineTooLong }
            try Self.decode(line, into: &pieces)
            line.removeAll(keepingCapacity: true)
        }
        line.append(contentsOf: bytes[from...])
        guard line.count <= maxLineBytes else { throw .lineTooLong }
    }

    /// The body ended: decodes a last line that had no newline.
    public mutating func finish(into pieces: inout [Piece]) throws(Failure) {
        try Self.decode(line, into: &pieces)
        line.removeAll()
    }

    private static func decode(_ raw: [UInt8], into pieces: inout [Piece]) throws(Failure) {
        var line = raw[...]
        while let last = line.last, last == 0x0D || last == 0x20 || last == 0x09 { line = line.dropLast() }
        while let first = line.first, first == 0x20 || first == 0x09 { line = line.dropFirst() }
        if line.isEmpty { return }
        let value: JSONValue
        do { value = try JSONParser.parse(Array(line)) } catch { throw .notAnObject(error.description) }
        guard case .object = value else { throw .notAnObject("not an object") }
        if let m = value["model"] {
            guard let s = m.stringValue else { throw .notAnObject("\"model\" is not a string") }
            pieces.append(.model(s))
        }
        if let t = value["text"] {
            guard let s = t.stringValue else { throw .notAnObject("\"text\" is not a string") }
            if !s.isEmpty { pieces.append(.text(s)) }
        }
        if let e = value["error"] {
            pieces.append(.error(e.stringValue ?? "the assistant reported an error"))
        }
    }
}
