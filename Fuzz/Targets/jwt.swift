// JWT.verify with the server's secret. First byte: 0-127 verifies the rest as
// a token as it came; 128-255 signs it first (header and payload JSON cut at
// the second byte), so inputs get past the signature check into the claims;
// and every input's strings also go through sign then verify.
import PeekCore
import PeekCrypto

private let secret = Array("fuzz-secret-0123456789abcdef".utf8)
private let now: Int64 = 1_800_000_000

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let mode = input.byte()
    let token: String
    if mode < 128 {
        token = String(decoding: input.rest(), as: UTF8.self)
    } else {
        let cut = Int(input.byte())
        let header = input.take(cut)
        let payload = input.rest()
        let signingInput = Base64.encode(header, urlSafe: true, padded: false) + "." + Base64.encode(payload, urlSafe: true, padded: false)
        let mac = Crypto.hmacSHA256(key: secret, message: Array(signingInput.utf8))
        token = signingInput + "." + Base64.encode(mac, urlSafe: true, padded: false)
    }
    if let claims = try? JWT.verify(token, secret: secret, nowSeconds: now) {
        require(!claims.subject.isEmpty && !claims.tenant.isEmpty && claims.expiresAt > now, "accepted claims that fail the rules")
    }

    // Sign then verify: any non-empty subject and tenant come back as signed.
    let text = String(decoding: input.bytes, as: UTF8.self)
    let fields = text.split(separator: "|", maxSplits: 3, omittingEmptySubsequences: false).map(String.init)
    if fields.count == 4, !fields[0].isEmpty, !fields[1].isEmpty {
        let claims = TechnicianClaims(subject: fields[0], tenant: fields[1], name: fields[2], role: fields[3], expiresAt: now + 60)
        let signed = JWT.sign(claims, secret: secret)
        if signed.utf8.count <= 8192 {
            do {
                let verified = try JWT.verify(signed, secret: secret, nowSeconds: now)
                require(verified == claims, "sign then verify changed the claims: \(claims) -> \(verified)")
            } catch {
                fatalError("a token we signed does not verify (\(error)): \(signed)")
            }
        }
    }
    return 0
}
