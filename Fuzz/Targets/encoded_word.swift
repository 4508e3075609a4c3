// RFC 2047 encoded words: decode any header text, and encode then decode
// giving the text back.
@testable import PeekMail

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeRawBufferPointer(start: data, count: size), as: UTF8.self)
    _ = EncodedWord.decode(text)
    let words = EncodedWord.encode(text)
    let decoded = EncodedWord.decode(words.joined(separator: " "))
    require(decoded == text, "encode then decode changed \(text.debugDescription) to \(decoded.debugDescription) via \(words)")
    return 0
}
