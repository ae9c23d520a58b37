import Foundation
import Glibc

/// The identity index saved beside the store (`identity-index.snapshot`) when the writer stops, so
/// that the next start reads one file instead of every identity in LMDB.
///
/// The file is a 128-byte header, then `Sections`: a bitmap of the occupied slots, and those slots and
/// their check bytes packed, as they lie in memory (little-endian hosts only: x86-64 and arm64). It is a cache and never the truth: the writer uses it only when it
/// belongs to this store (the hash keys' fingerprint), to this store's history (LMDB holds a record
/// under the snapshot's newest stamp, and none of its stamps is newer than LMDB's newest), and reads
/// back intact (a checksum over every section); then it adds the identities LMDB committed after the
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

    /// The file's sections after the header, each padded with zeros to a multiple of 32 bytes: a
    /// bitmap of the occupied slots, the occupied slots' bytes in slot order, their check bytes. An
    /// index is at most 70 % full and usually far less (37 % at 50M identities), so the file is a
    /// third of the table's size and a cold start reads that much less.
    struct Sections {
        let bitmap: Int, slots: Int, checks: Int
        let bitmapBytes: Int, slotsBytes: Int, checksBytes: Int

        init(capacity: Int, count: Int, slotBytes: Int) {
            bitmapBytes = capacity / 8
            slotsBytes = padded(count * slotBytes)
            checksBytes = padded(count)
            bitmap = IdentityIndexSnapshot.headerBytes
            slots = bitmap + bitmapBytes
            checks = slots + slotsBytes
        }

        var fileBytes: Int { checks + checksBytes }
    }

    /// Slots examined per chunk when writing, entries per chunk when reading (a multiple of 8, so a
    /// chunk's bitmap is whole bytes).
    private static let chunkSlots = 1 << 20

    /// Writes `table` (settled, with `count` occupied slots) through a temporary file renamed into
    /// place. Not fsynced: a snapshot torn by a crash fails its checksum and is rebuilt from LMDB.
    static func save(_ table: IdentityIndex.Table, count: Int, newestStamp: UInt64, expiredBefore: UInt64,
                     keyFingerprint: Hash128, directory: String) throws(StoreError) {
        let final = path(in: directory)
        let temporary = final + ".partial"
        unlink(temporary)  // left by a stop that died while saving
        try BackupFiles.replace(final, through: temporary, durable: false) { (descriptor) throws(StoreError) in
            let sections = Sections(capacity: table.capacity, count: count, slotBytes: table.layout.slotBytes)
            let slotsChecksum = try writeSections(table, count: count, sections: sections, descriptor: descriptor, path: temporary)
            let header = Header(layout: table.layout, capacity: table.capacity, count: count, newestStamp: newestStamp,
                                expiredBefore: expiredBefore, keyFingerprint: keyFingerprint, slotsChecksum: slotsChecksum)
            var words = header.words
            words.append(checksum(of: words))
            let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: headerBytes, alignment: 8)
            defer { bytes.deallocate() }
            bytes.initializeMemory(as: UInt8.self, repeating: 0)
            for (index, word) in words.enumerated() { bytes.storeBytes(of: word.littleEndian, toByteOffset: index * 8, as: UInt64.self) }
            try write(descriptor, UnsafeRawBufferPointer(bytes), at: 0, path: temporary)
        }
    }

    /// Writes the three sections a chunk of slots at a time; returns their checksum.
    private static func writeSections(_ table: IdentityIndex.Table, count: Int, sections: Sections,
                                      descriptor: Int32, path: String) throws(StoreError) -> UInt64 {
        let slotBytes = table.layout.slotBytes
        let bitmap = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSlots / 8, alignment: 8)
        let packedSlots = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSlots * slotBytes + 32, alignment: 8)
        let packedChecks = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSlots + 32, alignment: 8)
        defer {
            bitmap.deallocate()
            packedSlots.deallocate()
            packedChecks.deallocate()
        }
        var checksums = (Checksum(), Checksum(), Checksum())
        var written = 0
        var chunkStart = 0
        while chunkStart < table.capacity {
            let chunkEnd = min(table.capacity, chunkStart + chunkSlots)
            bitmap.initializeMemory(as: UInt8.self, repeating: 0)
            var packed = 0
            for slot in chunkStart..<chunkEnd where table.fragment(at: slot) != 0 {
                let bit = slot - chunkStart
                bitmap[bit >> 3] |= 1 << UInt8(bit & 7)
                guard written + packed < count else {
                    throw StoreError(.unavailable, "the identity index holds more entries than it counts; not saving a snapshot")
                }
                (packedSlots.baseAddress! + packed * slotBytes).copyMemory(from: table.slotBytes(slot), byteCount: slotBytes)
                packedChecks[packed] = table.check(at: slot)
                packed += 1
            }
            let bitmapChunk = UnsafeRawBufferPointer(rebasing: bitmap[0..<((chunkEnd - chunkStart) / 8)])
            // The packed sections are contiguous; the last chunk also writes their padding.
            let isLast = chunkEnd == table.capacity
            let slotLength = isLast ? sections.slotsBytes - written * slotBytes : packed * slotBytes
            let checkLength = isLast ? sections.checksBytes - written : packed
            if isLast {
                (packedSlots.baseAddress! + packed * slotBytes).initializeMemory(as: UInt8.self, repeating: 0, count: slotLength - packed * slotBytes)
                (packedChecks.baseAddress! + packed).initializeMemory(as: UInt8.self, repeating: 0, count: checkLength - packed)
            }
            let slotChunk = UnsafeRawBufferPointer(rebasing: packedSlots[0..<slotLength])
            let checkChunk = UnsafeRawBufferPointer(rebasing: packedChecks[0..<checkLength])
            checksums.0.add(bitmapChunk)
            checksums.1.add(slotChunk)
            checksums.2.add(checkChunk)
            try write(descriptor, bitmapChunk, at: sections.bitmap + chunkStart / 8, path: path)
            try write(descriptor, slotChunk, at: sections.slots + written * slotBytes, path: path)
            try write(descriptor, checkChunk, at: sections.checks + written, path: path)
            written += packed
            chunkStart = chunkEnd
        }
        guard written == count else {
            throw StoreError(.unavailable, "the identity index holds fewer entries than it counts; not saving a snapshot")
        }
        return checksum(of: [checksums.0.value, checksums.1.value, checksums.2.value])
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
        let slotBytes = header.layout.slotBytes
        let sections = Sections(capacity: header.capacity, count: header.count, slotBytes: slotBytes)
        var status = stat()
        guard fstat(descriptor, &status) == 0, Int(status.st_size) == sections.fileBytes else {
            throw SnapshotRejection("its size does not match its header")
        }
        try accept(header)
        // The three sections are read in step, which defeats the kernel's readahead on a cold
        // file: ask for all of it at once (4.3 s → 1 s for 470 MB on this machine kind's disk).
        _ = posix_fadvise(descriptor, 0, 0, POSIX_FADV_WILLNEED)
        let memory = TableMemory.allocate(bytes: header.capacity * header.layout.entryBytes)
        let table = IdentityIndex.Table(memory: memory, capacity: header.capacity, layout: header.layout)
        do throws(SnapshotRejection) {
            try fill(table, count: header.count, sections: sections, descriptor: descriptor, expectedChecksum: header.slotsChecksum)
        } catch {
            TableMemory.deallocate(memory, bytes: table.bytes)
            throw error
        }
        return (header, table)
    }

    /// Reads the three sections in step and puts each packed entry in the slot its bitmap bit names.
    private static func fill(_ table: IdentityIndex.Table, count: Int, sections: Sections, descriptor: Int32, expectedChecksum: UInt64) throws(SnapshotRejection) {
        let slotBytes = table.layout.slotBytes
        // The bitmap is small (a bit a slot: 16 MiB at 2^27 slots): read it whole.
        let bitmap = UnsafeMutableRawBufferPointer.allocate(byteCount: sections.bitmapBytes, alignment: 8)
        let slots = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSlots * slotBytes, alignment: 8)
        let checks = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSlots, alignment: 8)
        defer {
            bitmap.deallocate()
            slots.deallocate()
            checks.deallocate()
        }
        guard readExactly(descriptor, into: bitmap, at: sections.bitmap) else { throw SnapshotRejection("cannot read it: \(BackupFiles.systemError())") }
        var checksums = (Checksum(), Checksum(), Checksum())
        checksums.0.add(UnsafeRawBufferPointer(bitmap))
        let slotsBase = UnsafeRawPointer(slots.baseAddress!)
        var slotsRead = 0, checksRead = 0  // bytes of each packed section read so far
        var available = 0, used = 0        // entries in the buffers, and how many are placed
        var placed = 0
        for byteIndex in 0..<sections.bitmapBytes where bitmap[byteIndex] != 0 {
            var bits = bitmap[byteIndex]
            while bits != 0 {
                let slot = byteIndex << 3 | bits.trailingZeroBitCount
                bits &= bits - 1
                if used == available {
                    // The next chunk of entries (the sections' padding comes with the last).
                    let slotLength = min(slots.count, sections.slotsBytes - slotsRead)
                    let checkLength = min(checks.count, sections.checksBytes - checksRead)
                    guard placed < count, slotLength > 0, checkLength > 0,
                          readExactly(descriptor, into: UnsafeMutableRawBufferPointer(rebasing: slots[0..<slotLength]), at: sections.slots + slotsRead),
                          readExactly(descriptor, into: UnsafeMutableRawBufferPointer(rebasing: checks[0..<checkLength]), at: sections.checks + checksRead)
                    else { throw SnapshotRejection("its bitmap and its entries disagree, or it cannot be read") }
                    checksums.1.add(UnsafeRawBufferPointer(rebasing: slots[0..<slotLength]))
                    checksums.2.add(UnsafeRawBufferPointer(rebasing: checks[0..<checkLength]))
                    slotsRead += slotLength
                    checksRead += checkLength
                    available = min(slotLength / slotBytes, checkLength, count - placed)
                    used = 0
                }
                guard table.setSlot(slot, fromPacked: slotsBase, index: used, check: checks[used]) else {
                    throw SnapshotRejection("it holds an empty entry")
                }
                used += 1
                placed += 1
            }
        }
        guard placed == count, slotsRead == sections.slotsBytes, checksRead == sections.checksBytes else {
            throw SnapshotRejection("its bitmap and its count disagree")
        }
        guard checksum(of: [checksums.0.value, checksums.1.value, checksums.2.value]) == expectedChecksum else {
            throw SnapshotRejection("its entries are damaged (checksum mismatch)")
        }
    }

    private static func readExactly(_ descriptor: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int) -> Bool {
        var done = 0
        while done < buffer.count {
            let count = pread(descriptor, buffer.baseAddress! + done, buffer.count - done, off_t(offset + done))
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { return false }
            done += count
        }
        return true
    }

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
        words.withUnsafeBytes { checksum.add($0) }
        return checksum.value
    }

    /// Four independent multiply-rotate lanes over 8-byte words: several GB/s, enough to catch a
    /// torn or damaged file (not an adversary: the file is the store owner's own). The value
    /// depends only on the bytes added, not on how they were split into calls.
    struct Checksum {
        private var lanes: (UInt64, UInt64, UInt64, UInt64) = (0x243F_6A88_85A3_08D3, 0x1319_8A2E_0370_7344, 0xA409_3822_299F_31D0, 0x082E_FA98_EC4E_6C89)
        private var length: UInt64 = 0
        /// Bytes of an unfinished 32-byte block, until the next call completes it.
        private var carry: [UInt8] = []

        mutating func add(_ bytes: UnsafeRawBufferPointer) {
            length &+= UInt64(bytes.count)
            var offset = 0
            if !carry.isEmpty {
                offset = min(32 - carry.count, bytes.count)
                carry.append(contentsOf: bytes[0..<offset])
                guard carry.count == 32 else { return }
                carry.withUnsafeBytes { mix($0, blocksUpTo: 32) }
                carry.removeAll(keepingCapacity: true)
            }
            let whole = offset + (bytes.count - offset) / 32 * 32
            mix(UnsafeRawBufferPointer(rebasing: bytes[offset..<whole]), blocksUpTo: whole - offset)
            carry.append(contentsOf: bytes[whole...])
        }

        private mutating func mix(_ bytes: UnsafeRawBufferPointer, blocksUpTo end: Int) {
            let prime: UInt64 = 0x9E37_79B9_7F4A_7C15
            var (a, b, c, d) = lanes
            var offset = 0
            while offset < end {
                a = ((a ^ bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) &* prime).rotated(31)
                b = ((b ^ bytes.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self)) &* prime).rotated(31)
                c = ((c ^ bytes.loadUnaligned(fromByteOffset: offset + 16, as: UInt64.self)) &* prime).rotated(31)
                d = ((d ^ bytes.loadUnaligned(fromByteOffset: offset + 24, as: UInt64.self)) &* prime).rotated(31)
                offset += 32
            }
            lanes = (a, b, c, d)
        }

        var value: UInt64 {
            var finished = self
            if !carry.isEmpty {
                // The last, unfinished block, padded with zeros (the length tells it apart).
                let block = carry + [UInt8](repeating: 0, count: 32 - carry.count)
                block.withUnsafeBytes { finished.mix($0, blocksUpTo: 32) }
            }
            var result = length
            for lane in [finished.lanes.0, finished.lanes.1, finished.lanes.2, finished.lanes.3] {
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

/// `bytes` rounded up to a multiple of 32, so that every section starts 32-byte aligned.
private func padded(_ bytes: Int) -> Int { (bytes + 31) & ~31 }
