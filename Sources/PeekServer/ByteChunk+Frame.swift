import PeekCore
import PeekEngine
import PeekNet
import PeekWebSocket

extension ByteChunk {
    /// A server text frame (header then payload) built straight into one
    /// shared chunk: one allocation and one copy per delta, whoever
    /// receives it. `compressed` marks a permessage-deflate payload (RSV1).
    static func textFrame(_ payload: [UInt8], compressed: Bool = false) -> ByteChunk {
        var header: [UInt8] = []
        header.reserveCapacity(10)
        FrameEncoder.encodeHeader(opcode: .text, payloadLength: payload.count, rsv1: compressed, into: &header)
        return ByteChunk.make(count: header.count + payload.count) { out in
            header.withUnsafeBytes { out.copyMemory(from: $0) }
            payload.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: out[header.count...]).copyMemory(from: $0) }
        }
    }
}
