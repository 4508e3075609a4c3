/// A mailbox: an optional display name and an address (`Ana Pérez <ana@example.com>`).
public struct MailAddress: Sendable, Equatable, Hashable, CustomStringConvertible {
    public var name: String?
    public var address: String

    public init(name: String? = nil, address: String) {
        self.name = name
        self.address = address
    }

    public var description: String {
        guard let name, !name.isEmpty else { return address }
        return "\(name) <\(address)>"
    }
}
