package import StrataCommon
package import StrataMVCC

/// A reference server's command line, so test harnesses can exec Strata in its place: `strata etcd [flags]`, or the
/// binary run through a symlink named `etcd`.
package struct Personality: Sendable {
    /// The command (`etcd`, `redis-server`).
    package let command: String
    /// Parses the arguments (without the program name), with the process environment for servers that read
    /// settings from it (etcd's `ETCD_*`).
    package let parse: @Sendable (_ arguments: [String], _ environment: [String: String]) -> Outcome

    package init(command: String, parse: @escaping @Sendable ([String], [String: String]) -> Outcome) {
        self.command = command
        self.parse = parse
    }

    package enum Outcome: Sendable {
        /// Serve this front-end alone with these settings.
        case serve(ProcessSettings, any FrontEndConfiguration)
        /// Print `output` (to standard error when `status` is not 0) and exit, as the reference server does for
        /// `--version`, `--help` or an unknown flag.
        case exit(output: String, status: Int32)
    }
}

/// The process-wide settings a personality's command line sets; nil keeps Strata's default.
package struct ProcessSettings: Sendable {
    package var dataDirectory: String?
    package var inMemory: Bool?
    package var sync: SyncMode?
    /// trace | debug | info | notice | warning | error | critical.
    package var logLevel: String?
    /// The admin endpoints' address; nil: none (harnesses run several instances side by side, and the reference
    /// server has no such listener unless asked).
    package var adminListen: ListenAddress?

    package init() {}
}
