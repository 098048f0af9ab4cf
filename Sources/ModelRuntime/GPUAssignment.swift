import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// How the machine's GPUs are shared among a job's local instances: GPU `d` goes to instance
/// `d mod N` (round-robin), so 4 GPUs and 4 instances give one model replica per GPU, and with
/// fewer GPUs than instances each instance gets one, shared. `BATCHFORM_GPUS_PER_INSTANCE=k`
/// gives each instance `k` consecutive GPUs instead, wrapping around.
public enum GPUAssignment {
    /// SageMaker's GPU families (P and G); Inferentia and Trainium need their own devices.
    public static func isGPU(instanceType: String) -> Bool {
        let family = instanceType.split(separator: ".").dropFirst().first ?? ""
        return family.hasPrefix("p") || family.hasPrefix("g")
    }

    /// The GPUs this machine offers Batchform: `CUDA_VISIBLE_DEVICES` when it is already set (the
    /// user or a scheduler chose them), else one per `GPU n:` line of `nvidia-smi -L`; empty when
    /// there are none or nvidia-smi is not on PATH.
    public static func visibleDevices(environment: [String: String]) async -> [String] {
        if let chosen = environment["CUDA_VISIBLE_DEVICES"] {
            return chosen.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty && $0 != "-1" }
        }
        let path = environment["PATH"] ?? "/usr/bin:/bin"
        let candidates: [String] = path.split(separator: ":").map { "\($0)/nvidia-smi" }
        guard let smi = candidates.first(where: { access($0, X_OK) == 0 }) else { return [] }
        let (status, output) = await ChildProcess.runToEnd(smi, ["-L"], environment: environment)
        guard status == 0 else { return [] }
        return output.split(separator: "\n").compactMap { line in
            guard line.hasPrefix("GPU "), let colon = line.firstIndex(of: ":") else { return nil }
            let index = line[line.index(line.startIndex, offsetBy: 4)..<colon]
            return Int(index).map(String.init)
        }
    }

    /// Each instance's devices, or nil for every instance when the type is not a GPU type or the
    /// machine has no GPUs (the runtime's own default then applies).
    public static func split(
        devices: [String],
        instances: Int,
        instanceType: String,
        gpusPerInstance: Int?
    ) -> [[String]?] {
        guard isGPU(instanceType: instanceType), !devices.isEmpty, instances > 0 else {
            return Array(repeating: nil, count: max(instances, 0))
        }
        if let perInstance = gpusPerInstance, perInstance > 0 {
            return (0..<instances).map { instance in
                (0..<perInstance).map { devices[(instance * perInstance + $0) % devices.count] }
            }
        }
        return (0..<instances).map { instance in
            devices.count >= instances
                ? devices.indices.filter { $0 % instances == instance }.map { devices[$0] }
                : [devices[instance % devices.count]]
        }
    }
}
