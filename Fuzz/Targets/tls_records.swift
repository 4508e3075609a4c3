// The TLS 1.3 record read path after the hand-off (TLSSession.readPlaintext
// over TLSRecordLayer.open), under fixed test keys so that inputs get past
// the AEAD check. The input is a script of operations the client side
// performs, each one byte then its operands:
//   0 seal a record: content type, padding (0-255), length (2 bytes, at most
//     2^14), content; sealed by a client-side layer holding the same keys
//   1 raw bytes: length (2 bytes), bytes as they are (headers, forged records)
//   2 the client moves to its next write key (after sealing a KeyUpdate)
//   3 deliver: feed everything written so far, then readPlaintext
// The first byte picks the suite. When the script only sealed application
// data, the plaintext read must be exactly the content sealed.
@testable import PeekTLS

private let clientSecret = [UInt8](repeating: 0x11, count: 48)
private let serverSecret = [UInt8](repeating: 0x22, count: 48)

private func layer(_ suite: TLSRecordLayer.Suite, read: [UInt8], write: [UInt8]) -> TLSRecordLayer {
    let n = suite.secretBytes
    let made = read.prefix(n).withUnsafeBytes { r in write.prefix(n).withUnsafeBytes { w in
        TLSRecordLayer(suite: suite, readSecret: r, writeSecret: w)
    } }
    guard let made else { fatalError("record layer with test keys failed") }
    return made
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let suite = TLSRecordLayer.Suite.allCases[Int(input.byte()) % TLSRecordLayer.Suite.allCases.count]
    let session = TLSSession(handedOff: layer(suite, read: clientSecret, write: serverSecret))
    session.recordsPerKey = 4  // the server's own KeyUpdate requests, within a short input
    let client = layer(suite, read: serverSecret, write: clientSecret)

    var wire: [UInt8] = []
    var fed = 0
    var plaintext: [UInt8] = []
    var expected: [UInt8] = []
    var onlyApplicationData = true
    var ended = false
    var drained: [UInt8] = []

    func deliver() {
        guard !ended else { return }
        let fresh = wire[fed...]
        fed = wire.count
        Array(fresh).withUnsafeBytes { session.feedNetwork($0) }
        let before = plaintext.count
        let result = session.readPlaintext(into: &plaintext)
        require(plaintext.count <= fed, "more plaintext than ciphertext")
        switch result {
        case .bytes(let count): require(count == plaintext.count - before, "reported \(count) bytes, appended \(plaintext.count - before)")
        case .wantMore: require(plaintext.count == before, "bytes appended with wantMore")
        case .closed, .failed: ended = true
        }
        drained.removeAll(keepingCapacity: true)
        session.drainNetworkOutput(into: &drained)
    }

    while !input.isEmpty && !ended {
        switch input.byte() % 4 {
        case 0:
            let type = input.byte()
            let padding = Int(input.byte())
            let content = input.take(min(input.uint16(), TLSRecordLayer.maxContentBytes))
            if type != 23 { onlyApplicationData = false }
            if type == 23 { expected += content }
            let fits = content.count + 1 + padding + TLSRecordLayer.tagBytes <= TLSRecordLayer.maxCiphertextBytes
            guard fits else { continue }
            require(content.withUnsafeBytes { client.seal(contentType: type, $0, padding: padding, appendingTo: &wire) },
                    "sealing failed")
        case 1:
            onlyApplicationData = false
            wire += input.take(input.uint16())
        case 2:
            onlyApplicationData = false
            require(client.updateTrafficSecret(.write), "key update failed")
        default:
            deliver()
        }
    }
    deliver()
    if onlyApplicationData {
        require(!ended, "application data alone ended the session")
        require(plaintext == expected, "read \(plaintext.count) bytes, sealed \(expected.count)")
    }
    return 0
}
