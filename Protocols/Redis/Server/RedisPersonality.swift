internal import Foundation
internal import StrataCommon
package import StrataFrontEnd
internal import StrataMVCC

/// `strata redis-server [config file] [--directive value …]` (and the binary run through a symlink named
/// `redis-server`): redis-server 7.0's command line as test harnesses and containers pass it, mapped onto Strata's
/// configuration, serving the Redis front-end alone.
///
/// Like redis-server, the file and the `--` options form one redis.conf text (options last, so they win); every
/// directive must be one Redis 7.0 knows, or start-up fails with Redis's fatal config error. Persistence follows
/// the directives: `save ""` with `appendonly no` keeps nothing between runs (Strata runs in memory, which also
/// starts fastest); otherwise data lives in `<dir>/strata-data` with `appendfsync`'s durability.
package enum RedisPersonality {
    package static let personality = Personality(command: "redis-server") { arguments, _ in
        do throws(Failure) {
            return try parse(arguments)
        } catch {
            return .exit(output: error.message, status: 1)
        }
    }

    struct Failure: Error {
        let message: String
    }

    static let usage = """
        Usage: ./redis-server [/path/to/redis.conf] [options] [-]
               ./redis-server - (read config from stdin)
               ./redis-server -v or --version
               ./redis-server -h or --help

        Examples:
               ./redis-server (run the server with default conf)
               ./redis-server /etc/redis/6379.conf
               ./redis-server --port 7777
               ./redis-server --port 7777 --replicaof 127.0.0.1 8888
               ./redis-server /etc/myredis.conf --loglevel verbose -
               ./redis-server /etc/myredis.conf --loglevel verbose

        (Strata \(StrataVersion.current) in place of Redis \(RedisInfo.redisVersion))

        """

    static func parse(_ arguments: [String]) throws(Failure) -> Personality.Outcome {
        if let first = arguments.first {
            switch first {
            case "-v", "--version":
                return .exit(
                    output: "Redis server v=\(RedisInfo.redisVersion) sha=00000000:0 malloc=libc bits=64 "
                        + "build=strata-\(StrataVersion.current)\n",
                    status: 0
                )
            case "-h", "--help":
                return .exit(output: usage, status: 0)
            default:
                break
            }
        }
        var text = ""
        var configFile: String? = nil
        var index = 0
        if let first = arguments.first, !first.hasPrefix("--") {
            if first == "-" {
                text += readStandardInput() ?? ""
            } else {
                guard let contents = try? String(contentsOfFile: first, encoding: .utf8) else {
                    throw Failure(
                        message: "Fatal error, can't open config file '\(first)': No such file or directory\n"
                    )
                }
                text += contents
                configFile = URL(fileURLWithPath: first).standardizedFileURL.path
            }
            index = 1
        }
        // `--name value…` options become directive lines, as redis-server builds them: an option named alone takes
        // the next argument as its value even when that starts with `--` (`--proc-title-template --x--`), except
        // `--save` and `--sentinel` followed by an option (`--save` alone, or last, means `save ""`).
        var options = ""
        var expectsValue = false
        while index < arguments.count {
            let argument = arguments[index]
            let isLast = index == arguments.count - 1
            if argument == "-" && (index == 0 || isLast) {
                text += readStandardInput() ?? ""
            } else if !expectsValue && argument.hasPrefix("--") {
                if !options.isEmpty { options += "\n" }
                options += String(argument.dropFirst(2)) + " "
                // "--port 6380" in one argument carries its value.
                let named = RESPRequestParser.splitArguments(Array(argument.utf8))?.count ?? 1
                expectsValue = named == 1
                if named == 1 {
                    let followedByOption = !isLast && arguments[index + 1].hasPrefix("--")
                    switch argument.lowercased() {
                    case "--save" where followedByOption || isLast:
                        options += "\"\""
                        expectsValue = false
                    case "--sentinel" where followedByOption || isLast:
                        expectsValue = false
                    default:
                        break
                    }
                }
            } else {
                options += quote(argument) + " "
                expectsValue = false
            }
            index += 1
        }
        // As redis-server: the file, then stdin, then a newline and the options (line numbers in errors count it).
        text += "\n" + options
        return try apply(text, configFile: configFile)
    }

    /// Quotes a command-line value as redis-server does before it parses the line (empty stays visible).
    static func quote(_ value: String) -> String {
        var quoted = "\""
        for character in value {
            switch character {
            case "\\": quoted += "\\\\"
            case "\"": quoted += "\\\""
            case "\n": quoted += "\\n"
            case "\r": quoted += "\\r"
            default: quoted.append(character)
            }
        }
        return quoted + "\""
    }

    private static func readStandardInput() -> String? {
        let data = FileHandle.standardInput.readDataToEndOfFile()
        return String(data: data, encoding: .utf8)
    }

    /// Applies redis.conf `text` (its lines, in order).
    static func apply(_ text: String, configFile: String?) throws(Failure) -> Personality.Outcome {
        var configuration = RedisFrontEnd.Configuration.defaults
        configuration.allowShutdown = true
        configuration.redisStyleLog = true
        configuration.configFile = configFile
        var settings = ProcessSettings()
        var directory = FileManager.default.currentDirectoryPath
        var save = "3600 1 300 100 60 10000"
        var saveSeen = false
        var appendOnly = false
        var outputLimits: [String] = []
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        for (number, rawLine) in lines.enumerated() {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            func fatal(_ reason: String) -> Failure {
                Failure(
                    message: """

                        *** FATAL CONFIG FILE ERROR (Redis \(RedisInfo.redisVersion)) ***
                        Reading the configuration file, at line \(number + 1)
                        >>> '\(line)'
                        \(reason)

                        """
                )
            }
            guard let words = RESPRequestParser.splitArguments(Array(line.utf8)), let first = words.first else {
                throw fatal("Unbalanced quotes in configuration line")
            }
            let name = String(decoding: first, as: UTF8.self).lowercased()
            let values = words.dropFirst().map { String(decoding: $0, as: UTF8.self) }
            let value = values.joined(separator: " ")
            // Values are checked as Redis checks them (its messages), then mapped onto Strata's settings.
            if let parameter = RedisConfigParameter.byName[name] {
                if !parameter.flags.contains(.multi) && values.count != 1 { throw fatal("wrong number of arguments") }
                if case .failure(let refusal) = parameter.normalize(value) { throw fatal(refusal.message) }
            }
            switch name {
            case "port":
                guard values.count == 1, let port = Int(value), (0...65535).contains(port) else {
                    throw fatal("Invalid port")
                }
                configuration.listen.port = port
            case "bind":
                guard let host = values.first(where: { !$0.hasPrefix("-") }) ?? values.first else {
                    throw fatal("Bad directive or wrong number of arguments")
                }
                let plain = host.hasPrefix("-") ? String(host.dropFirst()) : host
                configuration.listen.host = plain == "*" ? "0.0.0.0" : plain
                configuration.directives["bind"] = value
            case "unixsocket":
                configuration.unixSocket = value
            case "unixsocketperm":
                guard let permissions = Int(value, radix: 8) else { throw fatal("Invalid socket file permissions") }
                configuration.unixSocketPermissions = permissions
                configuration.directives["unixsocketperm"] = value
            case "requirepass":
                configuration.requirePass = value
            case "databases":
                guard let count = Int(value), count >= 1, count <= 65_536 else {
                    throw fatal("Invalid number of databases")
                }
                configuration.databases = count
            case "appendfsync":
                guard ["always", "everysec", "no"].contains(value.lowercased()) else {
                    throw fatal("argument(s) must be one of the following: everysec, always, no")
                }
                configuration.appendFsync = value.lowercased()
            case "appendonly":
                guard let flag = yesNo(value) else { throw fatal("argument must be 'yes' or 'no'") }
                appendOnly = flag
                configuration.directives["appendonly"] = flag ? "yes" : "no"
            case "save":
                // As redis-server reads its configuration (file, then arguments): the first `save` replaces the
                // defaults, later ones add to it, and `save ""` clears everything so far.
                let points = value == "\"\"" ? "" : value
                save = saveSeen && !points.isEmpty && !save.isEmpty ? save + " " + points : points
                saveSeen = true
                configuration.directives["save"] = save
            case "dir":
                directory = value
                configuration.directives["dir"] = value
            case "notify-keyspace-events":
                guard RedisNotifyFlagsParser.parse(value) != nil else {
                    throw fatal("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.")
                }
                configuration.notifyKeyspaceEvents = value
            case "maxclients":
                guard let count = Int(value), count >= 1 else { throw fatal("Invalid max clients limit") }
                configuration.maxClients = count
            case "client-output-buffer-limit":
                outputLimits.append(value)
            case "daemonize":
                guard let flag = yesNo(value) else { throw fatal("argument must be 'yes' or 'no'") }
                if flag {
                    throw fatal("Strata runs in the foreground: use daemonize no (your service manager detaches it)")
                }
            case "loglevel":
                switch value.lowercased() {
                case "debug": settings.logLevel = "debug"
                case "verbose": settings.logLevel = "info"
                case "notice": settings.logLevel = "notice"
                case "warning": settings.logLevel = "warning"
                default: throw fatal("argument(s) must be one of the following: debug, verbose, notice, warning")
                }
                configuration.directives["loglevel"] = value.lowercased()
            case "pidfile":
                configuration.directives["pidfile"] = value
                if !value.isEmpty { try? "\(getpid())\n".write(toFile: value, atomically: true, encoding: .utf8) }
            case "include":
                guard let included = try? String(contentsOfFile: value, encoding: .utf8) else {
                    throw fatal("Error reading included file \(value)")
                }
                if case .serve(let nestedSettings, let nested) = try apply(included, configFile: nil),
                    let nested = nested as? RedisFrontEnd.Configuration
                {
                    configuration = nested
                    settings = nestedSettings
                }
            case "io-threads":
                guard values.count == 1, let threads = Int(value), (1...128).contains(threads) else {
                    throw fatal("argument must be between 1 and 128 inclusive")
                }
                configuration.ioThreads = threads
                configuration.directives["io-threads"] = value
            case "user":
                guard values.count >= 1 else { throw fatal("Bad directive or wrong number of arguments") }
                configuration.users.append(values.map(quote).joined(separator: " "))
            case "rename-command":
                guard values.count == 2 else { throw fatal("Bad directive or wrong number of arguments") }
                let original = values[0].lowercased()
                let renamed = configuration.renamedCommands
                // The command a name answers as earlier lines left the table (a renamed one only to its new name).
                func command(answering name: String) -> String? {
                    if let own = renamed.first(where: { $0.value.lowercased() == name })?.key { return own }
                    if renamed[name] != nil { return nil }
                    return RedisCommandSpec.byName[name] != nil && !name.contains("|") ? name : nil
                }
                guard let own = command(answering: original) else {
                    throw fatal("No such command in rename-command")
                }
                let target = values[1]
                if !target.isEmpty, target.lowercased() != original, command(answering: target.lowercased()) != nil {
                    throw fatal("Target command name already exists")
                }
                configuration.renamedCommands[own] = target
            case "replicaof", "slaveof":
                // Checked as Redis checks it before saying no: Strata does not replicate.
                guard values.count == 2 else { throw fatal("wrong number of arguments") }
                if values[0].lowercased() != "no" || values[1].lowercased() != "one" {
                    guard let port = Int(values[1]), (0...65535).contains(port) else {
                        throw fatal("Invalid master port")
                    }
                    throw fatal("Strata does not support '\(name)'")
                }
            case "loadmodule", "sentinel":
                throw fatal("Strata does not support '\(name)'")
            default:
                guard let parameter = RedisConfigParameter.byName[name] else {
                    throw fatal("Bad directive or wrong number of arguments")
                }
                switch parameter.normalize(value) {
                case .success(let normalized): configuration.directives[parameter.name] = normalized
                case .failure(let refusal): throw fatal(refusal.message)
                }
            }
        }
        if !outputLimits.isEmpty {
            let parameter = RedisConfigParameter.byName["client-output-buffer-limit"]!
            var combined = configuration.clientOutputBufferLimit
            for limit in outputLimits {
                if case .success(let merged) = parameter.normalize(combined + " " + limit) { combined = merged }
            }
            configuration.clientOutputBufferLimit = combined
        }
        if let file = configuration.directives["aclfile"], !file.isEmpty {
            if !configuration.users.isEmpty {
                throw Failure(
                    message: "Configuring Redis with users defined in redis.conf and at the same setting an ACL file "
                        + "path is invalid. This setup is very likely to lead to configuration errors and security "
                        + "holes, please define either an ACL file or declare users directly in your redis.conf, but "
                        + "not both.\n"
                )
            }
            // Redis reads it after changing to `dir`.
            configuration.aclFile = URL(fileURLWithPath: file, relativeTo: URL(fileURLWithPath: directory)).path
        }
        let persistent = appendOnly || !save.trimmingCharacters(in: .whitespaces).isEmpty
        settings.inMemory = !persistent
        settings.dataDirectory = URL(fileURLWithPath: directory).appendingPathComponent("strata-data").path
        // Redis's writes are acknowledged before their fsync unless appendfsync is always; the store's own sync
        // setting governs only the other front-ends, which this process does not run.
        settings.sync = configuration.appendFsync == "always" ? .always : .batch
        settings.adminListen = nil
        return .serve(settings, configuration)
    }

    static func yesNo(_ value: String) -> Bool? {
        switch value.lowercased() {
        case "yes": true
        case "no": false
        default: nil
        }
    }
}
