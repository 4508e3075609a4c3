// A part's base64 transfer decoding (lenient path for stray bytes after the
// padding included), reached as the server reaches it: the input is the body
// of an attachment part with Content-Transfer-Encoding: base64.
import PeekMail

private let header = Array((
    "From: ana@client.example\r\nSubject: log\r\nMIME-Version: 1.0\r\n"
    + "Content-Type: application/octet-stream; name=\"log.bin\"\r\n"
    + "Content-Disposition: attachment; filename=\"log.bin\"\r\n"
    + "Content-Transfer-Encoding: base64\r\n\r\n").utf8)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    let body = UnsafeRawBufferPointer(start: data, count: size)
    guard let mail = try? InboundMailParser().parse(header + body) else { return 0 }
    let decoded = mail.attachments.reduce(0) { $0 + $1.bytes.count }
    require(decoded <= size * 3 / 4 + 3, "decoded \(decoded) bytes from \(size)")
    return 0
}
