/// Media types for the static client, by file extension (case-insensitive).
/// Text types carry `charset=utf-8` so a browser never sniffs the encoding;
/// anything unknown is `application/octet-stream`, which a browser downloads
/// rather than renders (the server also sends `nosniff`).
public enum ContentType {
    public static let fallback = "application/octet-stream"

    public static func `for`(path: String) -> String {
        let name = path.split(separator: "/", omittingEmptySubsequences: false).last ?? ""
        guard let dot = name.lastIndex(of: "."), dot != name.startIndex else { return fallback }
        let ext = String(decoding: name[name.index(after: dot)...].utf8.map(ASCII.lowercased), as: UTF8.self)
        switch ext {
        case "html", "htm": return "text/html; charset=utf-8"
        case "js", "mjs": return "text/javascript; charset=utf-8"
        case "css": return "text/css; charset=utf-8"
        case "json", "map": return "application/json"
        case "webmanifest": return "application/manifest+json"
        case "txt": return "text/plain; charset=utf-8"
        case "md": return "text/markdown; charset=utf-8"
        case "svg": return "image/svg+xml"
        case "png": return "image/png"
        case "jpg", "jpeg": return "image/jpeg"
        case "gif": return "image/gif"
        case "webp": return "image/webp"
        case "ico": return "image/x-icon"
        case "woff2": return "font/woff2"
        case "woff": return "font/woff"
        case "wasm": return "application/wasm"
        case "pdf": return "application/pdf"
        default: return fallback
        }
    }
}
