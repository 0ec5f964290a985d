"""Every operation of the Iceberg REST spec against Strata, with valid and invalid inputs; every JSON response is
checked against the spec's shapes (written out below as JSON Schema: required fields and types, as the OpenAPI
file defines them), every error against the spec's error model with the exception type clients match on.

    iceberg_conformance.py URI WAREHOUSE_DIR [spec | token TOKEN | oauth2 ID:SECRET | warehouses NAME DIR]

"spec" (the default) exercises all 35 operations; "token" and "oauth2" check authentication against a server
configured that way (the token's lifetime must be 1 second); "warehouses" a second warehouse selected by name.
Prints "ok" at the end; the first failed check raises.
"""
import base64
import time
import json
import os
import sys
import uuid

import jsonschema
import requests

uri, warehouse = sys.argv[1:3]
mode = sys.argv[3] if len(sys.argv) > 3 else "spec"
session = requests.Session()

STRINGS = {"type": "object", "additionalProperties": {"type": "string"}}
NAMESPACE = {"type": "array", "items": {"type": "string"}}
IDENTIFIER = {"type": "object", "required": ["namespace", "name"],
              "properties": {"namespace": NAMESPACE, "name": {"type": "string"}}}
INT = {"type": "integer"}
SCHEMA = {"type": "object", "required": ["type", "fields"],
          "properties": {"type": {"const": "struct"}, "schema-id": INT, "fields": {"type": "array"},
                         "identifier-field-ids": {"type": "array", "items": INT}}}
SNAPSHOT = {"type": "object", "required": ["snapshot-id", "timestamp-ms", "manifest-list", "summary"],
            "properties": {"snapshot-id": INT, "parent-snapshot-id": INT, "sequence-number": INT,
                           "timestamp-ms": INT, "manifest-list": {"type": "string"}, "schema-id": INT,
                           "summary": {"type": "object", "required": ["operation"],
                                       "properties": {"operation": {"enum": ["append", "replace", "overwrite",
                                                                             "delete"]}},
                                       "additionalProperties": {"type": "string"}}}}
TABLE_METADATA = {
    "type": "object", "required": ["format-version", "table-uuid"],
    "properties": {
        "format-version": {"type": "integer", "minimum": 1, "maximum": 3}, "table-uuid": {"type": "string"},
        "location": {"type": "string"}, "last-updated-ms": INT, "properties": STRINGS,
        "schemas": {"type": "array", "items": SCHEMA}, "current-schema-id": INT, "last-column-id": INT,
        "partition-specs": {"type": "array", "items": {
            "type": "object", "required": ["fields"],
            "properties": {"spec-id": INT, "fields": {"type": "array", "items": {
                "type": "object", "required": ["source-id", "transform", "name"],
                "properties": {"source-id": INT, "field-id": INT, "transform": {"type": "string"},
                               "name": {"type": "string"}}}}}}},
        "default-spec-id": INT, "last-partition-id": INT,
        "sort-orders": {"type": "array", "items": {"type": "object", "required": ["order-id", "fields"]}},
        "default-sort-order-id": INT, "snapshots": {"type": "array", "items": SNAPSHOT},
        "refs": {"type": "object", "additionalProperties": {
            "type": "object", "required": ["type", "snapshot-id"],
            "properties": {"type": {"enum": ["tag", "branch"]}, "snapshot-id": INT}}},
        "current-snapshot-id": INT, "last-sequence-number": INT,
        "snapshot-log": {"type": "array", "items": {"type": "object", "required": ["snapshot-id", "timestamp-ms"]}},
        "metadata-log": {"type": "array",
                         "items": {"type": "object", "required": ["metadata-file", "timestamp-ms"]}},
    }}
VIEW_METADATA = {
    "type": "object",
    "required": ["view-uuid", "format-version", "location", "current-version-id", "versions", "version-log",
                 "schemas"],
    "properties": {
        "view-uuid": {"type": "string"}, "format-version": {"const": 1}, "location": {"type": "string"},
        "current-version-id": INT, "schemas": {"type": "array", "items": SCHEMA}, "properties": STRINGS,
        "versions": {"type": "array", "items": {
            "type": "object",
            "required": ["version-id", "timestamp-ms", "schema-id", "summary", "representations",
                         "default-namespace"]}},
        "version-log": {"type": "array", "items": {"type": "object", "required": ["version-id", "timestamp-ms"]}}}}
SHAPES = {
    "error": {"type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["message", "type", "code"],
        "properties": {"message": {"type": "string"}, "type": {"type": "string"},
                       "code": {"type": "integer", "minimum": 400, "maximum": 600},
                       "stack": {"type": "array", "items": {"type": "string"}}}}}},
    "config": {"type": "object", "required": ["defaults", "overrides"],
               "properties": {"defaults": STRINGS, "overrides": STRINGS,
                              "endpoints": {"type": "array",
                                            "items": {"type": "string", "pattern": "^(GET|POST|DELETE|HEAD) /v1/"}},
                              "idempotency-key-lifetime": {"type": "string", "pattern": "^P"}}},
    "list-namespaces": {"type": "object", "required": ["namespaces"],
                        "properties": {"namespaces": {"type": "array", "items": NAMESPACE},
                                       "next-page-token": {"type": ["string", "null"]}}},
    "namespace": {"type": "object", "required": ["namespace"],
                  "properties": {"namespace": NAMESPACE, "properties": {"type": ["object", "null"]}}},
    "update-properties": {"type": "object", "required": ["updated", "removed", "missing"],
                          "properties": {"updated": {"type": "array", "items": {"type": "string"}},
                                         "removed": {"type": "array", "items": {"type": "string"}},
                                         "missing": {"type": ["array", "null"], "items": {"type": "string"}}}},
    "list-tables": {"type": "object", "required": ["identifiers"],
                    "properties": {"identifiers": {"type": "array", "items": IDENTIFIER},
                                   "next-page-token": {"type": ["string", "null"]}}},
    "load-table": {"type": "object", "required": ["metadata"],
                   "properties": {"metadata-location": {"type": ["string", "null"]}, "metadata": TABLE_METADATA,
                                  "config": STRINGS, "storage-credentials": {"type": "array"}}},
    "commit-table": {"type": "object", "required": ["metadata-location", "metadata"],
                     "properties": {"metadata-location": {"type": "string"}, "metadata": TABLE_METADATA}},
    "load-view": {"type": "object", "required": ["metadata-location", "metadata"],
                  "properties": {"metadata-location": {"type": "string"}, "metadata": VIEW_METADATA,
                                 "config": STRINGS}},
    "credentials": {"type": "object", "required": ["storage-credentials"],
                    "properties": {"storage-credentials": {"type": "array"}}},
    "token": {"type": "object", "required": ["access_token", "token_type"],
              "properties": {"access_token": {"type": "string"}, "token_type": {"enum": ["bearer", "mac", "N_A"]},
                             "expires_in": INT}},
    "oauth-error": {"type": "object", "required": ["error"],
                    "properties": {"error": {"enum": ["invalid_request", "invalid_client", "invalid_grant",
                                                      "unauthorized_client", "unsupported_grant_type",
                                                      "invalid_scope"]}}},
}
checked = {"operations": set(), "responses": 0}


def call(method, path, status, shape=None, operation=None, **kwargs):
    response = session.request(method, uri + path, **kwargs)
    if response.status_code != status:
        raise AssertionError(f"{method} {path}: {response.status_code} (expected {status}): {response.text[:500]}")
    if operation:
        checked["operations"].add(operation)
    if shape:
        jsonschema.validate(response.json(), SHAPES[shape])
        checked["responses"] += 1
    elif status in (204, 304) or method == "HEAD":
        if response.content:
            raise AssertionError(f"{method} {path}: {status} with a body")
    return response


def fails(method, path, status, error_type, operation=None, **kwargs):
    response = call(method, path, status, "error", operation, **kwargs)
    body = response.json()["error"]
    if body["type"] != error_type or body["code"] != status:
        raise AssertionError(f"{method} {path}: {body} (expected {error_type})")
    return body


SCHEMA_BODY = {"type": "struct", "fields": [{"id": 1, "name": "id", "required": False, "type": "long"},
                                            {"id": 2, "name": "v", "required": False, "type": "string"}]}


def table_body(name, **extra):
    return dict({"name": name, "schema": SCHEMA_BODY}, **extra)


def main():
    # 1. config, with and without a known warehouse; unknown warehouse is NoSuchWarehouse.
    config = call("GET", "/v1/config", 200, "config", "getConfig").json()
    call("GET", "/v1/config?warehouse=" + requests.utils.quote(warehouse), 200, "config")
    fails("GET", "/v1/config?warehouse=nowhere", 404, "NoSuchWarehouseException")
    endpoints = set(config["endpoints"])
    for needed in ("HEAD /v1/{prefix}/namespaces/{namespace}", "POST /v1/{prefix}/transactions/commit",
                   "GET /v1/{prefix}/namespaces/{namespace}/views"):
        assert needed in endpoints, needed
    assert not any("/plan" in e for e in endpoints), "planning must not be advertised"
    # 2. oauth tokens (auth none still issues; an unknown grant is an OAuth error).
    call("POST", "/v1/oauth/tokens", 200, "token", "getToken",
         data={"grant_type": "client_credentials", "client_id": "a", "client_secret": "b", "scope": "catalog"})
    call("POST", "/v1/oauth/tokens", 400, "oauth-error", data={"grant_type": "password"})

    # 3-8. namespaces.
    call("POST", "/v1/namespaces", 200, "namespace", "createNamespace",
         json={"namespace": ["conf"], "properties": {"a": "1"}})
    call("POST", "/v1/namespaces", 200, "namespace", json={"namespace": ["conf", "child"]})
    fails("POST", "/v1/namespaces", 409, "AlreadyExistsException", json={"namespace": ["conf"]})
    fails("POST", "/v1/namespaces", 400, "BadRequestException", json={"namespace": "conf"})
    fails("POST", "/v1/namespaces", 400, "BadRequestException", data="{not json", headers={"Content-Type":
                                                                                              "application/json"})
    fails("POST", "/v1/namespaces", 400, "BadRequestException", json={"namespace": []})
    fails("POST", "/v1/namespaces", 400, "BadRequestException", json={"namespace": ["a\x1fb"]})
    fails("POST", "/v1/namespaces", 400, "BadRequestException", json={"namespace": [".."]})
    fails("POST", "/v1/namespaces", 404, "NoSuchNamespaceException", json={"namespace": ["ghost", "child"]})
    listed = call("GET", "/v1/namespaces", 200, "list-namespaces", "listNamespaces").json()
    assert ["conf"] in listed["namespaces"], listed
    children = call("GET", "/v1/namespaces?parent=conf", 200, "list-namespaces").json()
    assert children["namespaces"] == [["conf", "child"]], children
    fails("GET", "/v1/namespaces?parent=ghost", 404, "NoSuchNamespaceException")
    fails("GET", "/v1/namespaces?pageSize=0", 400, "BadRequestException")
    fails("GET", "/v1/namespaces?pageToken=%%%", 400, "BadRequestException")
    loaded = call("GET", "/v1/namespaces/conf", 200, "namespace", "loadNamespaceMetadata").json()
    assert loaded == {"namespace": ["conf"], "properties": {"a": "1"}}, loaded
    fails("GET", "/v1/namespaces/ghost", 404, "NoSuchNamespaceException")
    call("HEAD", "/v1/namespaces/conf%1Fchild", 204, operation="namespaceExists")
    call("HEAD", "/v1/namespaces/ghost", 404)
    props = call("POST", "/v1/namespaces/conf/properties", 200, "update-properties", "updateProperties",
                 json={"removals": ["a", "zz"], "updates": {"b": "2"}}).json()
    assert props == {"updated": ["b"], "removed": ["a"], "missing": ["zz"]}, props
    fails("POST", "/v1/namespaces/conf/properties", 422, "UnprocessableEntityException",
          json={"removals": ["b"], "updates": {"b": "3"}})
    fails("POST", "/v1/namespaces/ghost/properties", 404, "NoSuchNamespaceException", json={"updates": {}})
    fails("DELETE", "/v1/namespaces/conf", 409, "NamespaceNotEmptyException")
    call("DELETE", "/v1/namespaces/conf%1Fchild", 204, operation="dropNamespace")
    fails("DELETE", "/v1/namespaces/conf%1Fchild", 404, "NoSuchNamespaceException")
    # Pagination over namespaces.
    for i in range(5):
        call("POST", "/v1/namespaces", 200, json={"namespace": ["page", f"n{i}"]} if i else {"namespace": ["page"]})
    seen, token = [], None
    while True:
        page = call("GET", "/v1/namespaces?parent=page&pageSize=2" + (f"&pageToken={token}" if token else ""), 200,
                    "list-namespaces").json()
        seen += page["namespaces"]
        token = page.get("next-page-token")
        if not token:
            break
    assert seen == [["page", f"n{i}"] for i in range(1, 5)], seen

    # 9-15. tables.
    created = call("POST", "/v1/namespaces/conf/tables", 200, "load-table", "createTable",
                   json=table_body("t1", properties={"format-version": "2"})).json()
    assert created["metadata-location"].startswith("file://" + warehouse), created["metadata-location"]
    fails("POST", "/v1/namespaces/conf/tables", 409, "AlreadyExistsException", json=table_body("t1"))
    fails("POST", "/v1/namespaces/ghost/tables", 404, "NoSuchNamespaceException", json=table_body("t1"))
    fails("POST", "/v1/namespaces/conf/tables", 400, "BadRequestException", json={"name": "x"})
    fails("POST", "/v1/namespaces/conf/tables", 400, "BadRequestException", json=table_body("../../etc"))
    fails("POST", "/v1/namespaces/conf/tables", 400, "BadRequestException", json=table_body("a/b"))
    fails("POST", "/v1/namespaces/conf/tables", 400, "BadRequestException",
          json=table_body("loc", location="file:///tmp/../etc/strata-escape"))
    fails("POST", "/v1/namespaces/conf/tables", 400, "BadRequestException",
          json=table_body("loc", location="s3://bucket/loc"))
    fails("POST", "/v1/namespaces/conf/tables", 400, "BadRequestException",
          json=table_body("loc", **{"stage-create": "yes"}))
    staged = call("POST", "/v1/namespaces/conf/tables", 200, "load-table",
                  json=table_body("staged", **{"stage-create": True})).json()
    assert staged["metadata-location"] is None, staged
    staged_dir = staged["metadata"]["location"][len("file://"):]
    assert os.path.isdir(staged_dir + "/metadata") and os.path.isdir(staged_dir + "/data"), staged_dir
    fails("GET", "/v1/namespaces/conf/tables/staged", 404, "NoSuchTableException")
    listed = call("GET", "/v1/namespaces/conf/tables", 200, "list-tables", "listTables").json()
    assert listed["identifiers"] == [{"namespace": ["conf"], "name": "t1"}], listed
    fails("GET", "/v1/namespaces/ghost/tables", 404, "NoSuchNamespaceException")
    load = call("GET", "/v1/namespaces/conf/tables/t1", 200, "load-table", "loadTable")
    etag = load.headers["ETag"]
    call("GET", "/v1/namespaces/conf/tables/t1", 304, headers={"If-None-Match": etag})
    call("GET", "/v1/namespaces/conf/tables/t1", 200, "load-table", headers={"If-None-Match": '"other"'})
    call("GET", "/v1/namespaces/conf/tables/t1?snapshots=refs", 200, "load-table")
    fails("GET", "/v1/namespaces/conf/tables/t1?snapshots=some", 400, "BadRequestException")
    fails("GET", "/v1/namespaces/conf/tables/nope", 404, "NoSuchTableException")
    fails("GET", "/v1/namespaces/ghost/tables/nope", 404, "NoSuchNamespaceException")
    # Spark's metadata-table lookup: db.t.snapshots is first tried as table snapshots in namespace db.t, which must
    # be NoSuchTableException (Java's client then loads db.t); a namespace that is not a table stays
    # NoSuchNamespaceException.
    fails("GET", "/v1/namespaces/conf%1Ft1/tables/snapshots", 404, "NoSuchTableException")
    fails("GET", "/v1/namespaces/conf%1Fnot_a_table/tables/snapshots", 404, "NoSuchNamespaceException")
    call("HEAD", "/v1/namespaces/conf/tables/t1", 204, operation="tableExists")
    call("HEAD", "/v1/namespaces/conf/tables/nope", 404)
    uuid_ = load.json()["metadata"]["table-uuid"]
    committed = call("POST", "/v1/namespaces/conf/tables/t1", 200, "commit-table", "updateTable",
                     json={"identifier": {"namespace": ["conf"], "name": "t1"},
                           "requirements": [{"type": "assert-table-uuid", "uuid": uuid_}],
                           "updates": [{"action": "set-properties", "updates": {"k": "v"}}]}).json()
    assert committed["metadata"]["properties"]["k"] == "v"
    call("GET", "/v1/namespaces/conf/tables/t1", 200, "load-table", headers={"If-None-Match": etag})
    fails("POST", "/v1/namespaces/conf/tables/t1", 409, "CommitFailedException",
          json={"requirements": [{"type": "assert-table-uuid", "uuid": str(uuid.uuid4())}], "updates": []})
    fails("POST", "/v1/namespaces/conf/tables/t1", 400, "BadRequestException",
          json={"requirements": [{"type": "assert-everything"}], "updates": []})
    fails("POST", "/v1/namespaces/conf/tables/t1", 400, "BadRequestException",
          json={"requirements": [], "updates": [{"action": "make-faster"}]})
    fails("POST", "/v1/namespaces/conf/tables/t1", 400, "BadRequestException",
          json={"requirements": [], "updates": [{"action": "set-properties", "updates": {"k": 1}}]})
    fails("POST", "/v1/namespaces/conf/tables/nope", 404, "NoSuchTableException",
          json={"requirements": [], "updates": []})
    # A staged create committed with assert-create (DuckDB's and Spark's CTAS).
    staged_meta = staged["metadata"]
    call("POST", "/v1/namespaces/conf/tables/staged", 200, "commit-table",
         json={"requirements": [{"type": "assert-create"}],
               "updates": [{"action": "assign-uuid", "uuid": staged_meta["table-uuid"]},
                           {"action": "upgrade-format-version", "format-version": 2},
                           {"action": "add-schema", "schema": SCHEMA_BODY},
                           {"action": "set-current-schema", "schema-id": -1},
                           {"action": "add-spec", "spec": {"fields": []}},
                           {"action": "set-default-spec", "spec-id": -1},
                           {"action": "add-sort-order", "sort-order": {"order-id": 0, "fields": []}},
                           {"action": "set-default-sort-order", "sort-order-id": -1},
                           {"action": "set-location", "location": staged_meta["location"]},
                           {"action": "set-properties", "updates": {"created-by": "conformance"}}]})
    fails("POST", "/v1/namespaces/conf/tables/staged", 409, "CommitFailedException",
          json={"requirements": [{"type": "assert-create"}], "updates": []})
    # 11. register; 17. rename; 18. metrics; 19. credentials; 16/20/22-25: not offered (406).
    location = call("GET", "/v1/namespaces/conf/tables/t1", 200).json()["metadata-location"]
    call("POST", "/v1/namespaces/conf/register", 200, "load-table", "registerTable",
         json={"name": "t1copy", "metadata-location": location})
    fails("POST", "/v1/namespaces/conf/register", 409, "AlreadyExistsException",
          json={"name": "t1copy", "metadata-location": location})
    call("POST", "/v1/namespaces/conf/register", 200, "load-table",
         json={"name": "t1copy", "metadata-location": location, "overwrite": True})
    fails("POST", "/v1/namespaces/conf/register", 400, "BadRequestException",
          json={"name": "bad", "metadata-location": "file:///etc/passwd"})
    call("POST", "/v1/namespaces", 200, json={"namespace": ["other"]})
    call("POST", "/v1/tables/rename", 204, operation="renameTable",
         json={"source": {"namespace": ["conf"], "name": "t1copy"},
               "destination": {"namespace": ["other"], "name": "moved"}})
    fails("POST", "/v1/tables/rename", 404, "NoSuchTableException",
          json={"source": {"namespace": ["conf"], "name": "t1copy"},
                "destination": {"namespace": ["other"], "name": "again"}})
    fails("POST", "/v1/tables/rename", 404, "NoSuchNamespaceException",
          json={"source": {"namespace": ["other"], "name": "moved"},
                "destination": {"namespace": ["ghost"], "name": "x"}})
    fails("POST", "/v1/tables/rename", 409, "AlreadyExistsException",
          json={"source": {"namespace": ["other"], "name": "moved"},
                "destination": {"namespace": ["conf"], "name": "t1"}})
    call("POST", "/v1/namespaces/conf/tables/t1/metrics", 204, operation="reportMetrics",
         json={"report-type": "commit-report", "table-name": "conf.t1", "snapshot-id": 1, "sequence-number": 1,
               "operation": "append", "metrics": {}})
    fails("POST", "/v1/namespaces/conf/tables/t1/metrics", 400, "BadRequestException", json={"nope": 1})
    creds = call("GET", "/v1/namespaces/conf/tables/t1/credentials", 200, "credentials", "loadCredentials").json()
    assert creds == {"storage-credentials": []}, creds
    for method, path, operation in [("POST", "/v1/namespaces/conf/tables/t1/plan", "planTableScan"),
                                    ("GET", "/v1/namespaces/conf/tables/t1/plan/p1", "fetchPlanningResult"),
                                    ("DELETE", "/v1/namespaces/conf/tables/t1/plan/p1", "cancelPlanning"),
                                    ("POST", "/v1/namespaces/conf/tables/t1/tasks", "fetchScanTasks"),
                                    ("POST", "/v1/namespaces/conf/tables/t1/sign", "signRequest"),
                                    ("POST", "/v1/namespaces/conf/tables/t1/unregister", "unregisterTable"),
                                    ("GET", "/v1/namespaces/conf/functions", "listFunctions"),
                                    ("GET", "/v1/namespaces/conf/functions/f", "loadFunction")]:
        fails(method, path, 406, "UnsupportedOperationException", operation, json={})
    # 21. transactions/commit: all or nothing, 204.
    call("POST", "/v1/namespaces/conf/tables", 200, json=table_body("t2"))
    t1_before = call("GET", "/v1/namespaces/conf/tables/t1", 200).json()["metadata-location"]
    fails("POST", "/v1/transactions/commit", 409, "CommitFailedException",
          json={"table-changes": [
              {"identifier": {"namespace": ["conf"], "name": "t1"}, "requirements": [],
               "updates": [{"action": "set-properties", "updates": {"tx": "1"}}]},
              {"identifier": {"namespace": ["conf"], "name": "t2"},
               "requirements": [{"type": "assert-current-schema-id", "current-schema-id": 5}],
               "updates": [{"action": "set-properties", "updates": {"tx": "1"}}]}]})
    assert call("GET", "/v1/namespaces/conf/tables/t1", 200).json()["metadata-location"] == t1_before
    fails("POST", "/v1/transactions/commit", 400, "BadRequestException",
          json={"table-changes": [{"requirements": [], "updates": []}]})
    call("POST", "/v1/transactions/commit", 204, operation="commitTransaction",
         json={"table-changes": [
             {"identifier": {"namespace": ["conf"], "name": "t1"}, "requirements": [],
              "updates": [{"action": "set-properties", "updates": {"tx": "2"}}]},
             {"identifier": {"namespace": ["conf"], "name": "t2"}, "requirements": [],
              "updates": [{"action": "set-properties", "updates": {"tx": "2"}}]}]})
    for name in ("t1", "t2"):
        props = call("GET", f"/v1/namespaces/conf/tables/{name}", 200).json()["metadata"]["properties"]
        assert props["tx"] == "2", props

    # 26-33. views.
    view = {"name": "v1", "schema": SCHEMA_BODY, "properties": {},
            "view-version": {"version-id": 1, "timestamp-ms": 1700000000000, "schema-id": 0,
                             "summary": {"engine-name": "spark"}, "default-namespace": ["conf"],
                             "representations": [{"type": "sql", "sql": "SELECT 1", "dialect": "spark"}]}}
    created_view = call("POST", "/v1/namespaces/conf/views", 200, "load-view", "createView", json=view).json()
    fails("POST", "/v1/namespaces/conf/views", 409, "AlreadyExistsException", json=view)
    fails("POST", "/v1/namespaces/conf/views", 409, "AlreadyExistsException", json=dict(view, name="t1"))
    fails("POST", "/v1/namespaces/conf/tables", 409, "AlreadyExistsException", json=table_body("v1"))
    fails("POST", "/v1/namespaces/conf/views", 400, "BadRequestException", json={"name": "v2"})
    listed = call("GET", "/v1/namespaces/conf/views", 200, "list-tables", "listViews").json()
    assert listed["identifiers"] == [{"namespace": ["conf"], "name": "v1"}], listed
    tables = call("GET", "/v1/namespaces/conf/tables", 200, "list-tables").json()["identifiers"]
    assert {"namespace": ["conf"], "name": "v1"} not in tables
    call("GET", "/v1/namespaces/conf/views/v1", 200, "load-view", "loadView")
    fails("GET", "/v1/namespaces/conf/views/nope", 404, "NoSuchViewException")
    call("HEAD", "/v1/namespaces/conf/views/v1", 204, operation="viewExists")
    call("HEAD", "/v1/namespaces/conf/views/nope", 404)
    view_uuid = created_view["metadata"]["view-uuid"]
    replaced = call("POST", "/v1/namespaces/conf/views/v1", 200, "load-view", "replaceView",
                    json={"requirements": [{"type": "assert-view-uuid", "uuid": view_uuid}],
                          "updates": [{"action": "add-view-version", "view-version": {
                              "version-id": 2, "timestamp-ms": 1700000001000, "schema-id": 0,
                              "summary": {}, "default-namespace": ["conf"],
                              "representations": [{"type": "sql", "sql": "SELECT 2", "dialect": "spark"}]}},
                              {"action": "set-current-view-version", "view-version-id": -1}]}).json()
    assert replaced["metadata"]["current-version-id"] == 2, replaced["metadata"]
    fails("POST", "/v1/namespaces/conf/views/v1", 409, "CommitFailedException",
          json={"requirements": [{"type": "assert-view-uuid", "uuid": str(uuid.uuid4())}], "updates": []})
    fails("POST", "/v1/namespaces/conf/views/v1", 400, "BadRequestException",
          json={"requirements": [], "updates": [{"action": "set-snapshot-ref"}]})
    call("POST", "/v1/views/rename", 204, operation="renameView",
         json={"source": {"namespace": ["conf"], "name": "v1"},
               "destination": {"namespace": ["other"], "name": "v1"}})
    view_location = call("GET", "/v1/namespaces/other/views/v1", 200).json()["metadata-location"]
    call("POST", "/v1/namespaces/conf/register-view", 200, "load-view", "registerView",
         json={"name": "vcopy", "metadata-location": view_location})
    call("DELETE", "/v1/namespaces/conf/views/vcopy", 204, operation="dropView")
    fails("DELETE", "/v1/namespaces/conf/views/vcopy", 404, "NoSuchViewException")

    # DELETE table: purgeRequested parsed case-insensitively; purge removes the files.
    call("POST", "/v1/namespaces/conf/tables", 200, json=table_body("gone"))
    gone_dir = warehouse + "/conf/gone"
    assert os.listdir(gone_dir + "/metadata"), "metadata file written"
    call("DELETE", "/v1/namespaces/conf/tables/gone?purgeRequested=True", 204, operation="dropTable")
    assert not os.path.exists(gone_dir + "/metadata"), os.listdir(gone_dir) if os.path.exists(gone_dir) else ""
    fails("DELETE", "/v1/namespaces/conf/tables/gone?purgeRequested=maybe", 400, "BadRequestException")
    call("DELETE", "/v1/namespaces/conf/tables/t2?purgeRequested=FALSE", 204)
    assert os.listdir(warehouse + "/conf/t2/metadata"), "drop without purge keeps files"
    fails("DELETE", "/v1/namespaces/conf/tables/t2", 404, "NoSuchTableException")

    # Idempotency-Key: a replay answers the first result and applies nothing twice.
    key = str(uuid.uuid4())
    first = call("POST", "/v1/namespaces", 200, "namespace", json={"namespace": ["idem"]},
                 headers={"Idempotency-Key": key})
    again = call("POST", "/v1/namespaces", 200, "namespace", json={"namespace": ["idem"]},
                 headers={"Idempotency-Key": key})
    assert first.json() == again.json()
    fails("POST", "/v1/namespaces", 409, "AlreadyExistsException", json={"namespace": ["idem"]},
          headers={"Idempotency-Key": str(uuid.uuid4())})
    commit_key = str(uuid.uuid4())
    body = {"requirements": [], "updates": [{"action": "set-properties", "updates": {"once": "1"}}]}
    one = call("POST", "/v1/namespaces/conf/tables/t1", 200, "commit-table", json=body,
               headers={"Idempotency-Key": commit_key}).json()
    two = call("POST", "/v1/namespaces/conf/tables/t1", 200, "commit-table", json=body,
               headers={"Idempotency-Key": commit_key}).json()
    assert one["metadata-location"] == two["metadata-location"], "replayed, not re-applied"
    current = call("GET", "/v1/namespaces/conf/tables/t1", 200).json()["metadata-location"]
    assert current == one["metadata-location"]
    fails("DELETE", "/v1/namespaces/idem", 422, "UnprocessableEntityException", headers={"Idempotency-Key": key})

    # Routes and methods that do not exist.
    fails("GET", "/v1/nothing/here/at/all", 404, "NoSuchWarehouseException")
    fails("PUT", "/v1/namespaces", 405, "MethodNotAllowedException")
    fails("GET", "/v2/config", 404, "NotFoundException")

    missing = {"getConfig", "getToken", "listNamespaces", "createNamespace", "loadNamespaceMetadata",
               "namespaceExists", "dropNamespace", "updateProperties", "listTables", "createTable", "registerTable",
               "loadTable", "tableExists", "updateTable", "dropTable", "unregisterTable", "renameTable",
               "reportMetrics", "loadCredentials", "signRequest", "commitTransaction", "planTableScan",
               "fetchPlanningResult", "cancelPlanning", "fetchScanTasks", "listViews", "createView", "loadView",
               "viewExists", "replaceView", "dropView", "renameView", "registerView", "listFunctions",
               "loadFunction"} - checked["operations"]
    assert not missing, f"operations not exercised: {sorted(missing)}"
    print(f"{len(checked['operations'])} operations, {checked['responses']} responses validated")


def token_auth(token):
    fails("GET", "/v1/config", 401, "NotAuthorizedException")
    fails("GET", "/v1/namespaces", 401, "NotAuthorizedException", headers={"Authorization": "Bearer wrong"})
    fails("GET", "/v1/namespaces", 401, "NotAuthorizedException", headers={"Authorization": "Basic eDp5"})
    call("GET", "/v1/config", 200, "config", headers={"Authorization": "Bearer " + token})
    call("POST", "/v1/namespaces", 200, "namespace", json={"namespace": ["secured"]},
         headers={"Authorization": "Bearer " + token})
    fails("POST", "/v1/namespaces", 401, "NotAuthorizedException", json={"namespace": ["sneaky"]})
    listed = call("GET", "/v1/namespaces", 200, "list-namespaces", headers={"Authorization": "Bearer " + token})
    assert listed.json()["namespaces"] == [["secured"]], listed.json()
    call("POST", "/v1/oauth/tokens", 401, "oauth-error", data={"grant_type": "client_credentials",
                                                               "client_id": "a", "client_secret": "b"})


def oauth2(credential):
    client, secret = credential.split(":", 1)
    fails("GET", "/v1/config", 401, "NotAuthorizedException")
    # pyiceberg's way: credentials in the form body.
    form = call("POST", "/v1/oauth/tokens", 200, "token",
                data={"grant_type": "client_credentials", "client_id": client, "client_secret": secret,
                      "scope": "catalog"}).json()
    assert form["token_type"] == "bearer" and form["expires_in"] == 1, form
    # DuckDB's way: HTTP Basic.
    basic = base64.b64encode(f"{client}:{secret}".encode()).decode()
    duck = call("POST", "/v1/oauth/tokens", 200, "token", data={"grant_type": "client_credentials",
                                                                "scope": "PRINCIPAL_ROLE:ALL"},
                headers={"Authorization": "Basic " + basic}).json()
    assert duck["access_token"] != form["access_token"], "tokens are random"
    for token in (form["access_token"], duck["access_token"]):
        call("GET", "/v1/namespaces", 200, "list-namespaces", headers={"Authorization": "Bearer " + token})
    call("POST", "/v1/oauth/tokens", 401, "oauth-error",
         data={"grant_type": "client_credentials", "client_id": client, "client_secret": secret + "x"})
    call("POST", "/v1/oauth/tokens", 401, "oauth-error",
         data={"grant_type": "client_credentials", "client_id": "nobody", "client_secret": secret})
    call("POST", "/v1/oauth/tokens", 400, "oauth-error", data={"client_id": client, "client_secret": secret})
    call("POST", "/v1/oauth/tokens", 400, "oauth-error",
         data={"grant_type": "urn:ietf:params:oauth:grant-type:token-exchange", "subject_token": "x"})
    fails("GET", "/v1/namespaces", 401, "NotAuthorizedException", headers={"Authorization": "Bearer forged"})
    time.sleep(1.5)
    fails("GET", "/v1/namespaces", 419, "AuthenticationTimeoutException",
          headers={"Authorization": "Bearer " + form["access_token"]})


def warehouses(name, directory):
    config = call("GET", "/v1/config?warehouse=" + name, 200, "config").json()
    assert config["overrides"].get("prefix") == name, config
    assert "prefix" not in call("GET", "/v1/config", 200, "config").json()["overrides"]
    call("POST", f"/v1/{name}/namespaces", 200, "namespace", json={"namespace": ["w"]})
    created = call("POST", f"/v1/{name}/namespaces/w/tables", 200, "load-table", json=table_body("t")).json()
    assert created["metadata-location"].startswith("file://" + directory + "/w/t/metadata/"), created
    assert call("GET", "/v1/namespaces", 200, "list-namespaces").json()["namespaces"] == []
    assert call("GET", f"/v1/{name}/namespaces", 200, "list-namespaces").json()["namespaces"] == [["w"]]
    fails("GET", "/v1/unknown/namespaces", 404, "NoSuchWarehouseException")
    # A location in another warehouse of the same catalog is allowed; outside every warehouse is not.
    call("POST", "/v1/namespaces", 200, json={"namespace": ["d"]})
    call("POST", "/v1/namespaces/d/tables", 200, "load-table",
         json=table_body("elsewhere", location="file://" + directory + "/elsewhere"))
    fails("POST", "/v1/namespaces/d/tables", 400, "BadRequestException",
          json=table_body("outside", location="file:///var/tmp/outside"))


if mode == "spec":
    main()
elif mode == "token":
    token_auth(sys.argv[4])
elif mode == "oauth2":
    oauth2(sys.argv[4])
elif mode == "warehouses":
    warehouses(sys.argv[4], sys.argv[5])
else:
    raise SystemExit("unknown mode " + mode)
print("ok")
