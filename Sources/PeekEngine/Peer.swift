
/// Where a connection lives: its loop and its id on that loop. The engine
/// addresses connections only through this, never through the objects,
/// because those belong to the loop's thread.
public struct Peer: Hashable, Sendable, CustomStringConvertible {
    public let loop: Int
    public let id: UInt64
    public var description: String { "\(loop)/\(id)" }
    public init(loop: Int, id: UInt64) {
        self.loop = loop
        self.id = id
    }
}

/// A set of loops, as bits: which loops have viewers of a ticket.
package struct LoopMask: Equatable, Sendable {
    package var bits: UInt64 = 0
    package init(bits: UInt64 = 0) { self.bits = bits }
    package mutating func insert(_ loop: Int) { bits |= 1 << UInt64(loop & 63) }
    package func contains(_ loop: Int) -> Bool { bits & (1 << UInt64(loop & 63)) != 0 }
}
