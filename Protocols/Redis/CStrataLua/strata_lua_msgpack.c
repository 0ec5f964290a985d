// The `cmsgpack` library Redis gives scripts: MessagePack encoding of Lua values (pack, unpack, unpack_one,
// unpack_limit), with the same choices of representation, so packed bytes equal Redis's.
#include <lua5.1/lauxlib.h>
#include <lua5.1/lua.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "strata_lua.h"

#define MAX_NESTING 16
#define MAX_DECODE_DEPTH 1000

/// Packing stops past this many bytes (a table that refers to itself many times grows as a power of 16).
#define MAX_PACKED (512u << 20)

typedef struct {
    strata_lua_buffer out;
    int overflow;
} packer;

static void add(packer *b, uint8_t byte) { strata_lua_buffer_append(&b->out, &byte, 1); }

static void put_be(packer *b, uint8_t tag, uint64_t value, int bytes) {
    uint8_t out[9];
    out[0] = tag;
    for (int i = 0; i < bytes; i++) out[1 + i] = (uint8_t)(value >> (8 * (bytes - 1 - i)));
    strata_lua_buffer_append(&b->out, out, (size_t)bytes + 1);
}

static void encode_integer(packer *b, int64_t n) {
    if (n >= 0) {
        if (n <= 127) add(b, (uint8_t)n);
        else if (n <= 0xff) put_be(b, 0xcc, (uint64_t)n, 1);
        else if (n <= 0xffff) put_be(b, 0xcd, (uint64_t)n, 2);
        else if (n <= 0xffffffffLL) put_be(b, 0xce, (uint64_t)n, 4);
        else put_be(b, 0xcf, (uint64_t)n, 8);
    } else {
        if (n >= -32) add(b, (uint8_t)(0xe0 | (n & 0x1f)));
        else if (n >= -128) put_be(b, 0xd0, (uint64_t)n, 1);
        else if (n >= -32768) put_be(b, 0xd1, (uint64_t)n, 2);
        else if (n >= -2147483648LL) put_be(b, 0xd2, (uint64_t)n, 4);
        else put_be(b, 0xd3, (uint64_t)n, 8);
    }
}

static void encode_number(packer *b, lua_Number n) {
    if (!isinf(n) && !isnan(n) && n >= -9223372036854775808.0 && n < 9223372036854775808.0 &&
        (lua_Number)(int64_t)n == n) {
        encode_integer(b, (int64_t)n);
        return;
    }
    float f = (float)n;
    if ((double)f == n) {
        uint32_t bits;
        memcpy(&bits, &f, 4);
        put_be(b, 0xca, bits, 4);
    } else {
        uint64_t bits;
        double d = n;
        memcpy(&bits, &d, 8);
        put_be(b, 0xcb, bits, 8);
    }
}

/// A length header: the fix form below `fix_limit`, else 8 (strings only), 16 or 32 bits.
static void encode_length(packer *b, size_t n, uint8_t fix, size_t fix_limit, uint8_t tag16, uint8_t tag32,
                          uint8_t tag8) {
    if (n < fix_limit) add(b, (uint8_t)(fix | n));
    else if (tag8 && n <= 0xff) put_be(b, tag8, n, 1);
    else if (n <= 0xffff) put_be(b, tag16, n, 2);
    else put_be(b, tag32, n, 4);
}

/// Whether the table on top is an array: only keys 1..n, no holes.
static int is_array(lua_State *L) {
    lua_Number count = 0, max = 0;
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TNUMBER) {
            lua_pop(L, 1);
            return 0;
        }
        lua_Number n = lua_tonumber(L, -1);
        if (n <= 0 || floor(n) != n) {
            lua_pop(L, 1);
            return 0;
        }
        if (n > max) max = n;
        count++;
    }
    return max == count;
}

static void encode(lua_State *L, packer *b, int level);

static void encode_table(lua_State *L, packer *b, int level) {
    if (is_array(L)) {
        size_t n = lua_objlen(L, -1);
        encode_length(b, n, 0x90, 16, 0xdc, 0xdd, 0);
        for (size_t i = 1; i <= n && !b->overflow; i++) {
            lua_rawgeti(L, -1, (int)i);
            encode(L, b, level + 1);
        }
    } else {
        size_t n = 0;
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            lua_pop(L, 1);
            n++;
        }
        encode_length(b, n, 0x80, 16, 0xde, 0xdf, 0);
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            if (b->overflow) {
                lua_pop(L, 2);
                break;
            }
            lua_pushvalue(L, -2);
            encode(L, b, level + 1);  // the key
            encode(L, b, level + 1);  // the value
        }
    }
}

/// Encodes and pops the value on top. Tables nest at most 16 deep (deeper ones become nil, as in Redis).
static void encode(lua_State *L, packer *b, int level) {
    if (b->out.length > MAX_PACKED || !lua_checkstack(L, 4)) {
        b->overflow = 1;
        lua_pop(L, 1);
        return;
    }
    switch (lua_type(L, -1)) {
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, -1, &n);
        encode_length(b, n, 0xa0, 32, 0xda, 0xdb, 0xd9);
        strata_lua_buffer_append(&b->out, s, n);
        break;
    }
    case LUA_TBOOLEAN:
        add(b, lua_toboolean(L, -1) ? 0xc3 : 0xc2);
        break;
    case LUA_TNUMBER:
        encode_number(b, lua_tonumber(L, -1));
        break;
    case LUA_TTABLE:
        if (level >= MAX_NESTING) add(b, 0xc0);
        else encode_table(L, b, level);
        break;
    default:
        add(b, 0xc0);
    }
    lua_pop(L, 1);
}

static int pack(lua_State *L) {
    int argc = lua_gettop(L);
    if (argc == 0) return luaL_argerror(L, 0, "MessagePack pack needs input.");
    packer b = {{0}, 0};
    for (int i = 1; i <= argc && !b.overflow; i++) {
        lua_pushvalue(L, i);
        encode(L, &b, 0);
    }
    if (b.overflow) {
        strata_lua_buffer_free(&b.out);
        return luaL_error(L, "MessagePack pack: the packed value is too large.");
    }
    // (pushlstring can fail only for memory: the buffer is then lost, bounded by MAX_PACKED)
    lua_pushlstring(L, (const char *)b.out.bytes, b.out.length);
    strata_lua_buffer_free(&b.out);
    return 1;
}

typedef struct {
    const uint8_t *p;
    size_t left;
    int error;  // 1: missing bytes, 2: bad format
} cursor;

static uint64_t read_be(cursor *c, int bytes) {
    if (c->left < (size_t)bytes) {
        c->error = 1;
        return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) v = v << 8 | c->p[i];
    c->p += bytes;
    c->left -= bytes;
    return v;
}

static void decode(lua_State *L, cursor *c, int depth);

static void decode_string(lua_State *L, cursor *c, size_t n) {
    if (c->left < n) {
        c->error = 1;
        return;
    }
    lua_pushlstring(L, (const char *)c->p, n);
    c->p += n;
    c->left -= n;
}

static void decode_array(lua_State *L, cursor *c, size_t n, int depth) {
    if (n > c->left) {  // every element takes at least a byte
        c->error = 1;
        return;
    }
    lua_createtable(L, (int)n, 0);
    for (size_t i = 1; i <= n && !c->error; i++) {
        decode(L, c, depth + 1);
        if (c->error) return;
        lua_rawseti(L, -2, (int)i);
    }
}

static void decode_map(lua_State *L, cursor *c, size_t n, int depth) {
    if (n > c->left / 2 + 1) {
        c->error = 1;
        return;
    }
    lua_createtable(L, 0, (int)n);
    for (size_t i = 0; i < n && !c->error; i++) {
        decode(L, c, depth + 1);
        if (c->error) return;
        decode(L, c, depth + 1);
        if (c->error) return;
        if (lua_isnil(L, -2)) {
            lua_pop(L, 2);  // a nil key cannot be stored
            continue;
        }
        lua_rawset(L, -3);
    }
}

/// Pushes one decoded value (on error pushes nothing useful: c->error says what went wrong).
static void decode(lua_State *L, cursor *c, int depth) {
    if (depth > MAX_DECODE_DEPTH || !lua_checkstack(L, 4)) {
        c->error = 2;
        return;
    }
    if (c->left == 0) {
        c->error = 1;
        return;
    }
    uint8_t tag = *c->p++;
    c->left--;
    if (tag <= 0x7f) {
        lua_pushnumber(L, tag);
    } else if (tag >= 0xe0) {
        lua_pushnumber(L, (int8_t)tag);
    } else if ((tag & 0xf0) == 0x80) {
        decode_map(L, c, tag & 0x0f, depth);
    } else if ((tag & 0xf0) == 0x90) {
        decode_array(L, c, tag & 0x0f, depth);
    } else if ((tag & 0xe0) == 0xa0) {
        decode_string(L, c, tag & 0x1f);
    } else {
        uint64_t v;
        switch (tag) {
        case 0xc0: lua_pushnil(L); break;
        case 0xc2: lua_pushboolean(L, 0); break;
        case 0xc3: lua_pushboolean(L, 1); break;
        case 0xc4: case 0xd9: v = read_be(c, 1); if (!c->error) decode_string(L, c, v); break;
        case 0xc5: case 0xda: v = read_be(c, 2); if (!c->error) decode_string(L, c, v); break;
        case 0xc6: case 0xdb: v = read_be(c, 4); if (!c->error) decode_string(L, c, v); break;
        case 0xca: {
            uint32_t bits = (uint32_t)read_be(c, 4);
            float f;
            memcpy(&f, &bits, 4);
            lua_pushnumber(L, f);
            break;
        }
        case 0xcb: {
            uint64_t bits = read_be(c, 8);
            double d;
            memcpy(&d, &bits, 8);
            lua_pushnumber(L, d);
            break;
        }
        case 0xcc: lua_pushnumber(L, (lua_Number)read_be(c, 1)); break;
        case 0xcd: lua_pushnumber(L, (lua_Number)read_be(c, 2)); break;
        case 0xce: lua_pushnumber(L, (lua_Number)read_be(c, 4)); break;
        case 0xcf: lua_pushnumber(L, (lua_Number)read_be(c, 8)); break;
        case 0xd0: lua_pushnumber(L, (int8_t)read_be(c, 1)); break;
        case 0xd1: lua_pushnumber(L, (int16_t)read_be(c, 2)); break;
        case 0xd2: lua_pushnumber(L, (int32_t)read_be(c, 4)); break;
        case 0xd3: lua_pushnumber(L, (lua_Number)(int64_t)read_be(c, 8)); break;
        case 0xdc: v = read_be(c, 2); if (!c->error) decode_array(L, c, v, depth); break;
        case 0xdd: v = read_be(c, 4); if (!c->error) decode_array(L, c, v, depth); break;
        case 0xde: v = read_be(c, 2); if (!c->error) decode_map(L, c, v, depth); break;
        case 0xdf: v = read_be(c, 4); if (!c->error) decode_map(L, c, v, depth); break;
        default: c->error = 2;
        }
    }
}

static int unpack_full(lua_State *L, lua_Integer limit, lua_Integer offset) {
    size_t length;
    const char *s = luaL_checklstring(L, 1, &length);
    if (offset < 0 || limit < 0)
        return luaL_error(L, "Invalid request to unpack with offset of %d and limit of %d.", (int)offset, (int)limit);
    if ((size_t)offset > length)
        return luaL_error(L, "Start offset %d greater than input length %d.", (int)offset, (int)length);
    int all = limit == 0 && offset == 0;
    cursor c = {(const uint8_t *)s + offset, length - (size_t)offset, 0};
    int count = 0;
    int base = lua_gettop(L);
    while (c.left > 0 && (all || count < limit)) {
        if (!lua_checkstack(L, 1)) return luaL_error(L, "too many items unpacked from data! Use unpack_limit.");
        decode(L, &c, 0);
        if (c.error == 1) return luaL_error(L, "Missing bytes in input.");
        if (c.error == 2) return luaL_error(L, "Bad data format in input.");
        count++;
    }
    if (!all) {
        lua_pushinteger(L, c.left == 0 ? -1 : (lua_Integer)(length - c.left));
        lua_insert(L, base + 1);
        count++;
    }
    return count;
}

static int unpack(lua_State *L) { return unpack_full(L, 0, 0); }
static int unpack_one(lua_State *L) { return unpack_full(L, 1, luaL_optinteger(L, 2, 0)); }
static int unpack_limit(lua_State *L) {
    return unpack_full(L, luaL_checkinteger(L, 2), luaL_optinteger(L, 3, 0));
}

int strata_luaopen_cmsgpack(lua_State *L) {
    static const luaL_Reg functions[] = {
        {"pack", pack}, {"unpack", unpack}, {"unpack_one", unpack_one}, {"unpack_limit", unpack_limit}, {NULL, NULL},
    };
    lua_newtable(L);
    for (const luaL_Reg *f = functions; f->name; f++) {
        lua_pushcfunction(L, f->func);
        lua_setfield(L, -2, f->name);
    }
    lua_pushliteral(L, "lua-cmsgpack");
    lua_setfield(L, -2, "_NAME");
    lua_pushliteral(L, "0.4.0");
    lua_setfield(L, -2, "_VERSION");
    return 1;
}
