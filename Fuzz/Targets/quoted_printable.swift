// Quoted-printable bodies: decode any bytes, and encode then decode giving
// the bytes back.
@testable import PeekMail

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: data, count: size))
    let decoded = QuotedPrintable.decode(bytes)
    require(decoded.count <= bytes.count, "decoding grew \(describe(bytes))")
    let encoded = QuotedPrintable.encode(bytes)
    require(QuotedPrintable.decode(encoded) == bytes, "encode then decode changed \(describe(bytes))")
    return 0
}
