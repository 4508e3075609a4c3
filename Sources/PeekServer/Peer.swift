import PeekNet

/// Where a connection lives: its loop and its id on that loop. The engine
/// addresses connections only through this, never through the objects,
/// because those belong to the loop's thread.
public struct Peer: Hashable, Sendable, CustomStringConvertible {
    public let loop: Int
    public let id: UInt64
    public var description: String { "\(loop)/\(id)" }
}

/// A set of loops, as bits: which loops have viewers of a ticket.
struct LoopMask: Equatable, Sendable {
    var bits: UInt64 = 0
    mutating func insert(_ loop: Int) { bits |= 1 << UInt64(loop & 63) }
    func contains(_ loop: Int) -> Bool { bits & (1 << UInt64(loop & 63)) != 0 }
}
