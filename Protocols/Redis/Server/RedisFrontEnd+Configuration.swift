package import StrataCommon
internal import StrataFrontEnd
internal import StrataMVCC

extension RedisFrontEnd {
    /// The `[redis]` section (config.toml documents every key).
    package struct Configuration: Sendable, Hashable {
        package var enabled = true
        package var listen = ListenAddress(host: "127.0.0.1", port: 6379)
        /// Also listen on this unix socket path ("" for none).
        package var unixSocket = ""
        package var unixSocketPermissions = 0o700
        /// Redis's `requirepass` ("" for none).
        package var requirePass = ""
        /// Redis's `aclfile`: users are loaded from it at start-up and by ACL LOAD, written by ACL SAVE ("" for
        /// none; relative to the working directory).
        package var aclFile = ""
        /// Users as redis.conf's `user` directives declare them (`name rule rule …`); not together with `aclFile`.
        package var users: [String] = []
        /// Redis's `databases`: SELECT's range.
        package var databases = 16
        /// Redis's `appendfsync`: always | everysec | no.
        package var appendFsync = "everysec"
        /// Redis's `notify-keyspace-events` at start-up.
        package var notifyKeyspaceEvents = ""
        /// Redis's `io-threads`: event-loop threads serving connections. 1 (Redis's default) serves every connection
        /// on one loop, so commands of different connections run in arrival order, as in Redis.
        package var ioThreads = 1
        /// Redis's `maxclients`.
        package var maxClients = 10_000
        /// Redis's `client-output-buffer-limit` at start-up.
        package var clientOutputBufferLimit = "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"
        /// Whether SHUTDOWN stops the process (a shared Strata serves other protocols too: off by default; the
        /// `redis-server` personality turns it on, as Redis has it).
        package var allowShutdown = false
        /// redis.conf's `rename-command`: a command's own name → its new name ("" disables it).
        package var renamedCommands: [String: String] = [:]
        /// Redis directives given on a `redis-server` command line or file that Strata keeps as CONFIG values.
        package var directives: [String: String] = [:]
        /// The redis.conf file CONFIG REWRITE writes (the personality's), if any.
        package var configFile: String? = nil
        /// Print redis-server's own start-up line (`… * Ready to accept connections`) on standard output, which
        /// harnesses such as testcontainers wait for (the personality).
        package var redisStyleLog = false
        package init() {}
        package static var defaults: Self { Self() }
    }
}

extension RedisFrontEnd.Configuration: FrontEndConfiguration {
    package var listeners: [(key: String, address: ListenAddress)] { [("listen", listen)] }

    package var summary: String {
        guard enabled else { return "disabled" }
        return "enabled on \(listen)" + (unixSocket.isEmpty ? "" : " and \(unixSocket)")
    }

    /// Reads `[redis]`.
    mutating func read(from reader: inout ConfigReader) throws(ConfigError) {
        try reader.read("enabled", into: &enabled)
        try reader.read("listen", into: &listen)
        try reader.read("unixsocket", into: &unixSocket, allowEmpty: true)
        try reader.read("requirepass", into: &requirePass, allowEmpty: true)
        try reader.read("aclfile", into: &aclFile, allowEmpty: true)
        try reader.read("users", into: &users)
        try reader.readInteger("databases", into: &databases, in: 1...65_536)
        try reader.read("appendfsync", into: &appendFsync)
        guard ["always", "everysec", "no"].contains(appendFsync) else {
            throw reader.error("appendfsync", "expected always, everysec or no")
        }
        try reader.read("notify_keyspace_events", into: &notifyKeyspaceEvents, allowEmpty: true)
        try reader.readInteger("maxclients", into: &maxClients, in: 1...1_000_000)
        try reader.readInteger("io_threads", into: &ioThreads, in: 1...128)
        try reader.read("client_output_buffer_limit", into: &clientOutputBufferLimit)
        try reader.read("allow_shutdown", into: &allowShutdown)
    }

    /// The CONFIG values these settings start from.
    var initialDirectives: [String: String] {
        var values = directives
        values["port"] = "\(listen.port)"
        values["bind"] = values["bind"] ?? listen.host
        values["unixsocket"] = unixSocket
        values["requirepass"] = requirePass
        values["databases"] = "\(databases)"
        if !aclFile.isEmpty { values["aclfile"] = values["aclfile"] ?? aclFile }
        values["appendfsync"] = appendFsync
        values["notify-keyspace-events"] = notifyKeyspaceEvents
        values["maxclients"] = "\(maxClients)"
        values["io-threads"] = "\(ioThreads)"
        values["client-output-buffer-limit"] = clientOutputBufferLimit
        return values
    }
}
