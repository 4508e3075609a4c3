import XCTest
import PeekTestSupport
@testable import PeekWebSocket

final class UTF8ValidatorTests: XCTestCase {
    func testUTF8Validator_asciiAndMultiByte_valid() {
        // 1-, 2-, 3- and 4-byte forms: "a", "é" (C3 A9), "€" (E2 82 AC), "𝄞" (F0 9D 84 9E).
        XCTAssertTrue(UTF8Validator.isValid(bytes("aé€𝄞 κόσμε")))
        XCTAssertTrue(UTF8Validator.isValid([]))
    }

    func testUTF8Validator_boundaryCodePoints_valid() {
        XCTAssertTrue(UTF8Validator.isValid([0x7F]))                    // U+007F
        XCTAssertTrue(UTF8Validator.isValid([0xC2, 0x80]))              // U+0080, smallest 2-byte
        XCTAssertTrue(UTF8Validator.isValid([0xE0, 0xA0, 0x80]))        // U+0800, smallest 3-byte
        XCTAssertTrue(UTF8Validator.isValid([0xED, 0x9F, 0xBF]))        // U+D7FF, just below surrogates
        XCTAssertTrue(UTF8Validator.isValid([0xEE, 0x80, 0x80]))        // U+E000, just above surrogates
        XCTAssertTrue(UTF8Validator.isValid([0xEF, 0xBF, 0xBF]))        // U+FFFF
        XCTAssertTrue(UTF8Validator.isValid([0xF0, 0x90, 0x80, 0x80]))  // U+10000, smallest 4-byte
        XCTAssertTrue(UTF8Validator.isValid([0xF4, 0x8F, 0xBF, 0xBF]))  // U+10FFFF, the last code point
    }

    func testUTF8Validator_overlongForms_rejected() {
        XCTAssertFalse(UTF8Validator.isValid([0xC0, 0x80]))             // U+0000 in 2 bytes
        XCTAssertFalse(UTF8Validator.isValid([0xC1, 0xBF]))             // U+007F in 2 bytes
        XCTAssertFalse(UTF8Validator.isValid([0xE0, 0x80, 0x80]))       // U+0000 in 3 bytes
        XCTAssertFalse(UTF8Validator.isValid([0xE0, 0x9F, 0xBF]))       // U+07FF in 3 bytes
        XCTAssertFalse(UTF8Validator.isValid([0xF0, 0x80, 0x80, 0x80])) // U+0000 in 4 bytes
        XCTAssertFalse(UTF8Validator.isValid([0xF0, 0x8F, 0xBF, 0xBF])) // U+FFFF in 4 bytes
    }

    func testUTF8Validator_surrogates_rejected() {
        XCTAssertFalse(UTF8Validator.isValid([0xED, 0xA0, 0x80]))       // U+D800
        XCTAssertFalse(UTF8Validator.isValid([0xED, 0xBF, 0xBF]))       // U+DFFF
        // A CESU-8 surrogate pair for U+10000 is still two surrogates.
        XCTAssertFalse(UTF8Validator.isValid([0xED, 0xA0, 0x80, 0xED, 0xB0, 0x80]))
    }

    func testUTF8Validator_aboveU10FFFF_rejected() {
        XCTAssertFalse(UTF8Validator.isValid([0xF4, 0x90, 0x80, 0x80])) // U+110000
        XCTAssertFalse(UTF8Validator.isValid([0xF5, 0x80, 0x80, 0x80])) // lead byte past F4
        XCTAssertFalse(UTF8Validator.isValid([0xFE]))
        XCTAssertFalse(UTF8Validator.isValid([0xFF]))
    }

    func testUTF8Validator_strayContinuation_rejected() {
        XCTAssertFalse(UTF8Validator.isValid([0x80]))
        XCTAssertFalse(UTF8Validator.isValid([0x61, 0xBF]))
        XCTAssertFalse(UTF8Validator.isValid([0xC3, 0xA9, 0xA9]))       // "é" then one continuation too many
        XCTAssertFalse(UTF8Validator.isValid([0xE2, 0x82, 0x41]))       // "€" interrupted by "A"
    }

    func testUTF8Validator_truncatedSequence_validButIncomplete() {
        var validator = UTF8Validator()
        XCTAssertTrue(validator.validate([0x61, 0xE2, 0x82]))           // "a" and 2 of "€"'s 3 bytes
        XCTAssertFalse(validator.isComplete)
        XCTAssertFalse(UTF8Validator.isValid([0xE2, 0x82]))
        XCTAssertFalse(UTF8Validator.isValid([0xF0, 0x9D, 0x84]))
    }

    func testUTF8Validator_splitAtEveryByte_sameAsWhole() {
        let text = bytes("aé€𝄞κόσμε€")
        for split in 0...text.count {
            var validator = UTF8Validator()
            XCTAssertTrue(validator.validate(Array(text[..<split])), "split \(split)")
            XCTAssertTrue(validator.validate(Array(text[split...])), "split \(split)")
            XCTAssertTrue(validator.isComplete, "split \(split)")
        }
        var byteAtATime = UTF8Validator()
        for byte in text { XCTAssertTrue(byteAtATime.validate([byte])) }
        XCTAssertTrue(byteAtATime.isComplete)
    }

    func testUTF8Validator_surrogateSplitAcrossCalls_rejectedAtSecondByte() {
        var validator = UTF8Validator()
        XCTAssertTrue(validator.validate([0x61, 0xED]))                 // ED could still start U+D000-D7FF
        XCTAssertFalse(validator.validate([0xA0]))                      // ED A0 can only be a surrogate
        XCTAssertTrue(validator.hasFailed)
        XCTAssertFalse(validator.validate([0x61]), "failure is sticky")
    }

    func testUTF8Validator_invalidByteAtEveryOffsetOfLongASCII_rejected() {
        // Exercises the 8-bytes-at-a-time ASCII path: the bad byte must be found wherever it sits.
        for offset in 0..<40 {
            var text = [UInt8](repeating: UInt8(ascii: "x"), count: 40)
            text[offset] = 0xFF
            XCTAssertFalse(UTF8Validator.isValid(text), "offset \(offset)")
        }
        XCTAssertTrue(UTF8Validator.isValid([UInt8](repeating: UInt8(ascii: "x"), count: 1000)))
    }

    func testUTF8Validator_allTwoByteSequences_matchStandardLibrary() {
        for first in 0...255 {
            for second in 0...255 {
                let input: [UInt8] = [UInt8(first), UInt8(second)]
                let expected = String(validating: input, as: UTF8.self) != nil
                XCTAssertEqual(UTF8Validator.isValid(input), expected, "\(input)")
            }
        }
    }

    func testUTF8Validator_randomSequences_matchStandardLibrary() {
        // Bytes drawn mostly from the lead/continuation ranges so that every DFA state is reached.
        var rng = SplitMix64(seed: 7)
        let alphabet: [UInt8] = [0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC2, 0xDF, 0xE0,
                                 0xE1, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF4, 0xF5, 0xFF]
        for _ in 0..<20_000 {
            let length = Int.random(in: 1...6, using: &rng)
            let input = (0..<length).map { _ in alphabet.randomElement(using: &rng)! }
            let expected = String(validating: input, as: UTF8.self) != nil
            XCTAssertEqual(UTF8Validator.isValid(input), expected, "\(input.map { String($0, radix: 16) })")
        }
    }
}
