// HTTPRequestParser fed the payload whole and cut at split points chosen by
// the input's first bytes (FuzzInput.splitPayload): both must produce the
// same heads, body bytes, ends and error. One byte picks the default limits
// or small ones, so that every limit is reachable in short inputs.
import PeekHTTP

private enum Event: Equatable {
    case head(HTTPRequestHead)
    case body([UInt8])
    case end
    case error(HTTPParseError)
}

private func parse(_ pieces: [[UInt8]], limits: HTTPRequestParser.Limits) -> [Event] {
    var parser = HTTPRequestParser(limits: limits)
    var events: [Event] = []
    for piece in pieces {
        parser.append(piece)
        do {
            drain: while true {
                switch try parser.next() {
                case .needMoreData: break drain
                case .head(let head): events.append(.head(head))
                case .body(let more):
                    // Piece sizes follow the splits; only their concatenation counts.
                    if case .body(let earlier)? = events.last { events[events.count - 1] = .body(earlier + more) } else { events.append(.body(more)) }
                case .end: events.append(.end)
                }
            }
        } catch {
            events.append(.error(error))
            return events
        }
    }
    return events
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let small = input.byte() & 1 == 1
    let limits = small
        ? HTTPRequestParser.Limits(maxRequestLineBytes: 64, maxHeaderBytes: 256, maxHeaderCount: 8,
                                   maxBodyBytes: 512, maxChunkLineBytes: 32, requireHost: true)
        : HTTPRequestParser.Limits()
    let pieces = input.splitPayload()
    let whole = parse([pieces.flatMap { $0 }], limits: limits)
    let split = parse(pieces, limits: limits)
    require(whole == split, "split at \(pieces.map(\.count)) changed the events: \(whole) vs \(split)")
    return 0
}
