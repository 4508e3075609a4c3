import Foundation
import PeekCore
import PeekCrypto
import PeekMail
import PeekEngine

/// How inbound mail is parsed. `standard` is PeekMail's parser; tests put a
/// stand-in here to make a parse as slow or as hostile as they need.
/// `isOverBudget` turns true once the message's wall-clock budget
/// (`ServerConfig.inboundMailBudgetMillis`) is spent: a parser that checks
/// it stops there, and whatever it returns after that point is refused.
public struct InboundMailParsing: Sendable {
    public var parse: @Sendable (_ message: [UInt8], _ isOverBudget: @escaping @Sendable () -> Bool) throws -> InboundMail

    public init(parse: @escaping @Sendable (_ message: [UInt8], _ isOverBudget: @escaping @Sendable () -> Bool) throws -> InboundMail) {
        self.parse = parse
    }

    public static let standard = InboundMailParsing { message, isOverBudget in
        try InboundMailParser(limits: .standard, isOverBudget: isOverBudget).parse(message)
    }
}

/// The work a mail worker does for `POST .../inbound-email`: everything
/// between the request body and the engine's job that needs no store.
enum MailIntake {
    /// Recipients looked at for the global route's tenant check: a gateway
    /// puts a handful there; a list of thousands buys nothing but work.
    static let maxRecipients = 100

    /// Parses `message` within the budget and writes its attachments.
    /// Failures come back as the answer to send (422 with the reason, or
    /// 500 when a file could not be written); nothing is stored then.
    static func prepare(_ message: [UInt8], tenant: String?, config: ServerConfig, claims: AttachmentClaims,
                        logger: ServerLog) -> Result<InboundDelivery, APIResponse> {
        let started = monotonicMillis()
        let budget = Int64(config.inboundMailBudgetMillis)
        let isOverBudget: @Sendable () -> Bool = { monotonicMillis() - started > budget }
        let overBudget = PeekError(.invalid, "The message took longer than \(budget) ms to read, the most this server spends on one message; nothing was stored. Send it as plain text or with fewer parts.")
        let mail: InboundMail
        do {
            mail = try config.inboundMailParsing.parse(message, isOverBudget)
        } catch {
            if isOverBudget() { return .failure(refusal(overBudget, elapsed: monotonicMillis() - started, logger: logger)) }
            // Over a bound on bytes is `too_large`, anything else `invalid`;
            // both answer 422 (protocol.md 8.3).
            let mailError = error as? InboundMailError
            let code: ErrorCode = mailError?.isTooLarge == true ? .tooLarge : .invalid
            return .failure(.unprocessable(PeekError(code, "The message could not be parsed: \(mailError?.message ?? "\(error)")")))
        }
        // A parser that ignores the budget may still finish late: what it
        // found is refused all the same, so the budget means the same for
        // every message.
        if isOverBudget() { return .failure(refusal(overBudget, elapsed: monotonicMillis() - started, logger: logger)) }
        let body = mail.bodyText.isEmpty ? mail.fullBodyText : mail.bodyText
        guard !body.isEmpty else { return .failure(.unprocessable(PeekError(.invalid, "The message has no text body."))) }

        var files: [StoredFile] = []
        for a in mail.attachments where !a.isInline && a.bytes.count <= config.maxAttachmentBytes
            && AttachmentFiles.isAllowed(contentType: a.contentType.lowercased()) {
            switch AttachmentFiles.store(a.bytes, filename: a.filename, contentType: a.contentType, in: config.attachmentsDirectory,
                                         claims: claims, logger: logger) {
            case .success(let file): files.append(file)
            case .failure(let error):
                // The files written so far stay (a row may name them; only
                // the engine could tell): a failing disk is rare, a refusal
                // by the engine is what `AttachmentClaims` cleans up after.
                for file in files { _ = claims.release(file.sha256, unreferenced: false) }
                return .failure(.error(error))
            }
        }
        var recipients: [String] = []
        var seen = Set<String>()
        let addresses = (mail.to + mail.cc).map(\.address) + MailEnvelopeHeaders.addresses(in: message)
        for address in addresses where recipients.count < maxRecipients {
            let lower = address.lowercased()
            if seen.insert(lower).inserted { recipients.append(lower) }
        }
        return .success(InboundDelivery(
            tenant: tenant, from: mail.from, messageID: mail.messageID.flatMap(MailThreading.bareMessageID),
            ticketNumber: mail.ticketNumber, referencedMessageIDs: mail.referencedMessageIDs,
            recipients: recipients, body: body, files: files))
    }

    private static func refusal(_ error: PeekError, elapsed: Int64, logger: ServerLog) -> APIResponse {
        logger.log(.warn, "inbound_mail_refused", "inbound mail refused: over its budget after \(elapsed) ms")
        return .unprocessable(error)
    }
}

/// `Delivered-To` and `X-Original-To`: the addresses a gateway delivered
/// the message to, which `To` and `Cc` need not name (a Bcc, a forward).
/// Read here because the parsed mail does not carry them; each field holds
/// one address (RFC 9228), so no address-list parsing is needed.
enum MailEnvelopeHeaders {
    static let names = ["delivered-to", "x-original-to"]
    /// The header section this reads at most; the parser refuses longer ones.
    static let maxHeaderBytes = 256 * 1024

    /// One pass over the header section (up to the first empty line or
    /// `maxHeaderBytes`), linear in its length. Folded fields are not
    /// unfolded: these fields carry one short address, and a folded one is
    /// skipped rather than guessed at.
    static func addresses(in message: [UInt8]) -> [String] {
        var found: [String] = []
        var start = 0
        let end = min(message.count, maxHeaderBytes)
        while start < end {
            var lineEnd = start
            while lineEnd < end && message[lineEnd] != 10 { lineEnd += 1 }
            var contentEnd = lineEnd
            if contentEnd > start && message[contentEnd - 1] == 13 { contentEnd -= 1 }
            if contentEnd == start { break }  // the empty line: the body starts
            if let colon = message[start..<contentEnd].firstIndex(of: UInt8(ascii: ":")) {
                let name = String(decoding: message[start..<colon], as: UTF8.self).lowercased()
                if names.contains(name), let address = bareAddress(message[(colon + 1)..<contentEnd]) { found.append(address) }
            }
            start = lineEnd + 1
        }
        return found
    }

    /// `<a@b>` or `a@b`, trimmed; nil unless it has an `@` and no spaces.
    private static func bareAddress(_ bytes: ArraySlice<UInt8>) -> String? {
        var text = Substring(String(decoding: bytes, as: UTF8.self)).trimmingCharacters(in: .whitespaces)[...]
        if text.hasPrefix("<") && text.hasSuffix(">") && text.count >= 2 { text = text.dropFirst().dropLast() }
        guard text.contains("@"), !text.contains(where: { $0 == " " || $0 == "\t" || $0 == "<" || $0 == ">" }) else { return nil }
        return String(text)
    }
}

extension APIResponse {
    /// 422 with the error's code (the inbound-mail contract's refusal).
    static func unprocessable(_ e: PeekError) -> APIResponse { APIResponse(status: 422, body: Wire.errorBody(e)) }
}
