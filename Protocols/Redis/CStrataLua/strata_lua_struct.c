// The `struct` library Redis gives scripts: binary packing of numbers and strings by a format string
// (struct.pack, struct.unpack, struct.size), with its options: endianness `<` `>` `=`, alignment `!n`, integers
// `b B h H l L T i[n] I[n]`, `f` `d`, strings `s` (zero-terminated) and `c[n]`, padding `x`.
#include <ctype.h>
#include <limits.h>
#include <lua5.1/lauxlib.h>
#include <lua5.1/lua.h>
#include <stdint.h>
#include <string.h>

#define MAX_INT_SIZE 32
#define MAX_ALIGN 8

typedef struct {
    int little;
    int align;
} layout;

static int is_power_of_two(int x) { return x > 0 && (x & (x - 1)) == 0; }

static int read_number(lua_State *L, const char **format, int fallback) {
    if (!isdigit((unsigned char)**format)) return fallback;
    int n = 0;
    do {
        int digit = *(*format)++ - '0';
        if (n > (INT_MAX - digit) / 10) luaL_error(L, "integral size overflow");
        n = n * 10 + digit;
    } while (isdigit((unsigned char)**format));
    return n;
}

/// The size of option `option` (reading its count from the format), 0 for options without data.
static size_t option_size(lua_State *L, int option, const char **format) {
    switch (option) {
    case 'B': case 'b': return 1;
    case 'H': case 'h': return sizeof(short);
    case 'L': case 'l': return sizeof(long);
    case 'T': return sizeof(size_t);
    case 'f': return sizeof(float);
    case 'd': return sizeof(double);
    case 'x': return 1;
    case 'c': return (size_t)read_number(L, format, 1);
    case 'i': case 'I': {
        int size = read_number(L, format, sizeof(int));
        if (size > MAX_INT_SIZE) luaL_error(L, "integral size %d is larger than limit of %d", size, MAX_INT_SIZE);
        return (size_t)size;
    }
    default: return 0;
    }
}

static size_t padding(size_t offset, const layout *h, int option, size_t size) {
    if (size <= 1 || option == 'c') return 0;
    size_t align = size;
    if (align > (size_t)h->align) align = (size_t)h->align;
    return (align - (offset & (align - 1))) & (align - 1);
}

/// Endianness, alignment and spaces; anything else is an invalid option.
static void control(lua_State *L, int option, const char **format, layout *h) {
    switch (option) {
    case ' ': return;
    case '>': h->little = 0; return;
    case '<': h->little = 1; return;
    case '=': h->little = 1; return;
    case '!': {
        int a = read_number(L, format, MAX_ALIGN);
        if (!is_power_of_two(a)) luaL_argerror(L, 1, lua_pushfstring(L, "alignment %d is not a power of 2", a));
        h->align = a;
        return;
    }
    default: luaL_argerror(L, 1, lua_pushfstring(L, "invalid format option '%c'", option));
    }
}

static void put_integer(lua_State *L, luaL_Buffer *b, int arg, int little, size_t size) {
    lua_Number n = luaL_checknumber(L, arg);
    uint64_t value = n < 0 ? (uint64_t)(int64_t)n : (uint64_t)n;
    char bytes[MAX_INT_SIZE];
    for (size_t i = 0; i < size; i++) {
        size_t at = little ? i : size - 1 - i;
        bytes[at] = i < 8 ? (char)(value >> (8 * i)) : (char)(n < 0 ? 0xff : 0);
    }
    luaL_addlstring(b, bytes, size);
}

static lua_Number get_integer(const char *data, int little, int is_signed, size_t size) {
    uint64_t value = 0;
    for (size_t i = 0; i < size; i++) {
        size_t at = little ? size - 1 - i : i;
        value = value << 8 | (uint8_t)data[at];
    }
    if (is_signed && size < 8) {
        uint64_t mask = ~0ULL << (size * 8 - 1);
        if (value & mask) value |= mask;
        return (lua_Number)(int64_t)value;
    }
    return is_signed ? (lua_Number)(int64_t)value : (lua_Number)value;
}

static void put_bytes(luaL_Buffer *b, const void *p, size_t size, int little) {
    const char *bytes = p;
    char out[8];
    for (size_t i = 0; i < size; i++) out[i] = little ? bytes[i] : bytes[size - 1 - i];
    luaL_addlstring(b, out, size);
}

static void get_bytes(void *p, const char *data, size_t size, int little) {
    char *bytes = p;
    for (size_t i = 0; i < size; i++) bytes[i] = little ? data[i] : data[size - 1 - i];
}

static int pack(lua_State *L) {
    layout h = {1, 1};
    const char *format = luaL_checkstring(L, 1);
    int arg = 2;
    size_t total = 0;
    luaL_Buffer b;
    lua_pushnil(L);  // keeps the buffer above the arguments
    luaL_buffinit(L, &b);
    while (*format) {
        int option = *format++;
        size_t size = option_size(L, option, &format);
        size_t pad = padding(total, &h, option, size);
        total += pad;
        while (pad-- > 0) luaL_addchar(&b, '\0');
        switch (option) {
        case 'b': case 'B': case 'h': case 'H': case 'l': case 'L': case 'T': case 'i': case 'I':
            put_integer(L, &b, arg++, h.little, size);
            break;
        case 'x':
            luaL_addchar(&b, '\0');
            break;
        case 'f': {
            float x = (float)luaL_checknumber(L, arg++);
            put_bytes(&b, &x, size, h.little);
            break;
        }
        case 'd': {
            double x = luaL_checknumber(L, arg++);
            put_bytes(&b, &x, size, h.little);
            break;
        }
        case 'c': case 's': {
            size_t length;
            const char *s = luaL_checklstring(L, arg, &length);
            if (size == 0) size = length;
            luaL_argcheck(L, length >= size, arg, "string too short");
            arg++;
            luaL_addlstring(&b, s, size);
            if (option == 's') {
                luaL_addchar(&b, '\0');
                size++;
            }
            break;
        }
        default:
            control(L, option, &format, &h);
        }
        total += size;
    }
    luaL_pushresult(&b);
    return 1;
}

static int unpack(lua_State *L) {
    layout h = {1, 1};
    const char *format = luaL_checkstring(L, 1);
    size_t length;
    const char *data = luaL_checklstring(L, 2, &length);
    lua_Integer start = luaL_optinteger(L, 3, 1);
    luaL_argcheck(L, start > 0, 3, "offset must be 1 or greater");
    size_t position = (size_t)start - 1;
    luaL_argcheck(L, position <= length, 3, "offset must be 1 or greater");
    int results = 0;
    while (*format) {
        int option = *format++;
        size_t size = option_size(L, option, &format);
        position += padding(position, &h, option, size);
        luaL_argcheck(L, size <= length && position <= length - size, 2, "data string too short");
        luaL_checkstack(L, 2, "too many results");
        switch (option) {
        case 'b': case 'B': case 'h': case 'H': case 'l': case 'L': case 'T': case 'i': case 'I':
            lua_pushnumber(L, get_integer(data + position, h.little, islower(option), size));
            results++;
            break;
        case 'x':
            break;
        case 'f': {
            float x;
            get_bytes(&x, data + position, size, h.little);
            lua_pushnumber(L, x);
            results++;
            break;
        }
        case 'd': {
            double x;
            get_bytes(&x, data + position, size, h.little);
            lua_pushnumber(L, x);
            results++;
            break;
        }
        case 'c':
            if (size == 0) {
                if (results == 0 || !lua_isnumber(L, -1)) luaL_error(L, "format 'c0' needs a previous size");
                lua_Number n = lua_tonumber(L, -1);
                luaL_argcheck(L, n >= 0 && n <= (lua_Number)length, 2, "data string too short");
                size = (size_t)n;
                lua_pop(L, 1);
                results--;
                luaL_argcheck(L, size <= length && position <= length - size, 2, "data string too short");
            }
            lua_pushlstring(L, data + position, size);
            results++;
            break;
        case 's': {
            const char *end = memchr(data + position, '\0', length - position);
            if (!end) luaL_error(L, "unfinished string in data");
            size = (size_t)(end - (data + position)) + 1;
            lua_pushlstring(L, data + position, size - 1);
            results++;
            break;
        }
        default:
            control(L, option, &format, &h);
        }
        position += size;
    }
    lua_pushinteger(L, (lua_Integer)position + 1);
    return results + 1;
}

static int size(lua_State *L) {
    layout h = {1, 1};
    const char *format = luaL_checkstring(L, 1);
    size_t total = 0;
    while (*format) {
        int option = *format++;
        size_t size = option_size(L, option, &format);
        total += padding(total, &h, option, size);
        if (option == 's') luaL_argerror(L, 1, "options 's' has no fixed size");
        if (option == 'c' && size == 0) luaL_argerror(L, 1, "option 'c0' has no fixed size");
        if (!isalnum(option)) control(L, option, &format, &h);
        total += size;
    }
    lua_pushinteger(L, (lua_Integer)total);
    return 1;
}

int strata_luaopen_struct(lua_State *L) {
    static const luaL_Reg functions[] = {{"pack", pack}, {"unpack", unpack}, {"size", size}, {NULL, NULL}};
    lua_newtable(L);
    for (const luaL_Reg *f = functions; f->name; f++) {
        lua_pushcfunction(L, f->func);
        lua_setfield(L, -2, f->name);
    }
    return 1;
}
