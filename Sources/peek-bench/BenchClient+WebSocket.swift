#if canImport(Glibc)
import Glibc
#endif
import PeekCrypto

/// RFC 6455 client side: the upgrade request and its check, masked frames
/// out, unmasked frames in. No extensions are offered, so the server never
/// compresses (the generator measures the server's fan-out, not zlib).
extension BenchClient {
    static let largestFrame = 16 << 20

    func sendUpgrade(_ c: BenchConnection) {
        var raw = [UInt8](repeating: 0, count: 16)
        let a = random.next(), b = random.next()
        for i in 0..<8 { raw[i] = UInt8(truncatingIfNeeded: a >> (8 * UInt64(i))); raw[8 + i] = UInt8(truncatingIfNeeded: b >> (8 * UInt64(i))) }
        let key = Base64.encode(raw)
        c.expectedAccept = Array(Base64.encode(Crypto.sha1(Array((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").utf8))).utf8)
        let path = c.role == .agent ? "/v1/agent" : options.path
        let request = "GET \(path) HTTP/1.1\r\nHost: \(options.host):\(c.role == .agent ? agentPort : destinationPort)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: \(key)\r\nSec-WebSocket-Version: 13\r\nUser-Agent: peek-bench\r\n\r\n"
        c.state = .upgrading
        let bytes = Array(request.utf8)
        bytes.withUnsafeBytes { write(c, $0.baseAddress!, $0.count) }
    }

    /// Consumes complete frames from p[0..<n] (and the upgrade response
    /// first, if still waiting for it); returns how many bytes were used.
    /// Sets `need` when a frame is incomplete so large ones are gathered.
    func process(_ c: BenchConnection, _ p: UnsafeMutablePointer<UInt8>, _ n: Int) -> Int {
        var offset = 0
        c.need = 0
        if c.state == .upgrading {
            guard let end = Self.find(p, n, "\r\n\r\n") else {
                if n > 16384 { badUpgrade(c, p, n) }
                return 0
            }
            guard acceptsUpgrade(c, p, end) else { badUpgrade(c, p, n); return n }
            offset = end + 4
            afterUpgrade(c)
            guard c.isAlive else { return n }
        }
        while n - offset >= 2 {
            let b0 = p[offset], b1 = p[offset + 1]
            var length = Int(b1 & 0x7F)
            var header = 2
            if length == 126 {
                guard n - offset >= 4 else { break }
                length = Int(p[offset + 2]) << 8 | Int(p[offset + 3])
                header = 4
            } else if length == 127 {
                guard n - offset >= 10 else { break }
                length = 0
                for i in 0..<8 { length = length << 8 | Int(p[offset + 2 + i]) }
                header = 10
            }
            if b1 & 0x80 != 0 || length > Self.largestFrame || length < 0 {
                // A server never masks (RFC 6455 5.1); a huge frame is not ours to hold.
                stats.protocolErrors += 1
                closeConnection(c, asError: true)
                return n
            }
            if n - offset < header + length {
                c.need = header + length
                break
            }
            handleFrame(c, fin: b0 & 0x80 != 0, opcode: b0 & 0x0F, p + offset + header, length)
            guard c.isAlive else { return n }
            offset += header + length
        }
        return offset
    }

    private func acceptsUpgrade(_ c: BenchConnection, _ p: UnsafeMutablePointer<UInt8>, _ headEnd: Int) -> Bool {
        guard headEnd >= 12, memcmp(p, "HTTP/1.1 101", 12) == 0 else { return false }
        let head = String(decoding: UnsafeBufferPointer(start: p, count: headEnd), as: UTF8.self)
        for line in head.split(separator: "\r\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            if line[..<colon].lowercased() == "sec-websocket-accept" {
                let value = line[line.index(after: colon)...].trimmingCharacters(in: " \t")
                return Array(value.utf8) == c.expectedAccept
            }
        }
        return false
    }

    private func badUpgrade(_ c: BenchConnection, _ p: UnsafeMutablePointer<UInt8>, _ n: Int) {
        stats.handshakeErrors += 1
        if stats.handshakeErrors <= 3 {
            printError("peek-bench: bad upgrade response: \(String(decoding: UnsafeBufferPointer(start: p, count: min(n, 200)), as: UTF8.self))")
        }
        closeConnection(c, asError: true)
    }

    private func handleFrame(_ c: BenchConnection, fin: Bool, opcode: UInt8, _ p: UnsafeMutablePointer<UInt8>, _ n: Int) {
        switch opcode {
        case 0x9:
            stats.pings += 1
            sendFrame(c, opcode: 0xA, UnsafeRawPointer(p), n)
        case 0xA:
            break
        case 0x8:
            if c.state != .closing {
                stats.closedByServer += 1
                if stats.closedByServer <= 3 && n >= 2 {
                    let code = Int(p[0]) << 8 | Int(p[1])
                    printError("peek-bench: server closed a connection: \(code) \(String(decoding: UnsafeBufferPointer(start: p + 2, count: n - 2), as: UTF8.self))")
                }
                sendClose(c)
            }
            closeConnection(c, asError: c.state != .closing, reset: options.scenario == .connect)
        case 0x1, 0x2:
            if fin {
                handleMessage(c, UnsafePointer(p), n)
            } else {
                c.fragmentOpcode = opcode
                c.fragment = Array(UnsafeBufferPointer(start: p, count: n))
            }
        case 0x0:
            c.fragment.append(contentsOf: UnsafeBufferPointer(start: p, count: n))
            if c.fragment.count > Self.largestFrame { stats.protocolErrors += 1; closeConnection(c, asError: true); return }
            if fin {
                let message = c.fragment
                c.fragment = []
                message.withUnsafeBufferPointer { handleMessage(c, $0.baseAddress!, $0.count) }
            }
        default:
            stats.protocolErrors += 1
            closeConnection(c, asError: true)
        }
    }

    func sendClose(_ c: BenchConnection) {
        var payload: (UInt8, UInt8) = (0x03, 0xE8)   // 1000
        withUnsafeBytes(of: &payload) { sendFrame(c, opcode: 0x8, $0.baseAddress!, 2) }
    }

    /// One masked frame built in scratch and written.
    func sendFrame(_ c: BenchConnection, opcode: UInt8, _ p: UnsafeRawPointer, _ n: Int) {
        ensureScratch(n + 14)
        let length = encodeFrame(into: scratch, opcode: opcode, p, n)
        write(c, scratch, length)
    }

    func sendText(_ c: BenchConnection, _ text: String) {
        var s = text
        s.withUTF8 { sendFrame(c, opcode: 0x1, $0.baseAddress!, $0.count) }
    }

    /// Writes a masked client frame at `dst`; returns its length. `dst` must hold n + 14 bytes.
    func encodeFrame(into dst: UnsafeMutableRawPointer, opcode: UInt8, _ p: UnsafeRawPointer, _ n: Int) -> Int {
        let d = dst.assumingMemoryBound(to: UInt8.self)
        d[0] = 0x80 | opcode
        var h = 2
        if n < 126 {
            d[1] = 0x80 | UInt8(n)
        } else if n < 65536 {
            d[1] = 0x80 | 126
            d[2] = UInt8(n >> 8)
            d[3] = UInt8(n & 0xFF)
            h = 4
        } else {
            d[1] = 0x80 | 127
            for i in 0..<8 { d[2 + i] = UInt8(truncatingIfNeeded: n >> (8 * (7 - i))) }
            h = 10
        }
        let mask = UInt32(truncatingIfNeeded: random.next())
        dst.storeBytes(of: mask, toByteOffset: h, as: UInt32.self)
        h += 4
        let wide = UInt64(mask) | UInt64(mask) << 32
        var i = 0
        while i + 8 <= n {
            let v = p.loadUnaligned(fromByteOffset: i, as: UInt64.self) ^ wide
            (dst + h).storeBytes(of: v, toByteOffset: i, as: UInt64.self)
            i += 8
        }
        while i < n {
            let m = UInt8(truncatingIfNeeded: mask >> (8 * UInt32(i & 3)))
            d[h + i] = p.load(fromByteOffset: i, as: UInt8.self) ^ m
            i += 1
        }
        return h + n
    }

    static func find(_ p: UnsafePointer<UInt8>, _ n: Int, _ needle: StaticString) -> Int? {
        // memmem needs _GNU_SOURCE, which Glibc's module does not give Swift.
        let k = needle.utf8CodeUnitCount
        guard k > 0, n >= k else { return nil }
        let first = Int32(needle.utf8Start[0])
        var i = 0
        while i + k <= n {
            guard let hit = memchr(p + i, first, n - k + 1 - i) else { return nil }
            let j = UnsafePointer<UInt8>(hit.assumingMemoryBound(to: UInt8.self)) - p
            if memcmp(p + j, needle.utf8Start, k) == 0 { return j }
            i = j + 1
        }
        return nil
    }
}

extension StringProtocol {
    func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s.removeFirst() }
        while let l = s.last, set.contains(l) { s.removeLast() }
        return String(s)
    }
}
