internal import Foundation
internal import StrataMVCC
internal import StrataRedisStore

/// GEOADD, GEODIST, GEOHASH, GEOPOS, GEOSEARCH, GEOSEARCHSTORE and the GEORADIUS family: sorted sets whose scores
/// are 52-bit geohashes (``GeoHash``), with Redis's argument rules, error texts, search order and number formats.
extension RedisCommands {
    static let geo: [(String, RedisCommand.Access, RedisCommandTable.Handler)] = [
        ("geoadd", .write, { c throws(RedisError) in try geoAdd(&c) }),
        ("geodist", .read, { c throws(RedisError) in try geoDistance(&c) }),
        ("geohash", .read, { c throws(RedisError) in try geoHashes(&c) }),
        ("geopos", .read, { c throws(RedisError) in try geoPositions(&c) }),
        ("georadius", .write, { c throws(RedisError) in try geoSearch(&c, source: 1, [.coordinates]) }),
        ("georadius_ro", .read, { c throws(RedisError) in try geoSearch(&c, source: 1, [.coordinates, .noStore]) }),
        ("georadiusbymember", .write, { c throws(RedisError) in try geoSearch(&c, source: 1, [.member]) }),
        (
            "georadiusbymember_ro", .read,
            { c throws(RedisError) in try geoSearch(&c, source: 1, [.member, .noStore]) }
        ),
        ("geosearch", .read, { c throws(RedisError) in try geoSearch(&c, source: 1, [.search]) }),
        ("geosearchstore", .write, { c throws(RedisError) in try geoSearch(&c, source: 2, [.search, .searchStore]) }),
    ]

    struct GeoFlags: OptionSet {
        let rawValue: Int
        static let coordinates = GeoFlags(rawValue: 1)
        static let member = GeoFlags(rawValue: 2)
        static let noStore = GeoFlags(rawValue: 4)
        static let search = GeoFlags(rawValue: 8)
        static let searchStore = GeoFlags(rawValue: 16)
    }

    /// A longitude and latitude argument pair, checked against the geohash limits.
    static func longitudeLatitude(_ c: RedisInvocation, _ index: Int) throws(RedisError) -> (Double, Double) {
        let longitude = try c.double(index)
        let latitude = try c.double(index + 1)
        guard longitude >= GeoHash.longitudeMin, longitude <= GeoHash.longitudeMax,
            latitude >= GeoHash.latitudeMin, latitude <= GeoHash.latitudeMax
        else {
            throw .reply(String(format: "ERR invalid longitude,latitude pair %f,%f", longitude, latitude))
        }
        return (longitude, latitude)
    }

    /// Meters per unit.
    static func unit(_ text: String) throws(RedisError) -> Double {
        switch text.lowercased() {
        case "m": return 1
        case "km": return 1000
        case "ft": return 0.3048
        case "mi": return 1609.34
        default: throw .err("unsupported unit provided. please use M, KM, FT, MI")
        }
    }

    static func number(_ c: RedisInvocation, _ index: Int, _ message: String) throws(RedisError) -> Double {
        guard let value = RedisNumber.parseDouble(c[index]) else { throw .err(message) }
        return value
    }

    /// `fixedpoint_d2string(…, 4)`: four decimals, rounded half to even.
    static func distanceText(_ value: Double) -> [UInt8] {
        if value == 0 { return Array("0.0000".utf8) }
        let scaled = (value * 10_000).rounded(.toNearestOrEven)
        guard scaled.magnitude < 9.2e18 else { return Array(String(format: "%.4f", value).utf8) }
        let integer = Int64(scaled)
        let magnitude = integer.magnitude
        let fraction = String(magnitude % 10_000)
        let text =
            (integer < 0 ? "-" : "") + String(magnitude / 10_000) + "."
            + String(repeating: "0", count: 4 - fraction.count) + fraction
        return Array(text.utf8)
    }

    /// A coordinate as Redis's `addReplyHumanLongDouble`: `%.17Lf` trimmed, a RESP3 double.
    static func coordinate(_ value: Double) -> RESPValue {
        .formattedDouble(RedisNumber.humanString(LongDouble(value)) ?? RESPValue.format(value))
    }

    static func geoAdd(_ c: inout RedisInvocation) throws(RedisError) -> RESPValue {
        var index = 2
        var nx = false
        var xx = false
        while index < c.count {
            let option = c.option(index)
            if option == "NX" {
                nx = true
            } else if option == "XX" {
                xx = true
            } else if option != "CH" {
                break
            }
            index += 1
        }
        guard (c.count - index) % 3 == 0, !(xx && nx) else { throw .syntax }
        var arguments: [[UInt8]] = [Array("zadd".utf8)] + Array(c.arguments[1..<index])
        while index < c.count {
            let (longitude, latitude) = try longitudeLatitude(c, index)
            let score = GeoHash.score(longitude: longitude, latitude: latitude) ?? 0
            arguments += [Array(String(score).utf8), c[index + 2]]
            index += 3
        }
        c.arguments = arguments
        guard let zadd = RedisCommandTable.commands["zadd"] else { throw .err("ZADD is missing") }
        return try zadd.run(&c)
    }

    static func geoDistance(_ c: inout RedisInvocation) throws(RedisError) -> RESPValue {
        var toMeters = 1.0
        if c.count == 5 {
            toMeters = try unit(c.text(4))
        } else if c.count > 5 {
            throw .syntax
        }
        guard let entry = try c.data.lookup(c.db, c[1], as: .zset) else { return .null }
        guard let first = try c.data.score(entry, c[2]), let second = try c.data.score(entry, c[3]),
            let a = GeoHash.position(score: first), let b = GeoHash.position(score: second)
        else { return .null }
        return .bulk(distanceText(GeoHash.distance(a.longitude, a.latitude, b.longitude, b.latitude) / toMeters))
    }

    /// GEOHASH and GEOPOS: one reply per member, from its decoded position, or `missing` for an absent member.
    static func perMember(
        _ c: inout RedisInvocation,
        missing: RESPValue,
        _ reply: (_ score: Double) -> RESPValue?
    ) throws(RedisError) -> RESPValue {
        let entry = try c.data.lookup(c.db, c[1], as: .zset)
        var replies: [RESPValue] = []
        for index in 2..<c.count {
            guard let entry, let score = try c.data.score(entry, c[index]) else {
                replies.append(missing)
                continue
            }
            replies.append(reply(score) ?? missing)
        }
        return .array(replies)
    }

    static func geoHashes(_ c: inout RedisInvocation) throws(RedisError) -> RESPValue {
        try perMember(&c, missing: .null) { score in GeoHash.standardHash(score: score).map { .bulk($0) } }
    }

    static func geoPositions(_ c: inout RedisInvocation) throws(RedisError) -> RESPValue {
        try perMember(&c, missing: .nullArray) { score in
            GeoHash.position(score: score).map { .array([coordinate($0.longitude), coordinate($0.latitude)]) }
        }
    }

    struct GeoPoint {
        var member: [UInt8]
        var score: Double
        var longitude: Double
        var latitude: Double
        var distance: Double
    }

    /// Redis's `georadiusGeneric`: the shape from the command's fixed arguments, then the options, then the
    /// search over the center box and its neighbours, sorted, counted, and replied or stored.
    static func geoSearch(_ c: inout RedisInvocation, source: Int, _ flags: GeoFlags) throws(RedisError) -> RESPValue {
        let entry = try c.data.lookup(c.db, c[source], as: .zset)
        var storeKey: [UInt8]? = nil
        var storeDistance = false
        var center: (Double, Double) = (0, 0)
        var kind: GeoHash.Shape.Kind = .circle(radius: 0)
        var conversion = 1.0
        var base: Int
        func distanceArguments(_ index: Int) throws(RedisError) -> (GeoHash.Shape.Kind, Double) {
            let radius = try number(c, index, "need numeric radius")
            guard radius >= 0 else { throw .err("radius cannot be negative") }
            return (.circle(radius: radius), try unit(c.text(index + 1)))
        }
        func memberPosition(_ member: [UInt8]) throws(RedisError) -> (Double, Double) {
            guard let entry, let score = try c.data.score(entry, member), let position = GeoHash.position(score: score)
            else { throw .err("could not decode requested zset member") }
            return (position.longitude, position.latitude)
        }
        if flags.contains(.coordinates) {
            base = 6
            center = try longitudeLatitude(c, 2)
            (kind, conversion) = try distanceArguments(4)
        } else if flags.contains(.member) {
            base = 5
            if entry != nil {
                center = try memberPosition(c[2])
                (kind, conversion) = try distanceArguments(3)
            }
        } else {
            base = 2
            if flags.contains(.searchStore) {
                base = 3
                storeKey = c[1]
            }
        }
        var withDistance = false
        var withHash = false
        var withCoordinates = false
        var fromMember = false
        var fromLocation = false
        var byRadius = false
        var byBox = false
        var ascending: Bool? = nil
        var any = false
        var count: Int64 = 0
        var index = base
        let canStore = !flags.contains(.noStore) && !flags.contains(.search)
        while index < c.count {
            let option = c.option(index)
            let remaining = c.count - index - 1
            switch option {
            case "WITHDIST": withDistance = true
            case "WITHHASH": withHash = true
            case "WITHCOORD": withCoordinates = true
            case "ANY": any = true
            case "ASC": ascending = true
            case "DESC": ascending = false
            case "COUNT" where remaining >= 1:
                count = try c.integer(index + 1)
                guard count > 0 else { throw .err("COUNT must be > 0") }
                index += 1
            case "STORE" where remaining >= 1 && canStore:
                storeKey = c[index + 1]
                storeDistance = false
                index += 1
            case "STOREDIST" where remaining >= 1 && canStore:
                storeKey = c[index + 1]
                storeDistance = true
                index += 1
            case "STOREDIST" where flags.contains(.search) && flags.contains(.searchStore):
                storeDistance = true
            case "FROMMEMBER" where remaining >= 1 && flags.contains(.search) && !fromLocation:
                if entry != nil { center = try memberPosition(c[index + 1]) }
                fromMember = true
                index += 1
            case "FROMLONLAT" where remaining >= 2 && flags.contains(.search) && !fromMember:
                center = try longitudeLatitude(c, index + 1)
                fromLocation = true
                index += 2
            case "BYRADIUS" where remaining >= 2 && flags.contains(.search) && !byBox:
                (kind, conversion) = try distanceArguments(index + 1)
                byRadius = true
                index += 2
            case "BYBOX" where remaining >= 3 && flags.contains(.search) && !byRadius:
                let width = try number(c, index + 1, "need numeric width")
                let height = try number(c, index + 2, "need numeric height")
                guard width >= 0, height >= 0 else { throw .err("height or width cannot be negative") }
                conversion = try unit(c.text(index + 3))
                kind = .box(width: width, height: height)
                byBox = true
                index += 3
            default:
                throw .syntax
            }
            index += 1
        }
        if storeKey != nil && (withDistance || withHash || withCoordinates) {
            let what = flags.contains(.searchStore) ? "GEOSEARCHSTORE" : "STORE option in GEORADIUS"
            throw .err("\(what) is not compatible with WITHDIST, WITHHASH and WITHCOORD options")
        }
        let name = c.text(0)
        if flags.contains(.search) && !(fromMember || fromLocation) {
            throw .err("exactly one of FROMMEMBER or FROMLONLAT can be specified for \(name)")
        }
        if flags.contains(.search) && !(byRadius || byBox) {
            throw .err("exactly one of BYRADIUS and BYBOX can be specified for \(name)")
        }
        if any && count == 0 { throw .err("the ANY argument requires COUNT argument") }
        /// An empty result deletes the destination, as Redis does.
        func emptyStore(_ key: [UInt8]) throws(RedisError) -> RESPValue {
            if let existing = try c.data.lookup(c.db, key) {
                try c.data.drop(c.db, key, existing)
                c.notify("del", .generic, key)
            }
            return .integer(0)
        }
        guard let entry else {
            guard let storeKey else { return .array([]) }
            return try emptyStore(storeKey)
        }
        if count != 0 && ascending == nil && !any { ascending = true }
        let shape = GeoHash.Shape(longitude: center.0, latitude: center.1, kind: kind, conversion: conversion)
        let limit = any ? Int(count) : 0
        var points: [GeoPoint] = []
        for range in GeoHash.searchRanges(shape) {
            if !points.isEmpty && limit > 0 && points.count >= limit { break }
            try c.data.forEachScored(entry, from: Double(range.min), through: Double(range.max).nextDown) {
                member,
                score throws(RedisError) in
                if let position = GeoHash.position(score: score),
                    let distance = shape.contains(longitude: position.longitude, latitude: position.latitude)
                {
                    points.append(
                        GeoPoint(
                            member: member,
                            score: score,
                            longitude: position.longitude,
                            latitude: position.latitude,
                            distance: distance
                        )
                    )
                }
                return !(limit > 0 && points.count >= limit)
            }
        }
        if points.isEmpty && storeKey == nil { return .array([]) }
        let returned = count == 0 ? points.count : min(points.count, Int(count))
        if let ascending {
            // A stable sort, as glibc's qsort (a merge sort) is.
            points = points.enumerated().sorted { a, b in
                if a.element.distance != b.element.distance {
                    return ascending ? a.element.distance < b.element.distance : a.element.distance > b.element.distance
                }
                return a.offset < b.offset
            }.map(\.element)
        }
        let selected = points.prefix(returned).map { point -> GeoPoint in
            var point = point
            point.distance /= conversion
            return point
        }
        if let storeKey {
            if selected.isEmpty { return try emptyStore(storeKey) }
            var target = c.data.newCollection(.zset)
            for point in selected {
                let old = try c.data.score(target, point.member)
                try c.data.setScore(&target, point.member, storeDistance ? point.distance : point.score, old: old)
            }
            try c.data.replace(c.db, storeKey, with: target)
            c.notify(flags.contains(.search) ? "geosearchstore" : "georadiusstore", .zset, storeKey)
            return .integer(selected.count)
        }
        let options = (withDistance ? 1 : 0) + (withHash ? 1 : 0) + (withCoordinates ? 1 : 0)
        return .array(
            selected.map { point in
                guard options > 0 else { return .bulk(point.member) }
                var item: [RESPValue] = [.bulk(point.member)]
                if withDistance { item.append(.bulk(distanceText(point.distance))) }
                if withHash { item.append(.integer(Int64(point.score))) }
                if withCoordinates { item.append(.array([coordinate(point.longitude), coordinate(point.latitude)])) }
                return .array(item)
            }
        )
    }
}
