#if canImport(Glibc)
import Glibc
#endif

/// The POSIX ustar format, regular files only: what `peekd backup` writes
/// and `peekd restore` reads, so a backup needs no tool but peekd (and
/// `tar -tvf` can still look inside one). Headers are built and checked
/// here, as bytes; `TarWriter`/`TarReader` stream file contents through a
/// descriptor, so a database of any size costs a fixed buffer.
public enum TarFormat {
    public static let blockSize = 512
    /// ustar's `name` field; longer names would need `prefix`, and ours
    /// (`attachments/ab/<64 hex>`) are about 80 bytes.
    public static let maxNameBytes = 100
    /// 11 octal digits.
    public static let maxFileBytes: Int64 = 0o77777777777

    public struct Header: Equatable, Sendable {
        public var name: String
        public var size: Int64
        public var mode: Int
        public var modifiedSeconds: Int64
    }

    public enum Failure: Error, Equatable, CustomStringConvertible, Sendable {
        case nameTooLong(String)
        case fileTooLarge(String)
        case badChecksum
        case notUstar
        case notRegularFile(String)
        case truncated

        public var description: String {
            switch self {
            case .nameTooLong(let name): "the name \(name) is longer than \(TarFormat.maxNameBytes) bytes"
            case .fileTooLarge(let name): "\(name) is larger than the archive format allows (8 GiB)"
            case .badChecksum: "a header's checksum does not match: the file is damaged or not a backup"
            case .notUstar: "not a ustar archive: this is not a peekd backup"
            case .notRegularFile(let name): "\(name) is not a regular file; a peekd backup holds only files"
            case .truncated: "the archive ends in the middle of a file: it is incomplete"
            }
        }
    }

    public static func encode(_ header: Header) throws(Failure) -> [UInt8] {
        let name = Array(header.name.utf8)
        guard name.count <= maxNameBytes, !name.isEmpty else { throw .nameTooLong(header.name) }
        guard header.size >= 0, header.size <= maxFileBytes else { throw .fileTooLarge(header.name) }
        var block = [UInt8](repeating: 0, count: blockSize)
        func put(_ bytes: [UInt8], at offset: Int) { for (i, b) in bytes.enumerated() { block[offset + i] = b } }
        func octal(_ value: Int64, width: Int) -> [UInt8] {
            let digits = String(value, radix: 8)
            return Array((String(repeating: "0", count: width - 1 - digits.count) + digits).utf8) + [0]
        }
        put(name, at: 0)
        put(octal(Int64(header.mode), width: 8), at: 100)
        put(octal(0, width: 8), at: 108)          // uid
        put(octal(0, width: 8), at: 116)          // gid
        put(octal(header.size, width: 12), at: 124)
        put(octal(header.modifiedSeconds, width: 12), at: 136)
        put(Array("        ".utf8), at: 148)      // checksum counts as spaces
        block[156] = UInt8(ascii: "0")            // regular file
        put(Array("ustar".utf8) + [0], at: 257)
        put(Array("00".utf8), at: 263)
        let sum = block.reduce(0) { $0 + Int($1) }
        put(octal(Int64(sum), width: 7) + [UInt8(ascii: " ")], at: 148)
        return block
    }

    /// nil for the all-zero block that ends an archive.
    public static func decode(_ block: [UInt8]) throws(Failure) -> Header? {
        guard block.count == blockSize else { throw .truncated }
        if block.allSatisfy({ $0 == 0 }) { return nil }
        func field(_ offset: Int, _ length: Int) -> ArraySlice<UInt8> {
            let slice = block[offset..<(offset + length)]
            return slice.prefix { $0 != 0 }
        }
        func octal(_ offset: Int, _ length: Int) throws(Failure) -> Int64 {
            var value: Int64 = 0
            for b in field(offset, length) where b != UInt8(ascii: " ") {
                guard b >= UInt8(ascii: "0"), b <= UInt8(ascii: "7"), value <= maxFileBytes else { throw .badChecksum }
                value = value * 8 + Int64(b - UInt8(ascii: "0"))
            }
            return value
        }
        guard Array(block[257..<262]) == Array("ustar".utf8) else { throw .notUstar }
        var sum = 0
        for (i, b) in block.enumerated() { sum += (148..<156).contains(i) ? 32 : Int(b) }
        guard try octal(148, 8) == Int64(sum) else { throw .badChecksum }
        var name = String(decoding: field(0, 100), as: UTF8.self)
        let prefix = field(345, 155)
        if !prefix.isEmpty { name = String(decoding: prefix, as: UTF8.self) + "/" + name }
        guard block[156] == UInt8(ascii: "0") || block[156] == 0 else { throw .notRegularFile(name) }
        return Header(name: name, size: try octal(124, 12), mode: Int(try octal(100, 8)), modifiedSeconds: try octal(136, 12))
    }

    /// Zero bytes after a file's contents, up to the next block.
    public static func padding(after size: Int64) -> Int {
        let rest = Int(size % Int64(blockSize))
        return rest == 0 ? 0 : blockSize - rest
    }
}
