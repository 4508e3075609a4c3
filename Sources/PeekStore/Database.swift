import CSQLite
import PeekCore

extension StoreError {
    /// A SQLite result code (primary or extended) as a `StoreError`: the one
    /// place SQLite's codes become the store's domain kinds.
    init(sqlite rc: Int32, message: String) {
        self.init(Self.kind(sqlite: rc), message, backendCode: "\(Self.name(sqlite: rc)) (\(rc))")
    }

    static func kind(sqlite rc: Int32) -> Kind {
        switch rc & 0xFF {
        case SQLITE_CONSTRAINT: return .conflict
        // Another connection or process held the lock past the busy timeout.
        case SQLITE_BUSY, SQLITE_LOCKED: return .busy
        case SQLITE_FULL: return .full
        case SQLITE_READONLY: return .readOnly
        case SQLITE_ABORT: return .aborted
        case SQLITE_IOERR, SQLITE_CANTOPEN, SQLITE_PROTOCOL: return .unavailable
        default: return .failed
        }
    }

    /// The primary code's name, for logs.
    private static func name(sqlite rc: Int32) -> String {
        switch rc & 0xFF {
        case SQLITE_CONSTRAINT: return "SQLITE_CONSTRAINT"
        case SQLITE_BUSY: return "SQLITE_BUSY"
        case SQLITE_LOCKED: return "SQLITE_LOCKED"
        case SQLITE_FULL: return "SQLITE_FULL"
        case SQLITE_READONLY: return "SQLITE_READONLY"
        case SQLITE_ABORT: return "SQLITE_ABORT"
        case SQLITE_IOERR: return "SQLITE_IOERR"
        case SQLITE_CANTOPEN: return "SQLITE_CANTOPEN"
        case SQLITE_PROTOCOL: return "SQLITE_PROTOCOL"
        default: return "SQLITE_ERROR"
        }
    }
}

/// A value bound to or read from a statement.
public enum SQLValue: Equatable, Sendable {
    case null
    case int(Int64)
    case double(Double)
    case text(String)
    case blob([UInt8])

    public var int: Int64? { if case .int(let v) = self { return v }; return nil }
    public var text: String? { if case .text(let v) = self { return v }; return nil }
    public var double: Double? {
        switch self {
        case .double(let v): return v
        case .int(let v): return Double(v)
        default: return nil
        }
    }
    public var blob: [UInt8]? {
        switch self {
        case .blob(let b): return b
        case .text(let t): return Array(t.utf8)
        default: return nil
        }
    }
}

extension SQLValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByNilLiteral {
    public init(stringLiteral value: String) { self = .text(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(nilLiteral: ()) { self = .null }
    public init(_ value: String?) { self = value.map { .text($0) } ?? .null }
    public init(_ value: Int64?) { self = value.map { .int($0) } ?? .null }
    public init(_ value: Int) { self = .int(Int64(value)) }
}

/// One SQLite connection, used by exactly one thread (the store's writer, or
/// a reader). Statements are prepared once and cached by their SQL text.
public final class Database {
    private var handle: OpaquePointer?
    private var cache: [String: OpaquePointer] = [:]
    /// Between `beginTransaction` and its commit or rollback.
    private var inTransaction = false

    /// True when SQLite rolled back, by itself, the transaction this
    /// connection began: it does so after some errors (SQLITE_FULL, an I/O
    /// error, SQLITE_NOMEM, `RAISE(ROLLBACK)`) instead of undoing only the
    /// failing statement. Nothing of the transaction is saved, and every
    /// statement fails until `rollbackTransaction`: run now, it would
    /// autocommit on its own, outside the transaction its caller believes
    /// open, and a RELEASE or COMMIT would "succeed" over nothing.
    public var transactionLost: Bool { inTransaction && sqlite3_get_autocommit(handle) != 0 }

    /// While true, every statement that would write fails (SQLITE_READONLY)
    /// before it runs; reads and transaction control still work. Checked in
    /// this process, so it cannot itself fail.
    public var refusesWrites = false

    public init(path: String) throws(StoreError) {
        var db: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open \(path)"
            sqlite3_close(db)
            throw StoreError(sqlite: rc, message: message)
        }
        handle = db
        // Another process (a backup, a second peekd) may hold the lock for a
        // moment; wait rather than fail the whole batch.
        sqlite3_busy_timeout(db, 5000)
        sqlite3_extended_result_codes(db, 1)
    }

    deinit {
        for (_, stmt) in cache { sqlite3_finalize(stmt) }
        sqlite3_close_v2(handle)
    }

    private func error(_ rc: Int32) -> StoreError {
        StoreError(sqlite: rc, message: handle.map { String(cString: sqlite3_errmsg($0)) } ?? "no database")
    }

    /// What every statement checks first (see `transactionLost`, `refusesWrites`).
    private func checkMayRun(_ stmt: OpaquePointer?) throws(StoreError) {
        if transactionLost {
            throw StoreError(sqlite: SQLITE_ABORT, message: "SQLite rolled the transaction back after an earlier error; nothing of it was saved")
        }
        if refusesWrites && (stmt.map { sqlite3_stmt_readonly($0) == 0 } ?? true) {
            throw StoreError(sqlite: SQLITE_READONLY, message: "the database could not be locked for writing, so nothing is written")
        }
    }

    // MARK: Transactions

    /// `sql`: "BEGIN IMMEDIATE" (take the write lock now) or "BEGIN".
    public func beginTransaction(_ sql: String = "BEGIN IMMEDIATE") throws(StoreError) {
        try run(sql)
        inTransaction = true
    }

    /// Fails, leaving the transaction to roll back, if it was lost.
    public func commitTransaction() throws(StoreError) {
        try run("COMMIT")
        inTransaction = false
    }

    /// Ends the transaction, whether it is still open or SQLite already
    /// rolled it back.
    public func rollbackTransaction() {
        inTransaction = false
        if sqlite3_get_autocommit(handle) == 0 { _ = try? run("ROLLBACK") }
    }

    /// Runs one or more statements with no parameters and no rows (DDL, pragmas).
    public func execute(_ sql: String) throws(StoreError) {
        try checkMayRun(nil)
        var message: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &message)
        if rc != SQLITE_OK {
            let text = message.map { String(cString: $0) } ?? "error"
            sqlite3_free(message)
            throw StoreError(sqlite: rc, message: text)
        }
    }

    private func prepared(_ sql: String) throws(StoreError) -> OpaquePointer {
        if let stmt = cache[sql] { return stmt }
        var stmt: OpaquePointer?
        let rc = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &stmt, nil)
        guard rc == SQLITE_OK, let stmt else { throw error(rc) }
        cache[sql] = stmt
        return stmt
    }

    private func bind(_ stmt: OpaquePointer, _ values: [SQLValue]) throws(StoreError) {
        for (i, value) in values.enumerated() {
            let index = Int32(i + 1)
            let rc: Int32
            switch value {
            case .null: rc = sqlite3_bind_null(stmt, index)
            case .int(let v): rc = sqlite3_bind_int64(stmt, index, v)
            case .double(let v): rc = sqlite3_bind_double(stmt, index, v)
            case .text(let v):
                // With its byte length, never as a C string: a NUL inside
                // client text would otherwise end it there, so `T-1001\0junk`
                // would be stored and matched as `T-1001`.
                var text = v
                rc = text.withUTF8 { utf8 in
                    // An empty buffer may have no address, and a null pointer binds NULL.
                    guard let base = utf8.baseAddress, !utf8.isEmpty else { return sqlite3_bind_text(stmt, index, "", 0, CSQLite_TRANSIENT()) }
                    return base.withMemoryRebound(to: CChar.self, capacity: utf8.count) {
                        sqlite3_bind_text(stmt, index, $0, Int32(utf8.count), CSQLite_TRANSIENT())
                    }
                }
            case .blob(let v):
                rc = v.withUnsafeBytes { sqlite3_bind_blob(stmt, index, $0.baseAddress, Int32($0.count), CSQLite_TRANSIENT()) }
            }
            guard rc == SQLITE_OK else { throw error(rc) }
        }
    }

    private func column(_ stmt: OpaquePointer, _ i: Int32) -> SQLValue {
        switch sqlite3_column_type(stmt, i) {
        case SQLITE_INTEGER: return .int(sqlite3_column_int64(stmt, i))
        case SQLITE_FLOAT: return .double(sqlite3_column_double(stmt, i))
        case SQLITE_TEXT:
            guard let p = sqlite3_column_text(stmt, i) else { return .text("") }
            let n = Int(sqlite3_column_bytes(stmt, i))
            return .text(String(decoding: UnsafeBufferPointer(start: p, count: n), as: UTF8.self))
        case SQLITE_BLOB:
            let n = Int(sqlite3_column_bytes(stmt, i))
            guard n > 0, let p = sqlite3_column_blob(stmt, i) else { return .blob([]) }
            return .blob(Array(UnsafeRawBufferPointer(start: p, count: n)))
        default: return .null
        }
    }

    /// Runs a statement that returns no rows; answers the rows changed.
    @discardableResult
    public func run(_ sql: String, _ values: SQLValue...) throws(StoreError) -> Int {
        try run(sql, values)
    }

    @discardableResult
    public func run(_ sql: String, _ values: [SQLValue]) throws(StoreError) -> Int {
        let stmt = try prepared(sql)
        try checkMayRun(stmt)
        defer { sqlite3_reset(stmt); sqlite3_clear_bindings(stmt) }
        try bind(stmt, values)
        let rc = sqlite3_step(stmt)
        guard rc == SQLITE_DONE || rc == SQLITE_ROW else { throw error(rc) }
        return Int(sqlite3_changes(handle))
    }

    /// Runs a query and returns every row as an array of column values.
    public func query(_ sql: String, _ values: SQLValue...) throws(StoreError) -> [[SQLValue]] {
        try query(sql, values)
    }

    public func query(_ sql: String, _ values: [SQLValue]) throws(StoreError) -> [[SQLValue]] {
        let stmt = try prepared(sql)
        try checkMayRun(stmt)
        defer { sqlite3_reset(stmt); sqlite3_clear_bindings(stmt) }
        try bind(stmt, values)
        var rows: [[SQLValue]] = []
        let columns = sqlite3_column_count(stmt)
        while true {
            let rc = sqlite3_step(stmt)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else { throw error(rc) }
            var row: [SQLValue] = []
            row.reserveCapacity(Int(columns))
            for i in 0..<columns { row.append(column(stmt, i)) }
            rows.append(row)
        }
        return rows
    }

    public func queryOne(_ sql: String, _ values: SQLValue...) throws(StoreError) -> [SQLValue]? {
        try query(sql, values).first
    }

    // MARK: WAL

    /// Replaces SQLite's automatic checkpoint (which runs on the committing
    /// thread) with `checkpointer`; the connection checkpoints inline only
    /// past the checkpointer's `inlineLimit`.
    func handCheckpointsTo(_ checkpointer: WALCheckpointer) {
        sqlite3_wal_hook(handle, { context, db, _, pages in
            guard let context else { return SQLITE_OK }
            let checkpointer = Unmanaged<WALCheckpointer>.fromOpaque(context).takeUnretainedValue()
            if pages >= checkpointer.inlineLimit {
                // SQLITE_BUSY (the checkpointer is mid-way) is fine: one of us copies.
                _ = sqlite3_wal_checkpoint_v2(db, nil, SQLITE_CHECKPOINT_PASSIVE, nil, nil)
            } else {
                checkpointer.walGrew(pages: pages)
            }
            return SQLITE_OK
        }, Unmanaged.passUnretained(checkpointer).toOpaque())
    }

    enum CheckpointOutcome { case complete, partial, failed }

    /// Copies what it can of the WAL into the database without waiting for
    /// readers or the writer: `complete` when nothing is left to copy,
    /// `partial` when commits landed meanwhile, `failed` when busy or on an
    /// error (a later wake-up retries).
    func checkpointPassive() -> CheckpointOutcome {
        var logFrames: Int32 = 0
        var copiedFrames: Int32 = 0
        let rc = sqlite3_wal_checkpoint_v2(handle, nil, SQLITE_CHECKPOINT_PASSIVE, &logFrames, &copiedFrames)
        guard rc == SQLITE_OK else { return .failed }
        return copiedFrames >= logFrames ? .complete : .partial
    }

    public var userVersion: Int {
        get { (try? queryOne("PRAGMA user_version"))?.first?.int.map(Int.init) ?? 0 }
    }

    public func setUserVersion(_ v: Int) throws(StoreError) { try execute("PRAGMA user_version = \(v)") }

    /// Copies this database into a new file at `path` with SQLite's online
    /// backup API, in one step: one read transaction, so the copy is the
    /// database as of one commit, while other connections (a running
    /// server) keep writing; in WAL mode the reader blocks no writer.
    public func backup(to path: String) throws(StoreError) {
        let target = try Database(path: path)
        guard let copy = sqlite3_backup_init(target.handle, "main", handle, "main") else { throw target.error(sqlite3_errcode(target.handle)) }
        var rc = sqlite3_backup_step(copy, -1)
        // The server's writer may hold the lock for a moment (BUSY) or be
        // checkpointing (LOCKED): wait, as its own statements do.
        var waited = 0
        while (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) && waited < 5000 {
            sqlite3_sleep(50)
            waited += 50
            rc = sqlite3_backup_step(copy, -1)
        }
        let finished = sqlite3_backup_finish(copy)
        guard rc == SQLITE_DONE else { throw StoreError(sqlite: rc, message: String(cString: sqlite3_errstr(rc))) }
        guard finished == SQLITE_OK else { throw target.error(finished) }
    }
}
