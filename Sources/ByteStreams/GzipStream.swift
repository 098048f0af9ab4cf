import CZlib
public import NIOCore

/// Decompresses a gzip stream as it is read, inflating straight into the caller's buffer.
/// Concatenated gzip members (what `cat a.gz b.gz` or parallel compressors produce) are read as
/// one stream, as `gunzip` does.
public final class GzipStream<Source: ByteStream>: ByteStream {
    private var source: Source
    private var input = ByteBuffer()
    private var stream = z_stream()
    private var sourceEnded = false
    private var finished = false
    private var memberEnded = false
    private var compressedOffset: Int64 = 0
    private let name: String

    public init(_ source: Source, name: String) throws {
        self.source = source
        self.name = name
        // 16 + MAX_WBITS: expect a gzip header and trailer.
        guard batchform_inflateInit2(&stream, 16 + MAX_WBITS) == Z_OK else {
            throw ByteStreamError(.corruptInput, "\(name): zlib could not be initialised.")
        }
    }

    deinit { inflateEnd(&stream) }

    public func read(into buffer: inout ByteBuffer, maxBytes: Int) async throws -> Int {
        while !finished {
            if input.readableBytes == 0, !sourceEnded {
                input.clear()
                if try await source.read(into: &input, maxBytes: 256 * 1024) == 0 { sourceEnded = true }
            }
            if memberEnded {
                // Another member follows only if there are more (non-padding) bytes.
                if input.readableBytes == 0, sourceEnded {
                    finished = true
                    break
                }
                guard inflateReset(&stream) == Z_OK else {
                    throw ByteStreamError(.corruptInput, "\(name): zlib could not start the next gzip member.")
                }
                memberEnded = false
            }
            if input.readableBytes == 0, sourceEnded {
                throw ByteStreamError(
                    .truncatedInput,
                    "\(name): the gzip stream ends early, at compressed byte \(compressedOffset). "
                        + "The file is truncated; re-create or re-upload it."
                )
            }
            let produced = try inflateOnce(into: &buffer, maxBytes: maxBytes)
            if produced > 0 { return produced }
        }
        return 0
    }

    private func inflateOnce(into buffer: inout ByteBuffer, maxBytes: Int) throws -> Int {
        var status: Int32 = Z_OK
        var consumed = 0
        let produced = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: maxBytes) { target in
            input.withUnsafeMutableReadableBytes { source in
                stream.next_in = source.baseAddress?.assumingMemoryBound(to: Bytef.self)
                stream.avail_in = UInt32(source.count)
                stream.next_out = target.baseAddress?.assumingMemoryBound(to: Bytef.self)
                stream.avail_out = UInt32(maxBytes)
                status = inflate(&stream, Z_NO_FLUSH)
                consumed = source.count - Int(stream.avail_in)
                return maxBytes - Int(stream.avail_out)
            }
        }
        input.moveReaderIndex(forwardBy: consumed)
        compressedOffset += Int64(consumed)
        switch status {
        case Z_STREAM_END:
            memberEnded = true
        case Z_OK, Z_BUF_ERROR:
            break
        default:
            let detail = stream.msg.map { String(cString: $0) } ?? "error \(status)"
            throw ByteStreamError(
                .corruptInput,
                "\(name): not valid gzip data near compressed byte \(compressedOffset) (\(detail)). "
                    + "Check CompressionType: it is Gzip, so every input object must be gzip-compressed."
            )
        }
        return produced
    }
}
