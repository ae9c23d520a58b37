import Foundation
import Testing
import Zstd

/// Deterministic pseudo-random bytes (SplitMix64), so failures reproduce.
private func pseudoRandomBytes(count: Int, seed: UInt64) -> [UInt8] {
    var state = seed
    var bytes = [UInt8]()
    bytes.reserveCapacity(count + 8)
    while bytes.count < count {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        withUnsafeBytes(of: z.littleEndian) { bytes.append(contentsOf: $0) }
    }
    return Array(bytes.prefix(count))
}

private func repetitiveText(byteCount: Int) -> [UInt8] {
    var text = [UInt8]()
    text.reserveCapacity(byteCount + 200)
    var index = 0
    while text.count < byteCount {
        let line = #"{"id":"evt_\#(index)","customer":"cus_\#(index % 97)","meter":"api_calls","value":1}"# + "\n"
        text.append(contentsOf: line.utf8)
        index += 1
    }
    return Array(text.prefix(byteCount))
}

/// The frame header descriptor byte (right after the 4-byte magic number).
private func frameHeaderDescriptor(_ frame: [UInt8]) -> UInt8 { frame[4] }

@Suite struct ZstdRoundTripTests {
    @Test func emptyInputRoundTrips() throws {
        let frame = try Zstd.compress([UInt8]())
        #expect(!frame.isEmpty)
        #expect(try Zstd.decompress(frame, maximumSize: 0) == [])
    }

    @Test func smallInputRoundTrips() throws {
        let input = Array("hello, tally".utf8)
        let frame = try Zstd.compress(input)
        #expect(Array(frame.prefix(4)) == [0x28, 0xB5, 0x2F, 0xFD], "zstd magic number")
        #expect(try Zstd.decompress(frame, maximumSize: input.count) == input)
    }

    @Test func framesCarryChecksumAndContentSize() throws {
        let frame = try Zstd.compress(Array("some content".utf8))
        let descriptor = frameHeaderDescriptor(frame)
        #expect(descriptor & 0b0000_0100 != 0, "Content_Checksum_flag must be set")
        let hasContentSize = descriptor >> 6 != 0 || descriptor & 0b0010_0000 != 0
        #expect(hasContentSize, "the frame header must declare the content size")
    }

    @Test func tenMegabytesOfRepetitiveTextCompressWell() throws {
        let input = repetitiveText(byteCount: 10_000_000)
        let frame = try Zstd.compress(input)
        #expect(frame.count * 5 < input.count, "ratio \(input.count / max(frame.count, 1)) should exceed 5")
        #expect(try Zstd.decompress(frame, maximumSize: input.count) == input)
    }

    @Test func randomBytesRoundTrip() throws {
        let input = pseudoRandomBytes(count: 1_000_003, seed: 42)
        let frame = try Zstd.compress(input, level: 1)
        #expect(try Zstd.decompress(frame, maximumSize: input.count) == input)
    }

    @Test(arguments: [-5, 1, 3, 19])
    func everyLevelRoundTrips(level: Int) throws {
        let input = repetitiveText(byteCount: 50_000)
        #expect(try Zstd.decompress(Zstd.compress(input, level: level), maximumSize: input.count) == input)
    }

    @Test func rawBufferOverloadsMatchArrayOverloads() throws {
        let input = repetitiveText(byteCount: 4096)
        let viaBuffer = try input.withUnsafeBytes { try Zstd.compress($0) }
        #expect(viaBuffer == (try Zstd.compress(input)))
        let back = try viaBuffer.withUnsafeBytes { try Zstd.decompress($0, maximumSize: 4096) }
        #expect(back == input)
    }

    @Test func concatenatedFramesDecompressToTheConcatenation() throws {
        let first = Array("first frame\n".utf8), second = Array("second frame\n".utf8)
        let joined = try Zstd.compress(first) + Zstd.compress(second)
        #expect(try Zstd.decompress(joined, maximumSize: 100) == first + second)
    }
}

@Suite struct ZstdDamageTests {
    @Test func aFlippedByteInCompressedDataIsDetected() throws {
        let input = repetitiveText(byteCount: 200_000)
        var frame = try Zstd.compress(input)
        frame[frame.count / 2] ^= 0x5A
        let error = #expect(throws: ZstdError.self) { try Zstd.decompress(frame, maximumSize: input.count) }
        #expect(error?.code == .corruptionDetected || error?.code == .checksumWrong, "got \(String(describing: error))")
        #expect(error?.message.contains("damaged") == true)
    }

    @Test func aFlippedByteInAStoredBlockFailsTheChecksum() throws {
        // Random bytes do not compress, so zstd stores them raw: only the checksum can catch the flip.
        let input = pseudoRandomBytes(count: 4096, seed: 7)
        var frame = try Zstd.compress(input)
        frame[frame.count - 100] ^= 0x01
        let error = #expect(throws: ZstdError.self) { try Zstd.decompress(frame, maximumSize: input.count) }
        #expect(error?.code == .checksumWrong)
        #expect(error?.code.description.contains("checksum") == true)
    }

    @Test(arguments: [1, 4, 50])
    func aTruncatedFrameIsAnError(droppedBytes: Int) throws {
        let input = repetitiveText(byteCount: 100_000)
        let frame = try Zstd.compress(input)
        let truncated = Array(frame.dropLast(droppedBytes))
        let error = #expect(throws: ZstdError.self) { try Zstd.decompress(truncated, maximumSize: input.count) }
        #expect(error?.code == .srcSizeWrong)
        #expect(error?.message.contains("truncated") == true)
    }

    @Test func emptyInputIsNotAFrame() {
        let error = #expect(throws: ZstdError.self) { try Zstd.decompress([UInt8](), maximumSize: 10) }
        #expect(error?.code == .srcSizeWrong)
    }

    @Test func nonZstdInputIsRejected() {
        let error = #expect(throws: ZstdError.self) {
            try Zstd.decompress(Array("plain text, not zstd".utf8), maximumSize: 100)
        }
        #expect(error?.code == .prefixUnknown)
    }

    @Test func trailingGarbageAfterAFrameIsRejected() throws {
        let frame = try Zstd.compress(Array("data".utf8)) + Array("garbage!".utf8)
        #expect(throws: ZstdError.self) { try Zstd.decompress(frame, maximumSize: 100) }
    }

    @Test func levelOutOfRangeIsRejected() {
        let error = #expect(throws: ZstdError.self) { try Zstd.compress([1, 2, 3], level: 99) }
        #expect(error?.code == .parameterOutOfBound)
        #expect(error?.message.contains("22") == true, "the message names the allowed range")
    }
}

@Suite struct ZstdMaximumSizeTests {
    @Test func declaredSizeOverTheMaximumIsRefused() throws {
        let input = repetitiveText(byteCount: 10_000)
        let frame = try Zstd.compress(input)
        let error = #expect(throws: ZstdError.self) { try Zstd.decompress(frame, maximumSize: 9_999) }
        #expect(error?.code == .dstSizeTooSmall)
        #expect(error?.message.contains("9999") == true)
        #expect(try Zstd.decompress(frame, maximumSize: 10_000) == input, "exactly the maximum is fine")
    }

    @Test func unknownSizeOverTheMaximumIsRefused() throws {
        // A streamed frame without a pledged size has no content size in its header.
        let input = repetitiveText(byteCount: 1_000_000)
        let compressor = try ZstdCompressor()
        let frame = try compressor.append(input) + compressor.finish()
        let descriptor = frameHeaderDescriptor(frame)
        #expect(descriptor >> 6 == 0 && descriptor & 0b0010_0000 == 0, "no content size declared")
        let error = #expect(throws: ZstdError.self) { try Zstd.decompress(frame, maximumSize: 999_999) }
        #expect(error?.code == .dstSizeTooSmall)
        #expect(try Zstd.decompress(frame, maximumSize: 1_000_000) == input)
    }
}

@Suite struct ZstdCompressorTests {
    @Test func streamedChunksFormOneFrame() throws {
        let input = repetitiveText(byteCount: 3_000_000)
        let compressor = try ZstdCompressor(level: 3)
        var frame = [UInt8]()
        var offset = 0
        while offset < input.count {
            let end = min(offset + 65_537, input.count)
            frame += try compressor.append(Array(input[offset..<end]))
            offset = end
        }
        frame += try compressor.finish()
        #expect(frameHeaderDescriptor(frame) & 0b0000_0100 != 0, "checksum flag set")
        #expect(frame.count * 5 < input.count)
        #expect(try Zstd.decompress(frame, maximumSize: input.count) == input)
    }

    @Test func aPledgedSizeIsWrittenIntoTheHeader() throws {
        let input = repetitiveText(byteCount: 100_000)
        let compressor = try ZstdCompressor(pledgedSize: input.count)
        let frame = try compressor.append(input) + compressor.finish()
        let descriptor = frameHeaderDescriptor(frame)
        #expect(descriptor >> 6 != 0 || descriptor & 0b0010_0000 != 0)
        #expect(try Zstd.decompress(frame, maximumSize: input.count) == input)
    }

    @Test func aWrongPledgedSizeFails() throws {
        let compressor = try ZstdCompressor(pledgedSize: 10)
        let error = #expect(throws: ZstdError.self) {
            _ = try compressor.append(Array(repeating: 0x41, count: 5))
            _ = try compressor.finish()
        }
        #expect(error?.code == .srcSizeWrong)
    }

    @Test func anEmptyStreamIsAValidFrame() throws {
        let compressor = try ZstdCompressor()
        let frame = try compressor.finish()
        #expect(try Zstd.decompress(frame, maximumSize: 0) == [])
    }

    @Test func usingAFinishedCompressorIsAnError() throws {
        let compressor = try ZstdCompressor()
        _ = try compressor.finish()
        let appendError = #expect(throws: ZstdError.self) { try compressor.append([1, 2, 3]) }
        #expect(appendError?.code == .stageWrong)
        let finishError = #expect(throws: ZstdError.self) { try compressor.finish() }
        #expect(finishError?.code == .stageWrong)
    }

    @Test func levelOutOfRangeIsRejected() {
        let error = #expect(throws: ZstdError.self) { try ZstdCompressor(level: -1_000_000) }
        #expect(error?.code == .parameterOutOfBound)
    }
}

@Suite struct ZstdCommandLineTests {
    static let cli = "/usr/bin/zstd"

    private func run(_ arguments: [String]) throws -> (status: Int32, output: Data) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.cli)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, output)
    }

    private func temporaryFile(_ name: String) -> URL {
        FileManager.default.temporaryDirectory
            .appendingPathComponent("tally-zstd-\(ProcessInfo.processInfo.processIdentifier)-\(name)")
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: cli), "needs /usr/bin/zstd"))
    func theZstdCommandReadsOurFrames() throws {
        let input = repetitiveText(byteCount: 500_000)
        let oneShot = temporaryFile("one-shot.zst"), streamed = temporaryFile("streamed.zst")
        defer {
            try? FileManager.default.removeItem(at: oneShot)
            try? FileManager.default.removeItem(at: streamed)
        }
        try Data(Zstd.compress(input)).write(to: oneShot)
        let compressor = try ZstdCompressor()
        try Data(compressor.append(input) + compressor.finish()).write(to: streamed)

        for file in [oneShot, streamed] {
            let result = try run(["-d", "-c", "-q", file.path])
            #expect(result.status == 0)
            #expect(Array(result.output) == input)
        }
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: cli), "needs /usr/bin/zstd"))
    func weReadTheZstdCommandsFrames() throws {
        let input = repetitiveText(byteCount: 300_000)
        let plain = temporaryFile("plain.txt")
        defer { try? FileManager.default.removeItem(at: plain) }
        try Data(input).write(to: plain)
        let result = try run(["-c", "-q", "--check", plain.path])
        #expect(result.status == 0)
        #expect(try Zstd.decompress(Array(result.output), maximumSize: input.count) == input)
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: cli), "needs /usr/bin/zstd"))
    func theZstdCommandSeesTheChecksum() throws {
        let frame = temporaryFile("checked.zst")
        defer { try? FileManager.default.removeItem(at: frame) }
        var bytes = try Zstd.compress(pseudoRandomBytes(count: 4096, seed: 3))
        bytes[bytes.count - 100] ^= 0x01
        try Data(bytes).write(to: frame)
        let result = try run(["-t", "-q", frame.path])
        #expect(result.status != 0, "zstd -t must reject a frame whose checksum no longer matches")
    }
}

@Suite("Zstd chunk boundaries")
struct ZstdChunkBoundaryTests {
    @Test("frames whose content is an exact multiple of the output chunk decompress", arguments: [1, 2, 32])
    func exactMultiples(blocks: Int) throws {
        let size = blocks * 128 * 1024
        let input = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 9) }
        let frame = try Zstd.compress(input)
        #expect(try Zstd.decompress(frame, maximumSize: size) == input)
    }
}
