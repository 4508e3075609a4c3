// The mailbox-list parser of From, To, Cc and Reply-To.
@testable import PeekMail

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeRawBufferPointer(start: data, count: size), as: UTF8.self)
    for mailbox in (try? MailAddressParser.parseList(text)) ?? [] {  // throws once the parser has bounds
        require(!mailbox.address.isEmpty, "an empty address in \(text.debugDescription)")
    }
    return 0
}
