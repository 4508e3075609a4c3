// Base64.decode on any text (JWT parts, MIME bodies, encoded words), and
// encode then decode giving the bytes back in all four variants.
import PeekCrypto

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: data, count: size))
    if let decoded = Base64.decode(String(decoding: bytes, as: UTF8.self)) {
        require(decoded.count <= bytes.count * 3 / 4 + 3, "decoded more bytes than the text can hold")
    }
    for urlSafe in [false, true] {
        for padded in [false, true] {
            let encoded = Base64.encode(bytes, urlSafe: urlSafe, padded: padded)
            require(Base64.decode(encoded) == bytes,
                    "round trip failed (urlSafe \(urlSafe), padded \(padded)) for \(describe(bytes))")
        }
    }
    return 0
}
