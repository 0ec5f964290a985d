internal import CStrataLua
internal import StrataRedisStore

/// What a running script reaches through `redis.call` and friends. The engine holds it only for the run.
final class LuaRunContext {
    /// Runs one command for the script; `resp` is the script's protocol (redis.setresp).
    let call: (_ arguments: [[UInt8]], _ resp: Int) -> RESPValue
    /// 1 allowed, 0 denied, -1 no such command.
    let aclCheck: (_ arguments: [[UInt8]]) -> Int32
    /// Polled every 100,000 instructions: true stops the script.
    let interrupt: () -> Bool
    let log: (_ level: Int, _ text: String) -> Void

    init(
        call: @escaping ([[UInt8]], Int) -> RESPValue,
        aclCheck: @escaping ([[UInt8]]) -> Int32,
        interrupt: @escaping () -> Bool,
        log: @escaping (Int, String) -> Void
    ) {
        self.call = call
        self.aclCheck = aclCheck
        self.interrupt = interrupt
        self.log = log
    }
}

/// One Lua 5.1 interpreter with Redis's sandbox (CStrataLua). Not thread-safe: ``RedisScripting`` serializes every
/// use of it.
final class LuaEngine {
    /// A function a library registered (FUNCTION LOAD).
    struct Registration {
        let name: String
        let description: String?
        let flags: RedisScriptFlags
        let reference: Int32
    }

    private let handle: OpaquePointer

    /// nil when Lua cannot allocate its state.
    init?(memoryLimit: Int) {
        var callbacks = strata_lua_callbacks(
            call: { context, resp, argc, argv, lengths, reply in
                let run = Unmanaged<LuaRunContext>.fromOpaque(context!).takeUnretainedValue()
                let value = run.call(LuaEngine.arguments(Int(argc), argv, lengths), Int(resp))
                var bytes: [UInt8] = []
                LuaEngine.encode(value, resp: Int(resp), into: &bytes)
                bytes.withUnsafeBytes { strata_lua_buffer_append(reply, $0.baseAddress, $0.count) }
            },
            acl_check: { context, argc, argv, lengths in
                let run = Unmanaged<LuaRunContext>.fromOpaque(context!).takeUnretainedValue()
                return run.aclCheck(LuaEngine.arguments(Int(argc), argv, lengths))
            },
            interrupt: { context in
                let run = Unmanaged<LuaRunContext>.fromOpaque(context!).takeUnretainedValue()
                return run.interrupt() ? 1 : 0
            },
            log: { context, level, text, length in
                // (a library's load logs with no run: there is nowhere to log it but nothing to lose either)
                guard let context else { return }
                let run = Unmanaged<LuaRunContext>.fromOpaque(context).takeUnretainedValue()
                let bytes = UnsafeRawBufferPointer(start: text, count: length)
                run.log(Int(level), String(decoding: bytes, as: UTF8.self))
            }
        )
        guard let handle = strata_lua_open(&callbacks, memoryLimit) else { return nil }
        self.handle = handle
    }

    deinit { strata_lua_close(handle) }

    /// Bytes the interpreter holds (INFO's `used_memory_lua`).
    var memory: Int { strata_lua_memory(handle) }

    /// Compiles `body` under `name`; the compiler's message when it fails.
    func compile(name: String, body: ArraySlice<UInt8>) -> String? {
        var error = strata_lua_buffer()
        defer { strata_lua_buffer_free(&error) }
        let failed = body.withUnsafeBytes { bytes in
            strata_lua_compile(
                handle,
                name,
                bytes.baseAddress?.assumingMemoryBound(to: CChar.self),
                bytes.count,
                &error
            )
        }
        return failed == 0 ? nil : Self.string(error)
    }

    /// Runs compiled script `name` (EVAL), or the function behind `reference` (FCALL).
    func run(
        name: String?,
        reference: Int32?,
        displayName: String,
        context: LuaRunContext,
        keys: ArraySlice<[UInt8]>,
        arguments: ArraySlice<[UInt8]>
    ) -> RESPValue {
        var reply = strata_lua_buffer()
        defer { strata_lua_buffer_free(&reply) }
        let unmanaged = Unmanaged.passRetained(context)
        defer { unmanaged.release() }
        Self.withCArrays(keys) { keyPointers, keyLengths in
            Self.withCArrays(arguments) { argumentPointers, argumentLengths in
                strata_lua_run(
                    handle,
                    name ?? "",
                    reference ?? -2,  // LUA_NOREF
                    displayName,
                    unmanaged.toOpaque(),
                    Int32(keys.count),
                    keyPointers,
                    keyLengths,
                    Int32(arguments.count),
                    argumentPointers,
                    argumentLengths,
                    &reply
                )
            }
        }
        var reader = Reader(bytes: UnsafeRawBufferPointer(start: reply.bytes, count: reply.length))
        return reader.value() ?? .error("ERR malformed script reply")
    }

    /// Runs a library's code so that it registers its functions.
    func loadLibrary(_ code: ArraySlice<UInt8>, timeoutMilliseconds: UInt64) -> Result<[Registration], RedisError> {
        var registrations = strata_lua_buffer()
        var error = strata_lua_buffer()
        defer {
            strata_lua_buffer_free(&registrations)
            strata_lua_buffer_free(&error)
        }
        let failed = code.withUnsafeBytes { bytes in
            strata_lua_load_library(
                handle,
                bytes.baseAddress?.assumingMemoryBound(to: CChar.self),
                bytes.count,
                timeoutMilliseconds,
                &registrations,
                &error
            )
        }
        if failed != 0 { return .failure(.err(Self.string(error))) }
        var reader = Reader(bytes: UnsafeRawBufferPointer(start: registrations.bytes, count: registrations.length))
        var found: [Registration] = []
        while !reader.atEnd {
            guard let name = reader.text(), let descriptionLength = reader.u32() else { break }
            var description: String? = nil
            if descriptionLength != 0xFFFF_FFFF {
                guard let bytes = reader.bytes(Int(descriptionLength)) else { break }
                description = String(decoding: bytes, as: UTF8.self)
            }
            guard let flags = reader.u32(), let reference = reader.u32() else { break }
            found.append(
                Registration(
                    name: name,
                    description: description,
                    flags: RedisScriptFlags(rawValue: flags),
                    reference: Int32(bitPattern: reference)
                )
            )
        }
        return .success(found)
    }

    func release(_ reference: Int32) { strata_lua_unref(handle, reference) }

    /// Lower-case hex SHA-1 (script names, redis.sha1hex).
    static func sha1(_ bytes: some Collection<UInt8>) -> String {
        let array = Array(bytes)
        var digest = [CChar](repeating: 0, count: 41)
        array.withUnsafeBytes { raw in
            digest.withUnsafeMutableBufferPointer { out in
                strata_lua_sha1hex(raw.baseAddress, raw.count, out.baseAddress)
            }
        }
        return String(decoding: digest.prefix(40).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    // MARK: Crossing into C

    private static func string(_ buffer: strata_lua_buffer) -> String {
        String(decoding: UnsafeRawBufferPointer(start: buffer.bytes, count: buffer.length), as: UTF8.self)
    }

    private static func arguments(
        _ count: Int,
        _ pointers: UnsafePointer<UnsafePointer<CChar>?>?,
        _ lengths: UnsafePointer<Int>?
    ) -> [[UInt8]] {
        (0..<count).map { index in
            Array(UnsafeRawBufferPointer(start: pointers![index], count: lengths![index]))
        }
    }

    private static func withCArrays<R>(
        _ items: ArraySlice<[UInt8]>,
        _ body: (UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<Int>?) -> R
    ) -> R {
        // One contiguous copy, so every pointer stays valid for the call.
        var joined: [UInt8] = []
        joined.reserveCapacity(items.reduce(0) { $0 + $1.count })
        var lengths: [Int] = []
        lengths.reserveCapacity(items.count)
        for item in items {
            joined.append(contentsOf: item)
            lengths.append(item.count)
        }
        return joined.withUnsafeBufferPointer { base in
            let start = UnsafeRawPointer(base.baseAddress ?? UnsafePointer(bitPattern: 1)!)
            var pointers: [UnsafePointer<CChar>?] = []
            pointers.reserveCapacity(items.count)
            var offset = 0
            for length in lengths {
                pointers.append((start + offset).assumingMemoryBound(to: CChar.self))
                offset += length
            }
            return pointers.withUnsafeBufferPointer { pointerBuffer in
                lengths.withUnsafeBufferPointer { lengthBuffer in
                    body(pointerBuffer.baseAddress, lengthBuffer.baseAddress)
                }
            }
        }
    }
}
