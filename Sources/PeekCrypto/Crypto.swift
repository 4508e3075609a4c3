import COpenSSL

/// Hashes, MACs and randomness from libcrypto. Every function is pure in the
/// sense the package uses (no sockets, files or clock); `randomBytes` reads
/// the OpenSSL DRBG.
public enum Crypto {
    public static func sha1(_ bytes: some Collection<UInt8>) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: Int(SHA_DIGEST_LENGTH))
        let input = Array(bytes)
        input.withUnsafeBufferPointer { p in _ = SHA1(p.baseAddress, p.count, &digest) }
        return digest
    }

    public static func sha256(_ bytes: some Collection<UInt8>) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: Int(SHA256_DIGEST_LENGTH))
        let input = Array(bytes)
        input.withUnsafeBufferPointer { p in _ = SHA256(p.baseAddress, p.count, &digest) }
        return digest
    }

    public static func hmacSHA256(key: some Collection<UInt8>, message: some Collection<UInt8>) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let k = Array(key), m = Array(message)
        k.withUnsafeBufferPointer { kp in
            m.withUnsafeBufferPointer { mp in
                _ = HMAC(EVP_sha256(), kp.baseAddress, Int32(kp.count), mp.baseAddress, mp.count, &digest, &length)
            }
        }
        return Array(digest.prefix(Int(length)))
    }

    /// Compares in time that depends only on the length, so a MAC check does
    /// not tell an attacker how many leading bytes were right.
    public static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        if a.isEmpty { return true }
        return a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in CRYPTO_memcmp(ap.baseAddress, bp.baseAddress, ap.count) == 0 }
        }
    }

    public static func randomBytes(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        if count > 0 {
            let rc = out.withUnsafeMutableBufferPointer { RAND_bytes($0.baseAddress, Int32(count)) }
            precondition(rc == 1, "RAND_bytes failed: the OpenSSL DRBG is unusable")
        }
        return out
    }

    public static func hex(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 0xF)]) }
        return String(decoding: out, as: UTF8.self)
    }
}
