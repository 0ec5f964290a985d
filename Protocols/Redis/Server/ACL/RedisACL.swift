internal import Foundation
internal import StrataRedisStore
internal import Synchronization

/// Redis's access control lists: the users (the `default` one tied to `requirepass`), their permission checks, the
/// ACL log, and the ACL file. Connections keep a snapshot of their user and refresh it when `generation` moves, so
/// a command costs one atomic load when nothing changed.
package final class RedisACL: Sendable {
    /// Why a command was refused (Redis's ACL_DENIED_* order: a later case wins when selectors disagree).
    enum Denial: Equatable {
        case command
        case key(position: Int)
        case auth
        case channel(position: Int)

        var rank: Int {
            switch self {
            case .command: return 1
            case .key: return 2
            case .auth: return 3
            case .channel: return 4
            }
        }

        /// ACL LOG's `reason`.
        var logReason: String {
            switch self {
            case .command: return "command"
            case .key: return "key"
            case .channel: return "channel"
            case .auth: return "auth"
            }
        }

        var position: Int {
            switch self {
            case .key(let position), .channel(let position): return position
            default: return 0
            }
        }
    }

    enum LogContext: String {
        case toplevel, multi, lua
    }

    struct LogEntry {
        var count: Int
        let reason: String
        let context: LogContext
        let object: [UInt8]
        let username: [UInt8]
        var created: Int64
        var clientInfo: String
    }

    private struct State {
        var users: [[UInt8]: RedisACLUser]
        var log: [LogEntry] = []
    }

    private let state: Mutex<State>
    private let changes = Atomic<UInt64>(1)
    let config: RedisConfig
    static let defaultName = Array("default".utf8)

    init(config: RedisConfig) {
        self.config = config
        var user = RedisACLUser(name: Self.defaultName, pubsubDefaultAll: false)
        Self.makeDefault(&user)
        if let password = config.effective.requirePass {
            user.noPass = false
            user.passwords = [RedisACLUser.hash(Array(password.utf8))]
        }
        state = Mutex(State(users: [Self.defaultName: user]))
    }

    private static func makeDefault(_ user: inout RedisACLUser) {
        for rule in ["+@all", "~*", "&*", "on", "nopass"] {
            try? user.apply(Array(rule.utf8), pubsubDefaultAll: false)
        }
    }

    /// Moves on whenever any user changes.
    var generation: UInt64 { changes.load(ordering: .acquiring) }

    private func changed() { changes.add(1, ordering: .releasing) }

    var pubsubDefaultAll: Bool { config.value("acl-pubsub-default") == "allchannels" }

    func user(_ name: [UInt8]) -> RedisACLUser? { state.withLock { $0.users[name] } }

    /// The user and the generation it was read at.
    func snapshot(_ name: [UInt8]) -> (RedisACLUser?, UInt64) {
        state.withLock { state in (state.users[name], changes.load(ordering: .acquiring)) }
    }

    /// Whether a connection that has not authenticated may run commands (Redis's authRequired, inverted).
    var defaultUserOpen: Bool {
        state.withLock { state in
            guard let user = state.users[Self.defaultName] else { return false }
            return user.noPass && user.enabled
        }
    }

    /// `requirepass` (nil: none) sets the default user's only password.
    func updateDefaultPassword(_ password: String?) {
        state.withLock { state in
            guard var user = state.users[Self.defaultName] else { return }
            user.passwords = []
            if let password {
                user.noPass = false
                user.passwords = [RedisACLUser.hash(Array(password.utf8))]
            } else {
                user.noPass = true
            }
            state.users[Self.defaultName] = user
        }
        changed()
    }

    /// The user `name` authenticates as with `password`, or nil (unknown, disabled, wrong password).
    func authenticate(_ name: [UInt8], _ password: [UInt8]) -> RedisACLUser? {
        guard let user = user(name), user.enabled, user.accepts(password) else { return nil }
        return user
    }

    var usersByName: [RedisACLUser] {
        state.withLock { state in state.users.values.sorted { $0.name.lexicographicallyPrecedes($1.name) } }
    }

    // MARK: Changing users

    /// ACL SETUSER: every rule is applied to a copy, which replaces the user only when all of them are valid.
    /// Returns the error text, or the user before and after.
    func setUser(_ name: [UInt8], rules: [[UInt8]]) -> Result<(before: RedisACLUser?, after: RedisACLUser), RedisError>
    {
        let merged: [[UInt8]]
        switch Self.mergeSelectors(rules) {
        case .success(let rules): merged = rules
        case .failure(let error):
            return .failure(
                .err(
                    "Unmatched parenthesis in acl selector starting at '\(String(decoding: error.bytes, as: UTF8.self))'."
                )
            )
        }
        let pubsubAll = pubsubDefaultAll
        let result = state.withLock { state -> Result<(RedisACLUser?, RedisACLUser), RedisError> in
            let before = state.users[name]
            var user = before ?? RedisACLUser(name: name, pubsubDefaultAll: pubsubAll)
            for rule in merged {
                do throws(RedisACLRuleError) {
                    try user.apply(rule, pubsubDefaultAll: pubsubAll)
                } catch {
                    return .failure(
                        .err(
                            "Error in ACL SETUSER modifier '\(String(decoding: rule, as: UTF8.self))': \(error.message)"
                        )
                    )
                }
            }
            state.users[name] = user
            return .success((before, user))
        }
        if case .success = result { changed() }
        return result.map { (before: $0.0, after: $0.1) }
    }

    /// Joins selector rules split over several arguments (`(+get` `~k)`); failure: where the open one starts.
    static func mergeSelectors(_ rules: [[UInt8]]) -> Result<[[UInt8]], ByteArrayError> {
        var merged: [[UInt8]] = []
        var open: [UInt8]? = nil
        var start: [UInt8] = []
        for rule in rules {
            if open == nil, rule.first == UInt8(ascii: "("), rule.last != UInt8(ascii: ")") {
                open = rule
                start = rule
                continue
            }
            if var selector = open {
                selector += [32] + rule
                if rule.last == UInt8(ascii: ")") {
                    merged.append(selector)
                    open = nil
                } else {
                    open = selector
                }
                continue
            }
            merged.append(rule)
        }
        if open != nil { return .failure(ByteArrayError(bytes: start)) }
        return .success(merged)
    }

    struct ByteArrayError: Error {
        let bytes: [UInt8]
    }

    /// ACL DELUSER: how many of `names` existed (the default user cannot be removed).
    func deleteUsers(_ names: [[UInt8]]) -> Int {
        let deleted = state.withLock { state in
            names.reduce(0) { count, name in count + (state.users.removeValue(forKey: name) == nil ? 0 : 1) }
        }
        if deleted > 0 { changed() }
        return deleted
    }

    // MARK: The ACL file

    /// Parses an ACL file's text into users (nil default: Redis's default user); on any error nothing is returned
    /// and the text says every problem found, as ACL LOAD reports it.
    func parseFile(_ text: String, path: String) -> Result<[[UInt8]: RedisACLUser], RedisError> {
        var errors = ""
        var users: [[UInt8]: RedisACLUser] = [:]
        let pubsubAll = pubsubDefaultAll
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = index + 1
            let line = rawLine.trimmingCharacters(in: CharacterSet(charactersIn: " \t\r\n"))
            if line.isEmpty { continue }
            let words = Array(line.utf8).split(separator: 32, omittingEmptySubsequences: false).map { Array($0) }
            guard words.count >= 2, words[0] == Array("user".utf8) else {
                errors += "\(path):\(number) should start with user keyword followed by the username. "
                continue
            }
            let name = words[1]
            if RedisACLSelector.hasSpaces(name) {
                errors +=
                    "'\(path):\(number): username '\(String(decoding: name, as: UTF8.self))' contains invalid "
                    + "characters. "
                continue
            }
            if users[name] != nil {
                errors +=
                    "WARNING: Duplicate user '\(String(decoding: name, as: UTF8.self))' found on line "
                    + "\(number). "
                continue
            }
            var user = RedisACLUser(name: name, pubsubDefaultAll: pubsubAll)
            switch Self.mergeSelectors(Array(words.dropFirst(2))) {
            case .failure:
                errors += "\(path):\(number): Unmatched parenthesis in selector definition."
            case .success(let rules):
                var reported = false
                for rule in rules {
                    let trimmed = Array(
                        String(decoding: rule, as: UTF8.self).trimmingCharacters(
                            in: CharacterSet(charactersIn: "\t\r\n")
                        ).utf8
                    )
                    do throws(RedisACLRuleError) {
                        try user.apply(trimmed, pubsubDefaultAll: pubsubAll)
                    } catch {
                        if error == .unknownName {
                            errors +=
                                "\(path):\(number): Error in applying operation "
                                + "'\(String(decoding: trimmed, as: UTF8.self))': \(error.message). "
                        } else if !reported {
                            errors += "\(path):\(number): \(error.message). "
                            reported = true
                        }
                    }
                }
            }
            users[name] = user
        }
        if !errors.isEmpty {
            return .failure(
                .err(
                    errors + "WARNING: ACL errors detected, no change to the previously active ACL rules was performed"
                )
            )
        }
        if users[Self.defaultName] == nil {
            var user = RedisACLUser(name: Self.defaultName, pubsubDefaultAll: false)
            Self.makeDefault(&user)
            users[Self.defaultName] = user
        }
        return .success(users)
    }

    /// Replaces every user (ACL LOAD, start-up); returns the names that were there before.
    func replaceUsers(_ users: [[UInt8]: RedisACLUser]) -> [[UInt8]] {
        let before = state.withLock { state in
            defer { state.users = users }
            return Array(state.users.keys)
        }
        changed()
        return before
    }

    /// ACL LOAD (and start-up): every user from `file`, or nothing changes. Success: the users there were before.
    func load(file: String) -> Result<[[UInt8]], RedisError> {
        guard let data = FileManager.default.contents(atPath: file) else {
            let reason = String(cString: strerror(FileManager.default.fileExists(atPath: file) ? EACCES : ENOENT))
            return .failure(.err("Error loading ACLs, opening file '\(file)': \(reason)"))
        }
        switch parseFile(String(decoding: data, as: UTF8.self), path: file) {
        case .success(let users): return .success(replaceUsers(users))
        case .failure(let error): return .failure(error)
        }
    }

    /// ACL SAVE: the users to `file`, through a temporary file renamed over it.
    func save(file: String) -> Bool {
        let temporary = file + ".tmp-\(getpid())-\(Int64(Date().timeIntervalSince1970 * 1000))"
        guard FileManager.default.createFile(atPath: temporary, contents: Data(fileText.utf8)) else { return false }
        guard rename(temporary, file) == 0 else {
            unlink(temporary)
            return false
        }
        return true
    }

    /// The ACL file's text for the current users (ACL SAVE).
    var fileText: String {
        var text: [UInt8] = []
        for user in usersByName {
            text += Array("user ".utf8) + user.name + [32] + user.description + [10]
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// Users given as `user` directives (the personality's redis.conf): applied over a fresh default.
    func loadDirectives(_ lines: [String]) throws(RedisError) {
        var users: [[UInt8]: RedisACLUser] = [:]
        let pubsubAll = pubsubDefaultAll
        for line in lines {
            let words = RESPRequestParser.splitArguments(Array(line.utf8)) ?? []
            guard let name = words.first else { continue }
            if RedisACLSelector.hasSpaces(name) { throw .err("Spaces not allowed in ACL usernames") }
            if users[name] != nil {
                throw .err("Duplicate user found. A user can only be defined once in config files")
            }
            var user = RedisACLUser(name: name, pubsubDefaultAll: pubsubAll)
            // The default user already exists in Redis: it is reset before its rules apply.
            if name == Self.defaultName { try? user.apply(Array("reset".utf8), pubsubDefaultAll: pubsubAll) }
            let rules: [[UInt8]]
            switch Self.mergeSelectors(Array(words.dropFirst())) {
            case .success(let merged): rules = merged
            case .failure:
                throw .err("Unmatched parenthesis in acl selector for user '\(String(decoding: name, as: UTF8.self))'")
            }
            for rule in rules {
                do throws(RedisACLRuleError) {
                    try user.apply(rule, pubsubDefaultAll: pubsubAll)
                } catch {
                    throw .err(
                        "Error in user declaration '\(String(decoding: rule, as: UTF8.self))': \(error.message)"
                    )
                }
            }
            users[name] = user
        }
        guard !users.isEmpty else { return }
        state.withLock { state in
            for (name, user) in users { state.users[name] = user }
        }
        changed()
    }

    // MARK: The log

    func log(
        _ denial: Denial,
        context: LogContext,
        object: [UInt8],
        username: [UInt8],
        clientInfo: String,
        now: Int64
    ) {
        let reason = denial.logReason
        let limit = Int(config.value("acllog-max-len") ?? "128") ?? 128
        state.withLock { state in
            // Like Redis, a denial that repeats one of the ten newest entries within a minute bumps its count.
            for index in state.log.indices.prefix(10) {
                let entry = state.log[index]
                if entry.reason == reason && entry.context == context && abs(entry.created - now) <= 60_000
                    && entry.object == object && entry.username == username
                {
                    var updated = state.log.remove(at: index)
                    updated.count += 1
                    updated.created = now
                    updated.clientInfo = clientInfo
                    state.log.insert(updated, at: 0)
                    return
                }
            }
            state.log.insert(
                LogEntry(
                    count: 1,
                    reason: reason,
                    context: context,
                    object: object,
                    username: username,
                    created: now,
                    clientInfo: clientInfo
                ),
                at: 0
            )
            if state.log.count > limit { state.log.removeLast(state.log.count - limit) }
        }
    }

    func logEntries(_ count: Int) -> [LogEntry] { state.withLock { Array($0.log.prefix(count)) } }

    func resetLog() { state.withLock { $0.log = [] } }
}
