// HTTPResponseParser on what a tenant's assistant or summariser answers
// (peekd's outbound HTTP), then the body through AssistantStreamDecoder as
// the relay reads it: fed whole and cut at split points chosen by the
// input, both must give the same head, body, end and error, and the same
// assistant pieces. One byte picks small limits (every limit reachable in
// short inputs) and whether the peer closes after the last byte.
import PeekCore
import PeekHTTP

private struct Outcome: Equatable {
    var heads: [HTTPResponseHead] = []
    var body: [UInt8] = []
    var ended = false
    var error: HTTPResponseParser.Error?
    var pieces: [AssistantStreamDecoder.Piece] = []
    var streamFailure: AssistantStreamDecoder.Failure?
}

private func parse(_ chunks: [[UInt8]], limits: HTTPResponseParser.Limits, close: Bool, lineBytes: Int) -> Outcome {
    var parser = HTTPResponseParser(limits: limits)
    var decoder = AssistantStreamDecoder(maxLineBytes: lineBytes)
    var outcome = Outcome()
    func decode(_ bytes: [UInt8]) {
        guard outcome.streamFailure == nil else { return }
        do { try decoder.append(bytes, into: &outcome.pieces) } catch { outcome.streamFailure = error }
    }
    do {
        for (i, chunk) in chunks.enumerated() {
            parser.append(chunk)
            if close && i == chunks.count - 1 { parser.finish() }
            while let event = try parser.next() {
                switch event {
                case .head(let h): outcome.heads.append(h)
                case .body(let b):
                    require(!b.isEmpty, "an empty body event")
                    outcome.body += b
                    decode(b)
                case .end:
                    require(!outcome.ended, "two ends")
                    outcome.ended = true
                }
            }
        }
    } catch {
        outcome.error = error
    }
    if outcome.ended && outcome.streamFailure == nil {
        do { try decoder.finish(into: &outcome.pieces) } catch { outcome.streamFailure = error }
    }
    return outcome
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let mode = input.byte()
    let small = mode & 1 == 1
    let close = mode & 2 == 2
    let limits = small ? HTTPResponseParser.Limits(maxHeadBytes: 128, maxHeaderCount: 4, maxBodyBytes: 256) : HTTPResponseParser.Limits()
    let lineBytes = small ? 32 : 64 * 1024
    let chunks = input.splitPayload()
    let whole = parse([chunks.flatMap { $0 }], limits: limits, close: close, lineBytes: lineBytes)
    let split = parse(chunks, limits: limits, close: close, lineBytes: lineBytes)
    require(whole == split, "split at \(chunks.map(\.count)) changed the outcome: \(whole) vs \(split)")
    require(whole.heads.count <= 1, "more than one final head")
    require(whole.body.count <= limits.maxBodyBytes, "a body over the limit was handed out")
    if let head = whole.heads.first { require((200...599).contains(head.status), "status \(head.status)") }
    return 0
}
