import PeekCore

/// The `--demo` seed: one tenant with three technicians, an asset with an
/// RMM agent (`agent-demo-1`, whose certificate the development CA issues),
/// and five tickets, one of them with a contact who has no email address.
/// No email account is configured, so a reply shows the honest failure.
package enum DemoData {
    package static let tenant = "demo"
    /// The asset whose agent (`agent-demo-1`) `peekd --demo` runs.
    package static let agentAsset = "asset-1"

    /// The tickets linked to the demo agent's asset, which it chats on.
    /// Read before the engine starts (like the seed).
    package static func agentTickets(_ engine: Engine) -> [String] {
        var tickets: [String] = []
        engine.runBatch { tickets = (try? engine.store.ticketsLinked(tenant: tenant, asset: agentAsset)) ?? [] }
        return tickets
    }

    package static func seed(_ engine: Engine) {
        engine.runBatch {
            let store = engine.store
            // Best effort (demo only): if the read fails, creating the tenant
            // fails too and the seed is skipped with it.
            guard (try? store.tenant(tenant)) == nil else { return }
            let at = engine.now
            do {
                try store.createTenant(Tenant(id: tenant, name: "Northwind IT"), at: at)
                for (id, name) in [("tech-ana", "Ana Ruiz"), ("tech-ben", "Ben Okafor"), ("tech-cho", "Cho Park")] {
                    try store.createTechnician(Technician(tenant: tenant, id: id, name: name, email: "\(id.dropFirst(5))@northwind.example"))
                }
                let posture = #"{"antivirus":"healthy","firewall":"on","disk_encryption":"on","pending_patches":3,"last_scan":"2026-11-29T06:00:00Z"}"#
                try store.createAsset(Asset(tenant: tenant, id: agentAsset, name: "ANA-LAPTOP", agent: "agent-demo-1", posture: Array(posture.utf8)))
                try store.createAsset(Asset(tenant: tenant, id: "asset-2", name: "FRONTDESK-PC", agent: "agent-demo-2"))
                for (priority, response, resolution) in [(Priority.low, 8 * 3600, 5 * 86400), (.normal, 4 * 3600, 2 * 86400),
                                                        (.high, 3600, 8 * 3600), (.urgent, 900, 4 * 3600)] {
                    try store.putSLAPolicy(tenant: tenant, priority: priority, SLATarget(response: response, resolution: resolution))
                }
                let tickets: [[String: JSONValue]] = [
                    ["subject": "Laptop fan is loud and the machine is slow", "contact": .object(["name": "Maya Chen", "email": "maya.chen@contoso.example"]),
                     "client": "Contoso Ltd", "priority": "high", "asset": .string(agentAsset), "status": "open", "contract": "Managed Services Gold — 12 h/month",
                     "body": "Hi, since this morning my laptop fan is running constantly and everything is slow. Can you take a look?"],
                    ["subject": "VPN drops every few minutes", "contact": .object(["name": "Maya Chen", "email": "maya.chen@contoso.example"]),
                     "client": "Contoso Ltd", "priority": "normal", "status": "in_progress",
                     "body": "The VPN disconnects every 5-10 minutes when I work from home."],
                    ["subject": "Front desk printer offline", "contact": .object(["name": "Reception desk", "email": .null]),
                     "client": "Fabrikam Clinic", "priority": "urgent", "asset": "asset-2", "status": "new",
                     "body": "Printer shows offline on the front desk PC. (Called in by phone.)"],
                    ["subject": "New starter account for Jonas", "contact": .object(["name": "Priya Nair", "email": "priya@fabrikam.example"]),
                     "client": "Fabrikam Clinic", "priority": "low", "status": "waiting_on_customer",
                     "body": "Please set up accounts for Jonas, who starts on Monday."],
                    ["subject": "Outlook keeps asking for password", "contact": .object(["name": "Leo Marsh", "email": "leo.marsh@contoso.example"]),
                     "client": "Contoso Ltd", "priority": "normal", "status": "open",
                     "body": "Outlook prompts for my password every hour since the update."],
                ]
                for t in tickets { _ = try engine.createTicket(tenant: tenant, .object(t)) }
            } catch {
                engine.log(.error, "demo_seed_failed", "seeding the demo tenant failed", error: "\(error)")
            }
        }
    }
}
