// format=flowed (RFC 3676) text as a text/plain part gives it; the first
// byte picks delsp=yes.
@testable import PeekMail

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let deleteSpace = input.byte() & 1 == 1
    let text = String(decoding: input.rest(), as: UTF8.self)
    let lines = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" })
    _ = try? FlowedText.unflow(lines, deleteSpace: deleteSpace)  // throws once the parser has bounds
    return 0
}
