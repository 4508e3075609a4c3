import Foundation
import PeekCore
import PeekStore

/// `peekd migrate`: copies a SQLite data directory's database into an empty
/// PostgreSQL database, table by table and row by row, in one PostgreSQL
/// transaction, so the target holds all of it or none of it.
///
/// Every column is copied as it is (ticket numbers, seqs, ids, times, delta
/// data, command answers): the PostgreSQL node then serves the same delta
/// log, and a client resuming with `since` gets exactly what it missed.
/// The two schemas are compared column by column first, and any difference
/// stops the copy: a column added to one store and not the other must not
/// be dropped silently. SQLite's `rowid` is PostgreSQL's `ord` (the order of
/// insertion), explicit (`sends`, `time_entries`, `messages`) or implicit
/// (`sessions`).
///
/// Idempotency records (`command_answers`) are copied whole: both stores
/// answer only records younger than the 10-minute window (the lookup checks
/// `at`) and sweep the rest, so an expired record copied is never answered,
/// and the copy does not depend on the clock of the machine running it.
///
/// Attachments are files in `<data>/attachments` and are not copied: the
/// PostgreSQL node reads them from its own `--data`, so it is started with
/// the same `--data` (or a copy of that directory).
public enum SQLiteToPostgres {
    /// Rows per INSERT: one round trip for many rows, under PostgreSQL's
    /// 65,535 parameters per statement (the widest table has 24 columns).
    static let rowsPerInsert = 500
    /// The column PostgreSQL's identity `ord` holds what SQLite's rowid held.
    static let orderColumn = "ord"

    public struct Summary: Sendable {
        /// Rows copied per table, tenants first.
        public var rows: [(table: String, count: Int)] = []
        public var line: String { rows.map { "\($0.table) \($0.count)" }.joined(separator: ", ") }
    }

    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    /// `sqlitePath`: the `peek.sqlite` of a stopped server (a running one is
    /// read in one read transaction, a consistent snapshot, but its later
    /// writes are not copied). `url`: an empty PostgreSQL database.
    public static func migrate(sqlitePath: String, to url: String) throws -> Summary {
        guard FileManager.default.fileExists(atPath: sqlitePath) else {
            throw Failure("\(sqlitePath) does not exist: give the --data of the SQLite server to copy")
        }
        let source = try Database(path: sqlitePath)
        let version = source.userVersion
        guard version == SQLiteTicketStore.schemaVersion else {
            throw Failure(version < SQLiteTicketStore.schemaVersion
                ? "\(sqlitePath) has schema version \(version), this peekd's is \(SQLiteTicketStore.schemaVersion): start this peekd once on that --data (it upgrades the database), stop it, then migrate"
                : "\(sqlitePath) has schema version \(version), newer than this peekd's \(SQLiteTicketStore.schemaVersion): migrate with the peekd that wrote it")
        }
        let target = try PostgresConnection(url: url)
        try PostgresTicketStore.migrate(target)

        // One read transaction: every table as of one commit.
        try source.beginTransaction("BEGIN")
        defer { source.rollbackTransaction() }
        try target.execute("BEGIN")
        do {
            // Other writers (a node started too early) wait until the copy ends.
            try target.execute("LOCK TABLE tenants IN EXCLUSIVE MODE")
            if let count = try target.queryOne("SELECT COUNT(*) FROM tenants")?.first?.int, count > 0 {
                throw Failure("the PostgreSQL database already holds \(count) tenant(s); peekd migrate copies into an empty database only, so nothing was copied: give --database a new database (createdb)")
            }
            let plans = try plan(source: source, target: target)
            var summary = Summary()
            for plan in plans {
                summary.rows.append((plan.table, try copy(plan, from: source, to: target)))
            }
            try target.execute("COMMIT")
            return summary
        } catch {
            try? target.execute("ROLLBACK")
            throw error
        }
    }

    /// How one table is copied: the SQLite expression and PostgreSQL column
    /// for each column, and the PostgreSQL type each value is given.
    struct TablePlan {
        var table: String
        var selects: [String] = []
        var columns: [String] = []
        var types: [String] = []
        var hasIdentity = false
    }

    /// Both schemas' tables and columns, which must be the same (SQLite's
    /// rowid as PostgreSQL's `ord`); tenants first, the table others refer to.
    static func plan(source: Database, target: PostgresConnection) throws -> [TablePlan] {
        let sqliteTables = Set(try source.query("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
            .compactMap { $0.first?.text })
        let postgresTables = Set(try target.query("""
            SELECT table_name FROM information_schema.tables
            WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'
            """).compactMap { $0.first?.text }).subtracting(PostgresSchema.postgresOnlyTables)
        var problems: [String] = []
        for table in sqliteTables.subtracting(postgresTables).sorted() { problems.append("table \(table) is in SQLite only") }
        for table in postgresTables.subtracting(sqliteTables).sorted() { problems.append("table \(table) is in PostgreSQL only") }
        var plans: [TablePlan] = []
        for table in sqliteTables.intersection(postgresTables).sorted(by: { $0 == "tenants" || ($1 != "tenants" && $0 < $1) }) {
            let sqliteColumns = try source.query("SELECT name FROM pragma_table_info(?)", .text(table)).compactMap { $0.first?.text }
            let postgresColumns = try target.query("""
                SELECT column_name, data_type FROM information_schema.columns
                WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position
                """, .text(table)).map { ($0[0].text ?? "", $0[1].text ?? "") }
            var plan = TablePlan(table: table)
            var unmatched = Set(sqliteColumns)
            for (column, type) in postgresColumns {
                let sqliteName: String
                if unmatched.contains(column) {
                    sqliteName = column
                } else if column == orderColumn {
                    // Explicit `rowid` column, or the implicit rowid.
                    sqliteName = "rowid"
                    plan.hasIdentity = true
                } else {
                    problems.append("column \(table).\(column) is in PostgreSQL only")
                    continue
                }
                unmatched.remove(sqliteName)
                plan.selects.append("\"\(sqliteName)\"")
                plan.columns.append("\"\(column)\"")
                plan.types.append(type)
            }
            for column in unmatched.sorted() { problems.append("column \(table).\(column) is in SQLite only") }
            plans.append(plan)
        }
        guard problems.isEmpty else {
            throw Failure("the SQLite and PostgreSQL schemas differ (\(problems.joined(separator: "; "))), so nothing was copied: this peekd's two stores are out of step, which is a bug to report")
        }
        return plans
    }

    /// Copies one table in batches of `rowsPerInsert` rows; answers the rows copied.
    static func copy(_ plan: TablePlan, from source: Database, to target: PostgresConnection) throws -> Int {
        // The table is read whole (memory grows with the largest table,
        // messages): a single node's database, copied once.
        // A WITHOUT ROWID table has no rowid to order by (nor an `ord`).
        let order = plan.hasIdentity ? " ORDER BY rowid" : ""
        let rows = try source.query("SELECT \(plan.selects.joined(separator: ", ")) FROM \"\(plan.table)\"\(order)")
        let overriding = plan.hasIdentity ? " OVERRIDING SYSTEM VALUE" : ""
        var start = 0
        while start < rows.count {
            let batch = rows[start..<min(start + rowsPerInsert, rows.count)]
            var tuples: [String] = []
            var values: [SQLValue] = []
            values.reserveCapacity(batch.count * plan.columns.count)
            for row in batch {
                let first = values.count
                tuples.append("(" + (1...row.count).map { "$\(first + $0)" }.joined(separator: ", ") + ")")
                for (value, type) in zip(row, plan.types) { values.append(converted(value, to: type)) }
            }
            try target.run("INSERT INTO \"\(plan.table)\" (\(plan.columns.joined(separator: ", ")))\(overriding) VALUES \(tuples.joined(separator: ", "))", values)
            start += batch.count
        }
        if plan.hasIdentity {
            // New rows continue after the copied ones, in the same order.
            try target.run("SELECT setval(pg_get_serial_sequence($1, '\(orderColumn)'), COALESCE(MAX(\(orderColumn)), 0) + 1, false) FROM \"\(plan.table)\"",
                           .text(plan.table))
        }
        return rows.count
    }

    /// SQLite keeps a value in whatever storage class it was given; the
    /// PostgreSQL column takes one type. Text in a blob column is its bytes,
    /// a whole number in a real column a real.
    static func converted(_ value: SQLValue, to type: String) -> SQLValue {
        switch (value, type) {
        case (.text(let text), "bytea"): return .blob(Array(text.utf8))
        case (.int(let number), "double precision"): return .double(Double(number))
        default: return value
        }
    }
}
