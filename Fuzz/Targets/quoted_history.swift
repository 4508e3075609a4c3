// Cutting quoted history below a reply: never longer than the text.
@testable import PeekMail

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeRawBufferPointer(start: data, count: size), as: UTF8.self)
    let kept = QuotedHistory.strip(text)
    require(kept.utf8.count <= text.utf8.count, "stripping grew the text")
    return 0
}
