package import GRPCCore
package import StrataEtcdAPI
package import StrataMVCC

/// etcd's Auth service while authentication is disabled (the only mode so far): AuthStatus reports it, every other
/// call answers etcd's "authentication is not enabled". kube-apiserver and Kind never use etcd auth.
package struct AuthService: Etcdserverpb_Auth.SimpleServiceProtocol {
    let store: MVCCStore
    let configuration: EtcdFrontEnd.Configuration

    package init(store: MVCCStore, configuration: EtcdFrontEnd.Configuration) {
        self.store = store
        self.configuration = configuration
    }

    static let notEnabled = RPCError(code: .failedPrecondition, message: "etcdserver: authentication is not enabled")

    package func authStatus(
        request: Etcdserverpb_AuthStatusRequest,
        context: ServerContext
    ) async throws -> Etcdserverpb_AuthStatusResponse {
        var response = Etcdserverpb_AuthStatusResponse()
        response.header = configuration.header(store.currentRevision)
        response.enabled = false
        response.authRevision = 1
        return response
    }

    package func authEnable(request: Etcdserverpb_AuthEnableRequest, context: ServerContext) async throws
        -> Etcdserverpb_AuthEnableResponse
    { throw Self.notEnabled }
    package func authDisable(request: Etcdserverpb_AuthDisableRequest, context: ServerContext) async throws
        -> Etcdserverpb_AuthDisableResponse
    { throw Self.notEnabled }
    package func authenticate(request: Etcdserverpb_AuthenticateRequest, context: ServerContext) async throws
        -> Etcdserverpb_AuthenticateResponse
    { throw Self.notEnabled }
    package func userAdd(request: Etcdserverpb_AuthUserAddRequest, context: ServerContext) async throws
        -> Etcdserverpb_AuthUserAddResponse
    { throw Self.notEnabled }
    package func userGet(request: Etcdserverpb_AuthUserGetRequest, context: ServerContext) async throws
        -> Etcdserverpb_AuthUserGetResponse
    { throw Self.notEnabled }
    package func userList(request: Etcdserverpb_AuthUserListRequest, context: ServerContext) async throws
        -> Etcdserverpb_AuthUserListResponse
    { throw Self.notEnabled }
    package func userDelete(request: Etcdserverpb_AuthUserDeleteRequest, context: ServerContext) async throws
        -> Etcdserverpb_AuthUserDeleteResponse
    { throw Self.notEnabled }
    package func userChangePassword(request: Etcdserverpb_AuthUserChangePasswordRequest, context: ServerContext)
        async throws -> Etcdserverpb_AuthUserChangePasswordResponse
    { throw Self.notEnabled }
    package func userGrantRole(request: Etcdserverpb_AuthUserGrantRoleRequest, context: ServerContext) async throws
        -> Etcdserverpb_AuthUserGrantRoleResponse
    { throw Self.notEnabled }
    package func userRevokeRole(request: Etcdserverpb_AuthUserRevokeRoleRequest, context: ServerContext) async throws
        -> Etcdserverpb_AuthUserRevokeRoleResponse
    { throw Self.notEnabled }
    package func roleAdd(request: Etcdserverpb_AuthRoleAddRequest, context: ServerContext) async throws
        -> Etcdserverpb_AuthRoleAddResponse
    { throw Self.notEnabled }
    package func roleGet(request: Etcdserverpb_AuthRoleGetRequest, context: ServerContext) async throws
        -> Etcdserverpb_AuthRoleGetResponse
    { throw Self.notEnabled }
    package func roleList(request: Etcdserverpb_AuthRoleListRequest, context: ServerContext) async throws
        -> Etcdserverpb_AuthRoleListResponse
    { throw Self.notEnabled }
    package func roleDelete(request: Etcdserverpb_AuthRoleDeleteRequest, context: ServerContext) async throws
        -> Etcdserverpb_AuthRoleDeleteResponse
    { throw Self.notEnabled }
    package func roleGrantPermission(request: Etcdserverpb_AuthRoleGrantPermissionRequest, context: ServerContext)
        async throws -> Etcdserverpb_AuthRoleGrantPermissionResponse
    { throw Self.notEnabled }
    package func roleRevokePermission(request: Etcdserverpb_AuthRoleRevokePermissionRequest, context: ServerContext)
        async throws -> Etcdserverpb_AuthRoleRevokePermissionResponse
    { throw Self.notEnabled }
}
