import CPostgres
import PeekCore
import Foundation
import PeekStore

/// One libpq connection, used by one thread at a time (the store's owner).
/// Every statement with values goes through `PQexecParams`: values are never
/// spliced into SQL text. Parameters go as text (numbers) or binary (bytea,
/// with their length); results come back in text format and are decoded by
/// column type into `SQLValue`, the same values the SQLite store reads.
public final class PostgresConnection {
    let handle: OpaquePointer

    /// `url`: a libpq connection string, `postgres://user@host:port/db`.
    public init(url: String) throws(StoreError) {
        guard let conn = PQconnectdb(url) else {
            throw StoreError(sqlState: "08001", message: "libpq could not allocate a connection")
        }
        guard PQstatus(conn) == CONNECTION_OK else {
            let reason = Self.trimmed(PQerrorMessage(conn))
            PQfinish(conn)
            throw StoreError(sqlState: "08001", message: "cannot connect to PostgreSQL: \(reason)")
        }
        // Notices (CREATE ... IF NOT EXISTS that skipped) are not errors:
        // libpq would print each to stderr.
        PQsetNoticeProcessor(conn, { _, _ in }, nil)
        handle = conn
        try configureSession()
    }

    /// Text travels as UTF-8 and bytea as hex whatever the server's defaults.
    private func configureSession() throws(StoreError) {
        try execute("SET client_encoding = 'UTF8'; SET bytea_output = 'hex'")
    }

    /// True once libpq has seen the connection fail (the server restarted,
    /// or closed it); every statement fails until `reconnect`.
    public var isBroken: Bool { PQstatus(handle) != CONNECTION_OK }

    /// Opens the connection again with the same parameters.
    public func reconnect() throws(StoreError) {
        PQreset(handle)
        guard PQstatus(handle) == CONNECTION_OK else {
            throw StoreError(sqlState: "08001", message: "cannot reconnect to PostgreSQL: \(Self.trimmed(PQerrorMessage(handle)))")
        }
        try configureSession()
    }

    deinit { PQfinish(handle) }

    /// Where the connection stands: idle, in a transaction, or in one an
    /// error has doomed (every statement fails until ROLLBACK).
    public var transactionStatus: PGTransactionStatusType { PQtransactionStatus(handle) }

    private static func trimmed(_ text: UnsafePointer<CChar>?) -> String {
        text.map { String(cString: $0).trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
    }

    /// The failure a result carries, or nil when it succeeded.
    private func failure(_ result: OpaquePointer?) -> StoreError? {
        guard let result else {
            return StoreError(sqlState: "08006", message: Self.trimmed(PQerrorMessage(handle)))
        }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK: return nil
        default:
            let state = PQresultErrorField(result, CPostgres_DIAG_SQLSTATE()).map { String(cString: $0) }
            let message = Self.trimmed(PQresultErrorMessage(result))
            // No SQLSTATE: libpq's own failure (the connection broke).
            return StoreError(sqlState: state ?? "08006", message: message)
        }
    }

    /// Runs one or more statements with no parameters (DDL, transaction control).
    public func execute(_ sql: String) throws(StoreError) {
        let result = PQexec(handle, sql)
        defer { PQclear(result) }
        if let error = failure(result) { throw error }
    }

    /// The tag PostgreSQL answered a parameterless command with ("COMMIT",
    /// or "ROLLBACK" when a COMMIT found its transaction doomed).
    public func commandTag(_ sql: String) throws(StoreError) -> String {
        let result = PQexec(handle, sql)
        defer { PQclear(result) }
        if let error = failure(result) { throw error }
        return String(cString: PQcmdStatus(result))
    }

    /// Runs a statement that returns no rows; answers the rows changed.
    @discardableResult
    public func run(_ sql: String, _ values: SQLValue...) throws(StoreError) -> Int {
        try run(sql, values)
    }

    @discardableResult
    public func run(_ sql: String, _ values: [SQLValue]) throws(StoreError) -> Int {
        try withResult(sql, values) { result in Int(String(cString: PQcmdTuples(result))) ?? 0 }
    }

    public func query(_ sql: String, _ values: SQLValue...) throws(StoreError) -> [[SQLValue]] {
        try query(sql, values)
    }

    public func query(_ sql: String, _ values: [SQLValue]) throws(StoreError) -> [[SQLValue]] {
        try withResult(sql, values) { result in
            let rows = PQntuples(result)
            let columns = PQnfields(result)
            var out: [[SQLValue]] = []
            out.reserveCapacity(Int(rows))
            for r in 0..<rows {
                var row: [SQLValue] = []
                row.reserveCapacity(Int(columns))
                for c in 0..<columns { row.append(Self.value(result, r, c)) }
                out.append(row)
            }
            return out
        }
    }

    public func queryOne(_ sql: String, _ values: SQLValue...) throws(StoreError) -> [SQLValue]? {
        try query(sql, values).first
    }

    // MARK: Parameters and results

    /// Type OIDs from PostgreSQL's catalog (pg_type.dat); stable across versions.
    enum TypeOID {
        static let bool: Oid = 16
        static let bytea: Oid = 17
        static let int8: Oid = 20
        static let int2: Oid = 21
        static let int4: Oid = 23
        static let text: Oid = 25
        static let float4: Oid = 700
        static let float8: Oid = 701
        static let numeric: Oid = 1700
    }

    /// PostgreSQL's own SQLSTATE for the same refusal (character_not_in_repertoire).
    static let nulInText = StoreError(sqlState: "22021", message: "text with U+0000 (NUL) cannot be stored in PostgreSQL; refused rather than cut at the NUL")

    private func withResult<T>(_ sql: String, _ values: [SQLValue], _ body: (OpaquePointer) -> T) throws(StoreError) -> T {
        var types: [Oid] = []
        var lengths: [Int32] = []
        var formats: [Int32] = []
        // Each value in a buffer of its own, freed after the call.
        var buffers: [UnsafeMutablePointer<CChar>?] = []
        defer { for b in buffers { b?.deallocate() } }
        for value in values {
            let bytes: [UInt8]?
            var binary = false
            switch value {
            case .null: types.append(0); bytes = nil
            case .int(let v): types.append(TypeOID.int8); bytes = Array(String(v).utf8)
            case .double(let v): types.append(TypeOID.float8); bytes = Array("\(v)".utf8)
            case .text(let v):
                // PostgreSQL text cannot hold U+0000, and libpq reads a text
                // parameter up to its first NUL: sent, "a\0b" would be saved
                // as "a" without a word. Refused whole instead.
                guard !v.utf8.contains(0) else { throw Self.nulInText }
                types.append(TypeOID.text); bytes = Array(v.utf8)
            case .blob(let v): types.append(TypeOID.bytea); bytes = v; binary = true
            }
            formats.append(binary ? 1 : 0)
            guard let bytes else { buffers.append(nil); lengths.append(0); continue }
            // Text parameters end at a NUL; the extra byte holds it.
            let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: bytes.count + 1)
            bytes.withUnsafeBytes { raw in
                if let base = raw.baseAddress { UnsafeMutableRawPointer(buffer).copyMemory(from: base, byteCount: bytes.count) }
            }
            buffer[bytes.count] = 0
            buffers.append(buffer)
            lengths.append(Int32(bytes.count))
        }
        let result = buffers.withUnsafeBufferPointer { valuePointers in
            valuePointers.withMemoryRebound(to: UnsafePointer<CChar>?.self) { constPointers in
                PQexecParams(handle, sql, Int32(values.count), types, constPointers.baseAddress, lengths, formats, 0)
            }
        }
        defer { PQclear(result) }
        if let error = failure(result) { throw error }
        return body(result!)
    }

    private static func value(_ result: OpaquePointer, _ row: Int32, _ column: Int32) -> SQLValue {
        if PQgetisnull(result, row, column) == 1 { return .null }
        let length = Int(PQgetlength(result, row, column))
        let bytes = UnsafeRawPointer(PQgetvalue(result, row, column)!).assumingMemoryBound(to: UInt8.self)
        let buffer = UnsafeBufferPointer(start: bytes, count: length)
        switch PQftype(result, column) {
        case TypeOID.int8, TypeOID.int4, TypeOID.int2:
            return Int64(String(decoding: buffer, as: UTF8.self)).map { .int($0) } ?? .null
        case TypeOID.float8, TypeOID.float4:
            return Double(String(decoding: buffer, as: UTF8.self)).map { .double($0) } ?? .null
        case TypeOID.numeric:
            // sum() of integers is numeric: whole numbers stay integers.
            let text = String(decoding: buffer, as: UTF8.self)
            if let whole = Int64(text) { return .int(whole) }
            return Double(text).map { .double($0) } ?? .null
        case TypeOID.bool:
            return .int(buffer.first == UInt8(ascii: "t") ? 1 : 0)
        case TypeOID.bytea:
            return .blob(Self.unhex(buffer))
        default:
            return .text(String(decoding: buffer, as: UTF8.self))
        }
    }

    /// bytea's text output (`bytea_output = hex`, the default): `\x` and
    /// two hex digits a byte.
    static func unhex(_ text: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        guard text.count >= 2, text[0] == UInt8(ascii: "\\"), text[1] == UInt8(ascii: "x") else { return Array(text) }
        func nibble(_ c: UInt8) -> UInt8 {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
            default: return c &- UInt8(ascii: "A") &+ 10
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity((text.count - 2) / 2)
        var i = 2
        while i + 1 < text.count {
            out.append(nibble(text[i]) << 4 | nibble(text[i + 1]))
            i += 2
        }
        return out
    }
}
