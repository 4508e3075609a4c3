#if canImport(Glibc)
import Glibc
#endif
import Foundation
import PeekCore
import PeekEngine
import PeekStore
import PeekTLS

/// `peekd check`: what `start` would load, loaded and thrown away, so an
/// operator learns of a wrong path, a key that does not match its
/// certificate, an unreadable CRL or a database that will not open before
/// the service restarts into it. Nothing is bound and nothing in `--data`
/// is created or changed (an existing database is opened and migrated, as
/// start would).
extension Server {
    public struct CheckFailure: Error, CustomStringConvertible, Sendable {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    /// Answers a one-line summary of what was checked, or throws the first problem.
    public static func check(_ config: ServerConfig) throws -> String {
        var checked: [String] = []
        // Missing certificate files mean generated development ones
        // (protocol.md §2.1); those are made in a scratch directory here,
        // so a given CA and CRL can still be loaded beside them.
        var scratch: String?
        defer { if let scratch { try? FileManager.default.removeItem(atPath: scratch) } }
        func development() throws -> DevCertificatePaths {
            let directory = scratch ?? NSTemporaryDirectory() + "peekd-check-" + UUID().uuidString
            scratch = directory
            return try DevCertificates.ensure(in: directory)
        }
        func pair(_ cert: String?, _ key: String?, _ names: String) throws -> (String, String)? {
            switch (cert, key) {
            case (let c?, let k?): return (c, k)
            case (nil, nil): return nil
            default: throw CheckFailure("\(names) must be given together")
            }
        }

        let server = try pair(config.tlsCert, config.tlsKey, "--tls-cert and --tls-key")
        if let (cert, key) = server {
            do { _ = try TLSContext.makeServer(certificateChainFile: cert, privateKeyFile: key) } catch {
                throw CheckFailure("--tls-cert \(cert) / --tls-key \(key) do not load: \(error)")
            }
            checked.append("TLS certificate \(cert)")
        } else if config.tlsPort != nil {
            checked.append("TLS on development certificates")
        }
        if config.agentPort != nil || config.agentCA != nil || config.agentCRL != nil {
            let own = try pair(config.agentCert, config.agentKey, "--agent-cert and --agent-key")
            let dev = (own ?? server) == nil || config.agentCA == nil ? try development() : nil
            let (cert, key) = own ?? server ?? (dev!.serverCert, dev!.serverKey)
            let ca = config.agentCA ?? dev!.agentCAFile
            if config.agentCRL != nil && config.agentCA == nil {
                throw CheckFailure("--agent-crl needs --agent-ca: the CRL must come from the CA that issues your agents' certificates")
            }
            do {
                _ = try TLSContext.makeMutualServer(certificateChainFile: cert, privateKeyFile: key, clientCAFile: ca, crlFile: config.agentCRL)
            } catch {
                throw CheckFailure("the agent listener's files do not load (certificate \(cert), key \(key), --agent-ca \(ca)"
                                   + (config.agentCRL.map { ", --agent-crl \($0)" } ?? "") + "): \(error)")
            }
            checked.append("agent CA \(config.agentCA ?? "(development)")" + (config.agentCRL.map { " and CRL \($0)" } ?? ""))
        }
        if let ca = config.smtpCA {
            do { _ = try TLSContext.makeClient(caFile: ca, useSystemTrust: true) } catch {
                throw CheckFailure("--smtp-ca \(ca) does not load: \(error)")
            }
            checked.append("SMTP CA \(ca)")
        }
        if !FileManager.default.fileExists(atPath: config.clientDirectory + "/index.html") {
            throw CheckFailure("--client \(config.clientDirectory) has no index.html: the Peek page would answer 404")
        }
        checked.append(try checkDataDirectory(config))
        return "peekd check: OK (" + checked.joined(separator: "; ") + ")"
    }

    private static func checkDataDirectory(_ config: ServerConfig) throws -> String {
        let fm = FileManager.default
        let directory = config.dataDirectory
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: directory, isDirectory: &isDirectory) else {
            // Created on start: its nearest existing parent must take it.
            var parent = (directory as NSString).deletingLastPathComponent
            while !parent.isEmpty && !fm.fileExists(atPath: parent) { parent = (parent as NSString).deletingLastPathComponent }
            if parent.isEmpty { parent = "." }
            guard access(parent, W_OK) == 0 else {
                throw CheckFailure("--data \(directory) does not exist and \(parent) is not writable, so it cannot be created")
            }
            return "data \(directory) will be created"
        }
        guard isDirectory.boolValue else { throw CheckFailure("--data \(directory) is not a directory") }
        let probe = directory + "/.peekd-check-\(getpid())"
        let fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw CheckFailure("--data \(directory) is not writable: \(String(cString: strerror(errno)))") }
        close(fd)
        unlink(probe)
        guard fm.fileExists(atPath: config.databasePath) else { return "data \(directory) writable, no database yet" }
        do {
            _ = try SQLiteTicketStore(path: config.databasePath)
        } catch {
            throw CheckFailure("the database \(config.databasePath) does not open: \(error)")
        }
        return "data \(directory) writable, database opens and is migrated"
    }
}
