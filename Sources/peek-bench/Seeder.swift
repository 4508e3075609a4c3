#if canImport(Glibc)
import Glibc
#endif
import CSystem
import PeekCore

/// Creates what a run needs through the back-end API itself (service
/// token), as the PSA back end would: a tenant, technicians tech-1..tech-K,
/// tickets (and for agents, assets linked to agent certificate names).
/// Requests are pipelined on a few keep-alive connections, so the engine's
/// group commit turns hundreds of creations into a few transactions.
/// "Already exists" (409) counts as done: seeding twice is harmless.
struct Seeder {
    let port: UInt16
    let serviceToken: String
    let tenant: String

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    struct Request {
        let path: String
        let body: String
    }

    /// Returns the ids of the created tickets, in order.
    func seed(technicians: Int, tickets: Int, agentAssets: Int) throws(Failure) -> [String] {
        _ = try post([Request(path: "/v1/tenants", body: "{\"id\":\"\(tenant)\",\"name\":\"Bench \(tenant)\"}")])
        let techs = (1...max(1, technicians)).map {
            Request(path: "/v1/tenants/\(tenant)/technicians", body: "{\"id\":\"tech-\($0)\",\"name\":\"Tech \($0)\",\"email\":\"tech-\($0)@bench.invalid\"}")
        }
        _ = try post(techs)
        if agentAssets > 0 {
            let assets = (0..<agentAssets).map {
                Request(path: "/v1/tenants/\(tenant)/assets", body: "{\"id\":\"A-\($0)\",\"name\":\"Bench asset \($0)\",\"agent\":\(Seeder.agentName($0).jsonQuoted)}")
            }
            _ = try post(assets)
        }
        let ticketRequests = (0..<tickets).map { i -> Request in
            let asset = agentAssets > 0 ? ",\"asset\":\"A-\(i % agentAssets)\"" : ""
            return Request(path: "/v1/tenants/\(tenant)/tickets",
                           body: "{\"subject\":\"Bench ticket \(i)\",\"contact\":{\"name\":\"Bench contact\",\"email\":\"contact@bench.invalid\"},\"client\":\"Bench\",\"priority\":\"normal\"\(asset)}")
        }
        var ids: [String] = []
        for body in try post(ticketRequests) {
            guard let value = try? JSONParser.parse(body), let id = value["id"]?.stringValue else {
                throw Failure(description: "ticket creation answered without an id: \(String(decoding: body.prefix(200), as: UTF8.self))")
            }
            ids.append(id)
        }
        return ids
    }

    static func agentName(_ i: Int) -> String { "bench-agent-\(i)" }

    /// Sends every request (8 connections, 64 in flight on each) and returns
    /// the bodies in request order. A 409 is accepted (already there).
    func post(_ requests: [Request]) throws(Failure) -> [[UInt8]] {
        let lanes = min(8, requests.count)
        var sockets: [Int32] = []
        defer { for s in sockets { close(s) } }
        for _ in 0..<lanes { sockets.append(try connectAPI()) }
        var bodies = [[UInt8]](repeating: [], count: requests.count)
        var next = 0
        while next < requests.count {
            // One round: up to 64 pipelined requests per lane, then their answers.
            var assigned: [[Int]] = Array(repeating: [], count: lanes)
            for lane in 0..<lanes {
                while assigned[lane].count < 64 && next < requests.count { assigned[lane].append(next); next += 1 }
                var out: [UInt8] = []
                for i in assigned[lane] {
                    let r = requests[i]
                    out += Array("POST \(r.path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nAuthorization: Bearer \(serviceToken)\r\nContent-Type: application/json\r\nContent-Length: \(r.body.utf8.count)\r\n\r\n\(r.body)".utf8)
                }
                try sendAll(sockets[lane], out)
            }
            for lane in 0..<lanes {
                var reader = ResponseReader(fd: sockets[lane])
                for i in assigned[lane] {
                    let (status, body) = try reader.next()
                    guard status == 201 || status == 200 || status == 409 else {
                        throw Failure(description: "POST \(requests[i].path) answered \(status): \(String(decoding: body.prefix(300), as: UTF8.self))")
                    }
                    bodies[i] = body
                }
            }
        }
        return bodies
    }

    private func connectAPI() throws(Failure) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: errno \(errno)") }
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_port = port.bigEndian
        a.sin_addr.s_addr = (UInt32(127) << 24 | 1).bigEndian
        let rc = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0 else { close(fd); throw Failure(description: "cannot reach the API on 127.0.0.1:\(port): errno \(errno)") }
        return fd
    }

    private func sendAll(_ fd: Int32, _ bytes: [UInt8]) throws(Failure) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw Failure(description: "API send failed: errno \(errno)") }
            offset += n
        }
    }

    /// Reads pipelined HTTP/1.1 responses with Content-Length bodies.
    struct ResponseReader {
        let fd: Int32
        var buffer: [UInt8] = []

        init(fd: Int32) { self.fd = fd }

        mutating func next() throws(Failure) -> (Int, [UInt8]) {
            while true {
                if let end = headEnd() {
                    let head = String(decoding: buffer[0..<end], as: UTF8.self)
                    let lines = head.split(separator: "\r\n")
                    let parts = lines.first?.split(separator: " ") ?? []
                    guard parts.count >= 2, let status = Int(parts[1]) else { throw Failure(description: "bad API response: \(head.prefix(200))") }
                    var length = 0
                    for line in lines.dropFirst() where line.lowercased().hasPrefix("content-length:") {
                        length = Int(line.dropFirst(15).filter { $0 != " " }) ?? 0
                    }
                    if buffer.count >= end + 4 + length {
                        let body = Array(buffer[(end + 4)..<(end + 4 + length)])
                        buffer.removeSubrange(0..<(end + 4 + length))
                        return (status, body)
                    }
                }
                var chunk = [UInt8](repeating: 0, count: 65536)
                let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, 65536, 0) }
                guard n > 0 else { throw Failure(description: "API connection ended early (errno \(errno))") }
                buffer.append(contentsOf: chunk[0..<n])
            }
        }

        private func headEnd() -> Int? {
            guard buffer.count >= 4 else { return nil }
            for i in 0...(buffer.count - 4) where buffer[i] == 13 && buffer[i + 1] == 10 && buffer[i + 2] == 13 && buffer[i + 3] == 10 { return i }
            return nil
        }
    }
}

extension String {
    /// A JSON string literal of self (names here are plain ASCII; quotes and backslashes escaped anyway).
    var jsonQuoted: String {
        var w = JSONWriter()
        w.string(self)
        return String(decoding: w.bytes, as: UTF8.self)
    }
}
