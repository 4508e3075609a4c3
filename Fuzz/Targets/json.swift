// JSONParser on any bytes; whatever parses must survive JSONWriter and parse
// back to the same value, and writing that again gives the same bytes.
import PeekCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: data, count: size))
    guard let value = try? JSONParser.parse(bytes) else { return 0 }
    let written = JSONWriter.encode(value)
    let reparsed: JSONValue
    do { reparsed = try JSONParser.parse(written) } catch {
        fatalError("JSONWriter output does not parse (\(error)): \(describe(written))")
    }
    require(reparsed == value, "round trip changed the value: \(describe(bytes)) -> \(describe(written))")
    require(JSONWriter.encode(reparsed) == written, "writing is not stable: \(describe(written))")
    return 0
}
