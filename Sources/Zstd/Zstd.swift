import CZstd

// zstd frames for archived event segments and backups.
//
// Every frame Tally writes carries a content checksum (XXH64, checked on decompression) and, when the
// size is known up front, the content size. Every zstd return code passes through `checked(_:_:)`,
// the one place that turns zstd's `size_t` results into values or a `ZstdError`.

/// An error from zstd, or from Tally's bounds around it.
///
/// ```swift
/// do { _ = try Zstd.decompress(bytes, maximumSize: 1 << 20) }
/// catch where error.code == .checksumWrong { /* the archive is damaged */ }
/// ```
public struct ZstdError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The kind of failure: zstd's `ZSTD_ErrorCode` raw values, as an open set.
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        /// The `ZSTD_ErrorCode` value.
        public var rawValue: Int
        /// Wraps a `ZSTD_ErrorCode` value.
        public init(rawValue: Int) { self.rawValue = rawValue }

        /// An error zstd does not classify further.
        public static let generic = Code(rawValue: 1)
        /// The input does not start with a zstd frame's magic number.
        public static let prefixUnknown = Code(rawValue: 10)
        /// The frame was written by an unsupported zstd format version.
        public static let versionUnsupported = Code(rawValue: 12)
        /// The frame header asks for a feature this library does not support.
        public static let frameParameterUnsupported = Code(rawValue: 14)
        /// The frame needs a larger window (memory) than the decoder allows.
        public static let frameParameterWindowTooLarge = Code(rawValue: 16)
        /// The compressed data is damaged.
        public static let corruptionDetected = Code(rawValue: 20)
        /// The decompressed data does not match the frame's checksum: the data is damaged.
        public static let checksumWrong = Code(rawValue: 22)
        /// A compression parameter is out of its allowed range (for example the level).
        public static let parameterOutOfBound = Code(rawValue: 42)
        /// An operation came at the wrong stage (for example appending to a finished compressor).
        public static let stageWrong = Code(rawValue: 60)
        /// zstd could not allocate memory.
        public static let memoryAllocation = Code(rawValue: 64)
        /// The output would be larger than allowed (Tally: larger than `maximumSize`).
        public static let dstSizeTooSmall = Code(rawValue: 70)
        /// The input has the wrong size: a truncated frame, or a size other than the pledged one.
        public static let srcSizeWrong = Code(rawValue: 72)

        /// zstd's own name for the code, for example `Restored data doesn't match checksum`.
        public var description: String {
            String(cString: ZSTD_getErrorString(ZSTD_ErrorCode(rawValue: UInt32(truncatingIfNeeded: rawValue))))
        }
    }

    /// What kind of failure this is.
    public var code: Code
    /// What went wrong and what to do, for people.
    public var message: String

    /// Creates an error with a code and a message.
    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    /// The message.
    public var description: String { message }
}

/// One-shot zstd compression and bounded decompression.
///
/// ```swift
/// let frame = try Zstd.compress(Array("hello".utf8))
/// let bytes = try Zstd.decompress(frame, maximumSize: 1 << 20)
/// ```
public enum Zstd {
    /// The default compression level (zstd's own default).
    public static let defaultLevel = 3

    /// The compression levels this zstd accepts (negative levels are faster, up to 22 smaller).
    public static var levels: ClosedRange<Int> { Int(ZSTD_minCLevel())...Int(ZSTD_maxCLevel()) }

    /// Compresses `input` into one zstd frame with its content size and a content checksum.
    ///
    /// - Throws: `ZstdError` with `.parameterOutOfBound` for a level outside `levels`.
    public static func compress(_ input: UnsafeRawBufferPointer, level: Int = defaultLevel) throws(ZstdError) -> [UInt8] {
        let context = try CompressionContext(level: level)
        let bound = try checked(ZSTD_compressBound(input.count), "sizing the output for \(input.count) bytes")
        var failure: ZstdError?
        let output = [UInt8](unsafeUninitializedCapacity: bound) { buffer, initializedCount in
            do throws(ZstdError) {
                initializedCount = try checked(
                    ZSTD_compress2(context.pointer, buffer.baseAddress, buffer.count, input.baseAddress, input.count),
                    "compressing"
                )
            } catch {
                failure = error
                initializedCount = 0
            }
        }
        if let failure { throw failure }
        return output
    }

    /// Compresses `input` into one zstd frame with its content size and a content checksum.
    public static func compress(_ input: [UInt8], level: Int = defaultLevel) throws(ZstdError) -> [UInt8] {
        try withBytes(input) { (bytes) throws(ZstdError) in try compress(bytes, level: level) }
    }

    /// Decompresses one or more concatenated zstd frames, with or without a content size in their
    /// headers, verifying checksums.
    ///
    /// - Parameter maximumSize: the most bytes the output may have; larger output is an error, found
    ///   without producing more than `maximumSize + 1` bytes.
    /// - Throws: `ZstdError`: `.dstSizeTooSmall` when the output would exceed `maximumSize`,
    ///   `.srcSizeWrong` for empty or truncated input, `.checksumWrong` or `.corruptionDetected` for
    ///   damaged data, `.prefixUnknown` for input that is not zstd.
    public static func decompress(_ input: UnsafeRawBufferPointer, maximumSize: Int) throws(ZstdError) -> [UInt8] {
        precondition(maximumSize >= 0, "maximumSize must not be negative")
        guard let base = input.baseAddress, input.count > 0 else {
            throw ZstdError(code: .srcSizeWrong, message: "cannot decompress empty input: it holds no zstd frame")
        }
        // A declared content size lets the output be allocated once (only when it is within bounds).
        let declared = ZSTD_getFrameContentSize(base, input.count)
        if declared != tally_zstd_content_size_unknown(), declared != tally_zstd_content_size_error() {
            if declared > UInt64(maximumSize) {
                throw tooLarge(maximumSize)
            }
        }

        guard let stream = ZSTD_createDCtx() else {
            throw ZstdError(code: .memoryAllocation, message: "zstd could not allocate a decompression context")
        }
        defer { ZSTD_freeDCtx(stream) }

        var output: [UInt8] = []
        if declared != tally_zstd_content_size_unknown(), declared != tally_zstd_content_size_error() {
            output.reserveCapacity(Int(declared))
        }
        let chunkSize = ZSTD_DStreamOutSize()
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 1)
        defer { chunk.deallocate() }

        var source = ZSTD_inBuffer(src: base, size: input.count, pos: 0)
        while true {
            // Never ask for more than one byte past the limit: that byte is enough to know it is exceeded.
            let allowed = maximumSize - output.count
            let room = allowed >= chunkSize ? chunkSize : allowed + 1
            var destination = ZSTD_outBuffer(dst: chunk.baseAddress, size: room, pos: 0)
            let inputBefore = source.pos
            let pending = try checked(ZSTD_decompressStream(stream, &destination, &source), "decompressing")
            if destination.pos > 0 {
                if output.count + destination.pos > maximumSize { throw tooLarge(maximumSize) }
                output.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[0..<destination.pos]))
            }
            // 0 means a frame just ended and is fully flushed: with all input read, that is the end,
            // even when the last chunk happened to fill the buffer exactly (asking again would make
            // zstd expect a next frame and look like truncation).
            if pending == 0 && source.pos == source.size { return output }
            let outputFull = destination.pos == destination.size
            if source.pos == source.size && !outputFull {
                // All input read and everything decodable flushed: a frame still open means truncation.
                if pending != 0 {
                    throw ZstdError(
                        code: .srcSizeWrong,
                        message: "the zstd data ends inside a frame (truncated after \(input.count) bytes); "
                            + "the file is incomplete: restore it from a backup"
                    )
                }
                return output
            }
            if destination.pos == 0 && source.pos == inputBefore {
                throw ZstdError(code: .generic, message: "zstd made no progress while decompressing; the data is damaged")
            }
        }
    }

    /// Decompresses zstd frames; see `decompress(_:maximumSize:)` for the raw-buffer form.
    public static func decompress(_ input: [UInt8], maximumSize: Int) throws(ZstdError) -> [UInt8] {
        try withBytes(input) { (bytes) throws(ZstdError) in try decompress(bytes, maximumSize: maximumSize) }
    }

    private static func tooLarge(_ maximumSize: Int) -> ZstdError {
        ZstdError(
            code: .dstSizeTooSmall,
            message: "the decompressed data is larger than the allowed maximum of \(maximumSize) bytes; "
                + "raise the limit if the data is trusted"
        )
    }
}

/// Compresses a stream of bytes into one zstd frame with a content checksum, chunk by chunk, for
/// data too large to hold twice in memory (archived segments).
///
/// ```swift
/// let compressor = try ZstdCompressor()
/// var frame = try compressor.append(firstPart)
/// frame += try compressor.append(secondPart)
/// frame += try compressor.finish()
/// ```
/// Not thread-safe: one compressor belongs to one task at a time.
public final class ZstdCompressor {
    private let context: CompressionContext
    private let chunk: UnsafeMutableRawBufferPointer
    private var finished = false

    /// Starts a frame.
    ///
    /// - Parameter pledgedSize: the exact total number of bytes that will be appended, written into
    ///   the frame header as its content size; `finish()` fails with `.srcSizeWrong` if the total differs.
    public init(level: Int = Zstd.defaultLevel, pledgedSize: Int? = nil) throws(ZstdError) {
        context = try CompressionContext(level: level)
        if let pledgedSize {
            precondition(pledgedSize >= 0, "pledgedSize must not be negative")
            _ = try checked(
                ZSTD_CCtx_setPledgedSrcSize(context.pointer, UInt64(pledgedSize)),
                "setting the pledged size"
            )
        }
        chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: ZSTD_CStreamOutSize(), alignment: 1)
    }

    deinit { chunk.deallocate() }

    /// Feeds bytes to the frame and returns the compressed bytes ready so far (often none: zstd
    /// buffers up to a block).
    public func append(_ bytes: UnsafeRawBufferPointer) throws(ZstdError) -> [UInt8] {
        try requireOpen()
        var emitted: [UInt8] = []
        var source = ZSTD_inBuffer(src: bytes.baseAddress, size: bytes.count, pos: 0)
        while source.pos < source.size {
            var destination = ZSTD_outBuffer(dst: chunk.baseAddress, size: chunk.count, pos: 0)
            _ = try checked(ZSTD_compressStream2(context.pointer, &destination, &source, ZSTD_e_continue), "compressing")
            emitted.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[0..<destination.pos]))
        }
        return emitted
    }

    /// Feeds bytes to the frame and returns the compressed bytes ready so far.
    public func append(_ bytes: [UInt8]) throws(ZstdError) -> [UInt8] {
        try withBytes(bytes) { (raw) throws(ZstdError) in try append(raw) }
    }

    /// Closes the frame and returns its last bytes (including the checksum). The compressor cannot be
    /// used afterwards.
    public func finish() throws(ZstdError) -> [UInt8] {
        try requireOpen()
        finished = true
        var emitted: [UInt8] = []
        var source = ZSTD_inBuffer(src: nil, size: 0, pos: 0)
        while true {
            var destination = ZSTD_outBuffer(dst: chunk.baseAddress, size: chunk.count, pos: 0)
            let remaining = try checked(
                ZSTD_compressStream2(context.pointer, &destination, &source, ZSTD_e_end),
                "finishing the frame"
            )
            emitted.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[0..<destination.pos]))
            if remaining == 0 { return emitted }
        }
    }

    private func requireOpen() throws(ZstdError) {
        if finished {
            throw ZstdError(
                code: .stageWrong,
                message: "this ZstdCompressor has already finished its frame; create a new one for more data"
            )
        }
    }
}

@available(*, unavailable)
extension ZstdCompressor: Sendable {}

/// A `ZSTD_CCtx` set up for Tally's frames: the level, a content checksum, the content size.
private final class CompressionContext {
    let pointer: OpaquePointer

    init(level: Int) throws(ZstdError) {
        guard Zstd.levels.contains(level) else {
            throw ZstdError(
                code: .parameterOutOfBound,
                message: "zstd level \(level) is out of range; use a level from \(Zstd.levels.lowerBound) "
                    + "to \(Zstd.levels.upperBound) (3 is the default)"
            )
        }
        guard let pointer = ZSTD_createCCtx() else {
            throw ZstdError(code: .memoryAllocation, message: "zstd could not allocate a compression context")
        }
        self.pointer = pointer
        _ = try checked(ZSTD_CCtx_setParameter(pointer, ZSTD_c_compressionLevel, Int32(level)), "setting the level")
        _ = try checked(ZSTD_CCtx_setParameter(pointer, ZSTD_c_checksumFlag, 1), "enabling checksums")
        _ = try checked(ZSTD_CCtx_setParameter(pointer, ZSTD_c_contentSizeFlag, 1), "enabling the content size")
    }

    deinit { ZSTD_freeCCtx(pointer) }
}

/// The chokepoint: a zstd `size_t` result becomes its value, or a `ZstdError` naming what Tally was doing.
private func checked(_ result: Int, _ activity: String) throws(ZstdError) -> Int {
    guard ZSTD_isError(result) != 0 else { return result }
    let code = ZstdError.Code(rawValue: Int(ZSTD_getErrorCode(result).rawValue))
    let name = String(cString: ZSTD_getErrorName(result))
    throw ZstdError(code: code, message: "zstd failed while \(activity): \(name)\(advice(for: code))")
}

private func advice(for code: ZstdError.Code) -> String {
    switch code {
    case .checksumWrong, .corruptionDetected:
        "; the compressed data is damaged: restore it from a backup"
    case .prefixUnknown:
        "; the input is not zstd data"
    case .srcSizeWrong:
        "; the input is incomplete or does not have the announced size"
    case .memoryAllocation:
        "; free some memory and retry"
    default:
        ""
    }
}

/// Runs `body` on the bytes of an array, with typed throws preserved.
private func withBytes<Result>(
    _ array: [UInt8],
    _ body: (UnsafeRawBufferPointer) throws(ZstdError) -> Result
) throws(ZstdError) -> Result {
    let outcome: Swift.Result<Result, ZstdError> = array.withUnsafeBytes { bytes in
        do throws(ZstdError) { return .success(try body(bytes)) } catch { return .failure(error) }
    }
    return try outcome.get()
}
