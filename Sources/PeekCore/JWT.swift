import PeekCrypto

/// HS256 technician tokens (RFC 7519 with RFC 7515 compact serialisation).
/// Only HS256 is accepted: honouring the header's `alg` is how "alg: none"
/// and RS/HS confusion attacks work, so the algorithm is fixed here.
public struct TechnicianClaims: Equatable, Sendable {
    public var subject: String
    public var tenant: String
    public var name: String
    public var role: String
    public var expiresAt: Int64

    public init(subject: String, tenant: String, name: String, role: String = "technician", expiresAt: Int64) {
        self.subject = subject
        self.tenant = tenant
        self.name = name
        self.role = role
        self.expiresAt = expiresAt
    }
}

public enum JWT {
    public enum Failure: Error, Equatable {
        case malformed(String)
        case badSignature
        case wrongAlgorithm(String)
        case expired

        /// The sentence the `unauthorized` error frame carries.
        public var message: String {
            switch self {
            case .malformed(let why): "The token is malformed (\(why)); sign in again."
            case .badSignature: "The token's signature is not valid; sign in again."
            case .wrongAlgorithm(let alg): "Tokens must be signed with HS256, not \(alg); sign in again."
            case .expired: "The token has expired; sign in again."
            }
        }
    }

    public static func sign(_ claims: TechnicianClaims, secret: [UInt8]) -> String {
        var header = JSONWriter()
        header.beginObject(); header.field("alg", "HS256"); header.field("typ", "JWT"); header.endObject()
        var payload = JSONWriter()
        payload.beginObject()
        payload.field("sub", claims.subject)
        payload.field("tenant", claims.tenant)
        payload.field("name", claims.name)
        payload.field("role", claims.role)
        payload.key("exp"); payload.int(Int(claims.expiresAt))
        payload.endObject()
        let signingInput = Base64.encode(header.bytes, urlSafe: true, padded: false) + "." + Base64.encode(payload.bytes, urlSafe: true, padded: false)
        let mac = Crypto.hmacSHA256(key: secret, message: Array(signingInput.utf8))
        return signingInput + "." + Base64.encode(mac, urlSafe: true, padded: false)
    }

    /// Verifies signature, algorithm and expiry (`nowSeconds` is passed in so
    /// this stays pure). Whether the technician exists is the caller's check.
    public static func verify(_ token: String, secret: [UInt8], nowSeconds: Int64) throws(Failure) -> TechnicianClaims {
        // Tokens are a few hundred bytes; refuse absurd ones before any work.
        guard token.utf8.count <= 8192 else { throw .malformed("longer than 8192 bytes") }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw .malformed("expected three dot-separated parts") }
        guard let headerBytes = Base64.decode(parts[0]), let payloadBytes = Base64.decode(parts[1]),
              let signature = Base64.decode(parts[2]) else { throw .malformed("not base64url") }
        guard let header = try? JSONParser.parse(headerBytes), header.objectValue != nil else { throw .malformed("header is not JSON") }
        guard let alg = header["alg"]?.stringValue else { throw .malformed("no alg in header") }
        guard alg == "HS256" else { throw .wrongAlgorithm(alg) }
        let signingInput = Array(token.utf8.prefix(parts[0].utf8.count + 1 + parts[1].utf8.count))
        let expected = Crypto.hmacSHA256(key: secret, message: signingInput)
        guard Crypto.constantTimeEquals(expected, signature) else { throw .badSignature }
        guard let payload = try? JSONParser.parse(payloadBytes), payload.objectValue != nil else { throw .malformed("payload is not JSON") }
        guard let sub = payload["sub"]?.stringValue, !sub.isEmpty else { throw .malformed("no sub claim") }
        guard let tenant = payload["tenant"]?.stringValue, !tenant.isEmpty else { throw .malformed("no tenant claim") }
        guard let exp = payload["exp"]?.intValue else { throw .malformed("no exp claim") }
        guard Int64(exp) > nowSeconds else { throw .expired }
        return TechnicianClaims(subject: sub, tenant: tenant, name: payload["name"]?.stringValue ?? sub,
                                role: payload["role"]?.stringValue ?? "technician", expiresAt: Int64(exp))
    }
}
