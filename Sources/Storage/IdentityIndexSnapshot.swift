import Foundation
import Glibc

/// The identity index saved beside the store (`identity-index.snapshot`) when the writer stops, so
/// that the next start reads one file instead of every identity in LMDB.
///
/// The file is a 128-byte header and the table's slots as they lie in memory (little-endian hosts
/// only: x86-64 and arm64). It is a cache and never the truth: the writer uses it only when it
/// belongs to this store (the hash keys' fingerprint), to this store's history (LMDB holds a record
/// under the snapshot's newest stamp, and none of its stamps is newer than LMDB's newest), and reads
/// back intact (a checksum over every slot); then it adds the identities LMDB committed after the
/// snapshot's newest stamp. Anything else is rebuilt from LMDB, as before snapshots existed. A stale
/// snapshot is still correct, only slower: every identity after it is replayed.
///
/// Header, all u64 little-endian: magic `TLYIDX01`, layout (0 compact, 1 wide), base stamp,
/// capacity, count, newest stamp, expired-before stamp, key fingerprint (two words), slots checksum,
/// header checksum; the rest zero.
enum IdentityIndexSnapshot {
    static let fileName = "identity-index.snapshot"
    static let headerBytes = 128
    /// "TLYIDX01" read as a little-endian u64.
    static let magic: UInt64 = 0x3130_5844_4959_4C54

    struct Header: Equatable {
        var layout: IdentityIndex.Layout
        var capacity: Int
        var count: Int
        var newestStamp: UInt64
        var expiredBefore: UInt64
        var keyFingerprint: Hash128
        var slotsChecksum: UInt64

        fileprivate var words: [UInt64] {
            var base: UInt64 = 0
            var wide: UInt64 = 1
            if case .compact(let value) = layout { (base, wide) = (value, 0) }
            return [Self.magicWord, wide, base, UInt64(capacity), UInt64(count), newestStamp, expiredBefore,
                    keyFingerprint.high, keyFingerprint.low, slotsChecksum]
        }

        fileprivate static let magicWord = IdentityIndexSnapshot.magic

        fileprivate init(layout: IdentityIndex.Layout, capacity: Int, count: Int, newestStamp: UInt64,
                         expiredBefore: UInt64, keyFingerprint: Hash128, slotsChecksum: UInt64) {
            self.layout = layout
            self.capacity = capacity
            self.count = count
            self.newestStamp = newestStamp
            self.expiredBefore = expiredBefore
            self.keyFingerprint = keyFingerprint
            self.slotsChecksum = slotsChecksum
        }

        /// The header in `bytes`, or why it cannot be one.
        fileprivate init(_ bytes: [UInt8]) throws(SnapshotRejection) {
            let word = { (index: Int) in (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[index * 8 + $1]) << (8 * UInt64($1)) } }
            guard word(0) == Self.magicWord else { throw SnapshotRejection("it is not an identity index snapshot") }
            guard checksum(of: (0..<10).map(word)) == word(10) else { throw SnapshotRejection("its header is damaged") }
            guard word(1) <= 1, word(3) >= 1 << 16, word(3) <= 1 << 32, word(3) & (word(3) - 1) == 0, word(4) <= word(3) else {
                throw SnapshotRejection("its header describes no table this version writes")
            }
            layout = word(1) == 0 ? .compact(base: word(2)) : .wide
            capacity = Int(word(3))
            count = Int(word(4))
            newestStamp = word(5)
            expiredBefore = word(6)
            keyFingerprint = Hash128(high: word(7), low: word(8))
            slotsChecksum = word(9)
        }
    }

    /// Why a snapshot was not used (logged; the index is rebuilt from LMDB).
    struct SnapshotRejection: Error {
        var reason: String
        init(_ reason: String) { self.reason = reason }
    }

    /// What a store's hash keys look like from outside: a snapshot of another store never matches.
    static func fingerprint(_ keys: HashKeys) -> Hash128 {
        keys.hash(Array("tally identity index snapshot".utf8))
    }

    static func path(in directory: String) -> String { directory + "/" + fileName }

    /// Writes `table` (all of it, settled) through a temporary file renamed into place. Not
    /// fsynced: a snapshot torn by a crash fails its checksum and is rebuilt from LMDB.
    static func save(_ table: IdentityIndex.Table, count: Int, newestStamp: UInt64, expiredBefore: UInt64,
                     keyFingerprint: Hash128, directory: String) throws(StoreError) {
        let final = path(in: directory)
        let temporary = final + ".partial"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o640)
        guard descriptor >= 0 else {
            throw StoreError(.unavailable, "cannot create '\(temporary)': \(BackupFiles.systemError()); check the store directory's permissions and free space")
        }
        var slotsChecksum = Checksum()
        do throws(StoreError) {
            var offset = 0
            while offset < table.bytes {
                let chunk = UnsafeRawBufferPointer(start: table.memory + offset, count: min(chunkBytes, table.bytes - offset))
                slotsChecksum.add(chunk)
                try write(descriptor, chunk, at: headerBytes + offset, path: temporary)
                offset += chunk.count
            }
            let header = Header(layout: table.layout, capacity: table.capacity, count: count, newestStamp: newestStamp,
                                expiredBefore: expiredBefore, keyFingerprint: keyFingerprint, slotsChecksum: slotsChecksum.value)
            var words = header.words
            words.append(checksum(of: words))
            var bytes = [UInt8](repeating: 0, count: headerBytes)
            for (index, word) in words.enumerated() { bytes.storeLittleEndian(word, at: index * 8) }
            let headerBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: headerBytes, alignment: 8)
            defer { headerBuffer.deallocate() }
            headerBuffer.copyBytes(from: bytes)
            try write(descriptor, UnsafeRawBufferPointer(headerBuffer), at: 0, path: temporary)
        } catch {
            close(descriptor)
            unlink(temporary)
            throw error
        }
        close(descriptor)
        guard rename(temporary, final) == 0 else {
            let message = BackupFiles.systemError()
            unlink(temporary)
            throw StoreError(.unavailable, "cannot rename '\(temporary)' to '\(final)': \(message)")
        }
    }

    /// The snapshot in `directory` read into a new table, if there is one that `accept` takes and
    /// that reads back intact; throws why not otherwise (nil: there is no snapshot).
    static func load(directory: String, accept: (Header) throws(SnapshotRejection) -> Void) throws(SnapshotRejection) -> (Header, IdentityIndex.Table)? {
        let file = path(in: directory)
        let descriptor = open(file, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            if errno == ENOENT { return nil }
            throw SnapshotRejection("cannot open it: \(BackupFiles.systemError())")
        }
        defer { close(descriptor) }
        var headerBytes = [UInt8](repeating: 0, count: Self.headerBytes)
        let headerRead = headerBytes.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, Self.headerBytes, 0) }
        guard headerRead == Self.headerBytes else { throw SnapshotRejection("it is shorter than its header") }
        let header = try Header(headerBytes)
        let tableBytes = header.capacity * header.layout.slotBytes
        var status = stat()
        guard fstat(descriptor, &status) == 0, Int(status.st_size) == Self.headerBytes + tableBytes else {
            throw SnapshotRejection("its size does not match its header")
        }
        try accept(header)
        let memory = TableMemory.allocate(bytes: tableBytes)
        var checksum = Checksum()
        var offset = 0
        while offset < tableBytes {
            let length = min(chunkBytes, tableBytes - offset)
            let count = pread(descriptor, memory + offset, length, off_t(Self.headerBytes + offset))
            if count < 0, errno == EINTR { continue }
            guard count > 0 else {
                TableMemory.deallocate(memory, bytes: tableBytes)
                throw SnapshotRejection("cannot read it: \(count < 0 ? BackupFiles.systemError() : "it ended early")")
            }
            checksum.add(UnsafeRawBufferPointer(start: memory + offset, count: count))
            offset += count
        }
        guard checksum.value == header.slotsChecksum else {
            TableMemory.deallocate(memory, bytes: tableBytes)
            throw SnapshotRejection("its slots are damaged (checksum mismatch)")
        }
        return (header, IdentityIndex.Table(memory: memory, capacity: header.capacity, layout: header.layout))
    }

    /// Reads and writes go in chunks of this size (a multiple of `Checksum`'s block).
    private static let chunkBytes = 32 << 20

    private static func write(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int, path: String) throws(StoreError) {
        var written = 0
        while written < bytes.count {
            let count = pwrite(descriptor, bytes.baseAddress! + written, bytes.count - written, off_t(offset + written))
            if count < 0, errno == EINTR { continue }
            guard count > 0 else {
                throw StoreError(.unavailable, "cannot write '\(path)': \(BackupFiles.systemError()); check the free space of the store's file system")
            }
            written += count
        }
    }

    /// A fast 64-bit checksum of the header's words.
    fileprivate static func checksum(of words: [UInt64]) -> UInt64 {
        var checksum = Checksum()
        var padded = words
        while padded.count % 4 != 0 { padded.append(0) }
        padded.withUnsafeBytes { checksum.add($0) }
        return checksum.value
    }

    /// Four independent multiply-rotate lanes over 8-byte words: several GB/s, enough to catch a
    /// torn or damaged file (not an adversary: the file is the store owner's own).
    struct Checksum {
        private var lanes: (UInt64, UInt64, UInt64, UInt64) = (0x243F_6A88_85A3_08D3, 0x1319_8A2E_0370_7344, 0xA409_3822_299F_31D0, 0x082E_FA98_EC4E_6C89)
        private var length: UInt64 = 0

        /// Adds bytes whose count is a multiple of 32.
        mutating func add(_ bytes: UnsafeRawBufferPointer) {
            precondition(bytes.count % 32 == 0, "whole blocks")
            let prime: UInt64 = 0x9E37_79B9_7F4A_7C15
            var (a, b, c, d) = lanes
            var offset = 0
            while offset < bytes.count {
                a = ((a ^ bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) &* prime).rotated(31)
                b = ((b ^ bytes.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self)) &* prime).rotated(31)
                c = ((c ^ bytes.loadUnaligned(fromByteOffset: offset + 16, as: UInt64.self)) &* prime).rotated(31)
                d = ((d ^ bytes.loadUnaligned(fromByteOffset: offset + 24, as: UInt64.self)) &* prime).rotated(31)
                offset += 32
            }
            lanes = (a, b, c, d)
            length &+= UInt64(bytes.count)
        }

        var value: UInt64 {
            var result = length
            for lane in [lanes.0, lanes.1, lanes.2, lanes.3] {
                result = ((result ^ lane) &* 0xC2B2_AE3D_27D4_EB4F).rotated(29)
            }
            return result ^ (result >> 32)
        }
    }
}

extension UInt64 {
    @inline(__always)
    fileprivate func rotated(_ bits: UInt64) -> UInt64 { (self << bits) | (self >> (64 - bits)) }
}

extension [UInt8] {
    fileprivate mutating func storeLittleEndian(_ value: UInt64, at offset: Int) {
        for byte in 0..<8 { self[offset + byte] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(byte))) }
    }
}
