internal import Foundation
internal import StrataTestSupport
internal import Testing

/// Lua scripting and functions: the same scripts sent to Strata and to redis-server 7.0 (replies compared byte for
/// byte), job-queue and lock scripts of the kind BullMQ, Sidekiq and Redlock run, and what only a running server
/// shows: atomicity under concurrent clients, BUSY and SCRIPT KILL, the sandbox, functions surviving a restart.
@Suite("Redis scripting")
struct RedisScriptingTests {
    /// Commands whose replies must equal redis-server's.
    static let fixedCommands: [[String]] = [
        // Conversions, Lua → RESP.
        ["EVAL", "return 'hello'", "0"],
        ["EVAL", "return 100.5", "0"],
        ["EVAL", "return -3.99", "0"],
        ["EVAL", "return 0/0", "0"],
        ["EVAL", "return true", "0"],
        ["EVAL", "return false", "0"],
        ["EVAL", "return nil", "0"],
        ["EVAL", "return {1,2,3,'ciao',{1,2}}", "0"],
        ["EVAL", "return {1,nil,3}", "0"],
        ["EVAL", "return {a=1}", "0"],
        ["EVAL", "return {ok='fine'}", "0"],
        ["EVAL", "return {err='ERR this is an error'}", "0"],
        ["EVAL", "return {err='My Error'}", "0"],
        ["EVAL", "return {1, {err='nested'}, {ok='x'}}", "0"],
        ["EVAL", "return redis.error_reply('My Error')", "0"],
        ["EVAL", "return redis.error_reply('noprefix')", "0"],
        ["EVAL", "return redis.status_reply('fine')", "0"],
        ["EVAL", "return {double=3.5}", "0"],
        ["EVAL", "return {big_number='123456789012345678901234567890'}", "0"],
        ["EVAL", "return {map={a=1}}", "0"],
        ["EVAL", "return {set={a=true}}", "0"],
        ["EVAL", "redis.setresp(3); return true", "0"],
        ["EVAL", "redis.setresp(3); return false", "0"],
        ["EVAL", "return _G", "0"],
        ["EVAL", "local a = {}; setmetatable(a, {__index=function() foo() end}); return a", "0"],
        ["EVAL", "return {KEYS[1], KEYS[2], ARGV[1], ARGV[2]}", "2", "a", "b", "c", "d"],
        ["EVAL", "return #KEYS + #ARGV", "0"],
        // RESP → Lua: the replies of redis.call, in both protocol modes.
        ["SET", "mykey", "myval"],
        ["EVAL", "return redis.call('get', KEYS[1])", "1", "mykey"],
        ["EVAL", "return type(redis.call('get', 'nokey'))", "0"],
        ["EVAL", "redis.setresp(3); return type(redis.call('get', 'nokey'))", "0"],
        ["EVAL", "return redis.call('set', 'x', '1')", "0"],
        ["EVAL", "return redis.call('incr', 'x')", "0"],
        ["HSET", "h", "f", "v"],
        ["EVAL", "return redis.call('hgetall', 'h')", "0"],
        ["EVAL", "redis.setresp(3); return redis.call('hgetall', 'h')", "0"],
        ["EVAL", "redis.setresp(3); local r = redis.call('hgetall', 'h'); return r['map']['f']", "0"],
        ["ZADD", "z", "1.5", "m"],
        ["EVAL", "redis.setresp(3); return redis.call('zscore', 'z', 'm')", "0"],
        ["EVAL", "redis.setresp(3); return redis.call('zscore', 'z', 'm')['double']", "0"],
        ["SADD", "s", "one"],
        ["EVAL", "redis.setresp(3); return redis.call('smembers', 's')", "0"],
        ["EVAL", "return redis.call('smembers', 's')", "0"],
        ["EVAL", "return redis.call('ping')", "0"],
        ["EVAL", "return redis.call('ping')['ok']", "0"],
        ["EVAL", "return redis.call('echo', 3.25)", "0"],
        ["EVAL", "return redis.call('echo', 123456789012345)", "0"],
        // Errors.
        ["EVAL", "return redis.call('incr', 'mykey')", "0"],
        ["EVAL", "return redis.pcall('incr', 'mykey')", "0"],
        ["EVAL", "local ok, e = pcall(redis.call, 'incr', 'mykey'); return e", "0"],
        ["EVAL", "return redis.call('nosuchcommand')", "0"],
        ["EVAL", "return redis.call('get')", "0"],
        ["EVAL", "return redis.call()", "0"],
        ["EVAL", "return redis.call('get', {})", "0"],
        ["EVAL", "return redis.call('multi')", "0"],
        ["EVAL", "return redis.call('eval', 'return 1', 0)", "0"],
        ["EVAL", "error('x')", "0"],
        ["EVAL", "error({err='CUSTOM my code'})", "0"],
        ["EVAL", "return 1 +", "0"],
        ["EVAL", "a = 10", "0"],
        ["EVAL", "return a", "0"],
        ["EVAL", "return os.execute('ls')", "0"],
        ["EVAL", "return io.open('/etc/passwd')", "0"],
        ["EVAL", "print('x')", "0"],
        ["EVAL", "loadfile('x')", "0"],
        ["EVAL", "redis.call = function() return 1 end", "0"],
        ["EVAL", "setmetatable(_G, {})", "0"],
        ["EVAL", "cjson.encode = 1", "0"],
        ["EVAL", "return loadstring(string.dump(function() return 1 end))()", "0"],
        ["EVAL", "return redis.setresp(4)", "0"],
        ["EVAL", "return 1", "-1"],
        ["EVAL", "return 1", "2", "a"],
        ["EVAL", "return 1", "x"],
        // The cache.
        ["EVALSHA", "fd758d1589d044dd850a6f05d52f2eefd27f033f", "1", "mykey"],
        ["EVALSHA", "FD758D1589D044DD850A6F05D52F2EEFD27F033F", "1", "mykey"],
        ["EVALSHA", "ffffffffffffffffffffffffffffffffffffffff", "0"],
        ["SCRIPT", "LOAD", "return 'loaded'"],
        ["SCRIPT", "EXISTS", "4ba8e0c1e96cbbcbd5b7cc3bde4ec2d0ad93df35", "ffff"],
        ["SCRIPT", "LOAD", "return 1 +"],
        ["SCRIPT", "FLUSH", "BOGUS"],
        ["SCRIPT", "FLUSH", "ASYNC"],
        ["SCRIPT", "EXISTS", "fd758d1589d044dd850a6f05d52f2eefd27f033f"],
        ["SCRIPT", "KILL"],
        // Read-only runs and shebang flags.
        ["EVAL_RO", "return redis.call('get', 'mykey')", "1", "mykey"],
        ["EVAL_RO", "return redis.call('set', 'mykey', 'x')", "1", "mykey"],
        ["EVAL", "#!lua flags=no-writes\nreturn redis.call('set', 'mykey', 'x')", "0"],
        ["EVAL", "#!lua flags=no-writes\nreturn redis.call('get', 'mykey')", "0"],
        ["EVAL", "#!lua flags=bogus\nreturn 1", "0"],
        ["EVAL", "#!lua\nreturn redis.call('set', 'mykey', 'y')", "0"],
        ["EVAL_RO", "#!lua\nreturn 1", "0"],
        ["EVAL", "#!python\nreturn 1", "0"],
        ["EVAL", "#!lua name=x\nreturn 1", "0"],
        ["EVAL", "#!lua\nerror('line two')", "0"],
        // Libraries.
        ["EVAL", "return redis.sha1hex('')", "0"],
        ["EVAL", "return redis.sha1hex('Pizza & Mandolino')", "0"],
        ["EVAL", "return cjson.encode({1, 2, 'three'})", "0"],
        ["EVAL", "return cjson.decode('[1,2,{\"a\":3}]')[3]['a']", "0"],
        ["EVAL", "local ok, e = pcall(cjson.decode, '{bad'); return ok", "0"],
        ["EVAL", "return cmsgpack.pack({1, 2, 'three', {a=1}})", "0"],
        ["EVAL", "return cmsgpack.pack(0.1, -1099511627776, 255, 65536, -33, true, false, 'x')", "0"],
        ["EVAL", "return {cmsgpack.unpack(cmsgpack.pack(1, 'two', {3}))}", "0"],
        ["EVAL", "return {cmsgpack.unpack_one(cmsgpack.pack(1, 2), 0)}", "0"],
        ["EVAL", "return {cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3), 2, 0)}", "0"],
        ["EVAL", "local ok, e = pcall(cmsgpack.unpack, '\\217'); return e", "0"],
        ["EVAL", "return bit.band(0xff, 0x0f) + bit.lshift(1, 4) + bit.bxor(5, 3)", "0"],
        ["EVAL", "return bit.tohex(255)", "0"],
        ["EVAL", "return struct.pack('>I2i4', 258, -2)", "0"],
        ["EVAL", "return {struct.unpack('<hBs', struct.pack('<hBs', -2, 200, 'str'))}", "0"],
        ["EVAL", "return struct.size('>i4d!4h')", "0"],
        ["EVAL", "local ok, e = pcall(struct.pack, 'z', 1); return e", "0"],
        ["EVAL", "return string.format('%5.2f|%s|%d', 3.14159, 'x', 42)", "0"],
        ["EVAL", "return table.concat({'a', 'b'}, '-')", "0"],
        ["EVAL", "return _VERSION", "0"],
        ["EVAL", "return redis.REDIS_VERSION", "0"],
        ["EVAL", "return tostring(redis.LOG_WARNING)", "0"],
        ["EVAL", "redis.log(redis.LOG_WARNING, 'from a script'); return 1", "0"],
        ["EVAL", "return redis.set_repl(redis.REPL_ALL)", "0"],
        ["EVAL", "return redis.set_repl(99)", "0"],
        ["EVAL", "return redis.replicate_commands()", "0"],
        ["EVAL", "return redis.acl_check_cmd('set', 'a', 'b')", "0"],
        ["EVAL", "return redis.acl_check_cmd('nosuch')", "0"],
        // SELECT inside a script is the script's own.
        ["EVAL", "redis.call('select', 3); redis.call('set', 'in3', 'v'); return redis.call('get', 'in3')", "0"],
        ["GET", "in3"],
        ["SELECT", "3"],
        ["GET", "in3"],
        ["SELECT", "0"],
        // Functions.
        ["FUNCTION", "FLUSH"],
        [
            "FUNCTION", "LOAD",
            "#!lua name=mylib\nredis.register_function('myfunc', function(keys, args) return args[1] end)\n"
                + "redis.register_function{function_name='ro', callback=function(keys) return redis.call('get', keys[1]) end, "
                + "flags={'no-writes'}, description='reads'}",
        ],
        ["FCALL", "myfunc", "0", "hello"],
        ["FCALL", "MYFUNC", "0", "case"],
        ["FCALL_RO", "ro", "1", "mykey"],
        ["FCALL_RO", "myfunc", "0", "x"],
        ["FCALL", "nosuch", "0"],
        ["FCALL", "myfunc", "x"],
        ["FCALL", "myfunc", "5", "a"],
        ["FUNCTION", "LIST"],
        ["FUNCTION", "LIST", "WITHCODE"],
        ["FUNCTION", "LIST", "LIBRARYNAME", "my*"],
        ["FUNCTION", "LIST", "LIBRARYNAME", "other*"],
        ["FUNCTION", "LIST", "BOGUS"],
        ["FUNCTION", "LOAD", "#!lua name=mylib\nredis.register_function('x', function() return 1 end)"],
        ["FUNCTION", "LOAD", "#!lua name=other\nredis.register_function('myfunc', function() return 1 end)"],
        ["FUNCTION", "LOAD", "#!lua name=other\nreturn 1"],
        ["FUNCTION", "LOAD", "#!lua name=other\nredis.call('ping')"],
        ["FUNCTION", "LOAD", "#!lua name=other\nwhile true do end"],
        ["FUNCTION", "LOAD", "#!lua name=other\nredis.register_function('bad-name', function() return 1 end)"],
        ["FUNCTION", "LOAD", "#!lua name=bad-lib\nredis.register_function('f', function() return 1 end)"],
        ["FUNCTION", "LOAD", "#!lua\nredis.register_function('f', function() return 1 end)"],
        ["FUNCTION", "LOAD", "#!js name=x\nredis.register_function('f', function() return 1 end)"],
        ["FUNCTION", "LOAD", "no metadata"],
        ["FUNCTION", "LOAD", "BOGUS", "#!lua name=x\n"],
        ["FUNCTION", "STATS"],
        ["FUNCTION", "KILL"],
        ["FUNCTION", "DELETE", "nosuch"],
        ["FUNCTION", "DELETE", "mylib"],
        ["FCALL", "myfunc", "0", "gone"],
        ["FUNCTION", "RESTORE", "bogus payload"],
        ["FUNCTION", "RESTORE", "x", "BADPOLICY"],
        ["FUNCTION", "FLUSH", "SYNC", "extra"],
    ]

    @Test("scripts answer as redis-server 7.0 answers", arguments: [2, 3])
    func scriptsAnswerAsRedis(resp: Int) throws {
        let servers = try RedisSideBySide(resp: resp)
        let (expected, actual) = (servers.expected, servers.actual)
        var mismatches: [String] = []
        for command in Self.fixedCommands {
            try expected.send(command)
            try actual.send(command)
            let want = try expected.read()
            let got = try actual.read()
            // Redis lists a library's functions in its dict's (seeded, random) order.
            let same =
                command.starts(with: ["FUNCTION", "LIST"])
                ? Self.sorted(want.reply) == Self.sorted(got.reply) : want.bytes == got.bytes
            if !same {
                mismatches.append(
                    "\(command.joined(separator: " "))\n  redis:  \(RedisDifferentialTests.show(want.bytes))\n"
                        + "  strata: \(RedisDifferentialTests.show(got.bytes))"
                )
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.count) replies differ:\n\(mismatches.joined(separator: "\n"))")
    }

    /// The reply with every array, set and map sorted, at every depth.
    static func sorted(_ reply: RESPReply) -> RESPReply {
        switch reply {
        case .array(let items?): .array(items.map(sorted).sorted { $0.description < $1.description })
        case .set(let items): .set(items.map(sorted).sorted { $0.description < $1.description })
        case .map(let items): RedisDifferentialTests.normalized(.map(items.map(sorted)))
        default: reply
        }
    }

    /// Scripts of the kind job queues and locks run (written for these tests in the style of BullMQ's,
    /// Sidekiq's and Redlock's), run the same way against both servers.
    static let queueScripts: [(script: String, keys: [String], arguments: [String])] = [
        // Add a job: id from a counter, its data in a hash, the id on the wait list, an event on a stream-like list.
        (
            """
            local id = redis.call('INCR', KEYS[1])
            local key = KEYS[2] .. id
            redis.call('HSET', key, 'name', ARGV[1], 'data', ARGV[2], 'timestamp', ARGV[3], 'attempts', 0)
            redis.call('LPUSH', KEYS[3], id)
            redis.call('RPUSH', KEYS[4], cjson.encode({event='added', jobId=id}))
            return id
            """,
            ["q:id", "q:job:", "q:wait", "q:events"], ["email", "{\"to\":\"a@b\"}", "1700000000000"]
        ),
        // Move the next job to active with a lock token, as a worker does.
        (
            """
            local id = redis.call('RPOPLPUSH', KEYS[1], KEYS[2])
            if not id then return nil end
            redis.call('SET', KEYS[3] .. id .. ':lock', ARGV[1], 'PX', ARGV[2])
            redis.call('HINCRBY', KEYS[4] .. id, 'attempts', 1)
            return {id, redis.call('HMGET', KEYS[4] .. id, 'name', 'data', 'timestamp', 'attempts')}
            """,
            ["q:wait", "q:active", "q:", "q:job:"], ["token-1", "30000"]
        ),
        // Complete it: check the lock is still ours, store the result, remove from active.
        (
            """
            local lock = KEYS[1] .. ':lock'
            if redis.call('GET', lock) ~= ARGV[2] then return redis.error_reply('Missing lock for job ' .. ARGV[1]) end
            redis.call('DEL', lock)
            redis.call('LREM', KEYS[2], -1, ARGV[1])
            redis.call('HSET', KEYS[3], 'returnvalue', ARGV[3], 'finishedOn', ARGV[4])
            redis.call('ZADD', KEYS[4], ARGV[4], ARGV[1])
            return redis.call('ZCARD', KEYS[4])
            """,
            ["q:1", "q:active", "q:job:1", "q:completed"], ["1", "token-1", "\"sent\"", "1700000001000"]
        ),
        // Completing again without the lock fails.
        (
            """
            if redis.call('GET', KEYS[1] .. ':lock') ~= ARGV[1] then
              return redis.error_reply('Missing lock for job')
            end
            return 1
            """,
            ["q:1"], ["token-1"]
        ),
        // Scheduled jobs (Sidekiq's poller): move the due ones from a sorted set to their queue.
        (
            """
            redis.call('ZADD', KEYS[1], 100, 'job-a', 200, 'job-b', 300, 'job-c')
            local moved = 0
            while true do
              local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 1)
              if #due == 0 then break end
              if redis.call('ZREM', KEYS[1], due[1]) == 1 then
                redis.call('LPUSH', KEYS[2], due[1])
                moved = moved + 1
              end
            end
            return {moved, redis.call('LRANGE', KEYS[2], 0, -1), redis.call('ZRANGE', KEYS[1], 0, -1)}
            """,
            ["schedule", "queue:default"], ["250"]
        ),
        // A token-bucket rate limiter.
        (
            """
            local tokens = tonumber(redis.call('GET', KEYS[1]) or ARGV[1])
            local results = {}
            for i = 1, 5 do
              if tokens > 0 then tokens = tokens - 1; results[i] = 1 else results[i] = 0 end
            end
            redis.call('SET', KEYS[1], tokens, 'EX', ARGV[2])
            return results
            """,
            ["bucket"], ["3", "60"]
        ),
        // Redlock: acquire, refuse a second owner, release only by the owner.
        (
            """
            local a = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', 30000)
            local b = redis.call('SET', KEYS[1], 'other', 'NX', 'PX', 30000)
            local release = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"
            local bad = (redis.call('GET', KEYS[1]) == 'other') and 1 or 0
            local ok = (redis.call('GET', KEYS[1]) == ARGV[1]) and redis.call('DEL', KEYS[1]) or 0
            return {a, b, bad, ok, redis.call('EXISTS', KEYS[1])}
            """,
            ["lock:resource"], ["owner-42"]
        ),
        // Messages packed with cmsgpack, as queues that store binary job data do.
        (
            """
            local packed = cmsgpack.pack({id = ARGV[1], retries = 3, tags = {'a', 'b'}})
            redis.call('SET', KEYS[1], packed)
            local job = cmsgpack.unpack(redis.call('GET', KEYS[1]))
            return {job.id, job.retries, job.tags[2], #packed}
            """,
            ["packed"], ["job-7"]
        ),
    ]

    @Test("job queue, scheduler, rate limiter and lock scripts", arguments: [2, 3])
    func queueScriptsAnswerAsRedis(resp: Int) throws {
        let servers = try RedisSideBySide(resp: resp)
        let (expected, actual) = (servers.expected, servers.actual)
        var compared = 0
        for round in 0..<2 {
            for (script, keys, arguments) in Self.queueScripts {
                // The second round runs each by SHA, as clients do once a script is loaded.
                let command =
                    round == 0
                    ? ["EVAL", script, "\(keys.count)"] + keys + arguments
                    : ["EVALSHA", try Self.sha(expected, script), "\(keys.count)"] + keys + arguments
                let want = try expected.call(command)
                let got = try actual.call(command)
                #expect(got == want, "\(script)")
                compared += 1
            }
        }
        #expect(compared == Self.queueScripts.count * 2)
        // What the scripts left behind, read back the same way from both.
        for command in [
            ["HGETALL", "q:job:1"], ["LRANGE", "q:events", "0", "-1"],
            ["ZRANGE", "q:completed", "0", "-1", "WITHSCORES"],
            ["LRANGE", "queue:default", "0", "-1"], ["GET", "bucket"], ["TTL", "bucket"], ["GET", "packed"],
            ["LRANGE", "q:active", "0", "-1"], ["KEYS", "*"],
        ] {
            #expect(try Self.sorted(actual.call(command)) == Self.sorted(expected.call(command)), "\(command)")
        }
    }

    static func sha(_ client: RESPClient, _ script: String) throws -> String {
        guard case .bulk(let bytes?) = try client.call("SCRIPT", "LOAD", script) else {
            throw RedisTestFailure("SCRIPT LOAD failed")
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    @Test func scriptsAreAtomicForOtherClients() async throws {
        let strata = try RedisTestServer(sync: "none")
        let setup = try strata.client()
        _ = try setup.call("SET", "counter", "0")
        // Each run adds 2 in two steps and checks nobody wrote in between: readers must never see an odd value.
        let script = """
            local a = redis.call('INCR', KEYS[1])
            for i = 1, 2000 do end
            local b = redis.call('INCR', KEYS[1])
            redis.call('RPUSH', KEYS[2], b - a)
            return b
            """
        let writers = 6
        let runs = 150
        let oddSeen = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<writers {
                group.addTask {
                    let client = try strata.client()
                    for _ in 0..<runs { _ = try client.call("EVAL", script, "2", "counter", "gaps") }
                    return 0
                }
            }
            for _ in 0..<2 {
                group.addTask {
                    let client = try strata.client()
                    var odd = 0
                    for _ in 0..<(writers * runs / 2) {
                        if case .bulk(let bytes?) = try client.call("GET", "counter"),
                            let value = Int(String(decoding: bytes, as: UTF8.self)), value % 2 != 0
                        {
                            odd += 1
                        }
                    }
                    return odd
                }
            }
            return try await group.reduce(0, +)
        }
        #expect(oddSeen == 0)
        #expect(try setup.call("GET", "counter") == .bulk(Array("\(2 * writers * runs)".utf8)))
        #expect(try setup.call("LLEN", "gaps") == .integer(Int64(writers * runs)))
        let gaps = try setup.call("LRANGE", "gaps", "0", "-1")
        #expect(gaps == .array(Array(repeating: .bulk(Array("1".utf8)), count: writers * runs)))
    }

    /// SHUTDOWN NOSAVE stops a server whose script never ends and has written (SCRIPT KILL cannot stop it): the
    /// listener closes at once (the next connection is refused) and the process exits.
    @Test func shutdownNosaveStopsAServerStuckInAScript() throws {
        let strata = try RedisTestServer(redisSettings: "allow_shutdown = true")
        let admin = try strata.client()
        _ = try admin.call("CONFIG", "SET", "busy-reply-threshold", "100")
        let runner = try strata.client()
        try runner.send(["EVAL", "redis.call('set', 'k', 'v'); while true do end", "0"])
        var busy: RESPReply = .null
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            busy = try admin.call("PING")
            if case .error = busy { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        #expect(
            busy == .error("BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.")
        )
        if case .error(let message) = try admin.call("SCRIPT", "KILL") {
            #expect(message.hasPrefix("UNKILLABLE"))
        } else {
            Issue.record("SCRIPT KILL stopped a script that wrote")
        }
        #expect(
            try admin.call("SHUTDOWN")
                == .error("BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.")
        )
        #expect(throws: RESPClientError.self) { try admin.call("SHUTDOWN", "NOSAVE") }
        #expect(throws: RESPClientError.self) { try RESPClient(port: strata.port) }
        #expect(strata.strata.waitForExit(timeoutSeconds: 20) == 0, "\(strata.strata.output)")
    }

    /// SIGTERM stops a server stuck in a script that wrote, as it stops redis-server.
    @Test func sigtermStopsAServerStuckInAScript() throws {
        let strata = try RedisTestServer()
        let admin = try strata.client()
        _ = try admin.call("CONFIG", "SET", "busy-reply-threshold", "100")
        let runner = try strata.client()
        try runner.send(["EVAL", "redis.call('set', 'k', 'v'); while true do end", "0"])
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline, case .simple = try admin.call("PING") { Thread.sleep(forTimeInterval: 0.05) }
        #expect(strata.strata.stop(signal: SIGTERM, timeoutSeconds: 20) == 0, "\(strata.strata.output)")
    }

    @Test func runawayReadOnlyScriptGetsKilledAndServerStaysResponsive() throws {
        let strata = try RedisTestServer()
        let admin = try strata.client()
        #expect(try admin.call("CONFIG", "SET", "busy-reply-threshold", "200") == .simple("OK"))
        _ = try admin.call("SET", "k", "before")
        let runner = try strata.client()
        try runner.send(["EVAL", "local x = redis.call('get', 'k'); while true do end", "0"])
        // Until the threshold passes the script is only slow; then everyone else gets BUSY.
        var busy: RESPReply = .null
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            busy = try admin.call("GET", "k")
            if case .error = busy { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        #expect(
            busy
                == .error("BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.")
        )
        #expect(
            try admin.call("FUNCTION", "KILL")
                == .error(
                    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
                )
        )
        #expect(try admin.call("SCRIPT", "KILL") == .simple("OK"))
        guard case .error(let killed) = try runner.read().reply else {
            Issue.record("the killed script did not answer with an error")
            return
        }
        #expect(killed.hasPrefix("ERR Script killed by user with SCRIPT KILL..."))
        #expect(try admin.call("GET", "k") == .bulk(Array("before".utf8)))
        #expect(try runner.call("PING") == .simple("PONG"))
        #expect(try admin.call("SCRIPT", "KILL") == .error("NOTBUSY No scripts in execution right now."))
    }

    @Test func aScriptThatWroteCannotBeKilledAndItsWritesWaitForIt() throws {
        let strata = try RedisTestServer()
        let admin = try strata.client()
        _ = try admin.call("CONFIG", "SET", "busy-reply-threshold", "100")
        let runner = try strata.client()
        // Writes, then spins for about a second of wall time.
        try runner.send([
            "EVAL",
            """
            redis.call('set', 'w', 'from-script')
            local start = redis.call('time')
            while true do
              local now = redis.call('time')
              if (now[1] - start[1]) * 1000000 + (now[2] - start[2]) > 1000000 then break end
            end
            return 'done'
            """,
            "0",
        ])
        let writer = try strata.client()
        Thread.sleep(forTimeInterval: 0.02)
        // A write sent before the threshold waits for the script; one sent after it gets BUSY.
        try writer.send(["SET", "w", "from-writer"])
        var answer: RESPReply = .null
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            answer = try admin.call("SCRIPT", "KILL")
            if answer != .error("NOTBUSY No scripts in execution right now.") { break }
            Thread.sleep(forTimeInterval: 0.01)
        }
        #expect(
            answer
                == .error(
                    "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either "
                        + "wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE "
                        + "command."
                )
        )
        #expect(try runner.read().reply == .bulk(Array("done".utf8)))
        let writerReply = try writer.read().reply
        #expect(
            writerReply == .simple("OK")
                || writerReply
                    == .error("BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.")
        )
        let final = try admin.call("GET", "w")
        #expect(final == .bulk(Array((writerReply == .simple("OK") ? "from-writer" : "from-script").utf8)))
    }

    @Test func sandboxRefusesTheSystemAndBoundsMemory() throws {
        let strata = try RedisTestServer()
        let client = try strata.client()
        for (script, message) in [
            (
                "return os.execute('touch /tmp/strata-pwned')",
                "Script attempted to access nonexistent global variable 'os'"
            ),
            ("return io.open('/etc/passwd'):read('*a')", "Script attempted to access nonexistent global variable 'io'"),
            ("return require('os')", "Script attempted to access nonexistent global variable 'require'"),
            ("return debug.getinfo(1)", "Script attempted to access nonexistent global variable 'debug'"),
            ("setfenv(0, {})", "Attempt to modify a readonly table"),
            ("rawset(_G, 'leak', 1)", "Attempt to modify a readonly table"),
            ("getmetatable('').__index.upper = nil", "attempt to index field '__index' (a nil value)"),
            ("getfenv(tostring).leak = 1", "Attempt to modify a readonly table"),
        ] {
            guard case .error(let text) = try client.call("EVAL", script, "0") else {
                Issue.record("\(script) did not fail")
                continue
            }
            #expect(text.contains(message), "\(script): \(text)")
        }
        #expect(!FileManager.default.fileExists(atPath: "/tmp/strata-pwned"))
        // A script that allocates without bound gets an error; the server goes on.
        guard
            case .error(let memory) = try client.call(
                "EVAL",
                "local t = {} for i = 1, 1e6 do t[i] = string.rep('x', 1048576) .. i end",
                "0"
            )
        else {
            Issue.record("an unbounded allocation did not fail")
            return
        }
        #expect(memory.contains("not enough memory"))
        #expect(try client.call("EVAL", "return string.upper('still here')", "0") == .bulk(Array("STILL HERE".utf8)))
        #expect(try client.call("EVAL", "return leak", "0") != .integer(1))
    }

    @Test func functionsSurviveARestartAndScriptsDoNot() throws {
        let directory = TemporaryDirectory()
        let port = TestNetwork.freePort()
        var strata: RedisTestServer? = try RedisTestServer(directory: directory, port: port)
        var client = try strata!.client()
        let library = "#!lua name=persisted\nredis.register_function('answer', function(keys, args) return 42 end)"
        #expect(try client.call("FUNCTION", "LOAD", library) == .bulk(Array("persisted".utf8)))
        let sha = try Self.sha(client, "return 'cached'")
        #expect(strata!.strata.stop() != nil)
        strata = nil
        strata = try RedisTestServer(directory: directory, port: port)
        client = try strata!.client()
        #expect(try client.call("FCALL", "answer", "0") == .integer(42))
        #expect(try client.call("SCRIPT", "EXISTS", sha) == .array([.integer(0)]))
        #expect(try client.call("FUNCTION", "FLUSH") == .simple("OK"))
        #expect(strata!.strata.stop() != nil)
        strata = try RedisTestServer(directory: directory, port: port)
        client = try strata!.client()
        #expect(try client.call("FUNCTION", "LIST") == .array([]))
    }

    @Test func functionDumpRestoresInRedisAndBack() throws {
        let directory = TemporaryDirectory()
        let reference = try ReferenceRedis(directory: directory.appending("redis"))
        let strata = try RedisTestServer()
        let redis = try RESPClient(port: reference.port)
        let client = try strata.client()
        let library = "#!lua name=moved\nredis.register_function('f', function(keys, args) return 'moved' end)"
        _ = try client.call("FUNCTION", "LOAD", library)
        guard case .bulk(let payload?) = try client.call("FUNCTION", "DUMP") else {
            Issue.record("no dump")
            return
        }
        #expect(try redis.call(bytes: [Array("FUNCTION".utf8), Array("RESTORE".utf8), payload]) == .simple("OK"))
        #expect(try redis.call("FCALL", "f", "0") == .bulk(Array("moved".utf8)))
        _ = try redis.call("FUNCTION", "LOAD", "REPLACE", library.replacingOccurrences(of: "'moved'", with: "'back'"))
        guard case .bulk(let back?) = try redis.call("FUNCTION", "DUMP") else {
            Issue.record("no dump from redis")
            return
        }
        #expect(
            try client.call(bytes: [Array("FUNCTION".utf8), Array("RESTORE".utf8), back, Array("REPLACE".utf8)])
                == .simple("OK")
        )
        #expect(try client.call("FCALL", "f", "0") == .bulk(Array("back".utf8)))
        #expect(
            try client.call(bytes: [Array("FUNCTION".utf8), Array("RESTORE".utf8), back])
                == .error("ERR Library moved already exists")
        )
    }
}
