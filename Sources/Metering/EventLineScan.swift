// The single pass of ``EventLineParser`` over a line's bytes: JSON syntax checked, fields collected.

// MARK: - The scan

extension EventLineParser {
    /// A top-level field as scanned: absent, a string token, an exact number (nil when out of range), or
    /// another kind of value.
    enum RawField {
        case absent
        case string(JSONScanner.StringToken)
        case number(ExactDecimal?)
        case other(JSONScanner.Kind)

        var phrase: String {
            switch self {
            case .absent: "absent"
            case .string: "a string"
            case .number: "a number"
            case .other(let kind): kind.phrase
            }
        }
    }

    /// One pass over a line: checks the JSON and collects the fields for validation.
    struct LineScan {
        enum Field: Int {
            case id, customer, meter, value, time, properties
        }

        var scanner: JSONScanner
        var id = RawField.absent
        var customer = RawField.absent
        var meter = RawField.absent
        var value = RawField.absent
        var time = RawField.absent
        var properties: [UsageEvent.Property] = []
        /// The first problem with `properties`, if any.
        var propertiesError: IngestError?
        /// The first unknown or repeated top-level key, if any.
        var keyError: IngestError?
        private var seen: UInt8 = 0

        init(scanner: JSONScanner) {
            self.scanner = scanner
        }

        mutating func run() throws(JSONSyntaxError) {
            scanner.skipWhitespace()
            guard scanner.current == ASCIIByte.openBrace else {
                throw JSONSyntaxError(scanner.position, "expected a JSON object ('{')")
            }
            scanner.position += 1
            scanner.skipWhitespace()
            if scanner.current == ASCIIByte.closeBrace {
                scanner.position += 1
            } else {
                while true {
                    guard scanner.current == ASCIIByte.quote else {
                        throw JSONSyntaxError(scanner.position, "expected '\"' to start a field name")
                    }
                    let key = try scanner.scanString()
                    scanner.skipWhitespace()
                    try scanner.expect(ASCIIByte.colon, "expected ':' after a field name")
                    scanner.skipWhitespace()
                    try scanField(key)
                    scanner.skipWhitespace()
                    if scanner.current == ASCIIByte.comma {
                        scanner.position += 1
                        scanner.skipWhitespace()
                    } else if scanner.current == ASCIIByte.closeBrace {
                        scanner.position += 1
                        break
                    } else {
                        throw JSONSyntaxError(scanner.position, "expected ',' or '}' after a field value")
                    }
                }
            }
            scanner.skipWhitespace()
            guard scanner.isAtEnd else {
                throw JSONSyntaxError(scanner.position, "expected the end of the line after the JSON object")
            }
            if propertiesError == nil && properties.count > 1 { sortProperties() }
        }

        private mutating func scanField(_ key: JSONScanner.StringToken) throws(JSONSyntaxError) {
            guard let field = identify(key) else {
                if keyError == nil {
                    keyError = IngestError(
                        code: .invalidField,
                        message: "unknown field \(IngestError.quoted(scanner.string(key))); allowed fields are id, customer, meter, value, time, properties",
                        field: scanner.string(key))
                }
                _ = try scanner.skipValue(depth: 2)
                return
            }
            let bit: UInt8 = 1 << UInt8(field.rawValue)
            if seen & bit != 0 {
                if keyError == nil {
                    let name = EventLineParser.allowedFields[field.rawValue]
                    keyError = IngestError(
                        code: .invalidField, message: "field \"\(name)\" appears twice; send each field once", field: name)
                }
                _ = try scanner.skipValue(depth: 2)
                return
            }
            seen |= bit
            switch field {
            case .id: id = try scanValue()
            case .customer: customer = try scanValue()
            case .meter: meter = try scanValue()
            case .value: value = try scanValue()
            case .time: time = try scanValue()
            case .properties:
                if scanner.current == ASCIIByte.openBrace {
                    try scanProperties()
                } else {
                    let kind = try scanner.skipValue(depth: 2)
                    propertiesError = IngestError(
                        code: .invalidField,
                        message: "\"properties\" must be a flat object of strings, numbers and bools, not \(kind.phrase)",
                        field: "properties")
                }
            }
        }

        private mutating func scanValue() throws(JSONSyntaxError) -> RawField {
            switch scanner.current {
            case ASCIIByte.quote: return .string(try scanner.scanString())
            case ASCIIByte.minus, ASCIIByte.zero...ASCIIByte.nine: return .number(try scanner.scanNumber())
            default: return .other(try scanner.skipValue(depth: 2))
            }
        }

        private func identify(_ key: JSONScanner.StringToken) -> Field? {
            if key.escaped {
                var text = scanner.string(key)
                return text.withUTF8 { Self.field(named: UnsafeRawBufferPointer($0)) }
            }
            return Self.field(named: scanner.raw(key))
        }

        private static func field(named name: UnsafeRawBufferPointer) -> Field? {
            switch name.count {
            case 2: return equals(name, "id") ? .id : nil
            case 4: return equals(name, "time") ? .time : nil
            case 5: return equals(name, "value") ? .value : (equals(name, "meter") ? .meter : nil)
            case 8: return equals(name, "customer") ? .customer : nil
            case 10: return equals(name, "properties") ? .properties : nil
            default: return nil
            }
        }

        @inline(__always)
        private static func equals(_ bytes: UnsafeRawBufferPointer, _ literal: StaticString) -> Bool {
            let text = literal.utf8Start
            for index in 0..<bytes.count where bytes[index] != text[index] { return false }
            return true
        }

        private mutating func scanProperties() throws(JSONSyntaxError) {
            scanner.position += 1
            scanner.skipWhitespace()
            if scanner.current == ASCIIByte.closeBrace {
                scanner.position += 1
                return
            }
            while true {
                guard scanner.current == ASCIIByte.quote else {
                    throw JSONSyntaxError(scanner.position, "expected '\"' to start a property key")
                }
                let key = try scanner.scanString()
                scanner.skipWhitespace()
                try scanner.expect(ASCIIByte.colon, "expected ':' after a property key")
                scanner.skipWhitespace()
                let value: PropertyValue?
                var problem: String?
                switch scanner.current {
                case ASCIIByte.quote:
                    value = .string(scanner.string(try scanner.scanString()))
                case ASCIIByte.minus, ASCIIByte.zero...ASCIIByte.nine:
                    if let number = try scanner.scanNumber() {
                        value = .number(number)
                    } else {
                        value = nil
                        problem = "is a number out of range (at most 36 fractional digits and about 38 digits in all)"
                    }
                case UInt8(ascii: "t"):
                    try scanner.scanLiteral("true")
                    value = .bool(true)
                case UInt8(ascii: "f"):
                    try scanner.scanLiteral("false")
                    value = .bool(false)
                default:
                    let kind = try scanner.skipValue(depth: 3)
                    value = nil
                    problem = "must be a string, number or bool, not \(kind.phrase)"
                }
                if propertiesError == nil {
                    addProperty(key, value, problem)
                }
                scanner.skipWhitespace()
                if scanner.current == ASCIIByte.comma {
                    scanner.position += 1
                    scanner.skipWhitespace()
                } else if scanner.current == ASCIIByte.closeBrace {
                    scanner.position += 1
                    return
                } else {
                    throw JSONSyntaxError(scanner.position, "expected ',' or '}' after a property value")
                }
            }
        }

        private mutating func addProperty(_ keyToken: JSONScanner.StringToken, _ value: PropertyValue?, _ problem: String?) {
            let key = scanner.string(keyToken)
            func fail(_ message: String) {
                propertiesError = IngestError(code: .invalidField, message: message, field: "properties")
            }
            if let problem { return fail("property \(IngestError.quoted(key)) \(problem)") }
            let length = key.utf8.count
            if length == 0 { return fail("property keys must not be empty") }
            if length > EventLineParser.maxIdentifierBytes {
                return fail("property key \(IngestError.quoted(key)) is \(length) bytes long; the maximum is \(EventLineParser.maxIdentifierBytes) bytes")
            }
            if properties.count == EventLineParser.maxProperties {
                return fail("\"properties\" has more than \(EventLineParser.maxProperties) entries; send at most \(EventLineParser.maxProperties)")
            }
            if properties.isEmpty { properties.reserveCapacity(4) }
            properties.append(UsageEvent.Property(key: key, value: value!))
        }

        /// Sorts by key bytes and rejects repeated keys.
        private mutating func sortProperties() {
            properties.sort { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
            for index in 1..<properties.count where properties[index - 1].key.utf8.elementsEqual(properties[index].key.utf8) {
                let key = properties[index].key
                propertiesError = IngestError(
                    code: .invalidField, message: "property \(IngestError.quoted(key)) appears twice; send each key once",
                    field: "properties")
                properties = []
                return
            }
        }
    }
}
