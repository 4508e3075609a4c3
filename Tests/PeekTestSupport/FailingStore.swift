import Foundation
import PeekCore
import Synchronization

/// A `TicketStore` that forwards to a real one and fails one chosen call:
/// the `nth` call (counted from `arm`) of the method named by its selector,
/// e.g. `"technician(tenant:id:)"`, or of any method when `method` is nil.
/// It shows what the engine answers when the database fails one read or
/// write, which a real SQLite file cannot be made to do on cue.
///
/// Used by the engine's thread only, as any store; `arm` and `failed` are
/// called from the test's thread, hence the lock.
public final class FailingStore: TicketStore, @unchecked Sendable {
    public let base: any TicketStore
    private struct Plan { var method: String?; var remaining: Int; var error: StoreError; var failed: String?; var calls: [String] = [] }
    private let plan = Mutex(Plan(method: nil, remaining: 0, error: injected, failed: nil))

    public init(_ base: any TicketStore) { self.base = base }

    /// Fails the `nth` call (1-based) of `method` (any method when nil)
    /// from now on, once, with `error`; every call after it goes through.
    public func arm(_ method: String?, nth: Int = 1, error: StoreError = injected) {
        plan.withLock { $0 = Plan(method: method, remaining: nth, error: error, failed: nil) }
    }

    /// The selector of the call that was failed, once it has been.
    public var failed: String? { plan.withLock { $0.failed } }
    /// Every throwing call made since `arm`, in order.
    public var calls: [String] { plan.withLock { $0.calls } }

    public static let injected = StoreError(.failed, "injected failure (a test's FailingStore)", backendCode: "injected")

    private func check(_ selector: String) throws(StoreError) {
        let failure = plan.withLock { p -> StoreError? in
            p.calls.append(selector)
            guard p.remaining > 0, p.method == nil || p.method == selector else { return nil }
            p.remaining -= 1
            guard p.remaining == 0 else { return nil }
            p.failed = selector
            return p.error
        }
        if let failure { throw failure }
    }

    public var durability: (any Durability)? { base.durability }
    public var transactionLost: Bool { base.transactionLost }
    public func beginReadOnly() { base.beginReadOnly() }
    public func rollback() { base.rollback() }
    public func rollbackToSavepoint() { base.rollbackToSavepoint() }

    public func begin() throws(StoreError) {
        try check("begin()"); try base.begin()
    }
    public func commit() throws(StoreError) {
        try check("commit()"); try base.commit()
    }
    public func savepoint() throws(StoreError) {
        try check("savepoint()"); try base.savepoint()
    }
    public func releaseSavepoint() throws(StoreError) {
        try check("releaseSavepoint()"); try base.releaseSavepoint()
    }
    public func createTenant(_ t: Tenant, at: Int64) throws(StoreError) {
        try check("createTenant(_:at:)"); try base.createTenant(t, at: at)
    }
    public func tenant(_ id: String) throws(StoreError) -> Tenant? {
        try check("tenant(_:)"); return try base.tenant(id)
    }
    public func createTechnician(_ t: Technician) throws(StoreError) {
        try check("createTechnician(_:)"); try base.createTechnician(t)
    }
    public func technician(tenant: String, id: String) throws(StoreError) -> Technician? {
        try check("technician(tenant:id:)"); return try base.technician(tenant: tenant, id: id)
    }
    public func technicians(tenant: String) throws(StoreError) -> [Technician] {
        try check("technicians(tenant:)"); return try base.technicians(tenant: tenant)
    }
    public func createAsset(_ a: Asset) throws(StoreError) {
        try check("createAsset(_:)"); try base.createAsset(a)
    }
    public func asset(tenant: String, id: String) throws(StoreError) -> Asset? {
        try check("asset(tenant:id:)"); return try base.asset(tenant: tenant, id: id)
    }
    public func asset(agent: String) throws(StoreError) -> Asset? {
        try check("asset(agent:)"); return try base.asset(agent: agent)
    }
    public func saveTelemetry(tenant: String, asset: String, _ t: Telemetry) throws(StoreError) {
        try check("saveTelemetry(tenant:asset:_:)"); try base.saveTelemetry(tenant: tenant, asset: asset, t)
    }
    public func telemetry(tenant: String, asset: String) throws(StoreError) -> Telemetry? {
        try check("telemetry(tenant:asset:)"); return try base.telemetry(tenant: tenant, asset: asset)
    }
    public func nextTicketNumber() throws(StoreError) -> Int {
        try check("nextTicketNumber()"); return try base.nextTicketNumber()
    }
    public func insertTicket(_ t: Ticket) throws(StoreError) {
        try check("insertTicket(_:)"); try base.insertTicket(t)
    }
    public func ticket(_ id: String) throws(StoreError) -> Ticket? {
        try check("ticket(_:)"); return try base.ticket(id)
    }
    public func tickets(tenant: String, limit: Int) throws(StoreError) -> [Ticket] {
        try check("tickets(tenant:limit:)"); return try base.tickets(tenant: tenant, limit: limit)
    }
    public func ticketsLinked(tenant: String, asset: String) throws(StoreError) -> [String] {
        try check("ticketsLinked(tenant:asset:)"); return try base.ticketsLinked(tenant: tenant, asset: asset)
    }
    public func related(to t: Ticket, limit: Int) throws(StoreError) -> [Ticket] {
        try check("related(to:limit:)"); return try base.related(to: t, limit: limit)
    }
    public func updateTicket(_ t: Ticket) throws(StoreError) {
        try check("updateTicket(_:)"); try base.updateTicket(t)
    }
    public func ticketsWithOpenSLA() throws(StoreError) -> [Ticket] {
        try check("ticketsWithOpenSLA()"); return try base.ticketsWithOpenSLA()
    }
    public func appendDelta(ticket: String, seq: Int, at: Int64, kind: DeltaKind, data: [UInt8]) throws(StoreError) {
        try check("appendDelta(ticket:seq:at:kind:data:)"); try base.appendDelta(ticket: ticket, seq: seq, at: at, kind: kind, data: data)
    }
    public func deltas(ticket: String, after seq: Int, limit: Int) throws(StoreError) -> [(seq: Int, at: Int64, kind: String, data: [UInt8])] {
        try check("deltas(ticket:after:limit:)"); return try base.deltas(ticket: ticket, after: seq, limit: limit)
    }
    public func oldestDeltaSeq(ticket: String) throws(StoreError) -> Int? {
        try check("oldestDeltaSeq(ticket:)"); return try base.oldestDeltaSeq(ticket: ticket)
    }
    public func pruneDeltas(ticket: String, keepingAfter seq: Int) throws(StoreError) {
        try check("pruneDeltas(ticket:keepingAfter:)"); try base.pruneDeltas(ticket: ticket, keepingAfter: seq)
    }
    public func insertMessage(_ m: Message, mailMessageID: String?, delta: [UInt8]?, command: CommandKey?) throws(StoreError) {
        try check("insertMessage(_:mailMessageID:delta:command:)"); try base.insertMessage(m, mailMessageID: mailMessageID, delta: delta, command: command)
    }
    public func recentMessages(ticket: String, limit: Int) throws(StoreError) -> [Message] {
        try check("recentMessages(ticket:limit:)"); return try base.recentMessages(ticket: ticket, limit: limit)
    }
    public func messages(ticket: String, before: Int, limit: Int) throws(StoreError) -> [Message] {
        try check("messages(ticket:before:limit:)"); return try base.messages(ticket: ticket, before: before, limit: limit)
    }
    public func messages(ticket: String, after seq: Int) throws(StoreError) -> [Message] {
        try check("messages(ticket:after:)"); return try base.messages(ticket: ticket, after: seq)
    }
    public func messages(ticket: String, after seq: Int, channels: [Channel], notBy author: String, limit: Int) throws(StoreError) -> (recent: [Message], total: Int) {
        try check("messages(ticket:after:channels:notBy:limit:)"); return try base.messages(ticket: ticket, after: seq, channels: channels, notBy: author, limit: limit)
    }
    public func mailThreadIDs(ticket: String) throws(StoreError) -> [String] {
        try check("mailThreadIDs(ticket:)"); return try base.mailThreadIDs(ticket: ticket)
    }
    public func message(mailMessageID id: String) throws(StoreError) -> Message? {
        try check("message(mailMessageID:)"); return try base.message(mailMessageID: id)
    }
    public func message(mailMessageID id: String, tenant: String) throws(StoreError) -> Message? {
        try check("message(mailMessageID:tenant:)"); return try base.message(mailMessageID: id, tenant: tenant)
    }
    public func noteSeq(command: CommandKey, notBefore: Int64) throws(StoreError) -> Int? {
        try check("noteSeq(command:notBefore:)"); return try base.noteSeq(command: command, notBefore: notBefore)
    }
    public func commandAnswer(_ command: CommandKey, notBefore: Int64) throws(StoreError) -> [UInt8]? {
        try check("commandAnswer(_:notBefore:)"); return try base.commandAnswer(command, notBefore: notBefore)
    }
    public func saveCommandAnswer(_ command: CommandKey, at: Int64, answer: [UInt8]) throws(StoreError) {
        try check("saveCommandAnswer(_:at:answer:)"); try base.saveCommandAnswer(command, at: at, answer: answer)
    }
    public func pruneCommandAnswers(before: Int64) throws(StoreError) {
        try check("pruneCommandAnswers(before:)"); try base.pruneCommandAnswers(before: before)
    }
    public func putEmailAccount(tenant: String, _ a: EmailAccount) throws(StoreError) {
        try check("putEmailAccount(tenant:_:)"); try base.putEmailAccount(tenant: tenant, a)
    }
    public func emailAccount(tenant: String) throws(StoreError) -> EmailAccount? {
        try check("emailAccount(tenant:)"); return try base.emailAccount(tenant: tenant)
    }
    public func putTenantEndpoint(tenant: String, kind: String, url: String?) throws(StoreError) {
        try check("putTenantEndpoint(tenant:kind:url:)"); try base.putTenantEndpoint(tenant: tenant, kind: kind, url: url)
    }
    public func tenantEndpoint(tenant: String, kind: String) throws(StoreError) -> String? {
        try check("tenantEndpoint(tenant:kind:)"); return try base.tenantEndpoint(tenant: tenant, kind: kind)
    }
    public func putAssetPosture(tenant: String, id: String, posture: [UInt8]?) throws(StoreError) {
        try check("putAssetPosture(tenant:id:posture:)"); try base.putAssetPosture(tenant: tenant, id: id, posture: posture)
    }
    public func tenants(outboundAddresses addresses: [String]) throws(StoreError) -> [String] {
        try check("tenants(outboundAddresses:)"); return try base.tenants(outboundAddresses: addresses)
    }
    public func recordSend(ticket: String, at: Int64, technician: String, recipient: String?, outcome: String, reply: String) throws(StoreError) {
        try check("recordSend(ticket:at:technician:recipient:outcome:reply:)"); try base.recordSend(ticket: ticket, at: at, technician: technician, recipient: recipient, outcome: outcome, reply: reply)
    }
    public func sends(ticket: String) throws(StoreError) -> [(at: Int64, technician: String, recipient: String?, outcome: String, reply: String)] {
        try check("sends(ticket:)"); return try base.sends(ticket: ticket)
    }
    public func finishSend(ticket: String, sending note: String, at: Int64, outcome: String?, reply: String) throws(StoreError) {
        try check("finishSend(ticket:sending:at:outcome:reply:)"); try base.finishSend(ticket: ticket, sending: note, at: at, outcome: outcome, reply: reply)
    }
    public func unsettledSends() throws(StoreError) -> [(ticket: String, technician: String, recipient: String?, note: String)] {
        try check("unsettledSends()"); return try base.unsettledSends()
    }
    public func putSLAPolicy(tenant: String, priority: Priority, _ target: SLATarget) throws(StoreError) {
        try check("putSLAPolicy(tenant:priority:_:)"); try base.putSLAPolicy(tenant: tenant, priority: priority, target)
    }
    public func slaPolicy(tenant: String, priority: Priority) throws(StoreError) -> SLATarget? {
        try check("slaPolicy(tenant:priority:)"); return try base.slaPolicy(tenant: tenant, priority: priority)
    }
    public func putBusinessHours(tenant: String, _ hours: BusinessHours?) throws(StoreError) {
        try check("putBusinessHours(tenant:_:)"); try base.putBusinessHours(tenant: tenant, hours)
    }
    public func businessHours(tenant: String) throws(StoreError) -> BusinessHours? {
        try check("businessHours(tenant:)"); return try base.businessHours(tenant: tenant)
    }
    public func insertSession(_ s: RemoteSession) throws(StoreError) {
        try check("insertSession(_:)"); try base.insertSession(s)
    }
    public func updateSession(id: String, status: SessionStatus, startedAt: Int64?) throws(StoreError) {
        try check("updateSession(id:status:startedAt:)"); try base.updateSession(id: id, status: status, startedAt: startedAt)
    }
    public func latestSession(ticket: String) throws(StoreError) -> RemoteSession? {
        try check("latestSession(ticket:)"); return try base.latestSession(ticket: ticket)
    }
    public func session(_ id: String) throws(StoreError) -> RemoteSession? {
        try check("session(_:)"); return try base.session(id)
    }
    public func pendingSessions() throws(StoreError) -> [RemoteSession] {
        try check("pendingSessions()"); return try base.pendingSessions()
    }
    public func activeSessions() throws(StoreError) -> [RemoteSession] {
        try check("activeSessions()"); return try base.activeSessions()
    }
    public func putSummary(ticket: String, _ s: Summary) throws(StoreError) {
        try check("putSummary(ticket:_:)"); try base.putSummary(ticket: ticket, s)
    }
    public func summary(ticket: String) throws(StoreError) -> Summary? {
        try check("summary(ticket:)"); return try base.summary(ticket: ticket)
    }
    public func timeState(ticket: String, recentEntries: Int) throws(StoreError) -> TimeState {
        try check("timeState(ticket:recentEntries:)"); return try base.timeState(ticket: ticket, recentEntries: recentEntries)
    }
    public func activeTimer(ticket: String) throws(StoreError) -> (technician: PersonRef, startedAt: Int64)? {
        try check("activeTimer(ticket:)"); return try base.activeTimer(ticket: ticket)
    }
    public func startTimer(ticket: String, technician: PersonRef, at: Int64) throws(StoreError) {
        try check("startTimer(ticket:technician:at:)"); try base.startTimer(ticket: ticket, technician: technician, at: at)
    }
    public func stopTimer(ticket: String) throws(StoreError) -> (technician: PersonRef, startedAt: Int64)? {
        try check("stopTimer(ticket:)"); return try base.stopTimer(ticket: ticket)
    }
    public func contractSeconds(tenant: String, client: String, contract: String, since: Int64) throws(StoreError) -> Int {
        try check("contractSeconds(tenant:client:contract:since:)"); return try base.contractSeconds(tenant: tenant, client: client, contract: contract, since: since)
    }
    public func addTimeEntry(ticket: String, _ e: TimeEntry) throws(StoreError) {
        try check("addTimeEntry(ticket:_:)"); try base.addTimeEntry(ticket: ticket, e)
    }
    public func insertAttachment(_ a: AttachmentRef, ticket: String, sha256: String, at: Int64) throws(StoreError) {
        try check("insertAttachment(_:ticket:sha256:at:)"); try base.insertAttachment(a, ticket: ticket, sha256: sha256, at: at)
    }
    public func attachment(_ id: String) throws(StoreError) -> (ref: AttachmentRef, ticket: String, sha256: String)? {
        try check("attachment(_:)"); return try base.attachment(id)
    }
    public func isAttachmentFileReferenced(sha256: String) throws(StoreError) -> Bool {
        try check("isAttachmentFileReferenced(sha256:)"); return try base.isAttachmentFileReferenced(sha256: sha256)
    }
}
