// The driver the two WebSocket targets share.
import PeekWebSocket

enum WebSocketFuzzing {
    /// Every event a fresh server-role machine gives for `pieces`, fed one
    /// read at a time as the loop would.
    static func events(_ pieces: [[UInt8]], _ configuration: WebSocketStateMachine.Configuration,
                       codec: PerMessageDeflateCodec?) -> [WebSocketEvent] {
        var machine = WebSocketStateMachine(configuration: configuration)
        var events: [WebSocketEvent] = []
        for piece in pieces where !machine.isFinished {
            piece.withUnsafeBytes { raw in
                var rest = raw
                while let event = machine.next(&rest, deflate: codec) { events.append(event) }
            }
        }
        return events
    }
}

extension Array where Element == UInt8 {
    /// The whole array as one read.
    var chunkedAsOne: [[UInt8]] { [self] }
}
