import Crypto
import Foundation
import LMDB
import Metering
import Zstd

// MARK: - Checking a backup

extension BackupFiles {
    static func readManifest(in directory: String, shownAs shown: String) throws(StoreError) -> BackupManifest {
        let path = join(directory, BackupManifest.fileName)
        let shownPath = join(shown, BackupManifest.fileName)
        guard FileManager.default.fileExists(atPath: path) else {
            throw StoreError(.notFound, "'\(shownPath)' is missing: '\(shown)' is not a tally backup, or the backup did not finish; use another backup")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw StoreError(.unavailable, "cannot read '\(shownPath)': check its permissions")
        }
        return try decodeManifest(Array(data), shownAs: shown)
    }

    /// The manifest in `bytes`, checked: see ``BackupManifest/decode(_:shownAs:)``.
    static func decodeManifest(_ bytes: [UInt8], shownAs shown: String) throws(StoreError) -> BackupManifest {
        let shownPath = join(shown, BackupManifest.fileName)
        let data = Data(bytes)
        struct Version: Decodable {
            var formatVersion: Int
            enum CodingKeys: String, CodingKey { case formatVersion = "format_version" }
        }
        func damaged(_ what: String) -> StoreError {
            StoreError(.damaged, "'\(shownPath)' is damaged (\(what)): the backup cannot be verified; use another backup")
        }
        let version: Int
        do {
            version = try JSONDecoder().decode(Version.self, from: data).formatVersion
        } catch {
            throw damaged("it is not a backup manifest: \(describe(error))")
        }
        guard version == BackupManifest.currentFormatVersion else {
            throw StoreError(.incompatible, "'\(shownPath)' has backup format \(version), but this tally reads format \(BackupManifest.currentFormatVersion): restore it with the tally version that wrote it")
        }
        let manifest: BackupManifest
        do {
            manifest = try JSONDecoder().decode(BackupManifest.self, from: data)
        } catch {
            throw damaged(describe(error))
        }
        guard manifest.storeFormat == Int(currentStoreFormat) else {
            throw StoreError(.incompatible, "'\(shown)' holds a store of format \(manifest.storeFormat), but this tally reads format \(currentStoreFormat): restore it with the tally version that wrote it")
        }
        guard manifest.files.first?.name == dataFile, manifest.files.dropFirst().allSatisfy({ isSegmentName($0.name) }) else {
            throw damaged("it lists \(manifest.files.map { "'\($0.name)'" }.joined(separator: ", ")) where a format 1 backup holds 'data.mdb' and then only archive segments ('archive/NNNNNNNNNNNN.tseg')")
        }
        for file in manifest.files {
            guard file.compressedSize >= 0, file.uncompressedSize >= 0 else { throw damaged("a negative size for '\(file.name)'") }
            guard isSHA256(file.compressedSHA256), isSHA256(file.uncompressedSHA256) else {
                throw damaged("a checksum of '\(file.name)' is not 64 lowercase hex digits")
            }
        }
        return manifest
    }

    private static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, _): "'\(key.stringValue)' is missing"
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
            "'\(context.codingPath.map(\.stringValue).joined(separator: "."))' has the wrong type"
        case DecodingError.dataCorrupted(let context):
            context.codingPath.isEmpty ? "it is not valid JSON" : context.debugDescription
        default: "\(error)"
        }
    }

    /// `archive/` followed by a segment file name: twelve digits and `.tseg`.
    private static func isSegmentName(_ name: String) -> Bool {
        let prefix = archiveDirectory + "/"
        guard name.hasPrefix(prefix), name.hasSuffix(".tseg") else { return false }
        let digits = name.dropFirst(prefix.count).dropLast(5)
        return digits.count == 12 && digits.allSatisfy { $0 >= "0" && $0 <= "9" }
    }

    private static func isSHA256(_ text: String) -> Bool {
        text.utf8.count == 64 && text.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
    }

    static func verifyCompressed(_ file: BackupManifest.File, at path: String) throws(StoreError) {
        func damaged(_ what: String) -> StoreError {
            StoreError(.damaged, "'\(path)' \(what): the backup is damaged; use another backup")
        }
        var status = stat()
        guard stat(path, &status) == 0 else {
            if errno == ENOENT { throw damaged("is missing") }
            throw StoreError(.unavailable, "cannot read '\(path)': \(systemError())")
        }
        guard Int(status.st_size) == file.compressedSize else {
            throw damaged("has \(status.st_size) bytes where manifest.json records \(file.compressedSize)")
        }
        let (total, digest) = try sha256(ofFile: path)
        guard total == file.compressedSize else {
            throw damaged("has \(total) bytes where manifest.json records \(file.compressedSize)")
        }
        guard digest == file.compressedSHA256 else {
            throw damaged("does not match its SHA-256 in manifest.json")
        }
    }

    /// The size and SHA-256 (lowercase hex) of the file at `path`, read in pieces.
    static func sha256(ofFile path: String) throws(StoreError) -> (size: Int, digest: String) {
        let input = try openForReading(path)
        defer { close(input) }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: readBytes, alignment: 16)
        defer { buffer.deallocate() }
        var hash = SHA256()
        var total = 0
        while true {
            let count = try readFully(input, into: buffer, path: path)
            hash.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
            total += count
            if count < buffer.count { break }
        }
        return (total, hex(hash.finalize()))
    }

    /// Decompresses `source` frame by frame into a new file at `destination`, checking the data's
    /// size and SHA-256 against the manifest.
}
