import PeekCore
import PeekCrypto

/// Short-lived, ticket-scoped download links for attachments (protocol.md
/// §8.4 "Signed links"). A link names the attachment, the ticket it was
/// issued for and when it expires, and carries an HMAC-SHA256 over those
/// and the ticket's tenant under a key derived from `--jwt-secret`. So a
/// browser can follow a plain link (an `<a href>`, an `<img src>`) without
/// the sign-in token in its query string, where history, proxies and
/// server logs would keep it for as long as the token lives.
struct AttachmentLinks {
    private let key: [UInt8]

    init(secret: String) {
        // A key of its own: a link's MAC can never be replayed as a JWT
        // signature, nor the other way round.
        key = Crypto.hmacSHA256(key: Array(secret.utf8), message: Array("peek attachment links v1".utf8))
    }

    /// The signature over one link's fields.
    func signature(attachment: String, ticket: String, tenant: String, expires: Int64) -> String {
        let message = "\(attachment)\n\(ticket)\n\(tenant)\n\(expires)"
        return Base64.encode(Crypto.hmacSHA256(key: key, message: Array(message.utf8)), urlSafe: true, padded: false)
    }

    /// The path and query of a link; `expires` in unix seconds.
    func url(attachment: String, ticket: String, tenant: String, expires: Int64) -> String {
        let sig = signature(attachment: attachment, ticket: ticket, tenant: tenant, expires: expires)
        return "/v1/files/\(attachment)?ticket=\(ticket)&expires=\(expires)&sig=\(sig)"
    }

    /// The fields of a link as its query carries them; nil when one is
    /// missing or malformed (a 400, before any lookup).
    struct Query {
        var ticket: String
        var expires: Int64
        var sig: String

        init?(_ query: [(String, String)]) {
            func one(_ name: String) -> String? {
                let values = query.filter { $0.0 == name }.map(\.1)
                return values.count == 1 ? values[0] : nil
            }
            guard let ticket = one("ticket"), Identifier.isValid(ticket),
                  let raw = one("expires"), let expires = Int64(raw), expires > 0,
                  let sig = one("sig"), !sig.isEmpty, sig.utf8.count <= 64 else { return nil }
            self.ticket = ticket; self.expires = expires; self.sig = sig
        }
    }

    /// Whether `q` is a link this server signed for that attachment on
    /// that ticket of that tenant (compared in constant time). Expiry is
    /// the caller's to check, after this: a changed `expires` fails here.
    func verify(_ q: Query, attachment: String, tenant: String) -> Bool {
        let expected = signature(attachment: attachment, ticket: q.ticket, tenant: tenant, expires: q.expires)
        return Crypto.constantTimeEquals(Array(expected.utf8), Array(q.sig.utf8))
    }
}
