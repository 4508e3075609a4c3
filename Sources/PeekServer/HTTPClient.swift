import Foundation
import PeekCore
import PeekHTTP
import PeekNet
import PeekTLS

/// peekd's outbound HTTP/1.1: one POST per connection (`Connection:
/// close`), blocking, on a worker thread, with one deadline for the whole
/// exchange. The socket and TLS are `SMTPStream`'s (the same blocking
/// client stream the mailer uses); every byte of the answer goes through
/// the pure `HTTPResponseParser`, whose limits bound what an endpoint can
/// make peekd hold. The body is handed to `onBody` as it arrives.
enum HTTPClient {
    enum Failure: Error, Equatable {
        case connect(String)
        case timedOut
        case protocolError(String)
        /// `onBody` stopped the exchange; its own sentence.
        case aborted(String)

        var text: String {
            switch self {
            case .connect(let s), .protocolError(let s), .aborted(let s): s
            case .timedOut: "timed out"
            }
        }
    }

    /// Thrown by an `onBody` to stop reading.
    struct Abort: Error { var text: String }

    static func post(_ url: HTTPEndpointURL, body: [UInt8], accept: String, tls: TLSContext?, timeoutSeconds: Double,
                     limits: HTTPResponseParser.Limits,
                     onBody: ([UInt8]) throws(Abort) -> Void, onHead: (HTTPResponseHead) -> Void) -> Result<HTTPResponseHead, Failure> {
        let deadline = monotonicMillis() + Int64(timeoutSeconds * 1000)
        func left() -> Double { Double(max(0, deadline - monotonicMillis())) / 1000 }
        let stream: SMTPStream
        do {
            stream = try SMTPStream.connect(host: url.host, port: url.port, timeout: timeoutSeconds)
        } catch {
            return .failure(.connect("could not connect to \(url.hostHeader): \(error.text)"))
        }
        defer { stream.close() }
        if url.secure {
            guard let tls else { return .failure(.connect("no TLS context for https")) }
            if let failure = stream.startTLS(tls, serverName: url.host, timeout: left()) {
                return .failure(monotonicMillis() >= deadline ? .timedOut : .connect(failure))
            }
        }
        var request = "POST \(url.target) HTTP/1.1\r\nHost: \(url.hostHeader)\r\nUser-Agent: peekd\r\n"
        request += "Content-Type: application/json\r\nAccept: \(accept)\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        guard stream.write(Array(request.utf8) + body, timeout: left()) else {
            return .failure(monotonicMillis() >= deadline ? .timedOut : .connect("the connection closed while sending the request"))
        }
        var parser = HTTPResponseParser(limits: limits)
        var head: HTTPResponseHead?
        while true {
            do {
                while let event = try parser.next() {
                    switch event {
                    case .head(let h): head = h; onHead(h)
                    case .body(let bytes): try onBody(bytes)
                    case .end: return .success(head!)
                    }
                }
            } catch let e as HTTPResponseParser.Error {
                return .failure(.protocolError(e.text))
            } catch let e as Abort {
                return .failure(.aborted(e.text))
            } catch {
                return .failure(.protocolError("\(error)"))
            }
            let ms = deadline - monotonicMillis()
            guard ms > 0 else { return .failure(.timedOut) }
            switch stream.read(timeoutMillis: ms) {
            case .bytes(let b): parser.append(b)
            case .closed: parser.finish()
            case .timedOut: return .failure(.timedOut)
            }
        }
    }
}
