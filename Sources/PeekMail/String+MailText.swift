// Text helpers shared by the header writer, the parsers and log redaction. The
// stdlib lacks them, and this module keeps Foundation out.

extension StringProtocol {
    /// Without leading and trailing Unicode whitespace (no-break space included).
    func trimmingSpaces() -> String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
              let last = scalars.lastIndex(where: { !$0.properties.isWhitespace }) else { return "" }
        return String(String.UnicodeScalarView(scalars[first...last]))
    }

    /// Without trailing CR and LF.
    func trimmingLineEnd() -> String {
        var text = Substring(self)
        while let last = text.last, last == "\r" || last == "\n" || last == "\r\n" { text = text.dropLast() }
        return String(text)
    }
}

extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }

    func trimmingCharacters(of character: Character) -> String {
        var text = Substring(self)
        while text.first == character { text = text.dropFirst() }
        while text.last == character { text = text.dropLast() }
        return String(text)
    }

    func replacingFirst(_ target: Character, with replacement: String) -> String {
        guard let index = firstIndex(of: target) else { return self }
        return String(self[..<index]) + replacement + String(self[self.index(after: index)...])
    }
}

extension String {
    /// `split(omittingEmptySubsequences: false, whereSeparator:)`, consulting `budget`
    /// every few thousand characters: splitting megabytes into Characters takes long
    /// enough to overrun a parse's wall-clock budget.
    func lines(budget: ParseBudget, isBreak: (Character) -> Bool = { $0 == "\n" }) throws(InboundMailError) -> [Substring] {
        var lines: [Substring] = []
        var lineStart = startIndex
        var index = startIndex
        var steps = 0
        while index < endIndex {
            try budget.check(at: steps)
            steps += 1
            let next = self.index(after: index)
            if isBreak(self[index]) {
                lines.append(self[lineStart..<index])
                lineStart = next
            }
            index = next
        }
        lines.append(self[lineStart...])
        return lines
    }
}
