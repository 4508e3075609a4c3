import Foundation
import PeekCore

/// The Time + contract card's contract hours: computed from logged time,
/// never a stored sentence (protocol.md §4 `time`).
extension Engine {
    /// `time` with the hours the ticket's contract has used this month:
    /// every entry started since the first of the month (UTC) on the
    /// tenant's tickets of the same client under the same contract.
    func writeTime(_ t: Ticket, _ time: TimeState, into w: inout JSONWriter) throws(StoreError) {
        guard let contract = t.contract, !contract.isEmpty else {
            Wire.timeState(time, contract: t.contract, into: &w)
            return
        }
        let since = Self.monthStart(now)
        let used = try store.contractSeconds(tenant: t.tenant, client: t.client, contract: contract, since: since)
        Wire.timeState(time, contract: contract, contractUsed: used, periodStart: since, into: &w)
    }

    /// The first instant of the UTC month holding `millis`.
    static func monthStart(_ millis: Int64) -> Int64 {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let date = Date(timeIntervalSince1970: Double(millis) / 1000)
        let parts = calendar.dateComponents([.year, .month], from: date)
        let start = calendar.date(from: parts) ?? date
        return Int64(start.timeIntervalSince1970 * 1000)
    }
}
