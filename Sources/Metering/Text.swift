extension String {
    /// The text without leading and trailing spaces and tabs (not newlines: a value that ends in one is not trimmed into another).
    public func trimmingSpaces() -> String {
        var text = Substring(self)
        while let first = text.first, first == " " || first == "\t" { text.removeFirst() }
        while let last = text.last, last == " " || last == "\t" { text.removeLast() }
        return String(text)
    }
}
