// Lua 5.1 for Redis scripting: the sandbox (Redis's libraries, protected globals), the `redis` library, the
// conversions between Lua values and replies, and the run loop with its kill hook. See strata_lua.h.
#include "strata_lua.h"

#include <lua5.1/lauxlib.h>
#include <lua5.1/lua.h>
#include <lua5.1/lualib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

int luaopen_cjson(lua_State *L);
int luaopen_bit(lua_State *L);
int strata_luaopen_struct(lua_State *L);
int strata_luaopen_cmsgpack(lua_State *L);

#define REDIS_VERSION "7.0.15"
#define REDIS_VERSION_NUM 0x0007000f
#define HOOK_INSTRUCTIONS 100000
/// Replies nest at most this deep either way (deeper Lua tables end in a "reached lua stack limit" error element).
#define MAX_REPLY_DEPTH 1000

struct strata_lua {
    lua_State *L;
    strata_lua_callbacks callbacks;
    size_t memory;
    size_t memory_limit;
    /// The running script's context (NULL between runs: redis.call then refuses).
    void *context;
    /// redis.setresp of the running script.
    int resp;
    int in_call;
    /// FUNCTION LOAD in progress: registrations go here.
    strata_lua_buffer *registrations;
    int registered;
    uint64_t load_deadline_ms;
    uint64_t rand_state;
    /// Registry references: the protected globals proxy, its metatable, the real globals, the load-time API.
    int proxy_ref, proxy_meta_ref, globals_ref, load_api_ref, protected_ref;
};

// MARK: Buffers

void strata_lua_buffer_append(strata_lua_buffer *buffer, const void *bytes, size_t length) {
    if (buffer->length + length > buffer->capacity) {
        size_t capacity = buffer->capacity ? buffer->capacity : 256;
        while (capacity < buffer->length + length) capacity *= 2;
        uint8_t *grown = realloc(buffer->bytes, capacity);
        if (!grown) abort();
        buffer->bytes = grown;
        buffer->capacity = capacity;
    }
    if (length) memcpy(buffer->bytes + buffer->length, bytes, length);
    buffer->length += length;
}

void strata_lua_buffer_reset(strata_lua_buffer *buffer) { buffer->length = 0; }

void strata_lua_buffer_free(strata_lua_buffer *buffer) {
    free(buffer->bytes);
    buffer->bytes = NULL;
    buffer->length = buffer->capacity = 0;
}

static void put_u8(strata_lua_buffer *b, uint8_t v) { strata_lua_buffer_append(b, &v, 1); }
static void put_u32(strata_lua_buffer *b, uint32_t v) {
    uint8_t bytes[4] = {v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >> 24) & 0xff};
    strata_lua_buffer_append(b, bytes, 4);
}
static void put_u64(strata_lua_buffer *b, uint64_t v) {
    uint8_t bytes[8];
    for (int i = 0; i < 8; i++) bytes[i] = (v >> (8 * i)) & 0xff;
    strata_lua_buffer_append(b, bytes, 8);
}
static void put_text(strata_lua_buffer *b, uint8_t tag, const char *s, size_t n) {
    put_u8(b, tag);
    put_u32(b, (uint32_t)n);
    strata_lua_buffer_append(b, s, n);
}

static strata_lua *owner(lua_State *L) {
    void *ud;
    lua_getallocf(L, &ud);
    return ud;
}

// MARK: Memory

static void *allocate(void *ud, void *ptr, size_t osize, size_t nsize) {
    strata_lua *lua = ud;
    if (nsize == 0) {
        free(ptr);
        lua->memory -= osize;
        return NULL;
    }
    if (nsize > osize && lua->memory_limit && lua->memory + (nsize - osize) > lua->memory_limit) return NULL;
    void *grown = realloc(ptr, nsize);
    if (grown) lua->memory = lua->memory - osize + nsize;
    return grown;
}

// MARK: Errors

/// Pushes Redis's error table `{err = "CODE message"}`: a message without a code gets `ERR`.
static void push_error_table(lua_State *L, const char *message, size_t length) {
    lua_newtable(L);
    lua_pushliteral(L, "err");
    if (length > 0 && message[0] == '-') {
        message++;
        length--;
        const char *space = memchr(message, ' ', length);
        if (!space) {
            lua_pushliteral(L, "ERR ");
            lua_pushlstring(L, message, length);
            lua_concat(L, 2);
        } else {
            lua_pushlstring(L, message, length);
        }
    } else {
        lua_pushliteral(L, "ERR ");
        lua_pushlstring(L, message, length);
        lua_concat(L, 2);
    }
    // Redis trims trailing line ends.
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);
    while (n > 0 && (s[n - 1] == '\r' || s[n - 1] == '\n')) n--;
    lua_pushlstring(L, s, n);
    lua_remove(L, -2);
    lua_rawset(L, -3);
}

static int raise_error(lua_State *L, const char *message) {
    push_error_table(L, message, strlen(message));
    return lua_error(L);
}

// MARK: Replies to Lua values

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
} reader;

static int take(reader *r, size_t n, const uint8_t **out) {
    if ((size_t)(r->end - r->p) < n) return 0;
    *out = r->p;
    r->p += n;
    return 1;
}

static int take_u32(reader *r, uint32_t *v) {
    const uint8_t *b;
    if (!take(r, 4, &b)) return 0;
    *v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    return 1;
}

static int take_u64(reader *r, uint64_t *v) {
    const uint8_t *b;
    if (!take(r, 8, &b)) return 0;
    *v = 0;
    for (int i = 7; i >= 0; i--) *v = *v << 8 | b[i];
    return 1;
}

static void set_field(lua_State *L, const char *field) {
    // Stack: table, value → table.field = value
    lua_pushstring(L, field);
    lua_insert(L, -2);
    lua_rawset(L, -3);
}

/// Pushes one reply as Redis converts it for a script using RESP `resp`. 0 on a malformed buffer.
static int push_reply(lua_State *L, reader *r, int resp, int depth) {
    const uint8_t *tag;
    uint32_t n;
    uint64_t bits;
    const uint8_t *bytes;
    if (depth > MAX_REPLY_DEPTH || !lua_checkstack(L, 6) || !take(r, 1, &tag)) return 0;
    switch (*tag) {
    case 'i':
        if (!take_u64(r, &bits)) return 0;
        lua_pushnumber(L, (lua_Number)(int64_t)bits);
        return 1;
    case '$':
        if (!take_u32(r, &n) || !take(r, n, &bytes)) return 0;
        lua_pushlstring(L, (const char *)bytes, n);
        return 1;
    case '_':
        if (resp == 2) lua_pushboolean(L, 0);
        else lua_pushnil(L);
        return 1;
    case '+':
    case '-':
    case '(':
        if (!take_u32(r, &n) || !take(r, n, &bytes)) return 0;
        lua_newtable(L);
        lua_pushlstring(L, (const char *)bytes, n);
        set_field(L, *tag == '+' ? "ok" : *tag == '-' ? "err" : "big_number");
        return 1;
    case '=':
        if (!take_u32(r, &n) || !take(r, n, &bytes)) return 0;
        lua_newtable(L);
        lua_newtable(L);
        lua_pushliteral(L, "txt");
        set_field(L, "format");
        lua_pushlstring(L, (const char *)bytes, n);
        set_field(L, "string");
        set_field(L, "verbatim_string");
        return 1;
    case ',': {
        if (!take_u64(r, &bits)) return 0;
        double d;
        memcpy(&d, &bits, 8);
        lua_newtable(L);
        lua_pushnumber(L, d);
        set_field(L, "double");
        return 1;
    }
    case '#':
        if (!take(r, 1, &bytes)) return 0;
        lua_pushboolean(L, bytes[0] != 0);
        return 1;
    case '*':
        if (!take_u32(r, &n)) return 0;
        lua_createtable(L, n < 1024 ? (int)n : 1024, 0);
        for (uint32_t i = 0; i < n; i++) {
            if (!push_reply(L, r, resp, depth + 1)) return 0;
            lua_rawseti(L, -2, (int)i + 1);
        }
        return 1;
    case '%':
        if (!take_u32(r, &n)) return 0;
        lua_newtable(L);
        lua_newtable(L);
        for (uint32_t i = 0; i < n; i++) {
            if (!push_reply(L, r, resp, depth + 1) || !push_reply(L, r, resp, depth + 1)) return 0;
            lua_rawset(L, -3);
        }
        set_field(L, "map");
        return 1;
    case '~':
        if (!take_u32(r, &n)) return 0;
        lua_newtable(L);
        lua_newtable(L);
        for (uint32_t i = 0; i < n; i++) {
            if (!push_reply(L, r, resp, depth + 1)) return 0;
            lua_pushboolean(L, 1);
            lua_rawset(L, -3);
        }
        set_field(L, "set");
        return 1;
    default:
        return 0;
    }
}

// MARK: Lua values to replies

/// The string field `field` of the table at `index` (raw: metatables are never consulted), or NULL.
static const char *raw_string_field(lua_State *L, int index, const char *field, size_t *length) {
    lua_pushstring(L, field);
    lua_rawget(L, index < 0 ? index - 1 : index);
    if (lua_type(L, -1) != LUA_TSTRING) {
        lua_pop(L, 1);
        return NULL;
    }
    const char *s = lua_tolstring(L, -1, length);
    lua_pop(L, 1);  // the table still holds the string
    return s;
}

/// Status and error texts lose their line ends.
static void put_line(strata_lua_buffer *b, uint8_t tag, const char *s, size_t n) {
    put_u8(b, tag);
    put_u32(b, (uint32_t)n);
    for (size_t i = 0; i < n; i++) put_u8(b, s[i] == '\r' || s[i] == '\n' ? ' ' : s[i]);
}

/// Writes the value on top of the stack as Redis replies with it (the script's RESP is `resp`), and pops it.
static void put_value(lua_State *L, strata_lua_buffer *b, int resp, int depth) {
    if (depth > MAX_REPLY_DEPTH || !lua_checkstack(L, 4)) {
        static const char limit[] = "ERR reached lua stack limit";
        put_text(b, '-', limit, sizeof(limit) - 1);
        lua_pop(L, 1);
        return;
    }
    switch (lua_type(L, -1)) {
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, -1, &n);
        put_text(b, '$', s, n);
        break;
    }
    case LUA_TBOOLEAN:
        if (resp == 2) {
            if (lua_toboolean(L, -1)) {
                put_u8(b, 'i');
                put_u64(b, 1);
            } else {
                put_u8(b, '_');
            }
        } else {
            put_u8(b, '#');
            put_u8(b, lua_toboolean(L, -1) ? 1 : 0);
        }
        break;
    case LUA_TNUMBER: {
        // Truncated toward zero; what does not fit (and NaN) is LLONG_MIN, as x86's conversion gives.
        double d = lua_tonumber(L, -1);
        int64_t v = (d >= -9223372036854775808.0 && d < 9223372036854775808.0) ? (int64_t)d : INT64_MIN;
        put_u8(b, 'i');
        put_u64(b, (uint64_t)v);
        break;
    }
    case LUA_TTABLE: {
        size_t n;
        const char *s;
        if ((s = raw_string_field(L, -1, "err", &n))) {
            put_line(b, '-', s, n);
            break;
        }
        if ((s = raw_string_field(L, -1, "ok", &n))) {
            put_line(b, '+', s, n);
            break;
        }
        lua_pushliteral(L, "double");
        lua_rawget(L, -2);
        if (lua_type(L, -1) == LUA_TNUMBER) {
            double d = lua_tonumber(L, -1);
            uint64_t bits;
            memcpy(&bits, &d, 8);
            put_u8(b, ',');
            put_u64(b, bits);
            lua_pop(L, 1);
            break;
        }
        lua_pop(L, 1);
        if ((s = raw_string_field(L, -1, "big_number", &n))) {
            put_line(b, '(', s, n);
            break;
        }
        lua_pushliteral(L, "verbatim_string");
        lua_rawget(L, -2);
        if (lua_type(L, -1) == LUA_TTABLE) {
            size_t fn;
            const char *format = raw_string_field(L, -1, "format", &fn);
            const char *text = format ? raw_string_field(L, -1, "string", &n) : NULL;
            if (text) {
                put_text(b, '=', text, n);
                lua_pop(L, 1);
                break;
            }
        }
        lua_pop(L, 1);
        lua_pushliteral(L, "map");
        lua_rawget(L, -2);
        if (lua_type(L, -1) == LUA_TTABLE) {
            uint32_t count = 0;
            strata_lua_buffer items = {0};
            lua_pushnil(L);
            while (lua_next(L, -2)) {
                lua_pushvalue(L, -2);
                put_value(L, &items, resp, depth + 1);  // the key
                put_value(L, &items, resp, depth + 1);  // the value
                count++;
            }
            put_u8(b, '%');
            put_u32(b, count);
            strata_lua_buffer_append(b, items.bytes, items.length);
            strata_lua_buffer_free(&items);
            lua_pop(L, 1);
            break;
        }
        lua_pop(L, 1);
        lua_pushliteral(L, "set");
        lua_rawget(L, -2);
        if (lua_type(L, -1) == LUA_TTABLE) {
            uint32_t count = 0;
            strata_lua_buffer items = {0};
            lua_pushnil(L);
            while (lua_next(L, -2)) {
                lua_pop(L, 1);
                lua_pushvalue(L, -1);
                put_value(L, &items, resp, depth + 1);
                count++;
            }
            put_u8(b, '~');
            put_u32(b, count);
            strata_lua_buffer_append(b, items.bytes, items.length);
            strata_lua_buffer_free(&items);
            lua_pop(L, 1);
            break;
        }
        lua_pop(L, 1);
        // An array: up to the first nil.
        strata_lua_buffer items = {0};
        uint32_t count = 0;
        for (int i = 1;; i++) {
            lua_rawgeti(L, -1, i);
            if (lua_isnil(L, -1)) {
                lua_pop(L, 1);
                break;
            }
            put_value(L, &items, resp, depth + 1);
            count++;
        }
        put_u8(b, '*');
        put_u32(b, count);
        strata_lua_buffer_append(b, items.bytes, items.length);
        strata_lua_buffer_free(&items);
        break;
    }
    default:
        put_u8(b, '_');
    }
    lua_pop(L, 1);
}

/// The message of a raised error (an error table, or anything else): `CODE text script: <name>, on <source>:<line>.`
static void put_raised_error(lua_State *L, strata_lua_buffer *b, const char *function_name) {
    strata_lua_buffer text = {0};
    if (lua_type(L, -1) != LUA_TTABLE) {
        const char *message = lua_isstring(L, -1) ? lua_tostring(L, -1) : "execution failure";
        char line[512];
        int n = snprintf(line, sizeof line, "ERR Error running script %s, %.100s", function_name, message);
        strata_lua_buffer_append(&text, line, n < 0 ? 0 : (size_t)n >= sizeof line ? sizeof line - 1 : (size_t)n);
    } else {
        size_t n;
        const char *message = raw_string_field(L, -1, "err", &n);
        if (message) strata_lua_buffer_append(&text, message, n);
        else strata_lua_buffer_append(&text, "ERR unknown error", 17);
        lua_pushliteral(L, "source");
        lua_rawget(L, -2);
        lua_pushliteral(L, "line");
        lua_rawget(L, -3);
        if (lua_isstring(L, -2) && lua_isstring(L, -1)) {
            char where[512];
            int w = snprintf(where, sizeof where, " script: %s, on %s:%s.", function_name, lua_tostring(L, -2),
                             lua_tostring(L, -1));
            if (w > 0) strata_lua_buffer_append(&text, where, (size_t)w < sizeof where ? (size_t)w : sizeof where - 1);
        }
        lua_pop(L, 2);
    }
    put_line(b, '-', (const char *)text.bytes, text.length);
    strata_lua_buffer_free(&text);
    lua_pop(L, 1);
}

// MARK: The redis library

/// Collects the arguments of redis.call and friends; on a bad one pushes the error table and returns -1.
static int collect_arguments(lua_State *L, const char ***argv, size_t **lengths, char (**numbers)[32]) {
    int argc = lua_gettop(L);
    if (argc == 0) {
        push_error_table(L, "Please specify at least one argument for this redis lib call", 60);
        return -1;
    }
    *argv = lua_newuserdata(L, argc * sizeof(char *));
    *lengths = lua_newuserdata(L, argc * sizeof(size_t));
    *numbers = lua_newuserdata(L, argc * 32);
    for (int i = 0; i < argc; i++) {
        int type = lua_type(L, i + 1);
        if (type == LUA_TNUMBER) {
            // Not lua_tolstring: its "%.14g" loses precision.
            int n = snprintf((*numbers)[i], 32, "%.17g", (double)lua_tonumber(L, i + 1));
            (*argv)[i] = (*numbers)[i];
            (*lengths)[i] = (size_t)n;
        } else if (type == LUA_TSTRING) {
            (*argv)[i] = lua_tolstring(L, i + 1, &(*lengths)[i]);
        } else {
            lua_settop(L, 0);
            push_error_table(L, "Lua redis lib command arguments must be strings or integers", 59);
            return -1;
        }
    }
    return argc;
}

static int redis_generic_call(lua_State *L, int raise) {
    strata_lua *lua = owner(L);
    if (!lua->context) return raise_error(L, "redis.call/pcall can only be called inside a script invocation");
    const char **argv;
    size_t *lengths;
    char(*numbers)[32];
    int argc = collect_arguments(L, &argv, &lengths, &numbers);
    if (argc < 0) return raise ? lua_error(L) : 1;
    if (lua->in_call) {
        push_error_table(L, "redis.call/pcall recursive call detected", 40);
        return raise ? lua_error(L) : 1;
    }
    strata_lua_buffer reply = {0};
    lua->in_call = 1;
    lua->callbacks.call(lua->context, lua->resp, argc, argv, lengths, &reply);
    lua->in_call = 0;
    lua_settop(L, 0);
    reader r = {reply.bytes, reply.bytes + reply.length};
    int is_error = reply.length > 0 && reply.bytes[0] == '-';
    int ok = push_reply(L, &r, lua->resp, 0);
    strata_lua_buffer_free(&reply);
    if (!ok) return raise_error(L, "malformed reply");
    if (is_error) {
        // Counted once, by the command itself.
        lua_pushliteral(L, "ignore_error_stats_update");
        lua_pushboolean(L, 1);
        lua_rawset(L, -3);
        if (raise) return lua_error(L);
    }
    return 1;
}

static int redis_call(lua_State *L) { return redis_generic_call(L, 1); }
static int redis_pcall(lua_State *L) { return redis_generic_call(L, 0); }

static int redis_sha1hex(lua_State *L) {
    if (lua_gettop(L) != 1) return raise_error(L, "wrong number of arguments");
    size_t n;
    const char *s = lua_tolstring(L, 1, &n);
    char digest[41];
    strata_lua_sha1hex(s ? s : "", s ? n : 0, digest);
    lua_pushstring(L, digest);
    return 1;
}

static int redis_error_reply(lua_State *L) {
    if (lua_gettop(L) != 1 || lua_type(L, -1) != LUA_TSTRING) {
        push_error_table(L, "wrong number or type of arguments", 33);
        return 1;
    }
    size_t n;
    const char *s = lua_tolstring(L, 1, &n);
    if (n > 0 && s[0] == '-') {
        push_error_table(L, s, n);
    } else {
        lua_pushliteral(L, "-");
        lua_pushvalue(L, 1);
        lua_concat(L, 2);
        s = lua_tolstring(L, -1, &n);
        push_error_table(L, s, n);
    }
    return 1;
}

static int redis_status_reply(lua_State *L) {
    if (lua_gettop(L) != 1 || lua_type(L, -1) != LUA_TSTRING) {
        push_error_table(L, "wrong number or type of arguments", 33);
        return 1;
    }
    lua_newtable(L);
    lua_pushliteral(L, "ok");
    lua_pushvalue(L, 1);
    lua_rawset(L, -3);
    return 1;
}

static int redis_set_repl(lua_State *L) {
    strata_lua *lua = owner(L);
    if (!lua->context) return raise_error(L, "redis.set_repl can only be called inside a script invocation");
    if (lua_gettop(L) != 1) return raise_error(L, "redis.set_repl() requires two arguments.");
    int flags = (int)lua_tonumber(L, -1);
    if (flags & ~3) return raise_error(L, "Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.");
    return 0;  // Strata has no replication: every setting is accepted.
}

static int redis_replicate_commands(lua_State *L) {
    lua_pushboolean(L, 1);
    return 1;
}

static int redis_acl_check_cmd(lua_State *L) {
    strata_lua *lua = owner(L);
    if (!lua->context) return raise_error(L, "redis.acl_check_cmd can only be called inside a script invocation");
    const char **argv;
    size_t *lengths;
    char(*numbers)[32];
    int argc = collect_arguments(L, &argv, &lengths, &numbers);
    if (argc < 0) return lua_error(L);
    int allowed = lua->callbacks.acl_check(lua->context, argc, argv, lengths);
    if (allowed < 0) return raise_error(L, "Invalid command passed to redis.acl_check_cmd()");
    lua_pushboolean(L, allowed);
    return 1;
}

static int redis_log(lua_State *L) {
    strata_lua *lua = owner(L);
    int argc = lua_gettop(L);
    if (argc < 2) return raise_error(L, "redis.log() requires two arguments or more.");
    if (!lua_isnumber(L, 1)) return raise_error(L, "First argument must be a number (log level).");
    int level = (int)lua_tonumber(L, 1);
    if (level < 0 || level > 3) return raise_error(L, "Invalid debug level.");
    luaL_Buffer text;
    luaL_buffinit(L, &text);
    for (int i = 2; i <= argc; i++) {
        size_t n;
        const char *s = lua_tolstring(L, i, &n);
        if (!s) continue;
        if (i != 2) luaL_addchar(&text, ' ');
        luaL_addlstring(&text, s, n);
    }
    luaL_pushresult(&text);
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);
    lua->callbacks.log(lua->context, level, s, n);
    return 0;
}

static int redis_setresp(lua_State *L) {
    strata_lua *lua = owner(L);
    if (!lua->context) return raise_error(L, "redis.setresp can only be called inside a script invocation");
    if (lua_gettop(L) != 1) return raise_error(L, "redis.setresp() requires one argument.");
    int resp = (int)lua_tonumber(L, 1);
    if (resp != 2 && resp != 3) return raise_error(L, "RESP version must be 2 or 3.");
    lua->resp = resp;
    return 0;
}

static int redis_breakpoint(lua_State *L) {
    lua_pushboolean(L, 0);  // only under SCRIPT DEBUG, which Strata does not offer
    return 1;
}

static int redis_debug(lua_State *L) {
    (void)L;
    return 0;
}

// MARK: math.random as Redis has it (rand48, one sequence for every platform)

static int32_t next_random(strata_lua *lua) {
    lua->rand_state = (lua->rand_state * 0x5DEECE66DULL + 0xB) & ((1ULL << 48) - 1);
    return (int32_t)(lua->rand_state >> 17);
}

static int math_random(lua_State *L) {
    strata_lua *lua = owner(L);
    lua_Number r = (lua_Number)(next_random(lua) % 2147483647) / (lua_Number)2147483647;
    switch (lua_gettop(L)) {
    case 0:
        lua_pushnumber(L, r);
        break;
    case 1: {
        int u = luaL_checkint(L, 1);
        luaL_argcheck(L, 1 <= u, 1, "interval is empty");
        lua_pushnumber(L, floor(r * u) + 1);
        break;
    }
    case 2: {
        int l = luaL_checkint(L, 1);
        int u = luaL_checkint(L, 2);
        luaL_argcheck(L, l <= u, 2, "interval is empty");
        lua_pushnumber(L, floor(r * (u - l + 1)) + l);
        break;
    }
    default:
        return luaL_error(L, "wrong number of arguments");
    }
    return 1;
}

static int math_randomseed(lua_State *L) {
    strata_lua *lua = owner(L);
    lua->rand_state = ((uint64_t)(uint32_t)luaL_checkint(L, 1) << 16) | 0x330E;
    return 0;
}

// MARK: The sandbox

/// Raised where an assignment hits a protected table: from the script's line when the VM called us as __newindex
/// (level 1), without a position from a library function such as rawset (level 2), as Redis's Lua reports them.
static int readonly_error_at(lua_State *L, int level) {
    luaL_where(L, level);
    lua_pushliteral(L, "Attempt to modify a readonly table");
    lua_concat(L, 2);
    return lua_error(L);
}

static int readonly_error(lua_State *L) { return readonly_error_at(L, 2); }
static int readonly_assignment(lua_State *L) { return readonly_error_at(L, 1); }

static int nonexistent_global(lua_State *L) {
    const char *name = lua_isstring(L, 2) ? lua_tostring(L, 2) : "?";
    return luaL_error(L, "Script attempted to access nonexistent global variable '%s'", name);
}

/// Whether the table at `index` is one of the read-only proxies.
static int is_protected(lua_State *L, int index) {
    strata_lua *lua = owner(L);
    if (lua_type(L, index) != LUA_TTABLE) return 0;
    lua_pushvalue(L, index);
    lua_rawgeti(L, LUA_REGISTRYINDEX, lua->protected_ref);
    lua_insert(L, -2);
    lua_rawget(L, -2);
    int found = !lua_isnil(L, -1);
    lua_pop(L, 2);
    return found;
}

/// Replaces the table on top of the stack with a read-only proxy of it (reads pass through; writes, rawset and
/// setmetatable fail; getmetatable shows a read-only table).
static void make_readonly(lua_State *L, int missing_is_error) {
    strata_lua *lua = owner(L);
    int real = lua_gettop(L);
    lua_newtable(L);  // the proxy
    lua_newtable(L);  // its metatable
    lua_pushvalue(L, real);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, readonly_assignment);
    lua_setfield(L, -2, "__newindex");
    lua_rawgeti(L, LUA_REGISTRYINDEX, lua->protected_ref);
    lua_getfield(L, -1, "sentinel");
    lua_setfield(L, -3, "__metatable");
    lua_pop(L, 1);
    lua_setmetatable(L, -2);
    if (missing_is_error) {
        lua_newtable(L);
        lua_pushcfunction(L, nonexistent_global);
        lua_setfield(L, -2, "__index");
        lua_setmetatable(L, real);
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, lua->protected_ref);
    lua_pushvalue(L, -2);
    lua_pushboolean(L, 1);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    lua_replace(L, real);
}

static int safe_rawset(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checkany(L, 2);
    luaL_checkany(L, 3);
    if (is_protected(L, 1)) return readonly_error(L);
    lua_settop(L, 3);
    lua_rawset(L, 1);
    return 1;
}

static int safe_setmetatable(lua_State *L) {
    if (is_protected(L, 1)) return readonly_error(L);
    lua_getfield(L, LUA_REGISTRYINDEX, "strata.setmetatable");
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

/// A stack level as the original function sees it (one deeper: this wrapper is a level too).
static void shift_level(lua_State *L) {
    if (lua_type(L, 1) == LUA_TNUMBER && lua_tonumber(L, 1) > 0) {
        lua_pushnumber(L, lua_tonumber(L, 1) + 1);
        lua_replace(L, 1);
    }
}

static int safe_getfenv(lua_State *L) {
    strata_lua *lua = owner(L);
    if (lua_gettop(L) == 0) lua_pushnumber(L, 1);
    shift_level(L);
    lua_getfield(L, LUA_REGISTRYINDEX, "strata.getfenv");
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    // The environment of a library function is the real globals table: show the proxy instead.
    lua_rawgeti(L, LUA_REGISTRYINDEX, lua->globals_ref);
    if (lua_rawequal(L, -1, -2)) {
        lua_pop(L, 2);
        lua_rawgeti(L, LUA_REGISTRYINDEX, lua->proxy_ref);
    } else {
        lua_pop(L, 1);
    }
    return 1;
}

static int safe_setfenv(lua_State *L) {
    // Level 0 (the thread's globals) and library functions are shared by every script.
    if ((lua_isnumber(L, 1) && lua_tonumber(L, 1) == 0) || lua_iscfunction(L, 1)) return readonly_error(L);
    shift_level(L);
    lua_getfield(L, LUA_REGISTRYINDEX, "strata.setfenv");
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

static int refuse_binary(lua_State *L, const char *chunk, size_t n, const char *name) {
    if (n > 0 && chunk[0] == LUA_SIGNATURE[0]) {
        lua_pushnil(L);
        lua_pushliteral(L, "unexpected symbol near 'char(27)'");
        return 2;
    }
    if (luaL_loadbuffer(L, chunk, n, name) != 0) {
        lua_pushnil(L);
        lua_insert(L, -2);
        return 2;
    }
    return 1;
}

static int safe_loadstring(lua_State *L) {
    size_t n;
    const char *chunk = luaL_checklstring(L, 1, &n);
    const char *name = luaL_optstring(L, 2, chunk);
    return refuse_binary(L, chunk, n, name);
}

static int safe_load(lua_State *L) {
    luaL_checktype(L, 1, LUA_TFUNCTION);
    const char *name = luaL_optstring(L, 2, "=(load)");
    luaL_Buffer chunk;
    lua_settop(L, 2);
    luaL_buffinit(L, &chunk);
    for (;;) {
        lua_pushvalue(L, 1);
        lua_call(L, 0, 1);
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            break;
        }
        if (!lua_isstring(L, -1)) return luaL_error(L, "reader function must return a string");
        size_t n;
        lua_tolstring(L, -1, &n);
        if (n == 0) {
            lua_pop(L, 1);
            break;
        }
        luaL_addvalue(&chunk);
    }
    luaL_pushresult(&chunk);
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);
    return refuse_binary(L, s, n, name);
}

/// redis's pcall: an error table raised by redis.call comes back as its message, as Lua scripts written for
/// Redis 6 expect.
static int redis_lua_pcall(lua_State *L) {
    int argc = lua_gettop(L);
    luaL_checkany(L, 1);
    lua_pushboolean(L, 1);
    lua_insert(L, 1);
    if (lua_pcall(L, argc - 1, LUA_MULTRET, 0) != 0) {
        lua_remove(L, 1);
        if (lua_istable(L, -1)) {
            lua_getfield(L, -1, "err");
            if (lua_isstring(L, -1)) lua_replace(L, -2);
            else lua_pop(L, 1);
        }
        lua_pushboolean(L, 0);
        lua_insert(L, 1);
    }
    return lua_gettop(L);
}

/// The error handler of every run: a string error becomes `{err = "ERR " .. message}`, and the error learns
/// where it was raised (the script's line, skipping a C function such as redis.call or error).
static int error_handler(lua_State *L) {
    lua_Debug ar;
    int have = 0;
    if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "nSl", &ar)) {
        have = 1;
        if (strcmp(ar.what, "C") == 0) have = lua_getstack(L, 2, &ar) && lua_getinfo(L, "nSl", &ar);
    }
    if (!lua_istable(L, 1)) {
        lua_newtable(L);
        lua_pushliteral(L, "ERR ");
        if (luaL_callmeta(L, 1, "__tostring")) {
            // (the metamethod's result)
        } else if (lua_isstring(L, 1)) {
            lua_pushvalue(L, 1);
        } else if (lua_isnil(L, 1)) {
            lua_pushliteral(L, "nil");
        } else if (lua_isboolean(L, 1)) {
            lua_pushstring(L, lua_toboolean(L, 1) ? "true" : "false");
        } else {
            lua_pushfstring(L, "%s: %p", luaL_typename(L, 1), lua_topointer(L, 1));
        }
        lua_concat(L, 2);
        lua_setfield(L, -2, "err");
        lua_replace(L, 1);
        lua_settop(L, 1);
    }
    if (have) {
        lua_pushstring(L, ar.source);
        lua_setfield(L, 1, "source");
        lua_pushinteger(L, ar.currentline);
        lua_setfield(L, 1, "line");
    }
    return 1;
}

static void hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    strata_lua *lua = owner(L);
    if (lua->registrations) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        uint64_t ms = (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
        if (lua->load_deadline_ms && ms > lua->load_deadline_ms) {
            lua_sethook(L, hook, LUA_MASKLINE, 0);
            raise_error(L, "FUNCTION LOAD timeout");
        }
        return;
    }
    if (lua->context && lua->callbacks.interrupt(lua->context)) {
        // From now on every line raises, so a pcall in the script cannot catch the kill for good.
        lua_sethook(L, hook, LUA_MASKLINE, 0);
        raise_error(L, "Script killed by user with SCRIPT KILL...");
    }
}

static void set_number(lua_State *L, const char *name, lua_Number value) {
    lua_pushnumber(L, value);
    lua_setfield(L, -2, name);
}

static void register_log(lua_State *L) {
    lua_pushcfunction(L, redis_log);
    lua_setfield(L, -2, "log");
    set_number(L, "LOG_DEBUG", 0);
    set_number(L, "LOG_VERBOSE", 1);
    set_number(L, "LOG_NOTICE", 2);
    set_number(L, "LOG_WARNING", 3);
    lua_pushliteral(L, REDIS_VERSION);
    lua_setfield(L, -2, "REDIS_VERSION");
    set_number(L, "REDIS_VERSION_NUM", REDIS_VERSION_NUM);
}

static int register_function(lua_State *L);

static void open_library(lua_State *L, const char *name, lua_CFunction open) {
    lua_pushcfunction(L, open);
    lua_pushstring(L, name);
    lua_call(L, 1, 1);
    if (*name && lua_istable(L, -1)) lua_setglobal(L, name);
    else lua_pop(L, 1);
}

/// Builds the sandbox (run in protected mode by strata_lua_open).
static int setup(lua_State *L) {
    strata_lua *lua = owner(L);
    // Registry: the set of read-only proxies (weak keys) and the sentinel getmetatable shows for them.
    lua_newtable(L);
    lua_newtable(L);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua->protected_ref = luaL_ref(L, LUA_REGISTRYINDEX);

    open_library(L, "", luaopen_base);
    open_library(L, LUA_TABLIBNAME, luaopen_table);
    open_library(L, LUA_STRLIBNAME, luaopen_string);
    open_library(L, LUA_MATHLIBNAME, luaopen_math);
    open_library(L, "cjson", luaopen_cjson);
    open_library(L, "struct", strata_luaopen_struct);
    open_library(L, "cmsgpack", strata_luaopen_cmsgpack);
    open_library(L, "bit", luaopen_bit);
    lua_settop(L, 0);

    // Removed: file access and output.
    static const char *removed[] = {"dofile", "loadfile", "print", NULL};
    for (const char **name = removed; *name; name++) {
        lua_pushnil(L);
        lua_setglobal(L, *name);
    }
    // Guarded replacements (the originals stay reachable for them through the registry).
    static const char *kept[] = {"setmetatable", "getfenv", "setfenv", NULL};
    for (const char **name = kept; *name; name++) {
        lua_getglobal(L, *name);
        lua_pushfstring(L, "strata.%s", *name);
        lua_insert(L, -2);
        lua_rawset(L, LUA_REGISTRYINDEX);
    }
    lua_register(L, "rawset", safe_rawset);
    lua_register(L, "setmetatable", safe_setmetatable);
    lua_register(L, "getfenv", safe_getfenv);
    lua_register(L, "setfenv", safe_setfenv);
    lua_register(L, "loadstring", safe_loadstring);
    lua_register(L, "load", safe_load);
    lua_register(L, "pcall", redis_lua_pcall);

    lua_getglobal(L, "math");
    lua_pushcfunction(L, math_random);
    lua_setfield(L, -2, "random");
    lua_pushcfunction(L, math_randomseed);
    lua_setfield(L, -2, "randomseed");
    lua_pop(L, 1);

    // The redis library.
    lua_newtable(L);
    static const luaL_Reg api[] = {
        {"call", redis_call},
        {"pcall", redis_pcall},
        {"sha1hex", redis_sha1hex},
        {"error_reply", redis_error_reply},
        {"status_reply", redis_status_reply},
        {"set_repl", redis_set_repl},
        {"replicate_commands", redis_replicate_commands},
        {"acl_check_cmd", redis_acl_check_cmd},
        {"setresp", redis_setresp},
        {"breakpoint", redis_breakpoint},
        {"debug", redis_debug},
        {NULL, NULL},
    };
    for (const luaL_Reg *f = api; f->name; f++) {
        lua_pushcfunction(L, f->func);
        lua_setfield(L, -2, f->name);
    }
    register_log(L);
    set_number(L, "REPL_NONE", 0);
    set_number(L, "REPL_AOF", 1);
    set_number(L, "REPL_SLAVE", 2);
    set_number(L, "REPL_REPLICA", 2);
    set_number(L, "REPL_ALL", 3);
    lua_setglobal(L, "redis");

    // The sentinel getmetatable answers for a protected table: itself read-only.
    lua_rawgeti(L, LUA_REGISTRYINDEX, lua->protected_ref);
    lua_newtable(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, lua->protected_ref);
    lua_pushliteral(L, "sentinel");
    lua_pushvalue(L, -3);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    make_readonly(L, 0);
    lua_setfield(L, -2, "sentinel");
    lua_pop(L, 1);

    // Every library table becomes read-only.
    static const char *libraries[] = {"string", "table", "math", "coroutine", "cjson", "struct", "cmsgpack",
                                      "bit", "redis", NULL};
    for (const char **name = libraries; *name; name++) {
        lua_getglobal(L, *name);
        if (lua_istable(L, -1)) {
            make_readonly(L, 0);
            lua_setglobal(L, *name);
        } else {
            lua_pop(L, 1);
        }
    }
    // Strings' metatable: getmetatable('') shows the sentinel.
    lua_pushliteral(L, "");
    if (lua_getmetatable(L, -1)) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, lua->protected_ref);
        lua_getfield(L, -1, "sentinel");
        lua_setfield(L, -3, "__metatable");
        lua_pop(L, 2);
    }
    lua_pop(L, 1);

    // The load-time API of FUNCTION LOAD: only redis.register_function, redis.log and the version.
    lua_newtable(L);
    lua_newtable(L);
    lua_pushcfunction(L, register_function);
    lua_setfield(L, -2, "register_function");
    register_log(L);
    make_readonly(L, 1);
    lua_setfield(L, -2, "redis");
    make_readonly(L, 1);
    lua->load_api_ref = luaL_ref(L, LUA_REGISTRYINDEX);

    // The globals: the real table stays in the registry; scripts see a read-only proxy whose misses are errors.
    lua_pushvalue(L, LUA_GLOBALSINDEX);
    lua_pushvalue(L, -1);
    lua->globals_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    make_readonly(L, 1);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, "strata.proxy");  // (keeps _G below pointing at the proxy)
    lua_rawgeti(L, LUA_REGISTRYINDEX, lua->globals_ref);
    lua_pushliteral(L, "_G");
    lua_pushvalue(L, -3);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    lua_getmetatable(L, -1);
    lua->proxy_meta_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua->proxy_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_rawgeti(L, LUA_REGISTRYINDEX, lua->proxy_ref);
    lua_replace(L, LUA_GLOBALSINDEX);
    return 0;
}

strata_lua *strata_lua_open(const strata_lua_callbacks *callbacks, size_t memory_limit) {
    strata_lua *lua = calloc(1, sizeof *lua);
    if (!lua) return NULL;
    lua->callbacks = *callbacks;
    lua->memory_limit = memory_limit;
    lua->resp = 2;
    lua->rand_state = 0x1234ABCD330EULL;
    lua->L = lua_newstate(allocate, lua);
    if (!lua->L) {
        free(lua);
        return NULL;
    }
    if (lua_cpcall(lua->L, setup, NULL) != 0) {
        lua_close(lua->L);
        free(lua);
        return NULL;
    }
    return lua;
}

void strata_lua_close(strata_lua *lua) {
    if (!lua) return;
    lua_close(lua->L);
    free(lua);
}

size_t strata_lua_memory(strata_lua *lua) { return lua->memory; }

// MARK: Compiling and running

typedef struct {
    const char *name;
    const char *body;
    size_t length;
    strata_lua_buffer *error;
} compile_args;

static int compile_protected(lua_State *L) {
    compile_args *a = lua_touserdata(L, 1);
    if (luaL_loadbuffer(L, a->body, a->length, "@user_script") != 0) {
        size_t n;
        const char *message = lua_tolstring(L, -1, &n);
        strata_lua_buffer_append(a->error, message, n);
        return 0;
    }
    lua_setfield(L, LUA_REGISTRYINDEX, a->name);
    lua_pushboolean(L, 1);
    return 1;
}

int strata_lua_compile(strata_lua *lua, const char *name, const char *body, size_t length, strata_lua_buffer *error) {
    compile_args a = {name, body, length, error};
    lua_rawgeti(lua->L, LUA_REGISTRYINDEX, lua->proxy_ref);
    lua_replace(lua->L, LUA_GLOBALSINDEX);
    lua_settop(lua->L, 0);
    lua_pushcfunction(lua->L, compile_protected);
    lua_pushlightuserdata(lua->L, &a);
    if (lua_pcall(lua->L, 1, 1, 0) != 0) {
        size_t n;
        const char *message = lua_tolstring(lua->L, -1, &n);
        if (message) strata_lua_buffer_append(error, message, n);
        else strata_lua_buffer_append(error, "out of memory", 13);
        lua_settop(lua->L, 0);
        return 1;
    }
    int ok = lua_toboolean(lua->L, -1);
    lua_settop(lua->L, 0);
    return ok ? 0 : 1;
}

static void push_array(lua_State *L, int argc, const char *const *argv, const size_t *lengths) {
    lua_createtable(L, argc, 0);
    for (int i = 0; i < argc; i++) {
        lua_pushlstring(L, argv[i], lengths[i]);
        lua_rawseti(L, -2, i + 1);
    }
}

typedef struct {
    const char *name;
    int function_ref;
    const char *function_name;
    int argc_keys, argc_args;
    const char *const *keys;
    const char *const *args;
    const size_t *key_lengths;
    const size_t *arg_lengths;
    strata_lua_buffer *reply;
} run_args;

static int run_protected(lua_State *L) {
    strata_lua *lua = owner(L);
    run_args *a = lua_touserdata(L, 1);
    lua_settop(L, 0);
    lua_pushcfunction(L, error_handler);
    if (a->function_ref == LUA_NOREF) {
        lua_getfield(L, LUA_REGISTRYINDEX, a->name);
        // EVAL: KEYS and ARGV are globals (set on the real table, under the proxy).
        lua_rawgeti(L, LUA_REGISTRYINDEX, lua->globals_ref);
        push_array(L, a->argc_keys, a->keys, a->key_lengths);
        lua_setfield(L, -2, "KEYS");
        push_array(L, a->argc_args, a->args, a->arg_lengths);
        lua_setfield(L, -2, "ARGV");
        lua_pop(L, 1);
    } else {
        lua_rawgeti(L, LUA_REGISTRYINDEX, a->function_ref);
        push_array(L, a->argc_keys, a->keys, a->key_lengths);
        push_array(L, a->argc_args, a->args, a->arg_lengths);
    }
    if (!lua_isfunction(L, 2)) return luaL_error(L, "no such script");
    lua_sethook(L, hook, LUA_MASKCOUNT, HOOK_INSTRUCTIONS);
    int status = lua_pcall(L, a->function_ref == LUA_NOREF ? 0 : 2, 1, 1);
    lua_sethook(L, NULL, 0, 0);
    if (status != 0) {
        put_raised_error(L, a->reply, a->function_name);
    } else {
        put_value(L, a->reply, lua->resp, 0);
    }
    return 0;
}

void strata_lua_run(strata_lua *lua, const char *name, int function_ref, const char *function_name, void *context,
                    int argc_keys, const char *const *keys, const size_t *key_lengths, int argc_args,
                    const char *const *args, const size_t *arg_lengths, strata_lua_buffer *reply) {
    lua_State *L = lua->L;
    run_args a = {name, function_ref, function_name, argc_keys, argc_args, keys, args, key_lengths, arg_lengths,
                  reply};
    lua->context = context;
    lua->resp = 2;
    lua->in_call = 0;
    // Whatever a script did to the thread's globals, the next one starts from the protected proxy.
    lua_rawgeti(L, LUA_REGISTRYINDEX, lua->proxy_ref);
    lua_replace(L, LUA_GLOBALSINDEX);
    lua_settop(L, 0);
    lua_pushcfunction(L, run_protected);
    lua_pushlightuserdata(L, &a);
    if (lua_pcall(L, 1, 0, 0) != 0) {
        // Out of memory (or another error outside the script) while preparing or converting.
        strata_lua_buffer_reset(reply);
        size_t n = 0;
        const char *message = lua_tolstring(L, -1, &n);
        char text[256];
        int w = snprintf(text, sizeof text, "ERR Error running script %s, %.100s", function_name,
                         message ? message : "not enough memory");
        put_line(reply, '-', text, w < 0 ? 0 : (size_t)w >= sizeof text ? sizeof text - 1 : (size_t)w);
    }
    lua_sethook(L, NULL, 0, 0);
    lua_settop(L, 0);
    lua->context = NULL;
    // A small step of garbage collection after each run keeps collections short.
    lua_gc(L, LUA_GCSTEP, 1);
}

// MARK: Function libraries

static const struct {
    const char *name;
    int flag;
} script_flags[] = {
    {"no-writes", STRATA_LUA_FLAG_NO_WRITES},       {"allow-oom", STRATA_LUA_FLAG_ALLOW_OOM},
    {"allow-stale", STRATA_LUA_FLAG_ALLOW_STALE},   {"no-cluster", STRATA_LUA_FLAG_NO_CLUSTER},
    {"allow-cross-slot-keys", STRATA_LUA_FLAG_ALLOW_CROSS_SLOT}, {NULL, 0},
};

static void record_registration(strata_lua *lua, const char *name, size_t name_n, const char *desc, size_t desc_n,
                                int has_desc, int flags, int ref) {
    strata_lua_buffer *b = lua->registrations;
    put_u32(b, (uint32_t)name_n);
    strata_lua_buffer_append(b, name, name_n);
    put_u32(b, has_desc ? (uint32_t)desc_n : 0xFFFFFFFFu);
    if (has_desc) strata_lua_buffer_append(b, desc, desc_n);
    put_u32(b, (uint32_t)flags);
    put_u32(b, (uint32_t)ref);
    lua->registered++;
}

static int register_function(lua_State *L) {
    strata_lua *lua = owner(L);
    if (!lua->registrations) return raise_error(L, "redis.register_function can only be called on FUNCTION LOAD command");
    int argc = lua_gettop(L);
    if (argc < 1 || argc > 2) return raise_error(L, "wrong number of arguments to redis.register_function");
    int flags = 0;
    // Slots: 2 name, 3 description, 4 callback (positional arguments move there too).
    if (argc == 2) {
        if (!lua_isstring(L, 1)) return raise_error(L, "first argument to redis.register_function must be a string");
        if (!lua_isfunction(L, 2))
            return raise_error(L, "second argument to redis.register_function must be a function");
        lua_pushvalue(L, 2);  // [name, fn, fn]
        lua_pushnil(L);
        lua_insert(L, -2);  // [name, fn, nil, fn]
        lua_pushvalue(L, 1);
        lua_replace(L, 2);  // [name, name, nil, fn]
    } else {
        if (!lua_istable(L, 1))
            return raise_error(L, "calling redis.register_function with a single argument is only applicable to Lua "
                                  "table (representing named arguments).");
        lua_settop(L, 4);
        lua_pushnil(L);
        while (lua_next(L, 1)) {
            if (lua_type(L, -2) != LUA_TSTRING)
                return raise_error(L, "named argument key given to redis.register_function is not a string");
            const char *key = lua_tostring(L, -2);
            if (!strcasecmp(key, "function_name")) {
                if (!lua_isstring(L, -1))
                    return raise_error(L, "function_name argument given to redis.register_function must be a string");
                lua_pushvalue(L, -1);
                lua_replace(L, 2);
            } else if (!strcasecmp(key, "description")) {
                if (!lua_isstring(L, -1))
                    return raise_error(L, "description argument given to redis.register_function must be a string");
                lua_pushvalue(L, -1);
                lua_replace(L, 3);
            } else if (!strcasecmp(key, "callback")) {
                if (!lua_isfunction(L, -1))
                    return raise_error(L, "callback argument given to redis.register_function must be a function");
                lua_pushvalue(L, -1);
                lua_replace(L, 4);
            } else if (!strcasecmp(key, "flags")) {
                if (!lua_istable(L, -1))
                    return raise_error(L, "flags argument to redis.register_function must be a table representing "
                                          "function flags");
                for (int i = 1;; i++) {
                    lua_rawgeti(L, -1, i);
                    if (lua_isnil(L, -1)) {
                        lua_pop(L, 1);
                        break;
                    }
                    if (!lua_isstring(L, -1)) return raise_error(L, "unknown flag given");
                    const char *flag = lua_tostring(L, -1);
                    int found = 0;
                    for (int f = 0; script_flags[f].name; f++) {
                        if (!strcasecmp(flag, script_flags[f].name)) {
                            flags |= script_flags[f].flag;
                            found = 1;
                        }
                    }
                    lua_pop(L, 1);
                    if (!found) return raise_error(L, "unknown flag given");
                }
            } else {
                return raise_error(L, "unknown argument given to redis.register_function");
            }
            lua_pop(L, 1);
        }
        if (lua_isnil(L, 2)) return raise_error(L, "redis.register_function must get a function name argument");
        if (lua_isnil(L, 4)) return raise_error(L, "redis.register_function must get a callback argument");
    }
    size_t name_n = 0, desc_n = 0;
    const char *name = lua_tolstring(L, 2, &name_n);
    const char *desc = lua_isnil(L, 3) ? NULL : lua_tolstring(L, 3, &desc_n);
    lua_pushvalue(L, 4);
    int ref = luaL_ref(L, LUA_REGISTRYINDEX);
    record_registration(lua, name, name_n, desc, desc_n, desc != NULL, flags, ref);
    return 0;
}

typedef struct {
    const char *code;
    size_t length;
    strata_lua_buffer *error;
} load_args;

static int load_protected(lua_State *L) {
    strata_lua *lua = owner(L);
    load_args *a = lua_touserdata(L, 1);
    lua_settop(L, 0);
    if (luaL_loadbuffer(L, a->code, a->length, "@user_function") != 0) {
        size_t n;
        const char *message = lua_tolstring(L, -1, &n);
        strata_lua_buffer_append(a->error, "Error compiling function: ", 26);
        strata_lua_buffer_append(a->error, message, n);
        lua_pushboolean(L, 0);
        return 1;
    }
    // While loading, the globals' misses go to the load-time API instead of the real globals.
    lua_rawgeti(L, LUA_REGISTRYINDEX, lua->proxy_meta_ref);
    lua_rawgeti(L, LUA_REGISTRYINDEX, lua->load_api_ref);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    lua_sethook(L, hook, LUA_MASKCOUNT, HOOK_INSTRUCTIONS);
    int status = lua_pcall(L, 0, 0, 0);
    lua_sethook(L, NULL, 0, 0);
    lua_rawgeti(L, LUA_REGISTRYINDEX, lua->proxy_meta_ref);
    lua_rawgeti(L, LUA_REGISTRYINDEX, lua->globals_ref);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    if (status != 0) {
        strata_lua_buffer_append(a->error, "Error registering functions: ", 29);
        size_t n = 0;
        const char *message = NULL;
        if (lua_istable(L, -1)) {
            lua_getfield(L, -1, "err");
            message = lua_tolstring(L, -1, &n);
        } else {
            message = lua_tolstring(L, -1, &n);
            if (message) strata_lua_buffer_append(a->error, "ERR ", 4);
        }
        if (message) strata_lua_buffer_append(a->error, message, n);
        lua_pushboolean(L, 0);
        return 1;
    }
    lua_pushboolean(L, 1);
    return 1;
}

int strata_lua_load_library(strata_lua *lua, const char *code, size_t length, uint64_t timeout_ms,
                            strata_lua_buffer *registrations, strata_lua_buffer *error) {
    lua_State *L = lua->L;
    load_args a = {code, length, error};
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    lua->load_deadline_ms =
        timeout_ms ? (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000 + timeout_ms : 0;
    lua->registrations = registrations;
    lua->registered = 0;
    lua_rawgeti(L, LUA_REGISTRYINDEX, lua->proxy_ref);
    lua_replace(L, LUA_GLOBALSINDEX);
    lua_settop(L, 0);
    lua_pushcfunction(L, load_protected);
    lua_pushlightuserdata(L, &a);
    int failed;
    if (lua_pcall(L, 1, 1, 0) != 0) {
        strata_lua_buffer_reset(error);
        strata_lua_buffer_append(error, "Error registering functions: not enough memory", 46);
        failed = 1;
    } else {
        failed = !lua_toboolean(L, -1);
    }
    lua_settop(L, 0);
    lua->registrations = NULL;
    lua->load_deadline_ms = 0;
    if (failed) {
        // Release what was registered before the failure.
        reader r = {registrations->bytes, registrations->bytes + registrations->length};
        uint32_t n, desc_n, flags, ref;
        const uint8_t *skip;
        while (take_u32(&r, &n) && take(&r, n, &skip) && take_u32(&r, &desc_n) &&
               (desc_n == 0xFFFFFFFFu || take(&r, desc_n, &skip)) && take_u32(&r, &flags) && take_u32(&r, &ref)) {
            luaL_unref(L, LUA_REGISTRYINDEX, (int)ref);
        }
        strata_lua_buffer_reset(registrations);
        return 1;
    }
    return 0;
}

void strata_lua_unref(strata_lua *lua, int ref) { luaL_unref(lua->L, LUA_REGISTRYINDEX, ref); }

// MARK: SHA-1 (FIPS 180-4)

static uint32_t rotl(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

static void sha1_block(uint32_t h[5], const uint8_t *p) {
    uint32_t w[80];
    for (int i = 0; i < 16; i++) w[i] = (uint32_t)p[4 * i] << 24 | p[4 * i + 1] << 16 | p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 80; i++) w[i] = rotl(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) {
            f = (b & c) | (~b & d);
            k = 0x5A827999;
        } else if (i < 40) {
            f = b ^ c ^ d;
            k = 0x6ED9EBA1;
        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8F1BBCDC;
        } else {
            f = b ^ c ^ d;
            k = 0xCA62C1D6;
        }
        uint32_t t = rotl(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = rotl(b, 30);
        b = a;
        a = t;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

void strata_lua_sha1hex(const void *bytes, size_t length, char out[41]) {
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    const uint8_t *p = bytes;
    size_t left = length;
    while (left >= 64) {
        sha1_block(h, p);
        p += 64;
        left -= 64;
    }
    uint8_t tail[128] = {0};
    memcpy(tail, p, left);
    tail[left] = 0x80;
    size_t total = left + 1 + 8 <= 64 ? 64 : 128;
    uint64_t bits = (uint64_t)length * 8;
    for (int i = 0; i < 8; i++) tail[total - 1 - i] = (uint8_t)(bits >> (8 * i));
    sha1_block(h, tail);
    if (total == 128) sha1_block(h, tail + 64);
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 20; i++) {
        uint8_t byte = (uint8_t)(h[i / 4] >> (24 - 8 * (i % 4)));
        out[2 * i] = hex[byte >> 4];
        out[2 * i + 1] = hex[byte & 15];
    }
    out[40] = 0;
}
