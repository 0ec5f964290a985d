// Strata's embedding of Lua 5.1 for Redis scripting. Every Lua API call that can raise an error (a longjmp) is made
// from C inside a protected call, so no Swift frame is ever unwound by Lua: Swift is reached only through the
// callbacks below, which return normally, and hands values across as byte buffers in the tagged encoding
// documented in StrataLuaEncoding (RedisScripting+Encoding.swift).
#ifndef STRATA_LUA_H
#define STRATA_LUA_H

#include <stddef.h>
#include <stdint.h>

typedef struct strata_lua strata_lua;

/// A growable byte buffer (malloc'd), written by either side.
typedef struct {
    uint8_t *bytes;
    size_t length;
    size_t capacity;
} strata_lua_buffer;

void strata_lua_buffer_append(strata_lua_buffer *buffer, const void *bytes, size_t length);
void strata_lua_buffer_reset(strata_lua_buffer *buffer);
void strata_lua_buffer_free(strata_lua_buffer *buffer);

typedef struct {
    /// `redis.call` / `redis.pcall`: runs `argv` and writes its reply (tagged encoding, folded to `resp`) to `reply`.
    void (*call)(void *context, int resp, int argc, const char *const *argv, const size_t *lengths,
                 strata_lua_buffer *reply);
    /// `redis.acl_check_cmd`: 1 allowed, 0 denied, -1 no such command.
    int (*acl_check)(void *context, int argc, const char *const *argv, const size_t *lengths);
    /// Called every 100,000 instructions of a script: nonzero kills it.
    int (*interrupt)(void *context);
    /// `redis.log`.
    void (*log)(void *context, int level, const char *text, size_t length);
} strata_lua_callbacks;

/// A new sandboxed interpreter (Redis's libraries, globals protected); NULL if Lua cannot allocate it.
/// `memory_limit`: bytes the interpreter may hold (0: unbounded); an allocation beyond it fails as out of memory.
strata_lua *strata_lua_open(const strata_lua_callbacks *callbacks, size_t memory_limit);
void strata_lua_close(strata_lua *lua);
/// Bytes the interpreter holds.
size_t strata_lua_memory(strata_lua *lua);

/// Compiles `body` as the script named `name` (kept until the interpreter closes). 0 on success; otherwise the
/// compiler's message is in `error`.
int strata_lua_compile(strata_lua *lua, const char *name, const char *body, size_t length, strata_lua_buffer *error);

/// Runs compiled script `name` (EVAL) or registered function `function_ref` (FCALL; `name` ignored) with `KEYS`
/// and `ARGV`. The reply, in the tagged encoding, is written to `reply` (an error reply is a `-` item).
/// `function_name` names the script in error messages (the SHA or the function's name).
void strata_lua_run(strata_lua *lua, const char *name, int function_ref, const char *function_name, void *context,
                    int argc_keys, const char *const *keys, const size_t *key_lengths, int argc_args,
                    const char *const *args, const size_t *arg_lengths, strata_lua_buffer *reply);

/// FUNCTION LOAD: runs a library's code with only `redis.register_function` (and `redis.log`) available. On
/// success returns 0 and `registrations` holds, per function: u32 name length, name, u32 description length
/// (0xFFFFFFFF: none), description, u32 flags bitmask, i32 registry reference. Otherwise the message is in
/// `error`. `timeout_ms` bounds the load (0: none).
int strata_lua_load_library(strata_lua *lua, const char *code, size_t length, uint64_t timeout_ms,
                            strata_lua_buffer *registrations, strata_lua_buffer *error);
/// Releases a registered function's reference.
void strata_lua_unref(strata_lua *lua, int ref);

/// Script flags (shebang `flags=` and register_function's `flags`).
enum {
    STRATA_LUA_FLAG_NO_WRITES = 1 << 0,
    STRATA_LUA_FLAG_ALLOW_OOM = 1 << 1,
    STRATA_LUA_FLAG_ALLOW_STALE = 1 << 2,
    STRATA_LUA_FLAG_NO_CLUSTER = 1 << 3,
    STRATA_LUA_FLAG_ALLOW_CROSS_SLOT = 1 << 4,
};

/// Lower-case hex SHA-1 of `bytes` into `out` (41 bytes with the NUL).
void strata_lua_sha1hex(const void *bytes, size_t length, char out[41]);

#endif
