/// Appends JSON to a byte buffer with no intermediate objects: the server
/// encodes each delta once with this and shares the bytes with every viewer.
///
/// Commas are tracked with one bit per nesting level, so the writer itself
/// never allocates; callers open and close containers in order.
public struct JSONWriter {
    public var bytes: [UInt8]
    private var needsComma: UInt64 = 0
    private var depth = 0

    public init(capacity: Int = 256) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    private mutating func separator() {
        let bit: UInt64 = 1 << UInt64(depth & 63)
        if needsComma & bit != 0 { bytes.append(UInt8(ascii: ",")) } else { needsComma |= bit }
    }

    private mutating func push() {
        depth += 1
        needsComma &= ~(1 << UInt64(depth & 63))
    }

    public mutating func beginObject() { valueSeparator(); bytes.append(UInt8(ascii: "{")); push() }
    public mutating func endObject() { depth -= 1; bytes.append(UInt8(ascii: "}")) }
    public mutating func beginArray() { valueSeparator(); bytes.append(UInt8(ascii: "[")); push() }
    public mutating func endArray() { depth -= 1; bytes.append(UInt8(ascii: "]")) }

    /// Writes `"name":` and leaves the writer ready for the value, which must
    /// follow (its own separator call is suppressed).
    public mutating func key(_ name: String) {
        separator()
        appendQuoted(name)
        bytes.append(UInt8(ascii: ":"))
        pendingKey = true
    }

    /// True between `key(_:)` and its value: the value takes no comma.
    private var pendingKey = false

    private mutating func valueSeparator() {
        if pendingKey {
            pendingKey = false
        } else {
            separator()
        }
    }

    public mutating func string(_ value: String) { valueSeparator(); appendQuoted(value) }
    public mutating func int(_ value: Int) { valueSeparator(); bytes.append(contentsOf: String(value).utf8) }
    public mutating func double(_ value: Double) {
        valueSeparator()
        if value.isFinite { bytes.append(contentsOf: String(value).utf8) } else { bytes.append(contentsOf: "null".utf8) }
    }
    public mutating func bool(_ value: Bool) { valueSeparator(); bytes.append(contentsOf: (value ? "true" : "false").utf8) }
    public mutating func null() { valueSeparator(); bytes.append(contentsOf: "null".utf8) }
    /// Splices already-encoded JSON (a cached object, a stored delta) in place.
    public mutating func raw(_ json: some Collection<UInt8>) { valueSeparator(); bytes.append(contentsOf: json) }

    public mutating func optionalString(_ value: String?) { if let value { string(value) } else { null() } }
    public mutating func optionalInt(_ value: Int?) { if let value { int(value) } else { null() } }

    public mutating func value(_ value: JSONValue) {
        switch value {
        case .null: null()
        case .bool(let b): bool(b)
        case .int(let i): int(i)
        case .double(let d): double(d)
        case .string(let s): string(s)
        case .array(let a):
            beginArray()
            for v in a { self.value(v) }
            endArray()
        case .object(let o):
            beginObject()
            // Sorted so that equal values encode to equal bytes (tests, ETags).
            for k in o.keys.sorted() { key(k); self.value(o[k]!) }
            endObject()
        }
    }

    // Object field shorthands, the common case on every encoder.
    public mutating func field(_ name: String, _ value: String) { key(name); string(value) }
    public mutating func field(_ name: String, _ value: Int) { key(name); int(value) }
    public mutating func field(_ name: String, _ value: Bool) { key(name); bool(value) }
    public mutating func field(_ name: String, _ value: String?) { key(name); optionalString(value) }
    public mutating func field(_ name: String, _ value: Int?) { key(name); optionalInt(value) }
    public mutating func nullField(_ name: String) { key(name); null() }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    private mutating func appendQuoted(_ s: String) {
        bytes.append(UInt8(ascii: "\""))
        // Most strings (ids, names, note bodies) need no escape: one scan and
        // one bulk copy instead of an append per byte (callgrind: ~7% of a
        // note's instructions went to the per-byte loop).
        var text = s
        let clean = text.withUTF8 { utf8 in !utf8.contains { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C } }
        if clean {
            bytes.append(contentsOf: text.utf8)
            bytes.append(UInt8(ascii: "\""))
            return
        }
        for c in s.utf8 {
            switch c {
            case UInt8(ascii: "\""): bytes.append(0x5C); bytes.append(0x22)
            case UInt8(ascii: "\\"): bytes.append(0x5C); bytes.append(0x5C)
            case 0x0A: bytes.append(0x5C); bytes.append(UInt8(ascii: "n"))
            case 0x0D: bytes.append(0x5C); bytes.append(UInt8(ascii: "r"))
            case 0x09: bytes.append(0x5C); bytes.append(UInt8(ascii: "t"))
            case 0..<0x20:
                bytes.append(contentsOf: [0x5C, UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"),
                                          Self.hexDigits[Int(c >> 4)], Self.hexDigits[Int(c & 0xF)]])
            default: bytes.append(c)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    public static func encode(_ value: JSONValue) -> [UInt8] {
        var w = JSONWriter()
        w.value(value)
        return w.bytes
    }
}
