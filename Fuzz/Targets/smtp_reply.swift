// SMTPReplyParser on what a mail server sends: the payload fed whole and cut
// at split points chosen by the input must give the same replies, the same
// error, and the same view of unconsumed input.
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
        for piece in pieces { outcome.replies += try parser.replies(after: piece) }
    } catch {
        outcome.error = error
    }
    outcome.unconsumed = parser.hasUnconsumedInput
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
