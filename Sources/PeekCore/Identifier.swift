/// The one rule every identifier and code a client sends must follow: ids of
/// frames, tickets, tenants, technicians, assets, agents, attachments and
/// sessions. 1 to 128 bytes of printable ASCII without spaces (0x21-0x7E).
/// It fits every id the server and the browser client make (`T-1001`,
/// `M-1001-3`, `cmd-<hex>`) and keeps NULs, control characters and
/// megabyte-long keys out of the store and the logs (protocol.md §3).
public enum Identifier {
    public static let maxBytes = 128

    public static func isValid(_ s: String) -> Bool {
        let utf8 = s.utf8
        return !utf8.isEmpty && utf8.count <= maxBytes && utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }
    }

    /// What an id that breaks the rule is told; `what` names the field.
    public static func refusal(_ what: String) -> String {
        "\(what) must be 1 to \(maxBytes) bytes of printable ASCII without spaces or control characters."
    }
}
