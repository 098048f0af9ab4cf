import ByteStreams
import Foundation
import NIOCore
import Records
import TransformSpec

/// Bytes in memory, handed out at most `chunk` at a time, to exercise records cut across reads.
struct MemoryStream: ByteStream {
    var bytes: [UInt8]
    var chunk: Int
    var position = 0

    init(_ bytes: [UInt8], chunk: Int = 7) {
        self.bytes = bytes
        self.chunk = chunk
    }

    mutating func read(into buffer: inout ByteBuffer, maxBytes: Int) async throws -> Int {
        let count = min(maxBytes, chunk, bytes.count - position)
        buffer.writeBytes(bytes[position..<position + count])
        position += count
        return count
    }
}

func batches(
    _ bytes: [UInt8],
    split: SplitType,
    strategy: BatchStrategy,
    limit: Int,
    chunk: Int = 7
) async throws -> [[UInt8]] {
    var batcher = MiniBatcher(
        source: MemoryStream(bytes, chunk: chunk),
        splitType: split,
        strategy: strategy,
        maxPayloadBytes: limit,
        objectName: "test-object"
    )
    var result: [[UInt8]] = []
    while let batch = try await batcher.next() { result.append(Array(batch.payload.readableBytesView)) }
    return result
}

func recordIO(_ payload: [UInt8], flag: UInt32 = 0) -> [UInt8] { RecordEncoding.recordIO(payload, partFlag: flag) }

func tfRecord(_ payload: [UInt8]) -> [UInt8] { RecordEncoding.tfRecord(payload) }

func gzip(_ bytes: [UInt8]) throws -> [UInt8] {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/sh")
    process.arguments = ["-c", "gzip -c"]
    let input = Pipe()
    let output = Pipe()
    process.standardInput = input
    process.standardOutput = output
    try process.run()
    input.fileHandleForWriting.write(Data(bytes))
    try input.fileHandleForWriting.close()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return Array(data)
}

func readAll(_ stream: some ByteStream) async throws -> [UInt8] {
    var stream = stream
    var buffer = ByteBuffer()
    while try await stream.read(into: &buffer, maxBytes: 5) > 0 {}
    return Array(buffer.readableBytesView)
}
