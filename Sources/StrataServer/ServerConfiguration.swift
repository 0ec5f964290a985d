package import StrataCommon
package import StrataConfig
package import StrataFrontEnd
private import StrataMVCC
internal import StrataObservability

/// Everything a server runs with: the core's configuration and each registered front-end's, read from one file (or
/// built from a personality's command line).
package struct ServerConfiguration: Sendable {
    package var core: StrataConfiguration
    package var frontEnds: [(registration: FrontEndRegistration, configuration: any FrontEndConfiguration)]

    package init(
        core: StrataConfiguration,
        frontEnds: [(registration: FrontEndRegistration, configuration: any FrontEndConfiguration)]
    ) {
        self.core = core
        self.frontEnds = frontEnds
    }

    /// Parses a config file: the core's sections, then each front-end's (its reader reports its own unknown keys),
    /// then the listeners of everything enabled, which must not share a port.
    package static func load(
        toml text: String,
        file: String = "config.toml",
        frontEnds registrations: [FrontEndRegistration] = StrataServer.frontEnds
    ) throws(ConfigError) -> ServerConfiguration {
        let core = try StrataConfiguration.parse(toml: text, file: file, frontEnds: registrations.map(\.name))
        var frontEnds: [(registration: FrontEndRegistration, configuration: any FrontEndConfiguration)] = []
        for registration in registrations {
            let section = core.sections[registration.name] ?? ConfigSection(path: [registration.name])
            frontEnds.append((registration, try registration.configuration(from: section, file: file)))
        }
        let configuration = ServerConfiguration(core: core, frontEnds: frontEnds)
        try configuration.validateListeners()
        return configuration
    }

    /// The built-in default (the shipped config.toml's text).
    package static var defaults: ServerConfiguration {
        get throws(ConfigError) {
            try load(toml: StrataConfiguration.defaultFileContents, file: "(built-in config.toml)")
        }
    }

    /// Only `name`'s front-end, with `configuration` (a personality's command line).
    package func serving(only name: String, with configuration: any FrontEndConfiguration) -> ServerConfiguration {
        var copy = self
        copy.frontEnds = frontEnds.compactMap { entry in
            guard entry.registration.name == name else { return nil }
            return (entry.registration, configuration)
        }
        return copy
    }

    /// The configuration of front-end `name`, if this build has it.
    package func frontEnd(_ name: String) -> (any FrontEndConfiguration)? {
        frontEnds.first { $0.registration.name == name }?.configuration
    }

    /// Two enabled listeners on one port can never both bind; say so before starting anything.
    func validateListeners() throws(ConfigError) {
        var listeners: [(section: String, key: String, address: ListenAddress)] = []
        for (registration, configuration) in frontEnds where configuration.enabled {
            for (key, address) in configuration.listeners { listeners.append((registration.name, key, address)) }
        }
        if let admin = core.metrics { listeners.append(("metrics", "listen", admin.listen)) }
        var seen: [Int: (name: String, line: Int?)] = [:]
        for listener in listeners where listener.address.port != 0 {
            let name = "\(listener.section).\(listener.key)"
            let section = core.sections[listener.section]
            let line = section?.lines[listener.key] ?? section?.line
            if let other = seen[listener.address.port] {
                throw ConfigError(
                    file: core.file,
                    line: line ?? other.line,
                    message: "'\(name)' uses port \(listener.address.port), already used by '\(other.name)'"
                )
            }
            seen[listener.address.port] = (name, line)
        }
    }
}
