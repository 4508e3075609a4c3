/// `application/x-www-form-urlencoded` query strings (WHATWG URL §5.1):
/// pairs split on `&`, name from value on the first `=`, each part
/// form-decoded. Empty pairs (`a&&b`) are skipped; `a` alone is ("a", "").
/// Order and repeats are kept. The input is bounded by the request line limit.
public enum QueryString {
    public static func parse(_ raw: some StringProtocol) -> [(name: String, value: String)] {
        var items: [(name: String, value: String)] = []
        for pair in raw.split(separator: "&", omittingEmptySubsequences: true) {
            if let equals = pair.firstIndex(of: "=") {
                items.append((name: PercentEncoding.decodeFormComponent(pair[..<equals]),
                              value: PercentEncoding.decodeFormComponent(pair[pair.index(after: equals)...])))
            } else {
                items.append((name: PercentEncoding.decodeFormComponent(pair), value: ""))
            }
        }
        return items
    }

    /// The first value of `name`, or nil.
    public static func first(_ name: String, in items: [(name: String, value: String)]) -> String? {
        items.first { $0.name == name }?.value
    }
}
