/// Turns body and header bytes into text by their declared charset.
///
/// Known: UTF-8, US-ASCII, ISO-8859-1 (Latin-1), ISO-8859-15 and Windows-1252, under
/// their common aliases. Mail in the wild often lies about its charset, so:
/// declared UTF-8 or US-ASCII that is not valid UTF-8 is read as Windows-1252 (what
/// mailers that mislabel Latin-1 text almost always produce), and an unknown or
/// missing charset is read as UTF-8 when it is valid and Windows-1252 otherwise.
/// Latin-1 is read as Windows-1252 too, as browsers do (WHATWG Encoding): the 0x80-0x9F
/// range is C1 control codes in Latin-1, which no person types, and curly quotes in
/// Windows-1252, which Outlook sends labelled as Latin-1.
public enum MailCharset {
    public static func decode(_ bytes: some Collection<UInt8>, charset: String?) -> String {
        ParseBudget.unbounded { budget throws(InboundMailError) in try decode(Array(bytes), charset: charset, budget: budget) }
    }

    /// `decode(_:charset:)` for inbound mail, consulting `budget` between chunks.
    static func decode(_ bytes: [UInt8], charset: String?, budget: ParseBudget) throws(InboundMailError) -> String {
        switch normalizedName(charset) {
        case "iso-8859-1", "windows-1252":
            return try singleByte(bytes, upper: windows1252Upper, budget: budget)
        case "iso-8859-15":
            return try singleByte(bytes, upper: latin9Upper, budget: budget)
        default:
            if let text = String(validating: bytes, as: UTF8.self) { return text }
            return try singleByte(bytes, upper: windows1252Upper, budget: budget)
        }
    }

    static func normalizedName(_ charset: String?) -> String? {
        guard let charset else { return nil }
        var name = charset.lowercased()
        name.removeAll { $0 == "\"" || $0 == " " }
        switch name {
        case "utf-8", "utf8": return "utf-8"
        case "us-ascii", "ascii", "ansi_x3.4-1968", "646": return "us-ascii"
        case "iso-8859-1", "iso8859-1", "iso_8859-1", "latin1", "latin-1", "l1", "cp819", "iso-ir-100", "ibm819":
            return "iso-8859-1"
        case "windows-1252", "cp1252", "x-cp1252", "win-1252": return "windows-1252"
        case "iso-8859-15", "iso8859-15", "latin-9", "latin9", "l9": return "iso-8859-15"
        default: return name
        }
    }

    static func utf8OrWindows1252(_ bytes: some Collection<UInt8>) -> String {
        String(validating: bytes, as: UTF8.self) ?? windows1252(bytes)
    }

    /// 0x80-0x9F of Windows-1252; the five unassigned bytes map to the C1 code of the
    /// same value, as in WHATWG's table, so nothing is dropped.
    private static let windows1252High: [UInt32] = [
        0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
        0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008D, 0x017D, 0x008F,
        0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
        0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,
    ]

    /// The scalars of bytes 0x80-0xFF in each single-byte charset.
    private static let windows1252Upper: [UInt32] = windows1252High + (0xA0...0xFF).map { UInt32($0) }

    /// ISO-8859-15: Latin-1 with eight positions changed, the euro sign among them.
    private static let latin9Upper: [UInt32] = (0x80...0xFF).map { byte -> UInt32 in
        switch byte {
        case 0xA4: 0x20AC
        case 0xA6: 0x0160
        case 0xA8: 0x0161
        case 0xB4: 0x017D
        case 0xB8: 0x017E
        case 0xBC: 0x0152
        case 0xBD: 0x0153
        case 0xBE: 0x0178
        default: UInt32(byte)
        }
    }

    static func windows1252(_ bytes: some Collection<UInt8>) -> String {
        ParseBudget.unbounded { budget throws(InboundMailError) in try singleByte(Array(bytes), upper: windows1252Upper, budget: budget) }
    }

    /// Bytes converted between two budget checks.
    private static let chunkBytes = 64 * 1024

    /// Writes UTF-8 directly, from an Array so the loop is not generic, a chunk at a
    /// time: appending scalar by scalar to a String was ten times slower, and a message
    /// may hold megabytes of 8-bit text. Every upper-half scalar of these charsets is
    /// below U+10000, so two or three bytes each, and a chunk never splits one.
    private static func singleByte(_ bytes: [UInt8], upper: [UInt32], budget: ParseBudget) throws(InboundMailError) -> String {
        var text = ""
        var utf8: [UInt8] = []
        utf8.reserveCapacity(min(bytes.count, chunkBytes) * 3)
        var chunkStart = 0
        repeat {
            try budget.check()
            let chunkEnd = min(bytes.count, chunkStart + chunkBytes)
            utf8.removeAll(keepingCapacity: true)
            appendUTF8(of: bytes[chunkStart..<chunkEnd], upper: upper, to: &utf8)
            text += String(decoding: utf8, as: UTF8.self)
            chunkStart = chunkEnd
        } while chunkStart < bytes.count
        return text
    }

    private static func appendUTF8(of bytes: ArraySlice<UInt8>, upper: [UInt32], to utf8: inout [UInt8]) {
        for byte in bytes {
            guard byte >= 0x80 else {
                utf8.append(byte)
                continue
            }
            let scalar = upper[Int(byte - 0x80)]
            if scalar < 0x800 {
                utf8.append(UInt8(0xC0 | scalar >> 6))
            } else {
                utf8.append(UInt8(0xE0 | scalar >> 12))
                utf8.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            }
            utf8.append(UInt8(0x80 | scalar & 0x3F))
        }
    }
}
