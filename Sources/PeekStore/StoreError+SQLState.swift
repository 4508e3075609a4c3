import CSQLite

extension StoreError {
    /// A PostgreSQL failure as a `StoreError`: its SQLSTATE kept, and its
    /// class mapped onto the SQLite result code the engine already tests
    /// for, so one check serves both stores.
    public init(sqlState: String, message: String) {
        self.init(code: Self.sqliteCode(forSQLState: sqlState), message: message, sqlState: sqlState)
    }

    static func sqliteCode(forSQLState state: String) -> Int32 {
        switch state {
        // 23: integrity constraint violation (unique, foreign key, not null, check).
        case _ where state.hasPrefix("23"): return SQLITE_CONSTRAINT
        // read_only_sql_transaction: a write inside `beginReadOnly`.
        case "25006": return SQLITE_READONLY
        // in_failed_sql_transaction: an earlier error doomed the transaction.
        case "25P02": return SQLITE_ABORT
        // serialization_failure, deadlock_detected, lock_not_available: another
        // writer won; trying again may succeed, as after SQLITE_BUSY.
        case "40001", "40P01", "55P03": return SQLITE_BUSY
        // 08: connection exception; 53: insufficient resources (disk full).
        case _ where state.hasPrefix("08"): return SQLITE_IOERR
        case _ where state.hasPrefix("53"): return SQLITE_FULL
        default: return SQLITE_ERROR
        }
    }
}
