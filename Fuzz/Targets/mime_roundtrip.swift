// What peekd sends, it can read: a reply built by MIMEMessageBuilder from
// input-chosen subject, body, attachment and body encoding, parsed back by
// InboundMailParser, gives the same subject, body text and attachment bytes.
// Input: flags byte, subject length, subject, body length (2 bytes), body,
// then the attachment's bytes. Text is compared the way the parser
// normalises it: line ends to "\n", trailing line ends and spaces dropped.
@testable import PeekMail

private func normalised(_ text: String) -> String {
    var lines = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" })
        .map { String($0.reversed().drop(while: { $0 == " " || $0 == "\t" }).reversed()) }
    while lines.last?.isEmpty == true { lines.removeLast() }
    return lines.joined(separator: "\n")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let flags = input.byte()
    // A subject is one line of text: the builder folds it, control characters aside.
    let subject = String(decoding: input.take(Int(input.byte())), as: UTF8.self)
        .filter { !$0.isNewline && !($0.unicodeScalars.first?.properties.generalCategory == .control) }
        .trimmingSpaces()
    let body = String(decoding: input.take(input.uint16()), as: UTF8.self)
        .filter { !($0.unicodeScalars.first.map { $0.value < 0x20 && $0 != "\n" && $0 != "\t" } ?? false) }
    let attachmentBytes = input.rest()
    let attachments = flags & 1 == 0 ? [] : [MailAttachment(filename: "report.bin", contentType: "application/octet-stream", bytes: attachmentBytes)]
    let builder = MIMEMessageBuilder(
        from: MailAddress(name: "Sam Tech", address: "sam@peek.example.com"),
        to: MailAddress(name: "Ana Lopez", address: "ana@client.example"),
        subject: subject, bodyText: body, messageID: "r1.1042@peek.example.com",
        inReplyTo: "<CAF123@mail.gmail.com>", references: ["<orig@client.example>"], date: 1_795_944_600,
        attachments: attachments, boundary: "peek-b1-\(flags)", bodyEncoding: flags & 2 == 0 ? .quotedPrintable : .base64)
    let message: [UInt8]
    do { message = try builder.build() } catch { return 0 }  // refused input is the builder's own, tested elsewhere
    let parsed: InboundMail
    do { parsed = try InboundMailParser().parse(message) } catch {
        fatalError("our own message does not parse (\(error)): \(describe(message))")
    }
    require(parsed.subject == subject, "subject \(subject.debugDescription) came back as \(parsed.subject.debugDescription)")
    require(normalised(parsed.fullBodyText) == normalised(body),
            "body \(body.debugDescription) came back as \(parsed.fullBodyText.debugDescription)")
    require(parsed.attachments.map(\.bytes) == attachments.map(\.bytes), "attachment bytes changed")
    require(parsed.from.address == "sam@peek.example.com" && parsed.messageID == "r1.1042@peek.example.com", "addressing changed")
    return 0
}
