internal import GRPCCore
internal import StrataEtcdAPI
internal import Synchronization

/// Active alarms, shared by the services: a NOSPACE alarm makes writes fail until it is deactivated.
package final class AlarmTable: Sendable {
    private let alarms = Mutex<Set<Int>>([])
    /// Whether the data directory is short of free space right now (the core refuses writes then): shown as NOSPACE
    /// while it lasts, and gone by itself once space is back, unlike the quota's alarm, which an operator disarms.
    private let diskShort: @Sendable () -> Bool

    package init(diskShort: @escaping @Sendable () -> Bool = { false }) {
        self.diskShort = diskShort
    }

    var active: [Etcdserverpb_AlarmType] {
        var raised = alarms.withLock { $0 }
        if diskShort() { raised.insert(Etcdserverpb_AlarmType.nospace.rawValue) }
        return raised.sorted().compactMap(Etcdserverpb_AlarmType.init(rawValue:))
    }

    var noSpace: Bool {
        alarms.withLock { $0.contains(Etcdserverpb_AlarmType.nospace.rawValue) } || diskShort()
    }

    /// The active alarms by etcd's names ("NOSPACE", "CORRUPT"), for `/health`.
    package var names: [String] {
        active.map { alarm in
            switch alarm {
            case .nospace: "NOSPACE"
            case .corrupt: "CORRUPT"
            default: "\(alarm)"
            }
        }
    }

    @discardableResult
    func activate(_ alarm: Etcdserverpb_AlarmType) -> Bool { alarms.withLock { $0.insert(alarm.rawValue).inserted } }

    @discardableResult
    func deactivate(_ alarm: Etcdserverpb_AlarmType) -> Bool { alarms.withLock { $0.remove(alarm.rawValue) != nil } }

    /// Fails a write while NOSPACE is active, with etcd's error.
    func checkWritable() throws(RPCError) {
        if noSpace { throw EtcdError.noSpace }
    }
}
