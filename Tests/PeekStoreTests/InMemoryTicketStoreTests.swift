import XCTest
import PeekCore
import PeekStore
import PeekTestSupport

/// The in-memory store the engine's rule tests run on keeps the same
/// contract as the SQLite and PostgreSQL stores.
final class InMemoryTicketStoreTests: TicketStoreContractTests {
    private var database = InMemoryDatabase()

    override func setUp() { database = InMemoryDatabase() }

    override func openStore() throws -> any TicketStore { InMemoryTicketStore(database: database) }

    override func deltaRowCount(ticket: String) throws -> Int { InMemoryTicketStore(database: database).deltaRowCount(ticket: ticket) }
}

extension InMemoryTicketStoreTests {
    /// What a database does for a statement, the copies do too: one that
    /// fails (here on a key) leaves nothing of itself, and the transaction
    /// goes on. (Also makes Linux's test discovery see the class, and with
    /// it the inherited contract tests.)
    func testFailedStatement_leavesNothingAndTheTransactionGoesOn() throws {
        let store = try XCTUnwrap(try seeded() as? InMemoryTicketStore)
        try store.begin()
        XCTAssertThrowsError(try store.createTechnician(Technician(tenant: "nowhere", id: "x", name: "X", email: "x@x"))) { error in
            XCTAssertEqual((error as? StoreError)?.kind, .conflict, "a missing tenant is refused as its reference would be")
        }
        try store.createTenant(Tenant(id: "globex", name: "Globex"), at: 1)
        try store.commit()
        XCTAssertNil(try store.technician(tenant: "nowhere", id: "x"))
        XCTAssertEqual(try InMemoryTicketStore(database: database).tenant("globex")?.name, "Globex")
    }
}
