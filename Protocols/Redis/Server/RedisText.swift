/// Text helpers shared by replies.
package enum RedisText {
    /// Redis's `sdscatrepr` without the surrounding quotes: printable bytes as they are, `\\` and `"` escaped,
    /// `\n \r \t \a \b` by name, anything else as `\xHH`.
    package static func quoted(_ bytes: [UInt8]) -> String {
        var text = ""
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "\\"): text += "\\\\"
            case UInt8(ascii: "\""): text += "\\\""
            case 10: text += "\\n"
            case 13: text += "\\r"
            case 9: text += "\\t"
            case 7: text += "\\a"
            case 8: text += "\\b"
            case 32...126: text.append(Character(Unicode.Scalar(byte)))
            default:
                let hex = Array("0123456789abcdef")
                text += "\\x" + String(hex[Int(byte >> 4)]) + String(hex[Int(byte & 15)])
            }
        }
        return text
    }

    /// A UTF-8 string's bytes.
    @inline(__always)
    package static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    /// An argument as C's `%s` prints it: up to its first NUL.
    package static func cString(_ bytes: [UInt8]) -> String {
        String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }
}
