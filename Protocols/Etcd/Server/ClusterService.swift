package import GRPCCore
internal import StrataCommon
package import StrataEtcdAPI
package import StrataMVCC

/// etcd's Cluster service for a single member. Membership changes fail the way a one-member etcd with
/// `--strict-reconfig-check` (the default) refuses them: adding or removing a voting member would lose quorum.
package struct ClusterService: Etcdserverpb_Cluster.SimpleServiceProtocol {
    let store: MVCCStore
    let configuration: EtcdFrontEnd.Configuration

    package init(store: MVCCStore, configuration: EtcdFrontEnd.Configuration) {
        self.store = store
        self.configuration = configuration
    }

    static let notEnoughStarted = RPCError(
        code: .failedPrecondition,
        message: "etcdserver: re-configuration failed due to not enough started members"
    )
    static let memberNotFound = RPCError(code: .notFound, message: "etcdserver: member not found")
    static let memberNotLearner = RPCError(
        code: .failedPrecondition,
        message: "etcdserver: can only promote a learner member"
    )

    var member: Etcdserverpb_Member {
        var member = Etcdserverpb_Member()
        member.id = configuration.memberID
        member.name = configuration.name
        member.peerUrls = ["http://\(configuration.listen.host):2380"]
        member.clientUrls = ["http://\(configuration.listen)"]
        return member
    }

    package func memberList(
        request: Etcdserverpb_MemberListRequest,
        context: ServerContext
    ) async throws -> Etcdserverpb_MemberListResponse {
        var response = Etcdserverpb_MemberListResponse()
        response.header = configuration.header(store.currentRevision)
        response.members = [member]
        return response
    }

    package func memberAdd(
        request: Etcdserverpb_MemberAddRequest,
        context: ServerContext
    ) async throws -> Etcdserverpb_MemberAddResponse {
        throw Self.notEnoughStarted
    }

    package func memberRemove(
        request: Etcdserverpb_MemberRemoveRequest,
        context: ServerContext
    ) async throws -> Etcdserverpb_MemberRemoveResponse {
        throw request.id == configuration.memberID ? Self.notEnoughStarted : Self.memberNotFound
    }

    package func memberUpdate(
        request: Etcdserverpb_MemberUpdateRequest,
        context: ServerContext
    ) async throws -> Etcdserverpb_MemberUpdateResponse {
        // Strata has no peer traffic: the member's peer URLs are fixed, so an update cannot take effect.
        throw request.id == configuration.memberID
            ? RPCError(code: .failedPrecondition, message: "etcdserver: Peer URLs already exists")
            : Self.memberNotFound
    }

    package func memberPromote(
        request: Etcdserverpb_MemberPromoteRequest,
        context: ServerContext
    ) async throws -> Etcdserverpb_MemberPromoteResponse {
        throw request.id == configuration.memberID ? Self.memberNotLearner : Self.memberNotFound
    }
}
