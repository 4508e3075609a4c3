import PeekTLS
import Synchronization

/// The context a TLS listener makes its new sessions from, replaceable
/// while it runs (certificate rotation on SIGHUP): each accept reads the
/// current one, and a session keeps the context it was made from, so
/// connections already open are untouched by a replacement.
public final class TLSContextSlot: Sendable {
    private let current: Mutex<TLSContext>

    public init(_ context: TLSContext) { current = Mutex(context) }

    public var context: TLSContext { current.withLock { $0 } }

    public func replace(with context: TLSContext) { current.withLock { $0 = context } }
}
