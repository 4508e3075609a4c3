import XCTest
@testable import PeekMail

/// Hostile inbound mail (issue 13): every parser stays linear in its input and every
/// bound holds. Sizes and counts are asserted rather than times where possible; the few
/// time bounds are tens of seconds against milliseconds of real work, because the
/// unfixed code took minutes to hours (quadratic) on the same input.
final class InboundMailBoundsTests: XCTestCase {
    private typealias F = InboundMailFixtures

    private func seconds(_ work: () -> Void) -> Double {
        let start = ContinuousClock.now
        work()
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }

    // MARK: HTML

    func testHTML_deeplyNestedBlockquotes_quotePrefixFlattenedAt32() {
        let html = String(repeating: "<blockquote>", count: 300) + String(repeating: "line<br>", count: 300)
        let text = HTMLText.plainText(fromHTML: html)
        let lines = text.split(separator: "\n")
        XCTAssertEqual(lines.count, 300)
        let deepest = lines.map { line in line.prefix(while: { $0 == ">" || $0 == " " }).filter { $0 == ">" }.count }.max()
        XCTAssertEqual(deepest, 32)
        XCTAssertEqual(lines.first, Substring(String(repeating: "> ", count: 32) + "line"))
    }

    func testHTML_severalMiBOfNestedBlockquotes_outputBoundedByLines() {
        let lineCount = 20_000
        let html = String(repeating: "<blockquote>", count: 1 << 20 / 12) + String(repeating: "x<br>", count: lineCount)
        let text = HTMLText.plainText(fromHTML: html)
        // Each line is at most 32 "> " prefixes and its one character.
        XCTAssertLessThanOrEqual(text.utf8.count, lineCount * (32 * 2 + 2))
        XCTAssertEqual(text.split(separator: "\n").count, lineCount)
    }

    // MARK: format=flowed

    func testFlowed_severalMiBParagraph_joinedInLinearTime() {
        let lines = Array(repeating: Substring("word "), count: 800_000)    // a 4 MB paragraph
        var out: [String] = []
        let elapsed = seconds { out = (try? FlowedText.unflow(lines, deleteSpace: false)) ?? [] }
        XCTAssertEqual(out.count, 1)
        XCTAssertEqual(out.first?.utf8.count, 4_000_000)
        XCTAssertLessThan(elapsed, 30, "quadratic joining copies the paragraph once per line")
    }

    // MARK: Encoded words

    func testEncodedWords_severalMiBRun_decodedInLinearTime() {
        let text = Array(repeating: "=?UTF-8?Q?ab?=", count: 800_000).joined(separator: " ")    // 12 MB
        var decoded = ""
        let elapsed = seconds { decoded = EncodedWord.decode(text) }
        XCTAssertEqual(decoded.utf8.count, 1_600_000)
        XCTAssertLessThan(elapsed, 30, "quadratic joining copies the run once per word")
    }

    func testEncodedWords_overTheCountInOneHeader_messageRefused() {
        // Folded one word a line, as a mailer would: 15 KB, within every header bound.
        let subject = Array(repeating: "=?UTF-8?Q?ab?=", count: 1_001).joined(separator: "\n ")
        let message = "From: a@b.example\nSubject: \(subject)\n\nbody\n"
        XCTAssertThrowsError(try InboundMailParser().parse(F.crlf(message))) { error in
            XCTAssertEqual(error as? InboundMailError, .tooManyEncodedWords(limit: 1_000))
        }
        let atTheLimit = Array(repeating: "=?UTF-8?Q?ab?=", count: 1_000).joined(separator: "\n ")
        let mail = try? InboundMailParser().parse(F.crlf("From: a@b.example\nSubject: \(atTheLimit)\n\nbody\n"))
        XCTAssertEqual(mail?.subject, String(repeating: "ab", count: 1_000))
    }

    // MARK: Multipart

    func testMultipart_millionsOfEmptyParts_refusedAtThePartLimitWithoutSplittingThemAll() {
        var message = Array("From: a@b.example\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n".utf8)
        let delimiter = Array("--x\r\n".utf8)
        message.reserveCapacity(message.count + delimiter.count * 4_000_000)
        for _ in 0..<4_000_000 { message.append(contentsOf: delimiter) }    // 20 MB, 4 million parts
        var thrown: InboundMailError?
        let elapsed = seconds {
            do { _ = try InboundMailParser().parse(message) } catch { thrown = error as? InboundMailError }
        }
        XCTAssertEqual(thrown, .tooManyParts(limit: 500))
        XCTAssertLessThan(elapsed, 5, "the limit must stop the split, not follow it")
    }

    func testMultipart_partLimitCountsWhileSplitting_exactlyAtTheLimitParses() throws {
        // The message is part 1; 499 parts below it make 500, the limit.
        func message(parts: Int) -> [UInt8] {
            F.crlf("From: a@b.example\nContent-Type: multipart/mixed; boundary=x\n\n"
                   + String(repeating: "--x\n\nhi\n", count: parts) + "--x--\n")
        }
        XCTAssertEqual(try InboundMailParser().parse(message(parts: 499)).bodyText.split(separator: "\n").count, 499)
        XCTAssertThrowsError(try InboundMailParser().parse(message(parts: 500))) {
            XCTAssertEqual($0 as? InboundMailError, .tooManyParts(limit: 500))
        }
    }

    // MARK: Header section

    private func refusal(_ message: String, _ limits: InboundMailLimits = .standard) -> InboundMailError? {
        do {
            _ = try InboundMailParser(limits: limits).parse(F.crlf(message))
            return nil
        } catch {
            return error
        }
    }

    func testHeader_fieldCountLineAndUnfoldedLengthBounded() {
        let limits = InboundMailLimits(maxHeaderFields: 5, maxHeaderLineBytes: 100, maxHeaderFieldBytes: 300)
        let fields = (1...4).map { "X-\($0): y\n" }.joined()
        XCTAssertNil(refusal("From: a@b.example\n\(fields)\nbody", limits))
        XCTAssertEqual(refusal("From: a@b.example\n\(fields)X-5: y\n\nbody", limits), .tooManyHeaderFields(limit: 5))

        let line = "X-Long: " + String(repeating: "y", count: 92)     // 100 bytes
        XCTAssertNil(refusal("From: a@b.example\n\(line)\n\nbody", limits))
        XCTAssertEqual(refusal("From: a@b.example\n\(line)y\n\nbody", limits), .headerLineTooLong(limitBytes: 100))
        XCTAssertEqual(refusal("From: a@b.example\nX: y\n \(line)y\n\nbody", limits), .headerLineTooLong(limitBytes: 100))

        let folded = "X-Folded: a" + String(repeating: "\n " + String(repeating: "y", count: 50), count: 6)    // 1 + 6 * 51 bytes
        XCTAssertEqual(refusal("From: a@b.example\n\(folded)\n\nbody", limits), .headerFieldTooLong(limitBytes: 300))
    }

    func testHeader_aPartWithoutHeaderMayStartWithALongBodyLine() throws {
        let longLine = String(repeating: "z", count: 20_000)
        let message = "From: a@b.example\nContent-Type: multipart/mixed; boundary=x\n\n--x\n\(longLine)\n--x--\n"
        XCTAssertEqual(try InboundMailParser().parse(F.crlf(message)).bodyText, longLine)
    }

    func testHeader_severalMiBWithoutALineEnd_refusedAtTheSectionLimit() {
        let message = "From: a@b.example\nX: " + String(repeating: "y", count: 4 << 20)
        XCTAssertEqual(refusal(message), .headerTooLarge(limitBytes: 256 * 1024))
    }

    func testReferences_overTheCount_keepTheRootAndTheNewest() throws {
        let ids = (1...12).map { "<r\($0)@x.example>" }
        let message = "From: a@b.example\nIn-Reply-To: \(ids.joined(separator: " "))\nReferences: \(ids.joined(separator: "\n "))\n\nbody"
        let mail = try InboundMailParser(limits: InboundMailLimits(maxReferences: 10)).parse(F.crlf(message))
        XCTAssertEqual(mail.references, ["r1@x.example"] + (4...12).map { "r\($0)@x.example" })
        XCTAssertEqual(mail.inReplyTo, (1...10).map { "r\($0)@x.example" })
        XCTAssertEqual(try InboundMailParser(limits: InboundMailLimits(maxReferences: 12)).parse(F.crlf(message)).references.count, 12)
    }

    // MARK: Decoded size

    func testDecodedBytes_attachmentsTogetherOverTheLimit_refused() {
        let attachment = "--x\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n"
            + String(repeating: "QUJD", count: 100) + "\n"    // 300 bytes decoded
        let message = "From: a@b.example\nContent-Type: multipart/mixed; boundary=x\n\n--x\n\nhi\n"
            + attachment + attachment + "--x--\n"
        XCTAssertNil(refusal(message, InboundMailLimits(maxDecodedBytes: 700)))
        XCTAssertEqual(refusal(message, InboundMailLimits(maxDecodedBytes: 500)), .decodedTooLarge(limitBytes: 500))
    }

    func testTextBytes_plainAndHTMLOverTheLimit_refused() {
        let limits = InboundMailLimits(maxTextBytes: 1_000)
        XCTAssertNil(refusal("From: a@b.example\n\n" + String(repeating: "a", count: 1_000), limits))
        XCTAssertEqual(refusal("From: a@b.example\n\n" + String(repeating: "a", count: 1_001), limits),
                       .textTooLarge(limitBytes: 1_000))
        // HTML that grows: every <br> inside 32 quotes is a 33-byte line.
        let html = String(repeating: "<blockquote>", count: 32) + String(repeating: "<br>", count: 100)
        XCTAssertEqual(refusal("From: a@b.example\nContent-Type: text/html\n\n" + html, limits),
                       .textTooLarge(limitBytes: 1_000))
    }

    // MARK: Transfer and charset decoding (now byte loops that consult the budget)

    func testBase64Body_cleanOrWithJunk_decodesAsClientsDo() throws {
        func decoded(_ text: String) throws -> String {
            String(decoding: try Base64Body.decode(Array(text.utf8)[...], budget: .unlimited), as: UTF8.self)
        }
        XCTAssertEqual(try decoded("QUJD\r\nREVG\r\n"), "ABCDEF")
        XCTAssertEqual(try decoded("QUJDRA==\r\n"), "ABCD")
        XCTAssertEqual(try decoded("QUJDRA"), "ABCD")                      // unpadded
        XCTAssertEqual(try decoded("-_-_"), String(decoding: [0xFB, 0xFF, 0xBF], as: UTF8.self))   // base64url
        // Junk: only the standard alphabet is kept, in whole groups of four.
        XCTAssertEqual(try decoded("QUJD\r\nREVG\r\n-- \r\nsig!"), "ABCDEF")     // "sig" is a partial group
        // Data after padding: "QUJDRAQUJD" is kept, cut to "QUJDRAQU".
        XCTAssertEqual(try decoded("QUJDRA==\r\nQUJD"), "ABCD\u{04}\u{14}")
        XCTAssertEqual(try decoded("Q*U*J*D"), "ABC")
        XCTAssertEqual(try decoded(""), "")
    }

    func testCharset_singleByteText_sameAsScalarByScalarAcrossChunks() {
        let bytes = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }    // every byte, past several 64 KiB chunks
        let expected1252 = String(String.UnicodeScalarView(bytes.map { byte -> Unicode.Scalar in
            let high: [UInt32] = [0x20AC, 0x81, 0x201A, 0x192, 0x201E, 0x2026, 0x2020, 0x2021, 0x2C6, 0x2030, 0x160, 0x2039,
                                  0x152, 0x8D, 0x17D, 0x8F, 0x90, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
                                  0x2DC, 0x2122, 0x161, 0x203A, 0x153, 0x9D, 0x17E, 0x178]
            return Unicode.Scalar((0x80...0x9F).contains(byte) ? high[Int(byte - 0x80)] : UInt32(byte))!
        }))
        XCTAssertEqual(MailCharset.decode(bytes, charset: "windows-1252"), expected1252)
        XCTAssertEqual(MailCharset.decode(bytes, charset: "utf-8"), expected1252)                  // invalid UTF-8
        XCTAssertEqual(MailCharset.decode([0x41, 0xA4, 0xBE], charset: "iso-8859-15"), "A\u{20AC}\u{0178}")
        XCTAssertEqual(MailCharset.decode(Array("Café".utf8), charset: nil), "Café")
    }

    // MARK: Wall-clock budget

    /// A closure that answers "over budget" from its `flipAt`-th call on, and counts calls.
    private final class FlippingBudget: @unchecked Sendable {
        // Only the parsing thread (the test's own) calls it.
        private(set) var calls = 0
        let flipAt: Int
        init(flipAt: Int) { self.flipAt = flipAt }
        func isOverBudget() -> Bool {
            calls += 1
            return calls >= flipAt
        }
    }

    private func hostileMessages() -> [(name: String, bytes: [UInt8])] {
        let size = 512 * 1024
        return [
            ("nested blockquotes", F.crlf("From: a@b.example\nContent-Type: text/html\n\n"
                                          + String(repeating: "<blockquote>x<br>", count: size / 17))),
            ("flowed", F.crlf("From: a@b.example\nContent-Type: text/plain; format=flowed\n\n"
                              + String(repeating: "word \n", count: size / 6))),
            ("quoted-printable", F.crlf("From: a@b.example\nContent-Transfer-Encoding: quoted-printable\n\n"
                                        + String(repeating: "=41=\n", count: size / 6))),
            ("quoted history", F.crlf("From: a@b.example\n\nhi\n" + String(repeating: "> q\n", count: size / 4))),
            ("delimiters", F.crlf("From: a@b.example\nContent-Type: multipart/mixed; boundary=x\n\n"
                                  + String(repeating: "--y\n", count: size / 4))),
            ("comment", F.crlf("From: a@b.example\nContent-Type: text/html\n\n<!--" + String(repeating: "-", count: size))),
            ("base64", F.crlf("From: a@b.example\nContent-Type: application/pdf\nContent-Transfer-Encoding: base64\n\n"
                              + String(repeating: "QUJD\n", count: size / 5))),
            ("windows-1252", Array("From: a@b.example\r\nContent-Type: text/plain; charset=windows-1252\r\n\r\n".utf8)
                + [UInt8](repeating: 0x80, count: size)),
        ]
    }

    func testBudget_checkedEvenInsideEachLongLoop() throws {
        for (name, bytes) in hostileMessages() {
            let counter = FlippingBudget(flipAt: .max)
            _ = try? InboundMailParser(isOverBudget: counter.isOverBudget).parse(bytes)
            // 512 KiB of work in one loop: at least one check per 64 KiB of it.
            XCTAssertGreaterThan(counter.calls, 8, name)
        }
    }

    func testBudget_runsOut_parseStopsAtTheNextCheckWithOverBudget() {
        for (name, bytes) in hostileMessages() {
            for flipAt in [1, 2, 5, 20] {
                let budget = FlippingBudget(flipAt: flipAt)
                XCTAssertThrowsError(try InboundMailParser(isOverBudget: budget.isOverBudget).parse(bytes), name) {
                    XCTAssertEqual($0 as? InboundMailError, .overBudget, name)
                }
                XCTAssertEqual(budget.calls, flipAt, "\(name): no check after the budget ran out")
            }
        }
        XCTAssertTrue(InboundMailError.overBudget.message.hasPrefix("The message took too long to read"))
    }

    func testBudget_neverOver_parsesAsBefore() throws {
        let mail = try InboundMailParser(isOverBudget: { false }).parse(F.crlf(F.gmail))
        XCTAssertEqual(mail, try InboundMailParser().parse(F.crlf(F.gmail)))
    }

    func testErrors_sizeBoundsAreTooLarge_restInvalid() {
        XCTAssertTrue(InboundMailError.textTooLarge(limitBytes: 1).isTooLarge)
        XCTAssertTrue(InboundMailError.headerLineTooLong(limitBytes: 1).isTooLarge)
        XCTAssertFalse(InboundMailError.tooManyParts(limit: 1).isTooLarge)
        XCTAssertFalse(InboundMailError.overBudget.isTooLarge)
    }
}
