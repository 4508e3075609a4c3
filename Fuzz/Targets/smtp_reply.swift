// SMTPReplyParser on what a mail server sends: the payload fed whole and cut
// at split points chosen by the input must give the same replies, the same
// error, and (without an error) the same view of unconsumed input.
import PeekMail

private struct Outcome: Equatable {
    var replies: [SMTPReply] = []
    var error: SMTPReplyError?
    var unconsumed = false
}

private func parse(_ pieces: [[UInt8]]) -> Outcome {
    var parser = SMTPReplyParser(limits: .init(maxLineBytes: 512, maxLines: 16))
    var outcome = Outcome()
    do {
        // next(), not replies(after:), which drops the replies before an error in the same read.
        for piece in pieces {
            parser.append(piece)
            while let reply = try parser.next() { outcome.replies.append(reply) }
        }
    } catch {
        outcome.error = error
    }
    // After an error the stream is dropped, and what was unconsumed no longer matters.
    if outcome.error == nil { outcome.unconsumed = parser.hasUnconsumedInput }
    return outcome
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let pieces = input.splitPayload()
    let whole = parse([pieces.flatMap { $0 }])
    let split = parse(pieces)
    require(whole == split, "split at \(pieces.map(\.count)) changed the outcome: \(whole) vs \(split)")
    for reply in whole.replies { require((200...599).contains(reply.code) || (100...199).contains(reply.code), "reply code \(reply.code)") }
    return 0
}
