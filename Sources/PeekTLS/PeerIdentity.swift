import COpenSSL
#if canImport(Glibc)
import Glibc
#endif

/// Who is on the other end, read from a certificate OpenSSL has verified.
/// The agent listener takes an agent's identity from `commonName` and never
/// from anything the agent says in a frame (CONTRACT, "agent socket").
public struct PeerIdentity: Sendable, Equatable, CustomStringConvertible {
    /// The subject's last CN, UTF-8. Nil when the subject has none.
    public let commonName: String?
    /// DNS names, URIs, e-mail addresses and IP addresses (dotted quad or
    /// RFC 5952 text) in certificate order, without a type prefix. Other SAN
    /// kinds (directory names, otherName) are skipped.
    public let subjectAltNames: [String]
    /// notAfter as Unix seconds.
    public let notAfter: Int64
    /// The serial number in upper-case hex, as OpenSSL prints it (and as a
    /// CRL lists it).
    public let serialHex: String

    public init(commonName: String?, subjectAltNames: [String], notAfter: Int64, serialHex: String) {
        self.commonName = commonName
        self.subjectAltNames = subjectAltNames
        self.notAfter = notAfter
        self.serialHex = serialHex
    }

    public var description: String {
        "CN=\(commonName ?? "-") SAN=\(subjectAltNames) serial=\(serialHex) notAfter=\(notAfter)"
    }

    /// Reads an `X509*` without taking ownership. Nil only if the certificate
    /// lacks fields every X.509 certificate has (serial, notAfter).
    init?(certificate: OpaquePointer) {
        guard let notAfter = PeerIdentity.unixSeconds(X509_get0_notAfter(certificate)),
              let serialHex = PeerIdentity.serialHex(certificate)
        else { return nil }
        self.init(
            commonName: PeerIdentity.commonName(certificate),
            subjectAltNames: PeerIdentity.subjectAltNames(certificate),
            notAfter: notAfter,
            serialHex: serialHex
        )
    }

    private static func commonName(_ certificate: OpaquePointer) -> String? {
        guard let subject = X509_get_subject_name(certificate) else { return nil }
        // Several CNs are legal; the last is the most specific, as OpenSSL's
        // own host-name fallback takes it.
        var index: Int32 = -1, last: Int32 = -1
        while true {
            index = X509_NAME_get_index_by_NID(subject, NID_commonName, index)
            if index < 0 { break }
            last = index
        }
        guard last >= 0, let entry = X509_NAME_get_entry(subject, last),
              let data = X509_NAME_ENTRY_get_data(entry)
        else { return nil }
        var utf8: UnsafeMutablePointer<UInt8>?
        let length = ASN1_STRING_to_UTF8(&utf8, data)
        guard length >= 0, let utf8 else { return nil }
        defer { COpenSSL_OPENSSL_free(utf8) }
        return String(decoding: UnsafeBufferPointer(start: utf8, count: Int(length)), as: UTF8.self)
    }

    private static func subjectAltNames(_ certificate: OpaquePointer) -> [String] {
        guard let raw = X509_get_ext_d2i(certificate, NID_subject_alt_name, nil, nil) else { return [] }
        let names = OpaquePointer(raw)
        defer { GENERAL_NAMES_free(names) }
        var result: [String] = []
        for i in 0..<COpenSSL_sk_GENERAL_NAME_num(names) {
            guard let name = COpenSSL_sk_GENERAL_NAME_value(names, i) else { continue }
            switch name.pointee.type {
            case GEN_DNS: if let text = ia5Text(name.pointee.d.dNSName) { result.append(text) }
            case GEN_URI: if let text = ia5Text(name.pointee.d.uniformResourceIdentifier) { result.append(text) }
            case GEN_EMAIL: if let text = ia5Text(name.pointee.d.rfc822Name) { result.append(text) }
            case GEN_IPADD: if let text = ipText(name.pointee.d.iPAddress) { result.append(text) }
            default: break
            }
        }
        return result
    }

    private static func ia5Text(_ string: UnsafeMutablePointer<ASN1_STRING>?) -> String? {
        guard let string, let bytes = ASN1_STRING_get0_data(string) else { return nil }
        let length = Int(ASN1_STRING_length(string))
        return String(decoding: UnsafeBufferPointer(start: bytes, count: length), as: UTF8.self)
    }

    private static func ipText(_ string: UnsafeMutablePointer<ASN1_STRING>?) -> String? {
        guard let string, let bytes = ASN1_STRING_get0_data(string) else { return nil }
        let length = Int(ASN1_STRING_length(string))
        let family: Int32
        switch length {
        case 4: family = AF_INET
        case 16: family = AF_INET6
        default: return nil  // a name constraint's address+mask, or malformed
        }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        guard inet_ntop(family, bytes, &text, socklen_t(text.count)) != nil else { return nil }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static func unixSeconds(_ time: UnsafePointer<ASN1_TIME>?) -> Int64? {
        guard let time, let epoch = ASN1_TIME_set(nil, 0) else { return nil }
        defer { ASN1_TIME_free(epoch) }
        var days: Int32 = 0, seconds: Int32 = 0
        guard ASN1_TIME_diff(&days, &seconds, epoch, time) == 1 else { return nil }
        return Int64(days) * 86_400 + Int64(seconds)
    }

    private static func serialHex(_ certificate: OpaquePointer) -> String? {
        guard let serial = X509_get0_serialNumber(certificate),
              let number = ASN1_INTEGER_to_BN(serial, nil)
        else { return nil }
        defer { BN_free(number) }
        guard let hex = BN_bn2hex(number) else { return nil }
        defer { COpenSSL_OPENSSL_free(hex) }
        return String(cString: hex)
    }
}
