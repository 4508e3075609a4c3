// WebSocketStateMachine in the server role (masked client frames), without
// compression: the payload fed whole and cut at split points chosen by the
// input (FuzzInput.splitPayload) must give the same events.
import PeekWebSocket

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let pieces = input.splitPayload()
    let configuration = WebSocketStateMachine.Configuration(maxMessageBytes: 1024)
    let whole = WebSocketFuzzing.events(pieces.flatMap { $0 }.chunkedAsOne, configuration, codec: nil)
    let split = WebSocketFuzzing.events(pieces, configuration, codec: nil)
    require(whole == split, "split at \(pieces.map(\.count)) changed the events: \(whole) vs \(split)")
    return 0
}
