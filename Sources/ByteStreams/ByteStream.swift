public import NIOCore

/// A source of bytes read in order. Readers fill the caller's buffer directly, so a mini-batch
/// can be a slice of the very buffer the bytes were read into (no copy on the hot path).
public protocol ByteStream {
    /// Appends up to `maxBytes` bytes to `buffer`; returns how many, 0 only at the end.
    mutating func read(into buffer: inout ByteBuffer, maxBytes: Int) async throws -> Int
}

/// Lets an existential stream be wrapped by a generic one.
public struct AnyByteStream: ByteStream {
    var base: any ByteStream
    public init(_ base: any ByteStream) { self.base = base }
    public mutating func read(into buffer: inout ByteBuffer, maxBytes: Int) async throws -> Int {
        try await base.read(into: &buffer, maxBytes: maxBytes)
    }
}

/// Bytes that cannot be read as what they claim to be (a gzip stream that is not one, or is
/// cut short), naming the stream and the offset.
public struct ByteStreamError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case corruptInput, truncatedInput
    }

    public var code: Code
    public var message: String
    /// The underlying error, where one led to this.
    public var cause: (any Error & Sendable)?
    /// Where it was thrown (`Module/File.swift:line`), for bug reports; not part of the message.
    public var location: String

    public init(
        _ code: Code,
        _ message: String,
        cause: (any Error & Sendable)? = nil,
        file: String = #fileID,
        line: Int = #line
    ) {
        self.code = code
        self.message = message
        self.cause = cause
        self.location = "\(file):\(line)"
    }

    public var description: String { message }
}
