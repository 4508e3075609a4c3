import PeekCore

/// What another node last announced about its viewers of one ticket.
struct RemotePresence {
    var viewers: [Viewer]
    /// `monotonicMillis()` when it was heard.
    var heardAtMillis: Int64
}

/// Presence across the nodes of a PostgreSQL cluster (protocol.md §3.7).
/// Each node knows its own viewers (`viewers`); what the others announce
/// arrives through the bus (`applyRemotePresence`) and is kept per ticket
/// and node. The list a technician sees is the union: this node's viewers
/// first, in the order they came, then the other nodes' (a technician on
/// two nodes is listed once, composing if either connection is). A node
/// re-announces all its lists every third of a heartbeat; an entry of a
/// node whose lease lapsed, or that was not heard again within a
/// heartbeat, is dropped (`keepRemotePresence`), so a killed node leaves
/// nobody behind for longer than that.
extension Engine {
    func hasViewers(_ ticketID: String) -> Bool {
        viewers[ticketID].map { !$0.isEmpty } == true || remoteViewers[ticketID] != nil
    }

    func presenceList(_ ticketID: String) -> [Viewer] {
        var list = viewers[ticketID]?.list ?? []
        guard let remote = remoteViewers[ticketID] else { return list }
        var index: [String: Int] = [:]
        for (i, v) in list.enumerated() { index[v.id] = i }
        for node in remote.keys.sorted() {
            for v in remote[node]?.viewers ?? [] {
                if let i = index[v.id] {
                    if list[i].composing == nil { list[i].composing = v.composing }
                } else {
                    index[v.id] = list.count
                    list.append(v)
                }
            }
        }
        return list
    }

    /// Another node's viewers of a ticket (a JSON array as in
    /// `presence.updated`; empty: nobody there any more).
    package func applyRemotePresence(node: String, ticket: String, viewers json: [UInt8]) {
        guard let items = (try? JSONParser.parse(json))?.arrayValue else { return }
        let list = items.compactMap { item -> Viewer? in
            guard let id = item["id"]?.stringValue else { return nil }
            return Viewer(id: id, name: item["name"]?.stringValue ?? id,
                          composing: item["composing"]?.stringValue.flatMap(ComposingMode.init(rawValue:)))
        }
        let before = presenceList(ticket)
        if list.isEmpty {
            remoteViewers[ticket]?[node] = nil
            if remoteViewers[ticket]?.isEmpty == true { remoteViewers[ticket] = nil }
        } else {
            remoteViewers[ticket, default: [:]][node] = RemotePresence(viewers: list, heardAtMillis: monotonicMillis())
        }
        if presenceList(ticket) != before { publishLocalPresence(ticket) }
    }

    /// Drops the entries of nodes not in `liveNodes` (their lease lapsed)
    /// and those not heard again within `heardWithinMillis`.
    package func keepRemotePresence(liveNodes: Set<String>, heardWithinMillis: Int64) {
        let oldest = monotonicMillis() - heardWithinMillis
        for (ticket, nodes) in remoteViewers {
            let kept = nodes.filter { liveNodes.contains($0.key) && $0.value.heardAtMillis >= oldest }
            guard kept.count != nodes.count else { continue }
            remoteViewers[ticket] = kept.isEmpty ? nil : kept
            publishLocalPresence(ticket)
        }
    }

    /// Every list of this node's viewers again, for the other nodes (one
    /// that started late, or missed a notification).
    package func announcePresence() {
        for (ticket, v) in viewers where !v.isEmpty {
            var w = JSONWriter()
            Wire.viewers(v.list, into: &w)
            outputs.append(.clusterPresence(ticket: ticket, viewers: w.bytes))
        }
    }
}
