/// The version Strata reports everywhere (`strata version`, `/version`, metrics).
package enum StrataVersion {
    package static let current = "0.1.0"
}
