/// Makes committed transactions durable, from a thread other than the
/// store's. A store whose `commit` is already durable has none.
public protocol Durability: Sendable {
    /// Returns once every transaction committed before the call is on
    /// stable storage. Throws only if the storage reported a write failure.
    func sync() throws(StoreError)
}
