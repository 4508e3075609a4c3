import COpenSSL

/// A failed OpenSSL (or certificate file) call, with everything OpenSSL said
/// about it. OpenSSL reports through a thread-local queue that later calls
/// would overwrite, so the queue is drained into strings at the failure site
/// and travels with the error.
public struct TLSError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The call that failed, e.g. `"SSL_do_handshake"` or `"SSL_CTX_use_PrivateKey_file"`.
    public let call: String
    /// The `ERR_get_error` queue, oldest first, as `ERR_error_string_n` renders it
    /// (`error:0A000418:SSL routines::tlsv1 alert unknown ca`). Empty when the
    /// failure was ours rather than OpenSSL's (see `detail`).
    public let queue: [String]
    /// `X509_verify_cert_error_string` of `SSL_get_verify_result` when the peer's
    /// certificate was checked and rejected (`"certificate has expired"`,
    /// `"hostname mismatch"`); nil when verification passed or did not run.
    public let verifyResult: String?
    /// `SSL_get_error` for session calls; nil for context and certificate calls.
    public let sslError: Int32?
    /// A sentence for failures OpenSSL has no words for (a misuse, a file error).
    public let detail: String?

    public init(call: String, queue: [String] = [], verifyResult: String? = nil, sslError: Int32? = nil, detail: String? = nil) {
        self.call = call
        self.queue = queue
        self.verifyResult = verifyResult
        self.sslError = sslError
        self.detail = detail
    }

    public var description: String {
        var parts = ["\(call) failed"]
        if let detail { parts.append(detail) }
        if let verifyResult { parts.append("verify: \(verifyResult)") }
        if !queue.isEmpty { parts.append(queue.joined(separator: "; ")) }
        return parts.joined(separator: ": ")
    }

    /// True when any queued OpenSSL message contains `text` (case-insensitive).
    /// Lets callers and tests ask "was this alert 48?" without parsing codes.
    public func mentions(_ text: String) -> Bool {
        let needle = text.lowercased()
        return queue.contains { $0.lowercased().contains(needle) }
            || (verifyResult?.lowercased().contains(needle) ?? false)
            || (detail?.lowercased().contains(needle) ?? false)
    }

    /// Drains this thread's OpenSSL error queue into a `TLSError` for `call`.
    static func openSSL(_ call: String, sslError: Int32? = nil, verifyResult: String? = nil, detail: String? = nil) -> TLSError {
        TLSError(call: call, queue: drainErrorQueue(), verifyResult: verifyResult, sslError: sslError, detail: detail)
    }

    static func drainErrorQueue() -> [String] {
        var messages: [String] = []
        // 256 bytes is the size OpenSSL itself uses for ERR_error_string; longer
        // messages are truncated, not overrun, by ERR_error_string_n.
        var text = [CChar](repeating: 0, count: 256)
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            ERR_error_string_n(code, &text, text.count)
            messages.append(String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return messages
    }
}
