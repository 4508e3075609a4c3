// WebSocketStateMachine in the server role with permessage-deflate
// negotiated: split invariance as in websocket.swift (RSV1 frames are
// inflated, the inflated size bounded), and the codec's round trip: the
// payload compressed at the negotiated window and inflated again is itself.
import PeekWebSocket

// One per process, like one per loop in the server; libFuzzer runs inputs on one thread.
nonisolated(unsafe) private let codec = PerMessageDeflateCodec()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let windowBits = 8 + Int(input.byte() % 8)  // 8...15, as a client may offer
    let parameters = PerMessageDeflateParameters(serverMaxWindowBits: UInt8(windowBits), clientMaxWindowBits: UInt8(windowBits))
    let pieces = input.splitPayload()
    let payload = pieces.flatMap { $0 }
    let configuration = WebSocketStateMachine.Configuration(maxMessageBytes: 1024, deflate: parameters)
    let whole = WebSocketFuzzing.events(payload.chunkedAsOne, configuration, codec: codec)
    let split = WebSocketFuzzing.events(pieces, configuration, codec: codec)
    require(whole == split, "split at \(pieces.map(\.count)) changed the events: \(whole) vs \(split)")

    let compressed = codec.compress(payload, windowBits: parameters.deflateWindowBits)
    do {
        let inflated = try codec.decompress(compressed, maxBytes: payload.count)
        require(inflated == payload, "deflate then inflate changed \(describe(payload))")
    } catch {
        fatalError("our own deflate output does not inflate (\(error)): \(describe(payload))")
    }
    return 0
}
