/// Streaming UTF-8 validation (RFC 3629 §4) as a byte-class DFA whose state survives between calls,
/// so a code point split across frames or TCP reads validates exactly like a whole one.
///
/// It rejects at the first byte that cannot continue a valid sequence, which is what lets the
/// connection fail fast (Autobahn 6.4.x) instead of waiting for the end of the message:
/// overlong forms (C0, C1, E0 80-9F, F0 80-8F), UTF-16 surrogates (ED A0-BF), code points over
/// U+10FFFF (F4 90+, F5-FF) and stray continuation bytes. A sequence cut off by the end of the
/// message is only detectable at the end: check `isComplete` then.
///
/// The state is one byte, so an idle connection pays nothing for it.
public struct UTF8Validator: Sendable, Equatable {
    private var state: UInt8 = Self.accept

    public init() {}

    /// True when every byte so far formed whole, valid code points.
    public var isComplete: Bool { state == Self.accept }
    /// True once an invalid byte was seen; sticky until `reset()`.
    public var hasFailed: Bool { state == Self.reject }

    public mutating func reset() { state = Self.accept }

    /// Feeds `bytes`; returns false as soon as they cannot be part of valid UTF-8 (and stays false).
    @discardableResult
    public mutating func validate(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard state != Self.reject else { return false }
        guard let base = bytes.baseAddress else { return true }
        let count = bytes.count
        var s = state
        var i = 0
        Self.classes.withUnsafeBufferPointer { classes in
            Self.transitions.withUnsafeBufferPointer { transitions in
                while i < count {
                    // ASCII fast path: between code points, skip 8 bytes at a time while no byte
                    // has its top bit set. JSON frames are mostly ASCII.
                    if s == Self.accept {
                        while i + 8 <= count,
                              base.loadUnaligned(fromByteOffset: i, as: UInt64.self) & 0x8080_8080_8080_8080 == 0 {
                            i += 8
                        }
                        guard i < count else { break }
                    }
                    let byte = base.load(fromByteOffset: i, as: UInt8.self)
                    s = transitions[Int(s) &* Self.classCount &+ Int(classes[Int(byte)])]
                    if s == Self.reject { break }
                    i += 1
                }
            }
        }
        state = s
        return s != Self.reject
    }

    @discardableResult
    public mutating func validate(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { validate($0) }
    }

    /// Whole-buffer check: valid and not cut off mid code point.
    public static func isValid(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var validator = UTF8Validator()
        return validator.validate(bytes) && validator.isComplete
    }

    public static func isValid(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { isValid($0) }
    }

    // MARK: - The automaton

    // States. `need1...need3` expect that many plain continuation bytes (80-BF); the four lead-byte
    // states restrict the *next* byte, which is where overlongs, surrogates and > U+10FFFF die.
    private static let accept: UInt8 = 0
    private static let reject: UInt8 = 1
    private static let need1: UInt8 = 2
    private static let need2: UInt8 = 3
    private static let need3: UInt8 = 4
    private static let afterE0: UInt8 = 5   // next A0-BF (80-9F would be an overlong 3-byte form)
    private static let afterED: UInt8 = 6   // next 80-9F (A0-BF would encode U+D800-DFFF)
    private static let afterF0: UInt8 = 7   // next 90-BF (80-8F would be an overlong 4-byte form)
    private static let afterF4: UInt8 = 8   // next 80-8F (90+ would exceed U+10FFFF)
    private static let stateCount = 9

    // Byte classes.
    private static let ascii: UInt8 = 0         // 00-7F
    private static let cont80: UInt8 = 1        // 80-8F
    private static let cont90: UInt8 = 2        // 90-9F
    private static let contA0: UInt8 = 3        // A0-BF
    private static let invalid: UInt8 = 4       // C0-C1, F5-FF: can never appear
    private static let lead2: UInt8 = 5         // C2-DF
    private static let leadE0: UInt8 = 6
    private static let lead3: UInt8 = 7         // E1-EC, EE-EF
    private static let leadED: UInt8 = 8
    private static let leadF0: UInt8 = 9
    private static let lead4: UInt8 = 10        // F1-F3
    private static let leadF4: UInt8 = 11
    private static let classCount = 12

    private static let classes: [UInt8] = (0...255).map { (byte: Int) -> UInt8 in
        switch byte {
        case 0x00...0x7F: return ascii
        case 0x80...0x8F: return cont80
        case 0x90...0x9F: return cont90
        case 0xA0...0xBF: return contA0
        case 0xC2...0xDF: return lead2
        case 0xE0: return leadE0
        case 0xED: return leadED
        case 0xE1...0xEF: return lead3
        case 0xF0: return leadF0
        case 0xF1...0xF3: return lead4
        case 0xF4: return leadF4
        default: return invalid
        }
    }

    private static let transitions: [UInt8] = {
        var table = [UInt8](repeating: reject, count: stateCount * classCount)
        func set(_ state: UInt8, _ classList: [UInt8], _ next: UInt8) {
            for c in classList { table[Int(state) * classCount + Int(c)] = next }
        }
        let anyContinuation = [cont80, cont90, contA0]
        set(accept, [ascii], accept)
        set(accept, [lead2], need1)
        set(accept, [leadE0], afterE0)
        set(accept, [lead3], need2)
        set(accept, [leadED], afterED)
        set(accept, [leadF0], afterF0)
        set(accept, [lead4], need3)
        set(accept, [leadF4], afterF4)
        set(need1, anyContinuation, accept)
        set(need2, anyContinuation, need1)
        set(need3, anyContinuation, need2)
        set(afterE0, [contA0], need1)
        set(afterED, [cont80, cont90], need1)
        set(afterF0, [cont90, contA0], need2)
        set(afterF4, [cont80], need2)
        return table
    }()
}
