// InboundMailParser end to end: what POST /v1/inbound-email hands it, any
// bytes. Linear work and bounded memory are checked by -timeout and
// -rss_limit_mb (scripts/fuzz.sh).
@testable import PeekMail

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    _ = try? InboundMailParser().parse(bytes)
    return 0
}
