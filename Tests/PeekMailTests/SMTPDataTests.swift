import Foundation
import XCTest
@testable import PeekMail

final class SMTPDataTests: XCTestCase {
    private func encode(_ text: String) -> String {
        String(decoding: SMTPData.encode(message: Array(text.utf8)), as: UTF8.self)
    }

    func testSMTPData_lineOfOneDot_isDoubled() {
        XCTAssertEqual(encode("a\r\n.\r\nb\r\n"), "a\r\n..\r\nb\r\n.\r\n")
    }

    func testSMTPData_lineStartingWithTwoDots_getsThree() {
        XCTAssertEqual(encode("..hidden\r\n"), "...hidden\r\n.\r\n")
    }

    func testSMTPData_dotInsideLine_untouched() {
        XCTAssertEqual(encode("v1.2 . ok\r\n"), "v1.2 . ok\r\n.\r\n")
    }

    func testSMTPData_bareLFAndBareCR_becomeCRLF() {
        // LF alone, CR alone, then a dot line after a bare LF (it must still be stuffed).
        XCTAssertEqual(encode("one\ntwo\rthree\n.\nend"), "one\r\ntwo\r\nthree\r\n..\r\nend\r\n.\r\n")
    }

    func testSMTPData_unterminatedLastLine_getsCRLFBeforeMarker() {
        XCTAssertEqual(encode("no newline"), "no newline\r\n.\r\n")
    }

    func testSMTPData_emptyMessage_sendsOneEmptyLine() {
        XCTAssertEqual(encode(""), "\r\n.\r\n")
    }

    func testSMTPData_smugglingSequenceLFDotLF_cannotEndData() {
        // "\n.\n" ends DATA on lenient servers (SMTP smuggling); here it is a stuffed line.
        let out = encode("a\n.\nMAIL FROM:<evil@x>\r\n")
        XCTAssertEqual(out, "a\r\n..\r\nMAIL FROM:<evil@x>\r\n.\r\n")
        XCTAssertEqual(out.components(separatedBy: "\r\n.\r\n").count, 2)
    }
}
