// A model server that costs almost nothing, so benchmarks measure the engine: it counts the
// records (lines) of each /invocations body and answers one short line ("0\n") per record.
// With TRIVIAL_ECHO=1 it answers the body itself, for benchmarks whose outputs must be large.
// With TRIVIAL_DELAY_MS=N each answer to /invocations comes N ms late (a timer, not a blocked
// thread), standing in for a model with a fixed time per batch, such as one on a GPU.
// With TRIVIAL_REFUSE=<text> a body holding that text is answered HTTP 400 (a bad record).
// With TRIVIAL_ARRIVALS_FILE=<path> the epoch time of each /invocations request is appended there
// (how a benchmark sees when the first batch reached any model, on any node).
// Started as `trivial-model-server serve`, on SAGEMAKER_BIND_TO_PORT.
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

final class TrivialModelHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// "0\n" repeated, sliced for each answer instead of built anew.
    private static let answers = ByteBuffer(string: String(repeating: "0\n", count: 4 << 20))
    private static let echo = ProcessInfo.processInfo.environment["TRIVIAL_ECHO"] == "1"
    private static let delay = Int64(ProcessInfo.processInfo.environment["TRIVIAL_DELAY_MS"] ?? "0") ?? 0
    private static let refused = ProcessInfo.processInfo.environment["TRIVIAL_REFUSE"].map { Array($0.utf8) }
    private static let arrivals = ProcessInfo.processInfo.environment["TRIVIAL_ARRIVALS_FILE"]
    private var holdsRefused = false
    /// The end of the previous body part, so a marker split between two parts is still found.
    private var tail: [UInt8] = []
    private var received = ByteBuffer()
    private var uri = ""
    private var keepAlive = true
    private var newlines = 0
    private var bytes = 0
    private var lastByte: UInt8 = 10

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            uri = head.uri
            if uri == "/invocations", let arrivals = Self.arrivals {
                let line = "\(Date().timeIntervalSince1970)\n"
                let descriptor = open(arrivals, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
                if descriptor >= 0 {
                    _ = line.withCString { write(descriptor, $0, strlen($0)) }
                    close(descriptor)
                }
            }
            keepAlive = head.isKeepAlive
            (newlines, bytes, lastByte) = (0, 0, 10)
            received.clear()
            (holdsRefused, tail) = (false, [])
        case .body(let body):
            if Self.echo { received.writeImmutableBuffer(body) }
            if let refused = Self.refused, !holdsRefused {
                // Where the previous part ended, then the part itself (no copy of the body).
                let seam = tail + Array(body.readableBytesView.prefix(refused.count - 1))
                holdsRefused =
                    seam.withUnsafeBytes { Self.contains($0, refused) }
                    || body.withUnsafeReadableBytes { Self.contains($0, refused) }
                tail = Array(body.readableBytesView.suffix(refused.count - 1))
            }
            body.withUnsafeReadableBytes { raw in
                guard let base = raw.baseAddress, raw.count > 0 else { return }
                var position = base
                let end = base + raw.count
                while let found = memchr(position, 10, end - position) {
                    newlines += 1
                    position = UnsafeRawPointer(found) + 1
                }
                lastByte = raw[raw.count - 1]
                bytes += raw.count
            }
        case .end:
            if Self.delay > 0, uri == "/invocations" {
                let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                context.eventLoop.scheduleTask(in: .milliseconds(Self.delay)) {
                    bound.value.0.respond(context: bound.value.1)
                }
            } else {
                respond(context: context)
            }
        }
    }

    /// Whether `bytes` hold `needle`: memchr to each candidate first byte, then a compare.
    private static func contains(_ bytes: UnsafeRawBufferPointer, _ needle: [UInt8]) -> Bool {
        guard let base = bytes.baseAddress, !needle.isEmpty, bytes.count >= needle.count else { return false }
        var position = base
        let last = base + (bytes.count - needle.count)
        while position <= last, let found = memchr(position, Int32(needle[0]), last - position + 1) {
            if memcmp(found, needle, needle.count) == 0 { return true }
            position = UnsafeRawPointer(found) + 1
        }
        return false
    }

    private func respond(context: ChannelHandlerContext) {
        let status: HTTPResponseStatus
        var answer = ByteBuffer()
        switch uri {
        case "/ping": status = .ok
        case "/invocations" where holdsRefused:
            status = .badRequest
            answer = ByteBuffer(string: "bad record\n")
        case "/invocations":
            status = .ok
            let records = newlines + (bytes > 0 && lastByte != 10 ? 1 : 0)
            answer = Self.echo ? received : Self.answers.getSlice(at: 0, length: min(records, 4 << 20) * 2)!
        default: status = .notFound
        }
        var headers = HTTPHeaders([
            ("Content-Length", String(answer.readableBytes)), ("Content-Type", "text/plain"),
        ])
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))),
            promise: nil
        )
        if answer.readableBytes > 0 { context.write(wrapOutboundOut(.body(.byteBuffer(answer))), promise: nil) }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        if !keepAlive { context.close(promise: nil) }
    }
}

guard CommandLine.arguments.dropFirst().first == "serve" else {
    FileHandle.standardError.write(Data("usage: trivial-model-server serve\n".utf8))
    exit(2)
}
let port = Int(ProcessInfo.processInfo.environment["SAGEMAKER_BIND_TO_PORT"] ?? "8080") ?? 8080
let channel = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
    .serverChannelOption(.backlog, value: 256)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.configureHTTPServerPipeline()
            try channel.pipeline.syncOperations.addHandler(TrivialModelHandler())
        }
    }
    .bind(host: "127.0.0.1", port: port)
    .wait()
print("trivial model server listening on \(port)")
try channel.closeFuture.wait()
