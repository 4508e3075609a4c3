// The HTML-to-text conversion of HTML-only mail.
@testable import PeekMail

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    let html = String(decoding: UnsafeRawBufferPointer(start: data, count: size), as: UTF8.self)
    _ = HTMLText.plainText(fromHTML: html)
    return 0
}
