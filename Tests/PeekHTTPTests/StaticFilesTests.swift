@testable import PeekHTTP
import XCTest

final class StaticFilesTests: XCTestCase {
    private func resolve(_ path: String) -> Result<String, StaticPathError> {
        Result { () throws(StaticPathError) -> String in try StaticFiles.relativePath(for: path) }
    }

    func testStaticFiles_root_mapsToIndex() {
        XCTAssertEqual(resolve("/"), .success("index.html"))
    }

    func testStaticFiles_plainPaths_resolveRelative() {
        XCTAssertEqual(resolve("/peek.js"), .success("peek.js"))
        XCTAssertEqual(resolve("/test/"), .success("test/index.html"))
        XCTAssertEqual(resolve("/img/logo%20dark.svg"), .success("img/logo dark.svg"))
        XCTAssertEqual(resolve("/a..b/c...d.css"), .success("a..b/c...d.css"))
    }

    func testStaticFiles_doubleEncoding_isDecodedOnlyOnce() {
        // %252e%252e -> "%2e%2e": a literal file name, not "..".
        XCTAssertEqual(resolve("/%252e%252e/x"), .success("%2e%2e/x"))
    }

    func testStaticFiles_traversalAttempts_areRejected() {
        let cases: [(String, StaticPathError)] = [
            ("/../etc/passwd", .dotSegment),
            ("/%2e%2e/x", .dotSegment),
            ("/%2E%2E/x", .dotSegment),
            ("/a/%2e%2e/%2e%2e/b", .dotSegment),
            ("/a/..", .dotSegment),
            ("/./index.html", .dotSegment),
            ("/.%2e/x", .dotSegment),
            ("/%00", .nulByte),
            ("/index.html%00.png", .nulByte),
            ("/a\\..\\b", .backslash),
            ("/%5c..%5cwindows", .backslash),
            ("//etc/passwd", .emptySegment),
            ("/%2fetc/passwd", .emptySegment),
            ("/a//b", .emptySegment),
            ("etc/passwd", .notAbsolute),
            ("", .notAbsolute),
            ("/%zz", .malformedEscape),
            ("/%2", .malformedEscape),
            ("/%ff.html", .invalidUTF8),
            ("/a%0d%0aSet-Cookie", .controlCharacter),
            ("/.git/config", .hiddenName),
            ("/a/.env", .hiddenName),
        ]
        for (path, expected) in cases {
            XCTAssertEqual(resolve(path), .failure(expected), path)
        }
    }

    func testContentType_knownExtensions_mapToTypes() {
        let expected: [String: String] = [
            "index.html": "text/html; charset=utf-8",
            "peek.js": "text/javascript; charset=utf-8",
            "module.mjs": "text/javascript; charset=utf-8",
            "peek.css": "text/css; charset=utf-8",
            "data.json": "application/json",
            "icon.svg": "image/svg+xml",
            "logo.png": "image/png",
            "photo.jpg": "image/jpeg",
            "photo.JPEG": "image/jpeg",
            "favicon.ico": "image/x-icon",
            "font.woff2": "font/woff2",
            "README.txt": "text/plain; charset=utf-8",
            "peek.js.map": "application/json",
            "dir/PAGE.HTML": "text/html; charset=utf-8",
        ]
        for (path, type) in expected {
            XCTAssertEqual(ContentType.for(path: path), type, path)
        }
    }

    func testContentType_unknownOrMissingExtension_isOctetStream() {
        for path in ["archive.tar.xz", "Makefile", ".hidden", "dir.d/file", "x."] {
            XCTAssertEqual(ContentType.for(path: path), "application/octet-stream", path)
        }
    }

    func testETag_strong_isQuotedSHA256Prefix() {
        // SHA-256("") = e3b0c44298fc1c14 9afbf4c8996fb924...; SHA-256("abc") = ba7816bf8f01cfea 414140de5dae2223...
        XCTAssertEqual(ETag.strong(for: []), "\"e3b0c44298fc1c14\"")
        XCTAssertEqual(ETag.strong(for: bytes("abc")), "\"ba7816bf8f01cfea\"")
    }

    func testETag_ifNoneMatch_matchesListStarAndWeak() {
        let etag = "\"ba7816bf8f01cfea\""
        XCTAssertTrue(ETag.ifNoneMatch(etag, matches: etag))
        XCTAssertTrue(ETag.ifNoneMatch("\"x\", \"ba7816bf8f01cfea\"", matches: etag))
        XCTAssertTrue(ETag.ifNoneMatch("*", matches: etag))
        XCTAssertTrue(ETag.ifNoneMatch(" * ", matches: etag))
        // Weak comparison: W/ on either side still matches (RFC 9110 §13.1.2).
        XCTAssertTrue(ETag.ifNoneMatch("W/\"ba7816bf8f01cfea\"", matches: etag))
        XCTAssertTrue(ETag.ifNoneMatch("\"ba7816bf8f01cfea\"", matches: "W/\"ba7816bf8f01cfea\""))
        // A comma inside quotes is part of the tag, not a list separator.
        XCTAssertTrue(ETag.ifNoneMatch("\"a,b\", \"c\"", matches: "\"a,b\""))
        XCTAssertFalse(ETag.ifNoneMatch("\"a,b\"", matches: "\"a\""))
    }

    func testETag_ifNoneMatch_rejectsMismatchAndMalformed() {
        let etag = "\"abc\""
        XCTAssertFalse(ETag.ifNoneMatch("\"abd\"", matches: etag))
        XCTAssertFalse(ETag.ifNoneMatch("abc", matches: etag))           // unquoted
        XCTAssertFalse(ETag.ifNoneMatch("\"abc", matches: etag))         // unterminated
        XCTAssertFalse(ETag.ifNoneMatch("\"x\" junk, \"abc\"", matches: etag))
        XCTAssertFalse(ETag.ifNoneMatch("", matches: etag))
        XCTAssertFalse(ETag.ifNoneMatch("w/\"abc\"", matches: etag))     // W/ is case-sensitive
    }

    func testRequestHead_isNotModified_onlyForGETAndHEAD() {
        let etag = "\"abc\""
        let get = HTTPRequestHead(method: "GET", target: "/peek.js", headers: ["If-None-Match": "\"zzz\"", "If-None-Match": "\"abc\""])
        XCTAssertTrue(get.isNotModified(etag: etag))
        let post = HTTPRequestHead(method: "POST", target: "/peek.js", headers: ["If-None-Match": "*"])
        XCTAssertFalse(post.isNotModified(etag: etag))
        XCTAssertFalse(HTTPRequestHead(method: "GET", target: "/").isNotModified(etag: etag))
    }

    func testHTTPDate_knownInstants_formatAsIMFFixdate() {
        XCTAssertEqual(HTTPDate.format(unixSeconds: 784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT")  // RFC 9110 example
        XCTAssertEqual(HTTPDate.format(unixSeconds: 0), "Thu, 01 Jan 1970 00:00:00 GMT")
        XCTAssertEqual(HTTPDate.format(unixSeconds: 951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT")  // leap day, century rule
        XCTAssertEqual(HTTPDate.format(unixSeconds: -1), "Wed, 31 Dec 1969 23:59:59 GMT")
        XCTAssertEqual(HTTPDate.format(unixSeconds: 1_795_937_400), "Sun, 29 Nov 2026 07:30:00 GMT")
    }

    func testHTTPDate_parse_roundTripsAndRejectsOtherForms() {
        for seconds: Int64 in [0, 784_111_777, 951_782_400, 1_795_937_400, 4_102_444_799, -86_401] {
            XCTAssertEqual(HTTPDate.parse(HTTPDate.format(unixSeconds: seconds)), seconds)
        }
        XCTAssertNil(HTTPDate.parse("Sunday, 06-Nov-94 08:49:37 GMT"))  // RFC 850
        XCTAssertNil(HTTPDate.parse("Sun Nov  6 08:49:37 1994"))         // asctime
        XCTAssertNil(HTTPDate.parse("Sun, 06 Nov 1994 25:49:37 GMT"))
    }
}
