internal import Foundation
internal import Logging
internal import StrataMVCC
internal import StrataRedisStore
internal import Synchronization

/// Script flags (a shebang's `flags=`, register_function's `flags`).
package struct RedisScriptFlags: OptionSet, Sendable, Hashable {
    package let rawValue: UInt32
    package init(rawValue: UInt32) { self.rawValue = rawValue }

    package static let noWrites = Self(rawValue: 1 << 0)
    package static let allowOOM = Self(rawValue: 1 << 1)
    package static let allowStale = Self(rawValue: 1 << 2)
    package static let noCluster = Self(rawValue: 1 << 3)
    package static let allowCrossSlotKeys = Self(rawValue: 1 << 4)

    package static let names: [(String, Self)] = [
        ("no-writes", .noWrites), ("allow-oom", .allowOOM), ("allow-stale", .allowStale),
        ("no-cluster", .noCluster), ("allow-cross-slot-keys", .allowCrossSlotKeys),
    ]
}

/// Lua scripting for the Redis front-end: EVAL's script cache and FUNCTION's libraries, each with its own
/// interpreter, and the one script that runs at a time.
///
/// A script runs inside one core write transaction (one revision; other clients see all of it or none), on the
/// script thread when a client sent it (its connection waits, other connections go on), or inline when EXEC runs
/// it. While it runs, other clients' writes wait for it; once it passes `busy-reply-threshold` everything but
/// `allow-busy` commands gets BUSY, and SCRIPT KILL / FUNCTION KILL stop it if it has not written.
package final class RedisScripting: Sendable {
    struct Script {
        let body: [UInt8]
        let flags: RedisScriptFlags
        /// No shebang: Redis 6 semantics (may write unless run by a `_RO` command).
        let compatible: Bool
    }

    package struct Function: Sendable {
        package let name: String
        package let description: String?
        package let flags: RedisScriptFlags
        let reference: Int32
        package let library: String
    }

    package struct Library: Sendable {
        package let name: String
        package let code: [UInt8]
        /// Its functions' names, in registration order.
        package let functions: [String]
    }

    /// The script running now.
    package struct Running: Sendable {
        package let name: String
        package let isEval: Bool
        package let command: [[UInt8]]
        package let started: ContinuousClock.Instant
        package var wrote = false
        package var kill = false
        package var timedOut = false
    }

    private final class Engines: @unchecked Sendable {
        var eval: LuaEngine?
        var functions: LuaEngine?
    }

    struct Catalog {
        var scripts: [String: Script] = [:]
        var libraries: [String: Library] = [:]
        var functions: [String: Function] = [:]
    }

    /// Held for as long as an interpreter is used (a whole script run). Taken after the core's write lock, never
    /// before it.
    private let engines = Mutex<Engines>(Engines())
    /// What EXISTS, LIST, STATS and DUMP read without waiting for a running script. Changed under `engines`.
    let catalog = Mutex<Catalog>(Catalog())
    private let running = Mutex<(current: Running?, waiters: [@Sendable () -> Void])>((nil, []))
    /// Whether a script runs: lets every command skip `running`'s lock when none does.
    private let anyRunning = Atomic<Bool>(false)
    private let executor = RedisScriptThread()
    let logger: Logger
    /// Bytes each interpreter may hold.
    let memoryLimit: Int

    init(logger: Logger, memoryLimit: Int = 1 << 30) {
        self.logger = logger
        self.memoryLimit = memoryLimit
    }

    // MARK: The running script

    package var current: Running? { running.withLock { $0.current } }

    /// Whether a script runs now (no lock).
    var isRunning: Bool { anyRunning.load(ordering: .acquiring) }

    /// The BUSY error `command` gets now, if any: a script has run past `busy-reply-threshold`.
    func busyError(for command: RedisCommand) -> String? {
        guard anyRunning.load(ordering: .acquiring), !command.spec.flags.contains(.allowBusy), let current,
            current.timedOut
        else { return nil }
        return Self.busyMessage(isEval: current.isEval)
    }

    static func busyMessage(isEval: Bool) -> String {
        "BUSY Redis is busy running a script. You can only call \(isEval ? "SCRIPT" : "FUNCTION") KILL or SHUTDOWN "
            + "NOSAVE."
    }

    /// Runs `wake` when the running script ends or passes the threshold; false (and `wake` is not kept) when no
    /// script is running or it already passed the threshold.
    func waitForScript(_ wake: @escaping @Sendable () -> Void) -> Bool {
        guard anyRunning.load(ordering: .acquiring) else { return false }
        return running.withLock { state in
            guard let current = state.current, !current.timedOut else { return false }
            state.waiters.append(wake)
            return true
        }
    }

    /// SCRIPT KILL / FUNCTION KILL.
    func kill(isEval: Bool) -> RESPValue {
        running.withLock { state in
            guard var current = state.current else { return .error("NOTBUSY No scripts in execution right now.") }
            if current.wrote {
                return .error(
                    "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either "
                        + "wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE "
                        + "command."
                )
            }
            if current.isEval != isEval { return .error(Self.busyMessage(isEval: current.isEval)) }
            current.kill = true
            state.current = current
            return .ok
        }
    }

    /// SHUTDOWN NOSAVE or SIGTERM: the running script stops even if it wrote (Redis exits under it), so shutting
    /// down does not wait for a script that may never end.
    func killForShutdown() {
        running.withLock { state in state.current?.kill = true }
    }

    /// Whether a script command will not write: a `_RO` command, or a script or function declared `no-writes`
    /// (CLIENT PAUSE WRITE lets those run, as Redis does).
    func isReadOnly(_ name: String, _ arguments: [[UInt8]]) -> Bool {
        guard arguments.count > 1 else { return false }
        switch name {
        case "eval_ro", "evalsha_ro", "fcall_ro": return true
        case "eval":
            guard let (flags, compatible, _) = try? Self.shebang(arguments[1]) else { return false }
            return !compatible && flags.contains(.noWrites)
        case "evalsha":
            let sha = String(decoding: arguments[1], as: UTF8.self).lowercased()
            guard let script = catalog.withLock({ $0.scripts[sha] }) else { return false }
            return !script.compatible && script.flags.contains(.noWrites)
        case "fcall":
            let name = String(decoding: arguments[1], as: UTF8.self).lowercased()
            return catalog.withLock { $0.functions[name]?.flags.contains(.noWrites) } ?? false
        default: return false
        }
    }

    /// Runs `job` on the script thread (scripts sent by clients run there, one at a time).
    func submit(_ job: @escaping @Sendable () -> Void) { executor.submit(job) }

    // MARK: EVAL

    /// EVAL, EVALSHA, EVAL_RO, EVALSHA_RO.
    func eval(_ c: inout RedisInvocation, bySHA: Bool, readOnly: Bool) throws(RedisError) -> RESPValue {
        let (keys, arguments) = try Self.keysAndArguments(c, numberOfKeysAt: 2)
        return try engines.withLock { engines throws(RedisError) -> RESPValue in
            let engine = try self.engine(&engines.eval)
            let sha: String
            let script: Script
            if bySHA {
                sha = c.text(1).lowercased()
                guard let found = catalog.withLock({ $0.scripts[sha] }) else {
                    throw .reply("NOSCRIPT No matching script. Please use EVAL.")
                }
                script = found
            } else {
                (sha, script) = try load(c[1], into: engine)
            }
            if readOnly && !script.compatible && !script.flags.contains(.noWrites) {
                throw .err("Can not execute a script with write flag using *_ro command.")
            }
            defer { updateMemory(engines) }
            return try execute(
                &c,
                engine: engine,
                name: "f_" + sha,
                reference: nil,
                displayName: sha,
                isEval: true,
                readOnly: readOnly || (!script.compatible && script.flags.contains(.noWrites)),
                keys: keys,
                arguments: arguments
            )
        }
    }

    /// SCRIPT LOAD.
    func scriptLoad(_ body: [UInt8]) throws(RedisError) -> String {
        try engines.withLock { engines throws(RedisError) -> String in
            try load(body, into: try engine(&engines.eval)).sha
        }
    }

    func scriptExists(_ shas: [String]) -> [Bool] {
        catalog.withLock { catalog in shas.map { catalog.scripts[$0.lowercased()] != nil } }
    }

    /// SCRIPT FLUSH: a new interpreter, an empty cache.
    func scriptFlush() {
        engines.withLock { engines in
            engines.eval = nil
            catalog.withLock { $0.scripts = [:] }
            updateMemory(engines)
        }
    }

    var cachedScripts: Int { catalog.withLock { $0.scripts.count } }

    /// Compiles (or finds) a script body.
    private func load(_ body: [UInt8], into engine: LuaEngine) throws(RedisError) -> (sha: String, script: Script) {
        let sha = LuaEngine.sha1(body)
        if let found = catalog.withLock({ $0.scripts[sha] }) { return (sha, found) }
        let (flags, compatible, shebangLength) = try Self.shebang(body)
        // (The shebang line goes, its line feed stays: line numbers stay the user's.)
        if let error = engine.compile(name: "f_" + sha, body: body[shebangLength...]) {
            throw .err("Error compiling script (new function): \(error)")
        }
        let script = Script(body: body, flags: flags, compatible: compatible)
        catalog.withLock { $0.scripts[sha] = script }
        return (sha, script)
    }

    /// A script's `#!lua flags=…` line: its flags, whether it had none, and the line's length.
    static func shebang(_ body: [UInt8]) throws(RedisError) -> (RedisScriptFlags, Bool, Int) {
        guard body.starts(with: [UInt8(ascii: "#"), UInt8(ascii: "!")]) else { return ([], true, 0) }
        guard let end = body.firstIndex(of: UInt8(ascii: "\n")) else { throw .err("Invalid script shebang") }
        guard let parts = RESPRequestParser.splitArguments(Array(body[..<end])), let engine = parts.first else {
            throw .err("Invalid engine in script shebang")
        }
        guard engine == Array("#!lua".utf8) else {
            throw .err("Unexpected engine in script shebang: \(String(decoding: engine, as: UTF8.self))")
        }
        var flags: RedisScriptFlags = []
        for part in parts.dropFirst() {
            let text = String(decoding: part, as: UTF8.self)
            guard text.hasPrefix("flags=") else { throw .err("Unknown lua shebang option: \(text)") }
            let list = text.dropFirst(6)
            guard !list.isEmpty else { continue }
            for name in list.split(separator: ",", omittingEmptySubsequences: false) {
                guard let flag = RedisScriptFlags.names.first(where: { $0.0 == name })?.1 else {
                    throw .err("Unexpected flag in script shebang: \(name)")
                }
                flags.insert(flag)
            }
        }
        return (flags, false, end)
    }

    /// `numkeys key… arg…` starting at `index`.
    static func keysAndArguments(
        _ c: RedisInvocation,
        numberOfKeysAt index: Int,
        badCount: RedisError = .notInteger
    ) throws(RedisError) -> (ArraySlice<[UInt8]>, ArraySlice<[UInt8]>) {
        guard let count = RedisNumber.parseInteger(c[index]) else { throw badCount }
        if count > Int64(c.count - index - 1) { throw .err("Number of keys can't be greater than number of args") }
        if count < 0 { throw .err("Number of keys can't be negative") }
        let keysEnd = index + 1 + Int(count)
        return (c.arguments[(index + 1)..<keysEnd], c.arguments[keysEnd...])
    }

    private func engine(_ slot: inout LuaEngine?) throws(RedisError) -> LuaEngine {
        if let engine = slot { return engine }
        guard let engine = LuaEngine(memoryLimit: memoryLimit) else {
            throw .err("Lua interpreter could not be created (out of memory)")
        }
        slot = engine
        return engine
    }

    // MARK: Running

    /// A script's `redis.call` target: the invocation's data, with its own SELECT.
    private final class RunState {
        var data: RedisData
        let session: RedisSession
        var storageFailure: RedisError?
        /// Error replies of the commands the script ran: each counts in the error statistics (as in Redis), once.
        var commandErrors: [String] = []

        init(data: RedisData, session: RedisSession) {
            self.data = data
            self.session = session
        }
    }

    /// Why the script's caller may not run `arguments`, if it may not.
    private static func aclDenial(
        _ session: RedisSession,
        _ server: RedisServer,
        _ name: String,
        _ arguments: [[UInt8]]
    ) -> RedisACL.Denial? {
        if session.isUnrestricted(server.acl) { return nil }
        guard let user = session.currentUser(server.acl) else { return .command }
        guard let id = RedisACLCatalog.shared.byName[name] else { return nil }
        return RedisACL.check(user, id: id, arguments)
    }

    /// Runs a compiled script or a function inside `c`'s transaction.
    private func execute(
        _ c: inout RedisInvocation,
        engine: LuaEngine,
        name: String?,
        reference: Int32?,
        displayName: String,
        isEval: Bool,
        readOnly: Bool,
        keys: ArraySlice<[UInt8]>,
        arguments: ArraySlice<[UInt8]>
    ) throws(RedisError) -> RESPValue {
        let server = c.server
        let state = RunState(data: c.data, session: RedisSession(scriptOf: c.session))
        let threshold = server.config.effective.busyReplyThresholdMilliseconds
        let started = ContinuousClock.now
        running.withLock {
            $0.current = Running(name: displayName, isEval: isEval, command: c.arguments, started: started)
        }
        anyRunning.store(true, ordering: .releasing)
        defer {
            let waiters = running.withLock { state in
                anyRunning.store(false, ordering: .releasing)
                state.current = nil
                defer { state.waiters = [] }
                return state.waiters
            }
            for wake in waiters { wake() }
        }
        let context = LuaRunContext(
            call: { [self] typed, resp in
                if state.storageFailure != nil { return .error("ERR storage failure") }
                guard let arguments = server.renames.resolve(typed) else {
                    return .error("ERR Unknown Redis command called from script")
                }
                let command: RedisCommand
                switch RedisCommandTable.lookup(arguments) {
                case .failure:
                    // A command of Redis's table that Strata lacks still gets Redis's answer when scripts may not
                    // call it.
                    if let spec = RedisCommandTable.lookupSpec(arguments), spec.flags.contains(.noScript) {
                        return .error("ERR This Redis command is not allowed from script")
                    }
                    return .error("ERR Unknown Redis command called from script")
                case .success(let found): command = found
                }
                guard command.spec.accepts(arguments.count) else {
                    return .error("ERR Wrong number of args calling Redis command from script")
                }
                let flags = command.spec.flags
                if flags.contains(.noScript) { return .error("ERR This Redis command is not allowed from script") }
                if let denial = Self.aclDenial(state.session, server, command.spec.name, arguments) {
                    let now = server.store.wallMilliseconds
                    server.acl.log(
                        denial,
                        context: .lua,
                        object: RedisACL.object(denial, command: command.name, arguments),
                        username: state.session.userName,
                        clientInfo: state.session.client.infoLine(now: now),
                        now: now
                    )
                    return .error("ERR The user executing the script " + RedisACL.scriptReason(denial))
                }
                if readOnly && !flags.isDisjoint(with: [.write, .mayReplicate]) {
                    return .error("ERR Write commands are not allowed from read-only scripts.")
                }
                if flags.contains(.write) { running.withLock { $0.current?.wrote = true } }
                state.session.resp = resp
                var invocation = RedisInvocation(
                    server: server,
                    session: state.session,
                    arguments: arguments,
                    data: state.data,
                    inTransaction: true
                )
                let commandStarted = ContinuousClock.now
                var reply: RESPValue
                do throws(RedisError) {
                    reply = try command.run(&invocation)
                } catch {
                    if case .storage = error { state.storageFailure = error }
                    reply = .error(error.message)
                }
                if invocation.block != nil { reply = .nullArray }
                if case .error(let message) = reply { state.commandErrors.append(message) }
                state.data = invocation.data
                let elapsed = commandStarted.duration(to: .now)
                server.stats.record(
                    command.name,
                    microseconds: elapsed.components.seconds * 1_000_000 + elapsed.components.attoseconds
                        / 1_000_000_000_000,
                    failed: reply.isError,
                    trackLatency: server.config.effective.latencyTracking
                )
                server.feedMonitors(arguments, db: state.session.db, address: "lua", except: nil)
                // A script that reads counts as a read of the keys it declared, for client-side caching (Redis).
                if server.tracking.isActive && flags.contains(.readonly) {
                    server.tracking.remember(Array(keys), client: state.session.client.id, caching: false)
                }
                return reply
            },
            aclCheck: { arguments in
                // Like Redis, the arity is not checked: only whether the command exists and the user may run it.
                guard let spec = RedisCommandTable.lookupSpec(arguments),
                    RedisACLCatalog.shared.byName[spec.name] != nil
                else { return -1 }
                return Self.aclDenial(state.session, server, spec.name, arguments) == nil ? 1 : 0
            },
            interrupt: { [self] in
                var wake: [@Sendable () -> Void] = []
                let kill = running.withLock { state -> Bool in
                    guard var current = state.current else { return false }
                    if !current.timedOut && threshold > 0 && started.duration(to: .now) >= .milliseconds(threshold) {
                        current.timedOut = true
                        wake = state.waiters
                        state.waiters = []
                        state.current = current
                        let kill = isEval ? "SCRIPT KILL" : "FUNCTION KILL"
                        logger.warning(
                            "Slow script detected: still running after \(threshold) ms; \(kill) can stop it (\(displayName))"
                        )
                    }
                    return current.kill
                }
                for waiter in wake { waiter() }
                if kill { logger.warning("Lua script killed by user with \(isEval ? "SCRIPT" : "FUNCTION") KILL.") }
                return kill
            },
            log: { [logger] level, text in
                switch level {
                case 0: logger.debug("\(text)")
                case 1: logger.info("\(text)")
                case 2: logger.notice("\(text)")
                default: logger.warning("\(text)")
                }
            }
        )
        let reply = engine.run(
            name: name,
            reference: reference,
            displayName: displayName,
            context: context,
            keys: keys,
            arguments: arguments
        )
        c.data = state.data
        if let failure = state.storageFailure { throw failure }
        // A command's error that the script raised (redis.call) becomes the script's own error reply, which is
        // counted when it is sent: it is not counted twice.
        var counted = state.commandErrors
        if case .error(let final) = reply, let last = counted.last, final.hasPrefix(last) { counted.removeLast() }
        for message in counted { c.server.stats.recordError(message) }
        return reply
    }

    // MARK: Functions

    /// Loads the stored libraries into a new functions interpreter (at start, and after FUNCTION FLUSH).
    func loadLibraries(from store: MVCCStore, spaces: RedisSpaces) {
        var data = RedisData(store: store, spaces: spaces)
        engines.withLock { engines in
            do throws(RedisError) {
                _ = try engine(&engines.functions)
                for (name, code) in try data.libraries() {
                    do throws(RedisError) {
                        try create(engines, code: code, replace: false, commit: true)
                    } catch {
                        logger.error(
                            "function library \(String(decoding: name, as: UTF8.self)) not loaded: \(error.message)"
                        )
                    }
                }
            } catch {
                logger.error("function libraries not loaded: \(error.message)")
            }
            updateMemory(engines)
        }
    }

    /// FCALL, FCALL_RO.
    func fcall(_ c: inout RedisInvocation, readOnly: Bool) throws(RedisError) -> RESPValue {
        try engines.withLock { engines throws(RedisError) -> RESPValue in
            let engine = try engine(&engines.functions)
            guard let function = catalog.withLock({ $0.functions[c.text(1).lowercased()] }) else {
                throw .err("Function not found")
            }
            let (keys, arguments) = try Self.keysAndArguments(
                c,
                numberOfKeysAt: 2,
                badCount: .err("Bad number of keys provided")
            )
            if readOnly && !function.flags.contains(.noWrites) {
                throw .err("Can not execute a script with write flag using *_ro command.")
            }
            defer { updateMemory(engines) }
            return try execute(
                &c,
                engine: engine,
                name: nil,
                reference: function.reference,
                displayName: function.name,
                isEval: false,
                readOnly: readOnly || function.flags.contains(.noWrites),
                keys: keys,
                arguments: arguments
            )
        }
    }

    /// A library's name and engine from its `#!<engine> name=<name>` line.
    static func libraryMetadata(_ code: [UInt8]) throws(RedisError) -> (name: String, engine: String, body: Int) {
        guard code.starts(with: [UInt8(ascii: "#"), UInt8(ascii: "!")]) else {
            throw .err("Missing library metadata")
        }
        guard let end = code.firstIndex(of: UInt8(ascii: "\n")),
            let parts = RESPRequestParser.splitArguments(Array(code[..<end])), let first = parts.first
        else { throw .err("Invalid library metadata") }
        let engine = String(decoding: first.dropFirst(2), as: UTF8.self)
        var name: String? = nil
        for part in parts.dropFirst() {
            let text = String(decoding: part, as: UTF8.self)
            guard text.lowercased().hasPrefix("name=") else { throw .err("Invalid metadata value given: \(text)") }
            guard name == nil else { throw .err("Invalid metadata value, name argument was given multiple times") }
            name = String(text.dropFirst(5))
        }
        guard let name else { throw .err("Library name was not given") }
        return (name, engine, end)
    }

    /// Library and function names: letters, digits and underscores.
    static func isValidName(_ name: String) -> Bool {
        !name.isEmpty
            && name.utf8.allSatisfy { byte in
                byte == UInt8(ascii: "_") || (byte >= 48 && byte <= 57) || (byte | 0x20 >= 97 && byte | 0x20 <= 122)
            }
    }

    private static let invalidName =
        "Library names can only contain letters, numbers, or underscores(_) and must be at least one character long"

    /// Loads a library's code. With `commit` it becomes callable (replacing a library of its name); without, it is
    /// only checked. `ignoring`: libraries about to go, whose names and functions do not clash.
    @discardableResult
    private func create(
        _ engines: Engines,
        code: [UInt8],
        replace: Bool,
        commit: Bool,
        ignoring ignored: Set<String> = []
    ) throws(RedisError) -> Library {
        let (name, engineName, body) = try Self.libraryMetadata(code)
        guard Self.isValidName(name) else { throw .err(Self.invalidName) }
        guard engineName.lowercased() == "lua" else { throw .err("Engine '\(engineName)' not found") }
        let exists = catalog.withLock { $0.libraries[name] != nil }
        if exists && !replace && !ignored.contains(name) { throw .err("Library '\(name)' already exists") }
        let engine = try self.engine(&engines.functions)
        let registrations: [LuaEngine.Registration]
        // (The metadata line goes, its line feed stays: line numbers stay the user's.)
        switch engine.loadLibrary(code[body...], timeoutMilliseconds: 500) {
        case .failure(let error): throw error
        case .success(let found): registrations = found
        }
        func releaseAll() { for registration in registrations { engine.release(registration.reference) } }
        var seen = Set<String>()
        for registration in registrations {
            guard Self.isValidName(registration.name) else {
                releaseAll()
                throw .err("Error registering functions: ERR " + Self.invalidName)
            }
            guard seen.insert(registration.name.lowercased()).inserted else {
                releaseAll()
                throw .err("Error registering functions: ERR Function already exists in the library")
            }
        }
        guard !registrations.isEmpty else { throw .err("No functions registered") }
        let clash = catalog.withLock { catalog in
            registrations.first { registration in
                guard let other = catalog.functions[registration.name.lowercased()] else { return false }
                return other.library != name && !ignored.contains(other.library)
            }
        }
        if let clash {
            releaseAll()
            throw .err("Function \(clash.name) already exists")
        }
        let library = Library(name: name, code: code, functions: registrations.map(\.name))
        guard commit else {
            releaseAll()
            return library
        }
        let replaced = catalog.withLock { catalog -> [Function] in
            var old: [Function] = []
            if let previous = catalog.libraries[name] {
                for function in previous.functions {
                    if let removed = catalog.functions.removeValue(forKey: function.lowercased()) {
                        old.append(removed)
                    }
                }
            }
            catalog.libraries[name] = library
            for registration in registrations {
                catalog.functions[registration.name.lowercased()] = Function(
                    name: registration.name,
                    description: registration.description,
                    flags: registration.flags,
                    reference: registration.reference,
                    library: name
                )
            }
            return old
        }
        for function in replaced { engine.release(function.reference) }
        return library
    }

    /// FUNCTION LOAD: the library's name.
    func functionLoad(_ data: inout RedisData, code: [UInt8], replace: Bool) throws(RedisError) -> String {
        try engines.withLock { engines throws(RedisError) -> String in
            defer { updateMemory(engines) }
            let library = try create(engines, code: code, replace: replace, commit: true)
            try data.storeLibrary(Array(library.name.utf8), code: code)
            return library.name
        }
    }

    /// FUNCTION DELETE.
    func functionDelete(_ data: inout RedisData, name: String) throws(RedisError) {
        try engines.withLock { engines throws(RedisError) in
            let removed = catalog.withLock { catalog -> [Function]? in
                guard let library = catalog.libraries.removeValue(forKey: name) else { return nil }
                return library.functions.compactMap { catalog.functions.removeValue(forKey: $0.lowercased()) }
            }
            guard let removed else { throw .err("Library not found") }
            for function in removed { engines.functions?.release(function.reference) }
            try data.deleteLibrary(Array(name.utf8))
        }
    }

    /// FUNCTION FLUSH: every library goes, and the interpreter with them.
    func functionFlush(_ data: inout RedisData) throws(RedisError) {
        try engines.withLock { engines throws(RedisError) in
            let names = catalog.withLock { catalog in Array(catalog.libraries.keys) }
            for name in names { try data.deleteLibrary(Array(name.utf8)) }
            catalog.withLock { catalog in
                catalog.libraries = [:]
                catalog.functions = [:]
            }
            engines.functions = nil
            updateMemory(engines)
        }
    }

    /// FUNCTION RESTORE with policy FLUSH, APPEND or REPLACE: all of the payload's libraries, or none.
    func functionRestore(_ data: inout RedisData, codes: [[UInt8]], policy: String) throws(RedisError) {
        try engines.withLock { engines throws(RedisError) in
            defer { updateMemory(engines) }
            let existing = catalog.withLock { $0.libraries }
            // Everything is checked first.
            var incoming = Set<String>()
            var functions = Set<String>()
            let ignored: Set<String> = policy == "FLUSH" ? Set(existing.keys) : []
            for code in codes {
                if policy == "APPEND", let name = try? Self.libraryMetadata(code).name, existing[name] != nil {
                    throw .err("Library \(name) already exists")
                }
                let library = try create(engines, code: code, replace: true, commit: false, ignoring: ignored)
                guard incoming.insert(library.name).inserted else {
                    throw .err("Library \(library.name) already exists")
                }
                for function in library.functions {
                    guard functions.insert(function.lowercased()).inserted else {
                        throw .err("Function \(function) already exists")
                    }
                }
            }
            let clash = catalog.withLock { catalog in
                catalog.functions.values.first { function in
                    functions.contains(function.name.lowercased()) && !incoming.contains(function.library)
                        && !ignored.contains(function.library)
                }
            }
            if let clash { throw .err("Function \(clash.name) already exists") }
            if policy == "FLUSH" {
                for name in existing.keys { try data.deleteLibrary(Array(name.utf8)) }
                let all = catalog.withLock { catalog in
                    defer {
                        catalog.libraries = [:]
                        catalog.functions = [:]
                    }
                    return Array(catalog.functions.values)
                }
                for function in all { engines.functions?.release(function.reference) }
            }
            for code in codes {
                let library = try create(engines, code: code, replace: true, commit: true)
                try data.storeLibrary(Array(library.name.utf8), code: code)
            }
        }
    }

    /// Interpreter sizes for INFO (kept so INFO never waits for a running script).
    private let memoryUsage = Mutex<(eval: Int, functions: Int)>((0, 0))

    private func updateMemory(_ engines: Engines) {
        let sizes = (engines.eval?.memory ?? 0, engines.functions?.memory ?? 0)
        memoryUsage.withLock { $0 = sizes }
    }

    /// INFO's `used_memory_lua` and `used_memory_vm_functions`.
    var memory: (eval: Int, functions: Int) { memoryUsage.withLock { $0 } }
}
