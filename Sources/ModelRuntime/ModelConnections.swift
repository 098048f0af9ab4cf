import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// HTTP/1.1 to one model server on loopback over kept-alive connections, one request at a time
/// on each. The engine sends thousands of small requests a second in SingleRecord jobs; a
/// general-purpose client's per-request machinery (URL parsing, pooling state machines, async
/// body streams) cost several times what the model server spends, so this path is direct.
final class ModelConnections: Sendable {
    struct Answer {
        var status: Int
        var body: ByteBuffer
        var keepAlive = true
    }

    // A promise completed twice (a timeout racing the answer) keeps its first result.
    private let host: String
    private let port: Int
    private let idle = Mutex<[any Channel]>([])
    private let maxIdle: Int
    private let maxResponseBytes: Int

    init(host: String, port: Int, maxIdle: Int, maxResponseBytes: Int) {
        self.host = host
        self.port = port
        self.maxIdle = maxIdle
        self.maxResponseBytes = maxResponseBytes
    }

    func request(
        _ method: HTTPMethod,
        _ path: String,
        headers: [(String, String)] = [],
        body: ByteBuffer? = nil,
        timeout: Duration
    ) async throws -> Answer {
        let channel = try await connection()
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: path)
        head.headers.add(name: "Host", value: "\(host):\(port)")
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        head.headers.add(name: "Content-Length", value: String(body?.readableBytes ?? 0))
        let promise = channel.eventLoop.makePromise(of: Answer.self)
        let timer = channel.eventLoop.scheduleTask(
            in: .nanoseconds(
                Int64(timeout.components.seconds) * 1_000_000_000
                    + timeout.components.attoseconds / 1_000_000_000
            )
        ) {
            promise.fail(RuntimeError(.invocationTimedOut, "no answer in time"))
            channel.close(promise: nil)
        }
        // A kept-alive connection the server has just closed fails the write: that fails the exchange.
        channel.writeAndFlush(ExchangeHandler.Exchange(head: head, body: body, answer: promise)).whenFailure {
            promise.fail($0)
        }
        do {
            let answer = try await withTaskCancellationHandler {
                try await promise.futureResult.get()
            } onCancel: {
                channel.close(promise: nil)
            }
            timer.cancel()
            release(channel, reuse: answer.keepAlive)
            return answer
        } catch {
            timer.cancel()
            channel.close(promise: nil)
            try Task.checkCancellation()
            throw error
        }
    }

    func close() {
        for channel in idle.withLock({ channels in
            defer { channels.removeAll() }
            return channels
        }) {
            channel.close(promise: nil)
        }
    }

    private func connection() async throws -> any Channel {
        while let channel = idle.withLock({ $0.popLast() }) {
            if channel.isActive { return channel }
        }
        let maxResponseBytes = self.maxResponseBytes
        return try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(2))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ExchangeHandler(maxResponseBytes: maxResponseBytes))
                }
            }
            .connect(host: host, port: port).get()
    }

    private func release(_ channel: any Channel, reuse: Bool) {
        let kept =
            reuse && channel.isActive
            && idle.withLock { channels in
                guard channels.count < maxIdle else { return false }
                channels.append(channel)
                return true
            }
        if !kept { channel.close(promise: nil) }
    }
}

/// Sends one request and collects its whole answer, then completes the exchange's promise.
/// A connection closed early fails the exchange, as does an answer over the limit.
private final class ExchangeHandler: ChannelDuplexHandler {
    struct Exchange {
        var head: HTTPRequestHead
        var body: ByteBuffer?
        var answer: EventLoopPromise<ModelConnections.Answer>
    }

    typealias OutboundIn = Exchange
    typealias OutboundOut = HTTPClientRequestPart
    typealias InboundIn = HTTPClientResponsePart

    private let maxResponseBytes: Int
    private var pending: EventLoopPromise<ModelConnections.Answer>?
    private var status = 0
    private var keepAlive = true
    private var body = ByteBuffer()

    init(maxResponseBytes: Int) { self.maxResponseBytes = maxResponseBytes }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let exchange = unwrapOutboundIn(data)
        pending = exchange.answer
        body.clear()
        context.write(wrapOutboundOut(.head(exchange.head)), promise: nil)
        if let payload = exchange.body, payload.readableBytes > 0 {
            context.write(wrapOutboundOut(.body(.byteBuffer(payload))), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = Int(head.status.code)
            keepAlive = head.isKeepAlive
        case .body(var part):
            if body.readableBytes + part.readableBytes > maxResponseBytes {
                pending?.fail(
                    RuntimeError(.invocationFailed, "the answer is larger than \(maxResponseBytes) bytes")
                )
                pending = nil
                context.close(promise: nil)
                return
            }
            body.writeBuffer(&part)
        case .end:
            let answer = ModelConnections.Answer(status: status, body: body, keepAlive: keepAlive)
            body = ByteBuffer()
            if !keepAlive { context.close(promise: nil) }
            pending?.succeed(answer)
            pending = nil
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        pending?.fail(
            RuntimeError(.connectionFailed, "the model server closed the connection before answering")
        )
        pending = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        pending?.fail(error)
        pending = nil
        context.close(promise: nil)
    }
}
