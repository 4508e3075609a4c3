import PeekCore

/// Issuing and following signed attachment links (protocol.md §8.4).
extension Engine {
    /// `POST /v1/tickets/{id}/attachments/{attachment}/link` issues a link;
    /// `GET /v1/files/{attachment}?ticket=&expires=&sig=` follows one.
    func attachmentLink(_ r: APIRequest, tech: Technician?) throws -> APIResponse {
        let links = AttachmentLinks(secret: config.jwtSecret)
        let nowSeconds = now / 1000
        if r.route == .attachmentLink {
            guard let ticketID = r.params["id"], let t = try store.ticket(ticketID), tech == nil || tech?.tenant == t.tenant else {
                throw PeekError(.notFound, "No ticket \(r.params["id"] ?? "") exists.")
            }
            guard let id = r.params["attachment"], let a = try store.attachment(id), a.ticket == t.id else {
                throw PeekError(.notFound, "No attachment \(r.params["attachment"] ?? "") exists on \(t.id).")
            }
            let expires = nowSeconds + Int64(config.attachmentLinkSeconds)
            var w = JSONWriter()
            w.beginObject()
            w.field("url", links.url(attachment: a.ref.id, ticket: t.id, tenant: t.tenant, expires: expires))
            w.key("expires_at"); Wire.time(expires * 1000, into: &w)
            w.endObject()
            return .json(200, w.bytes)
        }
        guard let q = AttachmentLinks.Query(r.query) else {
            throw PeekError(.invalid, "This download link is incomplete: it needs ticket, expires and sig. Open the attachment from its ticket again.")
        }
        // Whatever is wrong with a signed link, the same answer whether or
        // not the attachment exists, so a link cannot probe for ids.
        let refused = PeekError(.forbidden, "This download link is not valid: it was changed, or issued for another ticket or attachment. Open the attachment from its ticket again.")
        guard let id = r.params["attachment"], let a = try store.attachment(id), a.ticket == q.ticket,
              let t = try store.ticket(a.ticket), a.sha256.allSatisfy(\.isHexDigit),
              links.verify(q, attachment: a.ref.id, tenant: t.tenant) else { throw refused }
        guard q.expires > nowSeconds else {
            throw PeekError(.forbidden, "This download link expired at \(Timestamp.format(millis: q.expires * 1000)); links last \(config.attachmentLinkSeconds) seconds. Open the attachment from its ticket again.")
        }
        return APIResponse(status: 200, body: [], contentType: a.ref.contentType,
                           headers: [("Content-Disposition", "attachment; filename=\"\(a.ref.filename.filter { $0 != "\"" && $0.isASCII })\""),
                                     ("X-Content-Type-Options", "nosniff"),
                                     ("Cache-Control", "private, max-age=\(max(0, q.expires - nowSeconds))")],
                           attachmentFile: a.sha256)
    }
}
