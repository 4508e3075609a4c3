import Foundation
import Synchronization
import PeekCore

/// SLA and consent deadlines when several nodes share one PostgreSQL
/// database. A node arms a deadline when it changes a ticket or session,
/// and all pending ones at start; a deadline armed by a node that then
/// died would never fire on the others. So every node re-reads the pending
/// deadlines from the database every few seconds (`ClusterTimerRescan`)
/// and arms them all. Each fires once cluster-wide all the same: its
/// handler locks the ticket row (`SELECT ... FOR UPDATE`) and checks the
/// state again under the lock, so the node that comes second finds the
/// breach recorded, or the session no longer awaiting consent, and does
/// nothing.
extension Engine {
    package func armDeadlinesFromDatabase() {
        let pending = store.bestEffort { () throws(StoreError) in
            (try store.pendingSessions(), try store.ticketsWithOpenSLA())
        }
        guard let (sessions, tickets) = pending else {
            log(.warn, "read_failed", "the pending deadlines could not be read; trying again at the next rescan")
            return
        }
        for s in sessions { timers.schedule(.consentExpiry(session: s.id), at: s.expiresAt) }
        for t in tickets {
            if let next = SLAClock.nextDeadline(t) { timers.schedule(.slaDeadline(ticket: t.id), at: next.dueAt) }
        }
    }
}

/// Asks the engine every `seconds` to arm the deadlines in the database
/// (`armDeadlinesFromDatabase`); runs on PostgreSQL only.
package final class ClusterTimerRescan: Sendable {
    private let stopping = Atomic<Bool>(false)
    private let done = DispatchSemaphore(value: 0)

    package init(engine: Engine, seconds: Int) {
        let interval = max(1, seconds) * 10
        let thread = Thread { [self] in
            var ticks = 0
            while !stopping.load(ordering: .relaxed) {
                usleep(100_000)
                ticks += 1
                if ticks >= interval {
                    ticks = 0
                    engine.submit(.run { $0.armDeadlinesFromDatabase() })
                }
            }
            done.signal()
        }
        thread.name = "peekd-rescan"
        thread.start()
    }

    package func stop() {
        guard !stopping.exchange(true, ordering: .relaxed) else { return }
        done.wait()
    }
}
