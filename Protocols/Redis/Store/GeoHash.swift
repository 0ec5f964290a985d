internal import Foundation

/// Redis's geo encoding (geohash.c, geohash_helper.c): a point is a 52-bit interleaved geohash stored as a sorted
/// set score, and a radius or box search scans the sorted-set ranges of the center box and its eight neighbours at
/// a step chosen from the radius. Every number here is computed as Redis computes it, so scores, positions,
/// distances and the members a search finds equal Redis's.
package enum GeoHash {
    package static let longitudeMin = -180.0
    package static let longitudeMax = 180.0
    package static let latitudeMin = -85.05112878
    package static let latitudeMax = 85.05112878
    package static let stepMax = 26
    static let earthRadius = 6372797.560856
    static let mercatorMax = 20037726.37
    static let degreesToRadians = Double.pi / 180.0

    /// A hash of `step` bits per coordinate.
    package struct Bits: Equatable, Sendable {
        package var bits: UInt64
        package var step: Int
        var isZero: Bool { bits == 0 && step == 0 }
        static let zero = Bits(bits: 0, step: 0)
    }

    struct Range {
        var min: Double
        var max: Double
    }

    struct Area {
        var hash: Bits
        var longitude: Range
        var latitude: Range
    }

    static let worldLongitude = Range(min: longitudeMin, max: longitudeMax)
    static let worldLatitude = Range(min: latitudeMin, max: latitudeMax)

    // MARK: Bits

    static func interleave(_ xLow: UInt32, _ yLow: UInt32) -> UInt64 {
        let masks: [UInt64] = [
            0x5555_5555_5555_5555, 0x3333_3333_3333_3333, 0x0F0F_0F0F_0F0F_0F0F, 0x00FF_00FF_00FF_00FF,
            0x0000_FFFF_0000_FFFF,
        ]
        let shifts: [UInt64] = [1, 2, 4, 8, 16]
        var x = UInt64(xLow)
        var y = UInt64(yLow)
        for index in stride(from: 4, through: 0, by: -1) {
            x = (x | (x << shifts[index])) & masks[index]
            y = (y | (y << shifts[index])) & masks[index]
        }
        return x | (y << 1)
    }

    static func deinterleave(_ interleaved: UInt64) -> UInt64 {
        let masks: [UInt64] = [
            0x5555_5555_5555_5555, 0x3333_3333_3333_3333, 0x0F0F_0F0F_0F0F_0F0F, 0x00FF_00FF_00FF_00FF,
            0x0000_FFFF_0000_FFFF, 0x0000_0000_FFFF_FFFF,
        ]
        let shifts: [UInt64] = [0, 1, 2, 4, 8, 16]
        var x = interleaved
        var y = interleaved >> 1
        for index in 0..<6 {
            x = (x | (x >> shifts[index])) & masks[index]
            y = (y | (y >> shifts[index])) & masks[index]
        }
        return x | (y << 32)
    }

    /// The hash of a point at `step` within the given ranges; nil outside them (or Redis's limits).
    static func encode(
        longitude: Double,
        latitude: Double,
        step: Int,
        longitudeRange: Range = worldLongitude,
        latitudeRange: Range = worldLatitude
    ) -> Bits? {
        guard step > 0, step <= 32 else { return nil }
        guard longitude <= longitudeMax, longitude >= longitudeMin, latitude <= latitudeMax,
            latitude >= latitudeMin
        else { return nil }
        guard latitude >= latitudeRange.min, latitude <= latitudeRange.max, longitude >= longitudeRange.min,
            longitude <= longitudeRange.max
        else { return nil }
        var latitudeOffset = (latitude - latitudeRange.min) / (latitudeRange.max - latitudeRange.min)
        var longitudeOffset = (longitude - longitudeRange.min) / (longitudeRange.max - longitudeRange.min)
        latitudeOffset *= Double(UInt64(1) << UInt64(step))
        longitudeOffset *= Double(UInt64(1) << UInt64(step))
        // C's double-to-uint32 conversion truncates (an offset of exactly 2^32 wraps, as in C on x86-64).
        let latitudeBits = UInt32(truncatingIfNeeded: UInt64(latitudeOffset))
        let longitudeBits = UInt32(truncatingIfNeeded: UInt64(longitudeOffset))
        return Bits(bits: interleave(latitudeBits, longitudeBits), step: step)
    }

    static func decode(
        _ hash: Bits,
        longitudeRange: Range = worldLongitude,
        latitudeRange: Range = worldLatitude
    ) -> Area? {
        guard !hash.isZero else { return nil }
        let separated = deinterleave(hash.bits)
        let latitudeScale = latitudeRange.max - latitudeRange.min
        let longitudeScale = longitudeRange.max - longitudeRange.min
        let latitudeBits = Double(UInt32(truncatingIfNeeded: separated))
        let longitudeBits = Double(UInt32(truncatingIfNeeded: separated >> 32))
        let cells = Double(UInt64(1) << UInt64(hash.step))
        return Area(
            hash: hash,
            longitude: Range(
                min: longitudeRange.min + (longitudeBits * 1.0 / cells) * longitudeScale,
                max: longitudeRange.min + ((longitudeBits + 1) * 1.0 / cells) * longitudeScale
            ),
            latitude: Range(
                min: latitudeRange.min + (latitudeBits * 1.0 / cells) * latitudeScale,
                max: latitudeRange.min + ((latitudeBits + 1) * 1.0 / cells) * latitudeScale
            )
        )
    }

    /// The 52-bit score of a point (GEOADD).
    package static func score(longitude: Double, latitude: Double) -> UInt64? {
        guard let hash = encode(longitude: longitude, latitude: latitude, step: stepMax) else { return nil }
        return align52(hash)
    }

    static func align52(_ hash: Bits) -> UInt64 { hash.bits << UInt64(52 - hash.step * 2) }

    /// The point a score stands for: the center of its cell, clamped to the valid ranges.
    package static func position(score: Double) -> (longitude: Double, latitude: Double)? {
        // C converts the double score to uint64 by truncation.
        guard score >= 0, score < 18_446_744_073_709_551_616.0 else { return nil }
        guard let area = decode(Bits(bits: UInt64(score), step: stepMax)) else { return nil }
        let longitude = min(max((area.longitude.min + area.longitude.max) / 2, longitudeMin), longitudeMax)
        let latitude = min(max((area.latitude.min + area.latitude.max) / 2, latitudeMin), latitudeMax)
        return (longitude, latitude)
    }

    /// GEOHASH's 11-character standard geohash of a score.
    package static func standardHash(score: Double) -> String? {
        guard let (longitude, latitude) = position(score: score) else { return nil }
        let hash =
            encode(
                longitude: longitude,
                latitude: latitude,
                step: 26,
                longitudeRange: Range(min: -180, max: 180),
                latitudeRange: Range(min: -90, max: 90)
            ) ?? Bits(bits: 0, step: 26)
        let alphabet = Array("0123456789bcdefghjkmnpqrstuvwxyz")
        var text = ""
        for index in 0..<11 {
            let digit = index == 10 ? 0 : Int((hash.bits >> UInt64(52 - (index + 1) * 5)) & 0x1F)
            text.append(alphabet[digit])
        }
        return text
    }

    // MARK: Neighbours

    /// Moves a hash one cell along one axis: the axis's interleaved bits (`axis`: longitude's odd bits or
    /// latitude's even bits) are incremented or decremented as one number, the other axis's kept.
    static func move(_ hash: inout Bits, _ direction: Int, axis: UInt64) {
        guard direction != 0 else { return }
        let other: UInt64 = ~axis
        var moving = hash.bits & axis
        let kept = hash.bits & other
        let zz = other >> UInt64(64 - hash.step * 2)
        if direction > 0 {
            moving = moving &+ (zz &+ 1)
        } else {
            moving = moving | zz
            moving = moving &- (zz &+ 1)
        }
        moving &= axis >> UInt64(64 - hash.step * 2)
        hash.bits = moving | kept
    }

    static func moved(_ hash: Bits, x: Int, y: Int) -> Bits {
        var result = hash
        move(&result, x, axis: 0xAAAA_AAAA_AAAA_AAAA)
        move(&result, y, axis: 0x5555_5555_5555_5555)
        return result
    }

    // MARK: Distances

    static func radians(_ degrees: Double) -> Double { degrees * degreesToRadians }

    static func latitudeDistance(_ latitude1: Double, _ latitude2: Double) -> Double {
        earthRadius * abs(radians(latitude2) - radians(latitude1))
    }

    /// The haversine distance in meters, as Redis computes it.
    package static func distance(_ longitude1: Double, _ latitude1: Double, _ longitude2: Double, _ latitude2: Double)
        -> Double
    {
        let longitude1r = radians(longitude1)
        let longitude2r = radians(longitude2)
        let v = sin((longitude2r - longitude1r) / 2)
        if v == 0.0 { return latitudeDistance(latitude1, latitude2) }
        let latitude1r = radians(latitude1)
        let latitude2r = radians(latitude2)
        let u = sin((latitude2r - latitude1r) / 2)
        let a = u * u + cos(latitude1r) * cos(latitude2r) * v * v
        return 2.0 * earthRadius * asin(a.squareRoot())
    }

    // MARK: Search

    /// A search area: a circle of `radius` or a box of `width` × `height` (in the unit of `conversion`, meters per
    /// unit) around a center.
    package struct Shape: Sendable {
        package enum Kind: Sendable {
            case circle(radius: Double)
            case box(width: Double, height: Double)
        }
        package var longitude: Double
        package var latitude: Double
        package var kind: Kind
        package var conversion: Double

        package init(longitude: Double, latitude: Double, kind: Kind, conversion: Double) {
            self.longitude = longitude
            self.latitude = latitude
            self.kind = kind
            self.conversion = conversion
        }

        /// The distance from the center in meters if the point is inside, else nil.
        package func contains(longitude: Double, latitude: Double) -> Double? {
            switch kind {
            case .circle(let radius):
                let distance = GeoHash.distance(self.longitude, self.latitude, longitude, latitude)
                return distance > radius * conversion ? nil : distance
            case .box(let width, let height):
                let widthMeters = width * conversion
                let heightMeters = height * conversion
                if GeoHash.latitudeDistance(self.latitude, latitude) > heightMeters / 2 { return nil }
                if GeoHash.distance(longitude, latitude, self.longitude, latitude) > widthMeters / 2 { return nil }
                return GeoHash.distance(self.longitude, self.latitude, longitude, latitude)
            }
        }

        var boundingBox: (minLongitude: Double, minLatitude: Double, maxLongitude: Double, maxLatitude: Double) {
            let height: Double
            let width: Double
            switch kind {
            case .circle(let radius):
                height = conversion * radius
                width = conversion * radius
            case .box(let boxWidth, let boxHeight):
                height = conversion * (boxHeight / 2)
                width = conversion * (boxWidth / 2)
            }
            let latitudeDelta = (height / GeoHash.earthRadius) / GeoHash.degreesToRadians
            let longitudeDeltaTop =
                (width / GeoHash.earthRadius / cos(GeoHash.radians(latitude + latitudeDelta)))
                / GeoHash.degreesToRadians
            let longitudeDeltaBottom =
                (width / GeoHash.earthRadius / cos(GeoHash.radians(latitude - latitudeDelta)))
                / GeoHash.degreesToRadians
            let southern = latitude < 0
            return (
                southern ? longitude - longitudeDeltaBottom : longitude - longitudeDeltaTop,
                latitude - latitudeDelta,
                southern ? longitude + longitudeDeltaBottom : longitude + longitudeDeltaTop,
                latitude + latitudeDelta
            )
        }

        var radiusMeters: Double {
            switch kind {
            case .circle(let radius): return radius * conversion
            case .box(let width, let height):
                return ((width / 2) * (width / 2) + (height / 2) * (height / 2)).squareRoot() * conversion
            }
        }
    }

    static func estimateSteps(radiusMeters: Double, latitude: Double) -> Int {
        if radiusMeters == 0 { return 26 }
        var range = radiusMeters
        var step = 1
        while range < mercatorMax {
            range *= 2
            step += 1
        }
        step -= 2
        if latitude > 66 || latitude < -66 {
            step -= 1
            if latitude > 80 || latitude < -80 { step -= 1 }
        }
        return min(max(step, 1), 26)
    }

    /// The score ranges `[min, max)` to scan, in Redis's order (center, N, S, E, W, NE, NW, SE, SW), skipping
    /// boxes the search cannot reach and a box equal to the one scanned just before.
    package static func searchRanges(_ shape: Shape) -> [(min: UInt64, max: UInt64)] {
        let bounds = shape.boundingBox
        var steps = estimateSteps(radiusMeters: shape.radiusMeters, latitude: shape.latitude)
        func around(_ steps: Int) -> (Bits, [Bits], Area?) {
            let hash =
                encode(longitude: shape.longitude, latitude: shape.latitude, step: steps) ?? Bits(bits: 0, step: steps)
            // north, south, east, west, north-east, north-west, south-east, south-west
            let neighbours = [
                moved(hash, x: 0, y: 1), moved(hash, x: 0, y: -1), moved(hash, x: 1, y: 0), moved(hash, x: -1, y: 0),
                moved(hash, x: 1, y: 1), moved(hash, x: -1, y: 1), moved(hash, x: 1, y: -1), moved(hash, x: -1, y: -1),
            ]
            return (hash, neighbours, decode(hash))
        }
        var (hash, neighbours, area) = around(steps)
        var decrease = false
        if let north = decode(neighbours[0]), north.latitude.max < bounds.maxLatitude { decrease = true }
        if let south = decode(neighbours[1]), south.latitude.min > bounds.minLatitude { decrease = true }
        if let east = decode(neighbours[2]), east.longitude.max < bounds.maxLongitude { decrease = true }
        if let west = decode(neighbours[3]), west.longitude.min > bounds.minLongitude { decrease = true }
        if steps > 1 && decrease {
            steps -= 1
            (hash, neighbours, area) = around(steps)
        }
        if steps >= 2, let area {
            if area.latitude.min < bounds.minLatitude {
                for index in [1, 6, 7] { neighbours[index] = .zero }
            }
            if area.latitude.max > bounds.maxLatitude {
                for index in [0, 4, 5] { neighbours[index] = .zero }
            }
            if area.longitude.min < bounds.minLongitude {
                for index in [3, 7, 5] { neighbours[index] = .zero }
            }
            if area.longitude.max > bounds.maxLongitude {
                for index in [2, 6, 4] { neighbours[index] = .zero }
            }
        }
        let boxes = [hash] + neighbours
        var ranges: [(min: UInt64, max: UInt64)] = []
        var lastProcessed: Int? = nil
        for (index, box) in boxes.enumerated() {
            if box.isZero { continue }
            if let last = lastProcessed, last != 0, box == boxes[last] { continue }
            var next = box
            next.bits &+= 1
            ranges.append((align52(box), align52(next)))
            lastProcessed = index
        }
        return ranges
    }
}
