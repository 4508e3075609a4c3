// AgentFrame.decode: every frame an RMM agent sends on /v1/agent.
import PeekCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: data, count: size))
    switch AgentFrame.decode(bytes) {
    case .success(.telemetry(let cpu, let ram, let disk)):
        require([cpu, ram, disk].allSatisfy { (0...100).contains($0) }, "telemetry out of range accepted")
    case .success: break
    case .failure(let error): require(!error.message.isEmpty, "refusal without a message")
    }
    return 0
}
