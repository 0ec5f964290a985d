package import Foundation

/// A fresh directory under the system temp dir, removed when the value is released.
package final class TemporaryDirectory: Sendable {
    package let path: String

    package init(prefix: String = "strata-test") {
        let base = ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp"
        var template = Array("\(base)/\(prefix).XXXXXX".utf8CString)
        let created = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(created != nil, "mkdtemp failed")
        path = String(cString: template.map { $0 }.withUnsafeBufferPointer { $0.baseAddress! })
    }

    package func appending(_ component: String) -> String { path + "/" + component }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }
}
