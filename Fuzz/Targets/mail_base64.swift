// A MIME part's base64 transfer decoding, including the lenient path for
// stray bytes after the padding.
@testable import PeekMail

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    let decoded = MIMEWalker.transferDecoded(ArraySlice(bytes), encoding: "base64")
    require(decoded.count <= size * 3 / 4 + 3, "decoded more than the text holds")
    return 0
}
