/// Plain text from an HTML mail body, for messages that have no text/plain part.
///
/// Not an HTML parser: it drops tags, `<head>`, `<style>`, `<script>` and comments,
/// turns block elements and `<br>` into line breaks, collapses whitespace as a browser
/// would, decodes the common entities, and prefixes `<blockquote>` content with "> " so
/// quoted history looks as it does in a plain-text mail and `QuotedHistory` can find it.
///
/// Linear in the HTML: every step consumes input, a quote nested deeper than
/// `maxQuoteDepth` is shown at that depth (so one line's prefix is bounded), and the
/// text stops with `.textTooLarge` once it passes `maxTextBytes`.
public enum HTMLText {
    public static func plainText(fromHTML html: String) -> String {
        ParseBudget.unbounded { budget throws(InboundMailError) in
            try plainText(fromHTML: html, limits: InboundMailLimits(maxTextBytes: .max), budget: budget)
        }
    }

    static func plainText(fromHTML html: String, limits: InboundMailLimits, budget: ParseBudget)
        throws(InboundMailError) -> String {
        // Scalars, for random access; copied with budget checks, as megabytes take a while.
        var scalars: [Unicode.Scalar] = []
        scalars.reserveCapacity(html.utf8.count)
        for (index, scalar) in html.unicodeScalars.enumerated() {
            try budget.check(at: index)
            scalars.append(scalar)
        }
        var converter = Converter(scalars, limits: limits, budget: budget)
        try converter.run()
        return try tidy(String(converter.output), budget: budget)
    }

    private static let blockTags: Set<String> = [
        "div", "tr", "table", "ul", "ol", "hr", "pre",
        "section", "article", "header", "footer", "address", "center", "dl", "dt", "dd", "form",
        "tbody", "thead", "tfoot", "caption", "fieldset", "figure", "main", "nav", "aside", "body", "html",
    ]
    /// Elements whose content is not text a person reads.
    private static let skippedTags: Set<String> = ["head", "style", "script", "title", "template", "noscript", "xml"]

    private struct Converter {
        let input: [Unicode.Scalar]
        let limits: InboundMailLimits
        let budget: ParseBudget
        var index = 0
        var output = String.UnicodeScalarView()
        /// UTF-8 bytes in `output`, held to `limits.maxTextBytes`.
        var outputBytes = 0
        /// Open `<blockquote>`s; the "> " prefix shows at most `limits.maxQuoteDepth`.
        var quoteDepth = 0
        var preDepth = 0
        var atLineStart = true
        var pendingSpace = false
        var trailingNewlines = 0

        init(_ input: [Unicode.Scalar], limits: InboundMailLimits, budget: ParseBudget) {
            self.input = input
            self.limits = limits
            self.budget = budget
        }

        var shownQuoteDepth: Int { min(quoteDepth, limits.maxQuoteDepth) }

        mutating func run() throws(InboundMailError) {
            var steps = 0
            while index < input.count {
                // One step adds at most a line's bounded prefix and an entity's text, so
                // checking after each step holds the output near the limit.
                guard outputBytes <= limits.maxTextBytes else { throw .textTooLarge(limitBytes: limits.maxTextBytes) }
                try budget.check(at: steps)
                steps += 1
                let scalar = input[index]
                if scalar == "<" {
                    try handleMarkup()
                } else if scalar == "&" {
                    let (text, length) = HTMLText.entity(input, at: index)
                    emitText(text)
                    index += length
                } else if scalar.properties.isWhitespace && preDepth == 0 {
                    if !atLineStart { pendingSpace = true }
                    index += 1
                } else if scalar == "\n" {
                    newline()
                    index += 1
                } else {
                    emitText(String(scalar))
                    index += 1
                }
            }
            guard outputBytes <= limits.maxTextBytes else { throw .textTooLarge(limitBytes: limits.maxTextBytes) }
        }

        mutating func append(_ scalar: Unicode.Scalar) {
            output.append(scalar)
            outputBytes += UTF8.width(scalar)
        }

        mutating func emitText(_ text: String) {
            for scalar in text.unicodeScalars {
                if atLineStart {
                    for _ in 0..<shownQuoteDepth { append(">"); append(" ") }
                    atLineStart = false
                    pendingSpace = false
                } else if pendingSpace {
                    append(" ")
                    pendingSpace = false
                }
                // A no-break space is a space to a reader of plain text.
                append(scalar == "\u{00A0}" ? " " : scalar)
                trailingNewlines = 0
            }
        }

        mutating func newline() {
            if atLineStart {
                for _ in 0..<shownQuoteDepth { append(">") }
            }
            append("\n")
            trailingNewlines += 1
            atLineStart = true
            pendingSpace = false
        }

        mutating func blockBoundary() {
            if !atLineStart { newline() }
        }

        /// A paragraph ends with an empty line, as a browser's margins show it.
        mutating func paragraphBoundary() {
            blockBoundary()
            if !output.isEmpty && trailingNewlines < 2 { newline() }
        }

        mutating func handleMarkup() throws(InboundMailError) {
            if matches("<!--") {
                index = try find("-->").map { $0 + 3 } ?? input.count
                return
            }
            guard let (name, isClosing, end) = tag(at: index) else {
                emitText("<")
                index += 1
                return
            }
            index = end
            if !isClosing && skippedTags.contains(name) {
                index = try find("</\(name)", caseInsensitive: true).flatMap { closeStart in
                    input[closeStart...].firstIndex(of: ">").map { $0 + 1 }
                } ?? input.count
                return
            }
            switch name {
            case "br":
                newline()
            case "blockquote":
                blockBoundary()
                quoteDepth = max(0, quoteDepth + (isClosing ? -1 : 1))
            case "pre":
                blockBoundary()
                preDepth = max(0, preDepth + (isClosing ? -1 : 1))
            case "li":
                blockBoundary()
                if !isClosing { emitText("- ") }
            case "td", "th":
                if isClosing { pendingSpace = !atLineStart }
            case "p", "h1", "h2", "h3", "h4", "h5", "h6":
                paragraphBoundary()
            default:
                if blockTags.contains(name) { blockBoundary() }
            }
        }

        /// A tag at `start`: its lowercased name, whether it closes, and the index after
        /// its `>`. Quoted attribute values may contain ">".
        func tag(at start: Int) -> (String, Bool, Int)? {
            var i = start + 1
            var isClosing = false
            if i < input.count && input[i] == "/" { isClosing = true; i += 1 }
            let nameStart = i
            while i < input.count && (input[i].properties.isAlphabetic || ("0"..."9").contains(input[i]) || input[i] == ":") { i += 1 }
            guard i > nameStart || (i < input.count && input[i] == "!") else { return nil }
            let name = String(String.UnicodeScalarView(input[nameStart..<i])).lowercased()
            var quote: Unicode.Scalar?
            while i < input.count {
                let scalar = input[i]
                if let open = quote {
                    if scalar == open { quote = nil }
                } else if scalar == "\"" || scalar == "'" {
                    quote = scalar
                } else if scalar == ">" {
                    return (name, isClosing, i + 1)
                }
                i += 1
            }
            return (name, isClosing, input.count)
        }

        func matches(_ text: String) -> Bool {
            var i = index
            for scalar in text.unicodeScalars {
                guard i < input.count, input[i] == scalar else { return false }
                i += 1
            }
            return true
        }

        func find(_ text: String, caseInsensitive: Bool = false) throws(InboundMailError) -> Int? {
            let needle = Array((caseInsensitive ? text.lowercased() : text).unicodeScalars)
            guard let first = needle.first else { return nil }
            var i = index
            while i + needle.count <= input.count {
                try budget.check(at: i)
                let candidate = caseInsensitive ? HTMLText.lowercased(input[i]) : input[i]
                if candidate == first {
                    var matched = true
                    for k in 1..<needle.count {
                        let value = caseInsensitive ? HTMLText.lowercased(input[i + k]) : input[i + k]
                        if value != needle[k] { matched = false; break }
                    }
                    if matched { return i }
                }
                i += 1
            }
            return nil
        }
    }

    static func lowercased(_ scalar: Unicode.Scalar) -> Unicode.Scalar {
        ("A"..."Z").contains(scalar) ? Unicode.Scalar(scalar.value + 32) ?? scalar : scalar
    }

    private static let namedEntities: [String: String] = [
        "amp": "&", "lt": "<", "gt": ">", "quot": "\"", "apos": "'", "nbsp": " ",
        "copy": "©", "reg": "®", "trade": "™", "hellip": "…", "mdash": "—", "ndash": "–",
        "lsquo": "‘", "rsquo": "’", "sbquo": "‚", "ldquo": "“", "rdquo": "”", "bdquo": "„",
        "bull": "•", "middot": "·", "euro": "€", "pound": "£", "yen": "¥", "cent": "¢",
        "sect": "§", "deg": "°", "plusmn": "±", "times": "×", "divide": "÷", "laquo": "«",
        "raquo": "»", "iexcl": "¡", "iquest": "¿", "shy": "", "zwnj": "", "zwj": "",
        "aacute": "á", "eacute": "é", "iacute": "í", "oacute": "ó", "uacute": "ú", "yacute": "ý",
        "Aacute": "Á", "Eacute": "É", "Iacute": "Í", "Oacute": "Ó", "Uacute": "Ú",
        "agrave": "à", "egrave": "è", "igrave": "ì", "ograve": "ò", "ugrave": "ù",
        "Agrave": "À", "Egrave": "È", "acirc": "â", "ecirc": "ê", "icirc": "î", "ocirc": "ô", "ucirc": "û",
        "auml": "ä", "euml": "ë", "iuml": "ï", "ouml": "ö", "uuml": "ü", "yuml": "ÿ",
        "Auml": "Ä", "Ouml": "Ö", "Uuml": "Ü", "szlig": "ß", "ntilde": "ñ", "Ntilde": "Ñ",
        "ccedil": "ç", "Ccedil": "Ç", "atilde": "ã", "otilde": "õ", "aring": "å", "Aring": "Å",
        "aelig": "æ", "AElig": "Æ", "oslash": "ø", "Oslash": "Ø",
    ]

    /// The text of the entity at `start` and how many scalars it spans; a lone "&"
    /// or an unknown name is kept as written.
    static func entity(_ input: [Unicode.Scalar], at start: Int) -> (String, Int) {
        var i = start + 1
        while i < input.count && i - start <= 32 && input[i] != ";" && !input[i].properties.isWhitespace && input[i] != "&" && input[i] != "<" { i += 1 }
        guard i < input.count, input[i] == ";", i > start + 1 else { return ("&", 1) }
        let name = String(String.UnicodeScalarView(input[(start + 1)..<i]))
        let length = i - start + 1
        if name.hasPrefix("#") {
            let digits = name.dropFirst()
            let value = digits.first == "x" || digits.first == "X" ? UInt32(digits.dropFirst(), radix: 16) : UInt32(digits)
            guard let value, value != 0, let scalar = Unicode.Scalar(value) else { return ("\u{FFFD}", length) }
            return (String(scalar), length)
        }
        guard let text = namedEntities[name] else { return ("&", 1) }
        return (text, length)
    }

    /// Trims each line's end, drops blank lines at either end, and keeps at most one
    /// blank line in a row.
    static func tidy(_ text: String, budget: ParseBudget) throws(InboundMailError) -> String {
        var lines: [Substring] = []
        var blankRun = 0
        for (index, raw) in try text.lines(budget: budget).enumerated() {
            try budget.check(at: index)
            var line = raw
            while let last = line.last, last == " " || last == "\t" || last == "\r" { line = line.dropLast() }
            let isBlank = line.allSatisfy { $0 == " " || $0 == ">" }
            if isBlank {
                blankRun += 1
                if blankRun > 1 || lines.isEmpty { continue }
            } else {
                blankRun = 0
            }
            lines.append(line)
        }
        while let last = lines.last, last.allSatisfy({ $0 == " " || $0 == ">" }) { lines.removeLast() }
        return lines.joined(separator: "\n")
    }
}
