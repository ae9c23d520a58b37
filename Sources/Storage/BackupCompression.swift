import Crypto
import Foundation
import LMDB
import Metering
import Zstd

// MARK: - Compression

extension BackupFiles {
    /// Compresses the file at `source` into a new file at `destination` as frames of `frameInputBytes`,
    /// hashing both sides on the way.
    static func compress(_ source: String, to destination: String, name: String) throws(StoreError) -> BackupManifest.File {
        let input = try openForReading(source)
        defer { close(input) }
        return try compress(descriptor: input, shownAs: source, to: destination, name: name)
    }

    /// Compresses everything `input` yields until its end (a file, or the read end of a pipe) into
    /// `destination`; `source` names the input in messages.
    static func compress(descriptor input: Int32, shownAs source: String, to destination: String, name: String) throws(StoreError) -> BackupManifest.File {
        let output = try createExclusive(destination)
        defer { close(output) }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: frameInputBytes, alignment: 16)
        defer { buffer.deallocate() }
        var dataHash = SHA256()
        var compressedHash = SHA256()
        var dataSize = 0
        var compressedSize = 0
        while true {
            let count = try readFully(input, into: buffer, path: source)
            if count == 0 { break }
            let chunk = UnsafeRawBufferPointer(rebasing: buffer[0..<count])
            dataHash.update(bufferPointer: chunk)
            for piece in frames(of: chunk) {
                let frame: [UInt8]
                do {
                    frame = try Zstd.compress(piece)
                } catch {
                    throw StoreError(.unavailable, "cannot compress '\(source)' into '\(destination)': \(error.message)")
                }
                compressedHash.update(data: frame)
                try writeAll(output, frame, path: destination)
                compressedSize += frame.count
            }
            dataSize += count
            if count < buffer.count { break }
        }
        try sync(output, path: destination)
        return BackupManifest.File(
            name: name, compressedSize: compressedSize, uncompressedSize: dataSize,
            compressedSHA256: hex(compressedHash.finalize()), uncompressedSHA256: hex(dataHash.finalize()))
    }

    /// The pieces of `chunk` to compress as one frame each: the chunk itself, or, when its size is a
    /// positive multiple of `zstdBlockBytes`, all but its last byte and that byte.
    ///
    /// `Zstd.decompress` wrongly reports a frame whose content is a multiple of
    /// `ZSTD_DStreamOutSize()` (128 KiB) as truncated: the call that ends the frame also fills its
    /// output chunk, and the next call's non-zero hint (for a next frame) is taken for an unfinished
    /// frame. Full chunks (`frameInputBytes`) never are such a multiple; only a file's last chunk can be.
    static func frames(of chunk: UnsafeRawBufferPointer) -> [UnsafeRawBufferPointer] {
        guard chunk.count > 0, chunk.count % zstdBlockBytes == 0 else { return [chunk] }
        return [UnsafeRawBufferPointer(rebasing: chunk[0..<(chunk.count - 1)]),
                UnsafeRawBufferPointer(rebasing: chunk[(chunk.count - 1)...])]
    }

    /// Checks the size and SHA-256 of a compressed file against the manifest, reading it once.

    static func decompress(_ file: BackupManifest.File, from source: String, to destination: String) throws(StoreError) {
        func damaged(_ what: String) -> StoreError {
            StoreError(.damaged, "'\(source)' is damaged (\(what)): the backup cannot be restored; use another backup")
        }
        let input = try openForReading(source)
        defer { close(input) }
        let output = try createExclusive(destination)
        defer { close(output) }
        let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: readBytes, alignment: 16)
        defer { readBuffer.deallocate() }
        var pending: [UInt8] = []
        var consumed = 0
        var endOfFile = false
        var hash = SHA256()
        var total = 0
        frames: while true {
            let scan = pending.withUnsafeBytes { frameLength(in: UnsafeRawBufferPointer(rebasing: $0[consumed...])) }
            switch scan {
            case .invalid(let reason):
                throw damaged(reason)
            case .complete(let length):
                guard length <= maximumFrameBytes else { throw damaged("a zstd frame of \(length) bytes is larger than tally writes") }
                let frameResult: Result<[UInt8], ZstdError> = pending.withUnsafeBytes { bytes in
                    Result { () throws(ZstdError) -> [UInt8] in
                        try Zstd.decompress(UnsafeRawBufferPointer(rebasing: bytes[consumed..<(consumed + length)]), maximumSize: frameInputBytes)
                    }
                }
                let data: [UInt8]
                switch frameResult {
                case .success(let bytes): data = bytes
                case .failure(let error): throw damaged(error.message)
                }
                total += data.count
                guard total <= file.uncompressedSize else {
                    throw damaged("it holds more than the \(file.uncompressedSize) bytes manifest.json records for \(file.name)")
                }
                hash.update(data: data)
                try writeAll(output, data, path: destination)
                consumed += length
                if consumed == pending.count {
                    pending.removeAll(keepingCapacity: true)
                    consumed = 0
                }
            case .needMore:
                if pending.count - consumed > maximumFrameBytes {
                    throw damaged("a zstd frame is larger than tally writes")
                }
                if endOfFile {
                    if pending.count == consumed { break frames }
                    throw damaged("it ends inside a zstd frame")
                }
                if consumed > 0 {
                    pending.removeFirst(consumed)
                    consumed = 0
                }
                let count = try readFully(input, into: readBuffer, path: source)
                pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: readBuffer[0..<count]))
                if count < readBuffer.count { endOfFile = true }
            }
        }
        guard total == file.uncompressedSize else {
            throw damaged("it holds \(total) bytes of \(file.name) where manifest.json records \(file.uncompressedSize)")
        }
        guard hex(hash.finalize()) == file.uncompressedSHA256 else {
            throw damaged("the \(file.name) it holds does not match its SHA-256 in manifest.json")
        }
        try sync(output, path: destination)
    }

    /// Where a zstd frame ends (RFC 8878 §3.1.1), found by walking its header and block headers.
    enum FrameScan: Equatable {
        /// The frame is `length` bytes long and all there.
        case complete(length: Int)
        /// The bytes end before the frame does.
        case needMore
        /// The bytes do not start a zstd frame.
        case invalid(String)
    }

    static func frameLength(in bytes: UnsafeRawBufferPointer) -> FrameScan {
        guard bytes.count >= 5 else { return .needMore }
        let magic = UInt32(bytes[0]) | UInt32(bytes[1]) << 8 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 24
        guard magic == 0xFD2F_B528 else { return .invalid("no zstd frame starts where one should") }
        let descriptor = bytes[4]
        guard descriptor & 0x08 == 0 else { return .invalid("a zstd frame header sets a reserved bit") }
        let singleSegment = descriptor & 0x20 != 0
        let contentSizeBytes = [singleSegment ? 1 : 0, 2, 4, 8][Int(descriptor >> 6)]
        let dictionaryBytes = [0, 1, 2, 4][Int(descriptor & 0x03)]
        let hasChecksum = descriptor & 0x04 != 0
        var position = 5 + (singleSegment ? 0 : 1) + dictionaryBytes + contentSizeBytes
        while true {
            guard bytes.count >= position + 3 else { return .needMore }
            let header = Int(bytes[position]) | Int(bytes[position + 1]) << 8 | Int(bytes[position + 2]) << 16
            position += 3
            let size = header >> 3
            switch (header >> 1) & 0x03 {
            case 0, 2: position += size  // raw or compressed: `size` bytes follow
            case 1: position += 1  // RLE: one byte, repeated `size` times
            default: return .invalid("a zstd block has the reserved type")
            }
            if header & 1 != 0 { break }
            if position > maximumFrameBytes { return .invalid("a zstd frame is larger than tally writes") }
        }
        if hasChecksum { position += 4 }
        return bytes.count >= position ? .complete(length: position) : .needMore
    }

    // MARK: System calls
}
