/// Maps a method and a path to a handler, with `{name}` parameters.
///
/// Patterns are literal segments and whole-segment parameters:
/// `/v1/tenants/{tenant}/technicians`. The request path is split on `/`
/// *before* percent-decoding, so `%2F` inside an id stays in that segment
/// and cannot create a new one; each segment is then decoded exactly once.
///
/// Among the routes that match both path and method, the most specific wins
/// (at the first segment where two differ, a literal beats a parameter), so
/// registration order does not matter. A path that matches only under other
/// methods is `methodNotAllowed` with those methods for `Allow` (RFC 9110
/// §15.5.6). HEAD falls back to the GET route (RFC 9110 §9.3.2); the caller
/// encodes the response without a body.
///
/// `Handler` is whatever the server dispatches on: a closure, an enum case.
public struct Router<Handler> {
    struct Route {
        let method: String
        let segments: [Segment]
        let handler: Handler
    }

    enum Segment: Equatable {
        case literal(String)
        case parameter(String)
    }

    private var routes: [Route] = []

    public init() {}

    /// Registers a route. A malformed pattern or a duplicate is a programming
    /// error and traps: routes come from our code, never from a peer.
    public mutating func add(_ method: String, _ pattern: String, _ handler: Handler) {
        let segments = Self.compile(pattern)
        precondition(!routes.contains { $0.method == method && $0.segments == segments },
                     "duplicate route \(method) \(pattern)")
        routes.append(Route(method: method, segments: segments, handler: handler))
    }

    /// Matches a still-encoded path (`HTTPRequestHead.path`).
    public func match(method: String, path: String) -> RouteMatch<Handler> {
        guard path.hasPrefix("/") else { return .notFound }
        var decoded: [String] = []
        for rawSegment in path.utf8.dropFirst().split(separator: ASCII.slash, omittingEmptySubsequences: false) {
            // A NUL in an id would be cut short by C code (SQLite, logs) further down.
            guard let segment = PercentEncoding.decode(Substring(rawSegment)),
                  !segment.contains(0),
                  let text = String(validating: segment, as: UTF8.self) else {
                return .invalidPath
            }
            decoded.append(text)
        }

        var best: (route: Route, parameters: RouteParameters)?
        var bestForHEAD: (route: Route, parameters: RouteParameters)?
        var allowed: [String] = []
        for route in routes {
            guard let parameters = Self.bind(route.segments, to: decoded) else { continue }
            if !allowed.contains(route.method) { allowed.append(route.method) }
            if route.method == method {
                if best.map({ Self.isMoreSpecific(route.segments, than: $0.route.segments) }) ?? true {
                    best = (route, parameters)
                }
            } else if method == "HEAD" && route.method == "GET" {
                if bestForHEAD.map({ Self.isMoreSpecific(route.segments, than: $0.route.segments) }) ?? true {
                    bestForHEAD = (route, parameters)
                }
            }
        }
        if let found = best ?? bestForHEAD {
            return .matched(found.route.handler, found.parameters)
        }
        if allowed.isEmpty { return .notFound }
        if allowed.contains("GET") && !allowed.contains("HEAD") { allowed.append("HEAD") }
        return .methodNotAllowed(allowed: allowed.sorted())
    }

    static func compile(_ pattern: String) -> [Segment] {
        precondition(pattern.hasPrefix("/"), "route pattern must start with /: \(pattern)")
        return pattern.dropFirst().split(separator: "/", omittingEmptySubsequences: false).map { part in
            if part.hasPrefix("{") && part.hasSuffix("}") && part.count > 2 {
                return .parameter(String(part.dropFirst().dropLast()))
            }
            precondition(!part.contains("{") && !part.contains("}"), "parameters must fill a whole segment: \(pattern)")
            return .literal(String(part))
        }
    }

    /// Parameters never match an empty segment, so `/v1/tickets//sends` is not `{id} = ""`.
    static func bind(_ pattern: [Segment], to segments: [String]) -> RouteParameters? {
        guard pattern.count == segments.count else { return nil }
        var parameters = RouteParameters()
        for (part, segment) in zip(pattern, segments) {
            switch part {
            case .literal(let literal):
                guard literal == segment else { return nil }
            case .parameter(let name):
                guard !segment.isEmpty else { return nil }
                parameters.append(name: name, value: segment)
            }
        }
        return parameters
    }

    static func isMoreSpecific(_ a: [Segment], than b: [Segment]) -> Bool {
        for (x, y) in zip(a, b) {
            switch (x, y) {
            case (.literal, .parameter): return true
            case (.parameter, .literal): return false
            default: continue
            }
        }
        return false
    }
}

extension Router: Sendable where Handler: Sendable {}
extension Router.Route: Sendable where Handler: Sendable {}
extension Router.Segment: Sendable {}

/// The outcome of `Router.match`.
public enum RouteMatch<Handler> {
    case matched(Handler, RouteParameters)
    /// The path exists under other methods: answer 405 with `Allow: <allowed joined by ", ">`.
    case methodNotAllowed(allowed: [String])
    case notFound
    /// A segment has a malformed `%` escape, a NUL or invalid UTF-8 after decoding: answer 400.
    case invalidPath
}

extension RouteMatch: Sendable where Handler: Sendable {}

/// Decoded path parameters in pattern order.
public struct RouteParameters: Sendable, Equatable {
    public private(set) var pairs: [(name: String, value: String)] = []

    public init() {}

    public subscript(_ name: String) -> String? {
        pairs.first { $0.name == name }?.value
    }

    mutating func append(name: String, value: String) {
        pairs.append((name: name, value: value))
    }

    public static func == (lhs: RouteParameters, rhs: RouteParameters) -> Bool {
        lhs.pairs.count == rhs.pairs.count
            && zip(lhs.pairs, rhs.pairs).allSatisfy { $0.name == $1.name && $0.value == $1.value }
    }
}
