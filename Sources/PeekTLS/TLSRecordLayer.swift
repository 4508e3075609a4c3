import COpenSSL

/// TLS 1.3 record protection (RFC 8446 §5.2) for one connection, once the
/// handshake is over and OpenSSL's `SSL` has been freed (see `TLSSession`).
///
/// It keeps, per direction, only the traffic secret (for KeyUpdate), the
/// AEAD key, the static IV and the sequence number: under 200 bytes in one
/// allocation that is wiped when freed. The cipher context is borrowed from
/// `AEADContexts` (one per thread) and re-keyed for every record, so no
/// per-connection `EVP_CIPHER_CTX` exists: that context, kept per
/// direction by an `SSL`, is part of the memory the hand-off saves.
///
///     record   = 0x17 0x03 0x03 length(2) || AEAD(key, nonce, aad: header, inner)
///     inner    = content || content type (1) || zeros (padding)
///     nonce    = iv XOR (sequence number, big-endian, left-padded to 12 bytes)
///
/// Not thread-safe: the owning `TLSSession` is confined to one loop.
final class TLSRecordLayer {
    /// The three TLS 1.3 suites OpenSSL 3.0 negotiates by default (RFC 8446
    /// §B.4). The CCM suites are off by default and never handed off.
    enum Suite: Int, CaseIterable {
        case aes128GCM = 0, aes256GCM, chacha20Poly1305

        init?(protocolID: UInt16) {
            switch protocolID {
            case 0x1301: self = .aes128GCM
            case 0x1302: self = .aes256GCM
            case 0x1303: self = .chacha20Poly1305
            default: return nil
            }
        }

        /// The IANA name, as `SSL_CIPHER_get_name` gives it for TLS 1.3.
        var name: String {
            switch self {
            case .aes128GCM: "TLS_AES_128_GCM_SHA256"
            case .aes256GCM: "TLS_AES_256_GCM_SHA384"
            case .chacha20Poly1305: "TLS_CHACHA20_POLY1305_SHA256"
            }
        }

        /// The suite's hash length, which is the traffic secret's length.
        var secretBytes: Int { self == .aes256GCM ? 48 : 32 }
        var keyBytes: Int { self == .aes128GCM ? 16 : 32 }
        var digest: OpaquePointer? { self == .aes256GCM ? EVP_sha384() : EVP_sha256() }
        var cipher: OpaquePointer? {
            switch self {
            case .aes128GCM: EVP_aes_128_gcm()
            case .aes256GCM: EVP_aes_256_gcm()
            case .chacha20Poly1305: EVP_chacha20_poly1305()
            }
        }
    }

    enum Direction: Int { case read = 0, write = 1 }

    /// What `open` found in one record.
    enum OpenResult {
        /// The inner plaintext's content was appended; this is its type.
        case opened(contentType: UInt8)
        /// Nothing was appended; the connection must end with this alert.
        case failed(TLSAlert)
    }

    static let headerBytes = 5
    static let tagBytes = 16
    static let ivBytes = 12
    /// RFC 8446 §5.1: a record carries at most 2^14 bytes of content.
    static let maxContentBytes = 16_384
    /// RFC 8446 §5.2: TLSCiphertext.length may not exceed 2^14 + 256; a
    /// longer claim is refused from the header alone (record_overflow).
    static let maxCiphertextBytes = 16_384 + 256
    /// The wire size of one record carrying `count` content bytes, unpadded.
    static func recordBytes(content count: Int) -> Int { headerBytes + count + 1 + tagBytes }

    let suite: Suite
    private var readSequence: UInt64 = 0
    private var writeSequence: UInt64 = 0
    /// Records protected under the current key, per direction (the
    /// sequence number restarts at each KeyUpdate).
    var recordsUnderWriteKey: UInt64 { writeSequence }
    var recordsUnderReadKey: UInt64 { readSequence }

    /// RFC 8446 §5.5: AES-GCM may protect at most 2^24.5 full-size records
    /// under one key. The session moves to the next key after 2^24, each
    /// way, whatever the suite (ChaCha20-Poly1305's margin is far wider; one
    /// rule is simpler to check).
    static let defaultRecordsPerKey: UInt64 = 1 << 24
    /// Per direction: secret (48, only `suite.secretBytes` used), key (32), iv (12), 4 spare.
    private let storage: UnsafeMutableRawPointer
    private static let directionStride = 96
    private static let storageBytes = 2 * directionStride

    /// Derives both directions' key and IV from the application traffic
    /// secrets (RFC 8446 §7.3). Nil if a secret has the wrong length or
    /// HMAC fails.
    init?(suite: Suite, readSecret: UnsafeRawBufferPointer, writeSecret: UnsafeRawBufferPointer) {
        self.suite = suite
        storage = UnsafeMutableRawPointer.allocate(byteCount: Self.storageBytes, alignment: 8)
        storage.initializeMemory(as: UInt8.self, repeating: 0, count: Self.storageBytes)
        guard readSecret.count == suite.secretBytes, writeSecret.count == suite.secretBytes,
              let readBase = readSecret.baseAddress, let writeBase = writeSecret.baseAddress
        else { return nil }
        secret(.read).copyMemory(from: readBase, byteCount: suite.secretBytes)
        secret(.write).copyMemory(from: writeBase, byteCount: suite.secretBytes)
        guard deriveKeyAndIV(.read), deriveKeyAndIV(.write) else { return nil }
    }

    deinit {
        OPENSSL_cleanse(storage, Self.storageBytes)
        storage.deallocate()
    }

    private func secret(_ direction: Direction) -> UnsafeMutableRawPointer {
        storage + direction.rawValue * Self.directionStride
    }
    private func key(_ direction: Direction) -> UnsafeMutableRawPointer { secret(direction) + 48 }
    private func iv(_ direction: Direction) -> UnsafeMutableRawPointer { secret(direction) + 80 }

    // MARK: Keys

    /// RFC 8446 §7.2: application_traffic_secret_N+1 =
    /// HKDF-Expand-Label(secret_N, "traffic upd", "", Hash.length); key, IV
    /// and sequence number follow the new secret.
    func updateTrafficSecret(_ direction: Direction) -> Bool {
        let length = suite.secretBytes
        let updated = withUnsafeTemporaryAllocation(byteCount: 64, alignment: 8) { next -> Bool in
            guard let nextBase = next.baseAddress else { return false }
            defer { OPENSSL_cleanse(nextBase, 64) }
            guard Self.expandLabel(secret: UnsafeRawBufferPointer(start: secret(direction), count: length),
                                   label: "traffic upd", digest: suite.digest, into: nextBase, count: length)
            else { return false }
            secret(direction).copyMemory(from: nextBase, byteCount: length)
            return true
        }
        guard updated, deriveKeyAndIV(direction) else { return false }
        switch direction {
        case .read: readSequence = 0
        case .write: writeSequence = 0
        }
        return true
    }

    /// RFC 8446 §7.3: key = HKDF-Expand-Label(secret, "key", "", key_length),
    /// iv = HKDF-Expand-Label(secret, "iv", "", iv_length).
    private func deriveKeyAndIV(_ direction: Direction) -> Bool {
        let secret = UnsafeRawBufferPointer(start: secret(direction), count: suite.secretBytes)
        return Self.expandLabel(secret: secret, label: "key", digest: suite.digest, into: key(direction), count: suite.keyBytes)
            && Self.expandLabel(secret: secret, label: "iv", digest: suite.digest, into: iv(direction), count: Self.ivBytes)
    }

    /// HKDF-Expand-Label with an empty context (RFC 8446 §7.1). Every length
    /// asked for here is at most the hash length, so HKDF-Expand (RFC 5869
    /// §2.3) is a single block: T(1) = HMAC(secret, HkdfLabel || 0x01).
    static func expandLabel(secret: UnsafeRawBufferPointer, label: String, digest: OpaquePointer?,
                            into output: UnsafeMutableRawPointer, count: Int) -> Bool {
        guard count <= 48, let secretBase = secret.baseAddress else { return false }
        // struct { uint16 length; opaque label<7..255> = "tls13 " + Label; opaque context<0..255> = ""; }
        let fullLabel = Array("tls13 \(label)".utf8)
        var info: [UInt8] = [UInt8(count >> 8), UInt8(count & 0xFF), UInt8(fullLabel.count)]
        info += fullLabel
        info += [0, 0x01]  // empty context, then HKDF-Expand's block counter
        return withUnsafeTemporaryAllocation(byteCount: 64, alignment: 8) { block -> Bool in
            guard let blockBase = block.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return false }
            defer { OPENSSL_cleanse(blockBase, 64) }
            var blockLength: UInt32 = 0
            guard HMAC(digest, secretBase, Int32(secret.count), info, info.count, blockBase, &blockLength) != nil,
                  Int(blockLength) >= count
            else { return false }
            output.copyMemory(from: blockBase, byteCount: count)
            return true
        }
    }

    // MARK: Records

    /// Appends one protected record holding `content` (at most
    /// `maxContentBytes`) of `contentType`, followed by `padding` zero bytes
    /// (RFC 8446 §5.4; the server sends none, tests do), to `output`.
    /// False, with `output` unchanged, if OpenSSL fails or the sequence
    /// number is exhausted.
    func seal(contentType: UInt8, _ content: UnsafeRawBufferPointer, padding: Int = 0, appendingTo output: inout [UInt8]) -> Bool {
        precondition(content.count <= Self.maxContentBytes && padding >= 0
                     && content.count + 1 + padding + Self.tagBytes <= Self.maxCiphertextBytes, "record over 2^14 + 256 bytes")
        // RFC 8446 §5.3: the sequence number must not wrap; a KeyUpdate resets it.
        guard writeSequence < UInt64.max, let context = AEADContexts.context(for: suite) else { return false }
        let length = content.count + 1 + padding + Self.tagBytes
        let start = output.count
        output.append(0x17)  // opaque_type: application_data
        output.append(0x03)  // legacy_record_version 0x0303
        output.append(0x03)
        output.append(UInt8(length >> 8))
        output.append(UInt8(length & 0xFF))
        output.append(contentsOf: repeatElement(0, count: length))
        let sealed = output.withUnsafeMutableBytes { raw -> Bool in
            guard let header = raw.baseAddress.map({ ($0 + start).assumingMemoryBound(to: UInt8.self) }) else { return false }
            let body = header + Self.headerBytes
            return withNonce(.write, sequence: writeSequence) { nonce in
                var produced: Int32 = 0
                var type = contentType
                let tagOffset = content.count + 1 + padding
                guard EVP_CipherInit_ex(context, nil, nil, key(.write).assumingMemoryBound(to: UInt8.self), nonce, 1) == 1,
                      EVP_CipherUpdate(context, nil, &produced, header, Int32(Self.headerBytes)) == 1
                else { return false }
                if let contentBase = content.baseAddress, content.count > 0 {
                    guard EVP_CipherUpdate(context, body, &produced, contentBase.assumingMemoryBound(to: UInt8.self),
                                           Int32(content.count)) == 1, Int(produced) == content.count
                    else { return false }
                }
                guard EVP_CipherUpdate(context, body + content.count, &produced, &type, 1) == 1, produced == 1
                else { return false }
                if padding > 0 {
                    // The zeros already sit in `output`: encrypt them in place.
                    let zeros = body + content.count + 1
                    guard EVP_CipherUpdate(context, zeros, &produced, zeros, Int32(padding)) == 1, Int(produced) == padding
                    else { return false }
                }
                guard EVP_CipherFinal_ex(context, body + tagOffset, &produced) == 1, produced == 0,
                      EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_GET_TAG, Int32(Self.tagBytes), body + tagOffset) == 1
                else { return false }
                return true
            }
        }
        guard sealed else {
            output.removeSubrange(start...)
            return false
        }
        writeSequence += 1
        return true
    }

    /// Authenticates and decrypts one whole record (`record` includes its
    /// 5-byte header, whose length the caller has checked against
    /// `maxCiphertextBytes`), appending the content to `output` and
    /// returning its type. On failure nothing is appended: no byte of a
    /// record that failed authentication reaches the caller.
    func open(_ record: UnsafeRawBufferPointer, appendingTo output: inout [UInt8]) -> OpenResult {
        let sealedCount = record.count - Self.headerBytes - Self.tagBytes
        // Shorter than a tag cannot authenticate.
        guard sealedCount >= 0, let recordBase = record.baseAddress else { return .failed(.badRecordMAC) }
        // RFC 8446 §5.4: TLSInnerPlaintext (content + type + padding) is at most 2^14 + 1 bytes.
        guard sealedCount <= Self.maxContentBytes + 1 else { return .failed(.recordOverflow) }
        guard readSequence < UInt64.max, let context = AEADContexts.context(for: suite) else { return .failed(.internalError) }

        let start = output.count
        output.append(contentsOf: repeatElement(0, count: sealedCount))
        let authentic = output.withUnsafeMutableBytes { raw -> Bool in
            guard let out = raw.baseAddress.map({ ($0 + start).assumingMemoryBound(to: UInt8.self) }) else { return false }
            let header = recordBase.assumingMemoryBound(to: UInt8.self)
            let body = header + Self.headerBytes
            return withNonce(.read, sequence: readSequence) { nonce in
                var produced: Int32 = 0
                guard EVP_CipherInit_ex(context, nil, nil, key(.read).assumingMemoryBound(to: UInt8.self), nonce, 0) == 1,
                      EVP_CipherUpdate(context, nil, &produced, header, Int32(Self.headerBytes)) == 1
                else { return false }
                if sealedCount > 0 {
                    guard EVP_CipherUpdate(context, out, &produced, body, Int32(sealedCount)) == 1,
                          Int(produced) == sealedCount
                    else { return false }
                }
                // SET_TAG takes a mutable pointer; give it a copy, not the caller's input.
                var tag: (UInt64, UInt64) = (0, 0)
                withUnsafeMutableBytes(of: &tag) { $0.copyMemory(from: UnsafeRawBufferPointer(start: body + sealedCount, count: Self.tagBytes)) }
                guard withUnsafeMutableBytes(of: &tag, { EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_SET_TAG, Int32(Self.tagBytes), $0.baseAddress) }) == 1
                else { return false }
                return EVP_CipherFinal_ex(context, out + sealedCount, &produced) == 1
            }
        }
        guard authentic else {
            output.removeSubrange(start...)
            return .failed(.badRecordMAC)
        }
        readSequence += 1

        // RFC 8446 §5.4: the content type is the last non-zero byte; all zeros
        // means the peer sent no type at all (unexpected_message).
        var end = output.count
        while end > start && output[end - 1] == 0 { end -= 1 }
        guard end > start else {
            output.removeSubrange(start...)
            return .failed(.unexpectedMessage)
        }
        let contentType = output[end - 1]
        output.removeSubrange((end - 1)...)
        return .opened(contentType: contentType)
    }

    /// Calls `body` with iv XOR the 64-bit sequence number (RFC 8446 §5.3).
    private func withNonce<R>(_ direction: Direction, sequence: UInt64, _ body: (UnsafePointer<UInt8>) -> R) -> R {
        var nonce: (UInt64, UInt64) = (0, 0)  // 16 bytes on the stack; the first 12 are the nonce
        return withUnsafeMutableBytes(of: &nonce) { raw -> R in
            raw.copyMemory(from: UnsafeRawBufferPointer(start: iv(direction), count: Self.ivBytes))
            for index in 0..<8 {
                raw[Self.ivBytes - 1 - index] ^= UInt8(truncatingIfNeeded: sequence >> (8 * index))
            }
            return body(raw.bindMemory(to: UInt8.self).baseAddress.unsafelyUnwrapped)  // a local: never nil
        }
    }
}

/// The alerts this record layer sends or understands by name (RFC 8446 §6).
struct TLSAlert: RawRepresentable, Equatable {
    let rawValue: UInt8
    init(rawValue: UInt8) { self.rawValue = rawValue }

    static let closeNotify = TLSAlert(rawValue: 0)
    static let unexpectedMessage = TLSAlert(rawValue: 10)
    static let badRecordMAC = TLSAlert(rawValue: 20)
    static let recordOverflow = TLSAlert(rawValue: 22)
    static let illegalParameter = TLSAlert(rawValue: 47)
    static let decodeError = TLSAlert(rawValue: 50)
    static let internalError = TLSAlert(rawValue: 80)
    static let userCanceled = TLSAlert(rawValue: 90)

    /// The RFC's name with spaces, as OpenSSL's error strings spell them
    /// ("bad record mac"), so `TLSError.mentions` reads the same either way.
    var name: String {
        switch rawValue {
        case 0: "close notify"
        case 10: "unexpected message"
        case 20: "bad record mac"
        case 22: "record overflow"
        case 40: "handshake failure"
        case 42: "bad certificate"
        case 47: "illegal parameter"
        case 50: "decode error"
        case 51: "decrypt error"
        case 70: "protocol version"
        case 80: "internal error"
        case 90: "user canceled"
        case 109: "missing extension"
        case 116: "certificate required"
        default: "alert \(rawValue)"
        }
    }
}
