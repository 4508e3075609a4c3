// ClientFrame.decode: every frame a technician's browser sends on /v1/ws.
// Must never trap; a refusal always carries a sentence.
import PeekCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: data, count: size))
    switch ClientFrame.decode(bytes) {
    case .success(let frame): _ = frame.id
    case .failure(let refusal): require(!refusal.error.message.isEmpty, "refusal without a message")
    }
    return 0
}
