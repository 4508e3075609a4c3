import COpenSSL
#if canImport(Glibc)
import Glibc
#endif

/// One `EVP_CIPHER_CTX` per AEAD per thread, shared by every `TLSRecordLayer`
/// that thread runs and re-keyed for each record (`EVP_CipherInit_ex` with
/// no cipher keeps the provider context and only sets key, nonce and
/// direction). A context costs about 1 KB; one per connection direction is
/// what the hand-off removes, and a loop thread needs at most three.
///
/// Thread-local through a pthread key, whose destructor frees a thread's
/// contexts when it exits. A context is used only within one `seal`/`open`
/// call, so a session may move between threads between calls.
enum AEADContexts {
    private static let slotCount = TLSRecordLayer.Suite.allCases.count

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        let rc = pthread_key_create(&key) { raw in
            guard let slots = raw?.assumingMemoryBound(to: OpaquePointer?.self) else { return }
            for index in 0..<AEADContexts.slotCount { EVP_CIPHER_CTX_free(slots[index]) }
            slots.deinitialize(count: AEADContexts.slotCount)
            slots.deallocate()
        }
        // Only exhaustion of PTHREAD_KEYS_MAX (1024) fails, at first use: a bug.
        precondition(rc == 0, "pthread_key_create failed: \(rc)")
        return key
    }()

    /// This thread's context for `suite`, initialised with its cipher (no
    /// key yet). Nil only if OpenSSL cannot allocate one.
    static func context(for suite: TLSRecordLayer.Suite) -> OpaquePointer? {
        let slots: UnsafeMutablePointer<OpaquePointer?>
        if let existing = pthread_getspecific(key) {
            slots = existing.assumingMemoryBound(to: OpaquePointer?.self)
        } else {
            slots = .allocate(capacity: slotCount)
            slots.initialize(repeating: nil, count: slotCount)
            guard pthread_setspecific(key, slots) == 0 else {
                slots.deallocate()
                return nil
            }
        }
        if let context = slots[suite.rawValue] { return context }
        guard let context = EVP_CIPHER_CTX_new() else { return nil }
        guard EVP_CipherInit_ex(context, suite.cipher, nil, nil, nil, 1) == 1 else {
            EVP_CIPHER_CTX_free(context)
            return nil
        }
        slots[suite.rawValue] = context
        return context
    }
}
