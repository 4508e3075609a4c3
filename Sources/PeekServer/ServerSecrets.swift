import Foundation
import PeekCore
import PeekEngine
import PeekCrypto
import PeekTLS

/// The two secrets peekd cannot run without: the key technician tokens are
/// signed with and the back-end API's bearer token. There are no built-in
/// defaults: well-known ones would let anyone mint a token for any tenant.
/// Outside `--demo` both must be given; `--demo` generates them once per
/// data directory and keeps them there (protocol.md §2.1).
public struct ServerSecrets: Equatable, Sendable {
    public var jwtSecret: String
    public var serviceToken: String

    public init(jwtSecret: String, serviceToken: String) {
        self.jwtSecret = jwtSecret
        self.serviceToken = serviceToken
    }

    /// HS256 keys shorter than its 32-byte output weaken it (RFC 7518 §3.2),
    /// and a short human-chosen secret can be guessed offline from any token.
    public static let minimumJWTSecretBytes = 32
    /// The file `--demo` keeps its generated secrets in, mode 0600.
    public static let demoFileName = "demo-secrets"

    /// Why `given` secrets cannot be used outside demo mode: one sentence
    /// saying what to set, or nil when they are fine.
    public static func problem(jwtSecret: String?, serviceToken: String?) -> String? {
        guard let jwtSecret, !jwtSecret.isEmpty else {
            return "No --jwt-secret is set: set --jwt-secret (or PEEK_JWT_SECRET) to a random string of at least \(minimumJWTSecretBytes) bytes, or try peekd with --demo."
        }
        if let short = shortSecretProblem(jwtSecret) { return short }
        guard let serviceToken, !serviceToken.isEmpty else {
            return "No --service-token is set: set --service-token (or PEEK_SERVICE_TOKEN) to the bearer token your back end will send, or try peekd with --demo."
        }
        return nil
    }

    static func shortSecretProblem(_ jwtSecret: String) -> String? {
        guard jwtSecret.utf8.count < minimumJWTSecretBytes else { return nil }
        return "The --jwt-secret is \(jwtSecret.utf8.count) bytes: set --jwt-secret (or PEEK_JWT_SECRET) to a random string of at least \(minimumJWTSecretBytes) bytes."
    }

    /// Demo mode: what was given wins, the rest comes from
    /// `<directory>/demo-secrets`, generated on the first start and reused
    /// after, so tokens minted by `peekd token` and the page's sign-ins stay
    /// valid across restarts. A given secret must still be long enough.
    public static func demo(in directory: String, jwtSecret: String?, serviceToken: String?) throws -> ServerSecrets {
        if let jwtSecret, let short = shortSecretProblem(jwtSecret) { throw SecretsError(short) }
        let stored = try loadDemo(in: directory) ?? createDemo(in: directory)
        // An empty value (a blank line in an environment file) is not a token.
        let givenToken = serviceToken.flatMap { $0.isEmpty ? nil : $0 }
        return ServerSecrets(jwtSecret: jwtSecret ?? stored.jwtSecret, serviceToken: givenToken ?? stored.serviceToken)
    }

    /// The secrets an earlier `--demo` start generated in `directory`, if any.
    public static func loadDemo(in directory: String) throws -> ServerSecrets? {
        let path = directory + "/" + demoFileName
        guard SecureFile.exists(path) else { return nil }
        guard let data = FileManager.default.contents(atPath: path) else { throw SecretsError("Cannot read \(path); check its permissions.") }
        var values: [Substring: Substring] = [:]
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            guard let eq = line.firstIndex(of: "=") else { continue }
            values[line[..<eq]] = line[line.index(after: eq)...]
        }
        guard let jwt = values["jwt-secret"], jwt.utf8.count >= minimumJWTSecretBytes, let service = values["service-token"], !service.isEmpty else {
            throw SecretsError("\(path) is damaged; delete it to generate new demo secrets (tokens signed with the old ones stop working).")
        }
        return ServerSecrets(jwtSecret: String(jwt), serviceToken: String(service))
    }

    private static func createDemo(in directory: String) throws -> ServerSecrets {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let secrets = ServerSecrets(jwtSecret: Crypto.hex(Crypto.randomBytes(32)), serviceToken: Crypto.hex(Crypto.randomBytes(24)))
        let text = "jwt-secret=\(secrets.jwtSecret)\nservice-token=\(secrets.serviceToken)\n"
        try SecureFile.write(Array(text.utf8), to: directory + "/" + demoFileName, mode: 0o600)
        return secrets
    }
}

public struct SecretsError: Error, CustomStringConvertible {
    public let description: String
    init(_ sentence: String) { description = sentence }
}
