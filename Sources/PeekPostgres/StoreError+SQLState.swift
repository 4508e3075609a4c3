import PeekStore
import PeekCore

extension StoreError {
    /// A PostgreSQL failure as a `StoreError`: the one place SQLSTATEs
    /// become the store's domain kinds; the SQLSTATE is kept for logs.
    init(sqlState: String, message: String) {
        self.init(Self.kind(sqlState: sqlState), message, backendCode: "SQLSTATE \(sqlState)")
    }

    static func kind(sqlState state: String) -> Kind {
        switch state {
        // 23: integrity constraint violation (unique, foreign key, not null, check).
        case _ where state.hasPrefix("23"): return .conflict
        // read_only_sql_transaction: a write inside `beginReadOnly`.
        case "25006": return .readOnly
        // in_failed_sql_transaction: an earlier error doomed the transaction.
        case "25P02": return .aborted
        // serialization_failure, deadlock_detected, lock_not_available: another
        // writer won; trying again may succeed.
        case "40001", "40P01", "55P03": return .busy
        // disk_full.
        case "53100": return .full
        // 53: the rest of insufficient resources (memory, connections): retry later.
        case _ where state.hasPrefix("53"): return .busy
        // 08: connection exception; 57P: the server shut down or restarts;
        // 58030: the server's own I/O error.
        case _ where state.hasPrefix("08") || state.hasPrefix("57P") || state == "58030": return .unavailable
        default: return .failed
        }
    }
}
