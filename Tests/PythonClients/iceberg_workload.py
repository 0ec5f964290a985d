"""pyiceberg and DuckDB against Strata's Iceberg REST catalog, as users drive it.

    iceberg_workload.py URI WAREHOUSE_DIR EXTENSIONS_DIR PHASE [TOKEN_OR_CREDENTIAL]

PHASE "write" builds everything (namespaces, tables, appends, DuckDB DML, schema evolution, views, rename,
register, purge, concurrent writers) and records what it expects in WAREHOUSE_DIR/expected.json; PHASE "verify"
(run after the server restarted) checks all of it is still there, read by both clients. Prints "ok" at the end;
any failed check raises.
"""
import json
import os
import sys
import threading

import duckdb
import pyarrow as pa
from pyiceberg.catalog.rest import RestCatalog
from pyiceberg.exceptions import (CommitFailedException, NamespaceAlreadyExistsError, NamespaceNotEmptyError,
                                  NoSuchNamespaceError, NoSuchTableError, TableAlreadyExistsError)
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table.sorting import SortField, SortOrder
from pyiceberg.transforms import IdentityTransform
from pyiceberg.types import DoubleType, LongType, NestedField, StringType, TimestampType

uri, warehouse, extensions, phase = sys.argv[1:5]
auth = sys.argv[5] if len(sys.argv) > 5 else ""


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def catalog():
    props = {"uri": uri, "warehouse": warehouse}
    if auth.startswith("token="):
        props["token"] = auth[len("token="):]
    elif auth.startswith("credential="):
        props["credential"] = auth[len("credential="):]
    return RestCatalog("strata", **props)


def duck():
    con = duckdb.connect(config={"allow_unsigned_extensions": "false", "autoinstall_known_extensions": "false",
                                 "autoload_known_extensions": "false",
                                 "extension_directory": os.path.join(extensions, "installed")})
    for name in ("httpfs", "avro", "iceberg"):
        path = os.path.join(extensions, f"{name}.duckdb_extension")
        con.execute(f"INSTALL '{path}'")
        con.execute(f"LOAD {name}")
    options = "TYPE iceberg, ENDPOINT '%s', SUPPORT_NESTED_NAMESPACES true" % uri
    if auth.startswith("token="):
        options += ", TOKEN '%s'" % auth[len("token="):]
    elif auth.startswith("credential="):
        client, secret = auth[len("credential="):].split(":", 1)
        options += ", CLIENT_ID '%s', CLIENT_SECRET '%s'" % (client, secret)
    else:
        options += ", AUTHORIZATION_TYPE 'none'"
    con.execute(f"ATTACH '{warehouse}' AS lake ({options})")
    return con


ORDERS = Schema(
    NestedField(1, "id", LongType(), required=False),
    NestedField(2, "region", StringType(), required=False),
    NestedField(3, "ts", TimestampType(), required=False),
    NestedField(4, "amount", DoubleType(), required=False),
)


def orders_batch(start, count, region="eu"):
    import datetime
    return pa.Table.from_pylist(
        [{"id": start + i, "region": region, "ts": datetime.datetime(2026, 1, 1 + i % 28), "amount": float(i)}
         for i in range(count)],
        schema=pa.schema([("id", pa.int64()), ("region", pa.string()), ("ts", pa.timestamp("us")),
                          ("amount", pa.float64())]))


def write():
    cat = catalog()
    expected = {}
    # Nested namespaces, properties, listing with parent.
    cat.create_namespace("sales", {"owner": "ana"})
    cat.create_namespace(("sales", "eu"), {"tier": "gold"})
    cat.create_namespace("ducks")
    cat.create_namespace("archive")
    try:
        cat.create_namespace("sales")
        raise AssertionError("duplicate namespace accepted")
    except NamespaceAlreadyExistsError:
        pass
    check(("sales", "eu") in cat.list_namespaces("sales"), cat.list_namespaces("sales"))
    check({("sales",), ("ducks",), ("archive",)} <= set(cat.list_namespaces()), cat.list_namespaces())
    summary = cat.update_namespace_properties(("sales",), removals={"owner", "nope"}, updates={"team": "core"})
    check(summary.removed == ["owner"] and summary.missing == ["nope"] and summary.updated == ["team"], summary)
    check(cat.load_namespace_properties("sales") == {"team": "core"}, cat.load_namespace_properties("sales"))
    check(cat.namespace_exists(("sales", "eu")) and not cat.namespace_exists("nope"), "namespace_exists")
    try:
        cat.list_namespaces("missing")
        raise AssertionError("listing a missing parent worked")
    except NoSuchNamespaceError:
        pass

    # A partitioned, sorted table; appends; reads back with pyiceberg.
    spec = PartitionSpec(PartitionField(source_id=2, field_id=1000, transform=IdentityTransform(), name="region"))
    order = SortOrder(SortField(source_id=1, transform=IdentityTransform()))
    table = cat.create_table(("sales", "eu", "orders"), ORDERS, partition_spec=spec, sort_order=order,
                             properties={"write.metadata.previous-versions-max": "50"})
    check(table.metadata.default_spec_id == 0 and len(table.spec().fields) == 1, table.spec())
    check(table.sort_order().order_id == 1, table.sort_order())
    check(table.metadata_location.startswith("file://" + warehouse), table.metadata_location)
    table.append(orders_batch(0, 10))
    first_snapshot = table.current_snapshot().snapshot_id
    table.append(orders_batch(10, 5, region="us"))
    table = cat.load_table(("sales", "eu", "orders"))
    check(len(table.scan().to_arrow()) == 15, "15 rows after two appends")
    check(len(table.metadata.snapshot_log) == 2 and len(table.metadata.metadata_log) == 2, table.metadata)
    check(table.metadata.last_sequence_number == 2, table.metadata.last_sequence_number)
    check(cat.table_exists(("sales", "eu", "orders")), "table_exists")
    try:
        cat.create_table(("sales", "eu", "orders"), ORDERS)
        raise AssertionError("duplicate table accepted")
    except TableAlreadyExistsError:
        pass

    # Schema evolution, then time travel to the first snapshot's data and schema.
    with table.update_schema() as update:
        update.add_column("note", StringType())
        update.rename_column("amount", "total")
    table = cat.load_table(("sales", "eu", "orders"))
    with table.update_schema() as update:
        update.delete_column("note")
    table = cat.load_table(("sales", "eu", "orders"))
    check([f.name for f in table.schema().fields] == ["id", "region", "ts", "total"], table.schema())
    check(len(table.metadata.schemas) == 3, table.metadata.schemas)
    old = table.scan(snapshot_id=first_snapshot).to_arrow()
    check(len(old) == 10 and "amount" in old.column_names, old.column_names)
    check(sorted(table.scan().to_arrow().column_names) == ["id", "region", "total", "ts"], "current columns")

    # Table properties.
    with table.transaction() as tx:
        tx.set_properties(owner="ops", retention="7d")
    with table.transaction() as tx:
        tx.remove_properties("retention")
    table = cat.load_table(("sales", "eu", "orders"))
    check(table.properties.get("owner") == "ops" and "retention" not in table.properties, table.properties)

    # DuckDB reads the pyiceberg table, then creates and changes its own (CTAS, INSERT, UPDATE, DELETE on v2).
    con = duck()
    check(con.execute('SELECT count(*) FROM lake."sales.eu".orders').fetchone()[0] == 15, "duckdb count")
    con.execute("CREATE TABLE lake.ducks.items AS SELECT i AS id, 'item ' || i AS name FROM range(100) t(i)")
    con.execute("INSERT INTO lake.ducks.items VALUES (100, 'extra'), (101, 'more')")
    con.execute("UPDATE lake.ducks.items SET name = 'changed' WHERE id < 10")
    con.execute("DELETE FROM lake.ducks.items WHERE id >= 90 AND id < 100")
    check(con.execute("SELECT count(*) FROM lake.ducks.items").fetchone()[0] == 92, "duckdb after DML")
    con.close()
    items = cat.load_table(("ducks", "items"))
    check(items.metadata.format_version == 2, items.metadata.format_version)
    rows = items.scan().to_arrow().to_pylist()
    check(len(rows) == 92, len(rows))
    check(sum(1 for r in rows if r["name"] == "changed") == 10, "updated rows")
    check(not any(90 <= r["id"] < 100 for r in rows), "deleted rows")

    # Concurrent writers: both load, both append; one loses with CommitFailedException and retries (pyiceberg's own
    # retries are off, so the conflict reaches the caller).
    cat.create_table(("sales", "hot"), ORDERS, properties={"commit.retry.num-retries": "0"})
    results = {}
    barrier = threading.Barrier(2)

    def writer(name, start):
        own = catalog()
        mine = own.load_table(("sales", "hot"))
        barrier.wait()
        try:
            mine.append(orders_batch(start, 3))
            results[name] = "first"
        except CommitFailedException:
            mine = own.load_table(("sales", "hot"))
            mine.append(orders_batch(start, 3))
            results[name] = "retried"

    threads = [threading.Thread(target=writer, args=(n, s)) for n, s in (("a", 0), ("b", 100))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check(sorted(results.values()) == ["first", "retried"], results)
    hot = cat.load_table(("sales", "hot"))
    check(len(hot.scan().to_arrow()) == 6, "both appends visible")

    # Rename across namespaces; register an existing metadata file under a new name.
    cat.create_table(("sales", "moving"), ORDERS).append(orders_batch(0, 4))
    cat.rename_table(("sales", "moving"), ("archive", "moved"))
    check(not cat.table_exists(("sales", "moving")), "renamed away")
    moved = cat.load_table(("archive", "moved"))
    check(len(moved.scan().to_arrow()) == 4, "renamed table keeps its data")
    registered = cat.register_table(("archive", "copy"), moved.metadata_location)
    check(len(registered.scan().to_arrow()) == 4, "registered table reads")
    check(sorted(t[1] for t in cat.list_tables("archive")) == ["copy", "moved"], cat.list_tables("archive"))

    # Views share the namespace with tables; list_tables does not list them.
    from pyiceberg.view.metadata import SQLViewRepresentation, ViewVersion
    version = ViewVersion(version_id=1, schema_id=0, timestamp_ms=1700000000000, summary={"engine-name": "duckdb"},
                          representations=[SQLViewRepresentation(type="sql", sql="SELECT id FROM orders",
                                                                 dialect="duckdb")],
                          default_namespace=["sales"])
    view_schema = Schema(NestedField(1, "id", LongType(), required=False))
    cat.create_view(("sales", "ids"), view_schema, version)
    check(cat.view_exists(("sales", "ids")), "view exists")
    check(("sales", "ids") in cat.list_views("sales"), cat.list_views("sales"))
    check(("sales", "ids") not in cat.list_tables("sales"), "views are not tables")
    try:
        cat.create_table(("sales", "ids"), ORDERS)
        raise AssertionError("a table over a view was accepted")
    except TableAlreadyExistsError:
        pass

    # Drop keeps files; purge deletes them.
    dropped = cat.create_table(("archive", "dropme"), ORDERS)
    dropped.append(orders_batch(0, 2))
    kept_file = dropped.metadata_location[len("file://"):]
    cat.drop_table(("archive", "dropme"))
    check(os.path.exists(kept_file), "drop keeps the files")
    # Data files outside <location>/data (write.data.path): only the manifests say where they are.
    purge_location = os.path.join(warehouse, "archive", "purgeme")
    purged = cat.create_table(("archive", "purgeme"), ORDERS,
                              properties={"write.data.path": "file://" + purge_location + "/elsewhere"})
    purged.append(orders_batch(0, 2))
    purged.append(orders_batch(2, 2))
    purged = cat.load_table(("archive", "purgeme"))
    location = purged.location()[len("file://"):]
    check(location == purge_location, location)
    elsewhere = os.listdir(os.path.join(location, "elsewhere"))
    check(len(elsewhere) >= 2, f"data files in write.data.path: {elsewhere}")
    files_before = sum(len(f) for _, _, f in os.walk(location))
    check(files_before >= 8, f"purge table has {files_before} files")
    cat.purge_table(("archive", "purgeme"))
    left = [os.path.join(d, f) for d, _, fs in os.walk(location) for f in fs]
    check(not left, f"purge left {left}")
    try:
        cat.load_table(("archive", "purgeme"))
        raise AssertionError("purged table still loads")
    except NoSuchTableError:
        pass
    try:
        cat.drop_namespace("archive")
        raise AssertionError("dropped a namespace with tables")
    except NamespaceNotEmptyError:
        pass

    expected["orders_metadata"] = cat.load_table(("sales", "eu", "orders")).metadata_location
    expected["first_snapshot"] = first_snapshot
    with open(os.path.join(warehouse, "expected.json"), "w") as f:
        json.dump(expected, f)


def verify():
    with open(os.path.join(warehouse, "expected.json")) as f:
        expected = json.load(f)
    cat = catalog()
    orders = cat.load_table(("sales", "eu", "orders"))
    check(orders.metadata_location == expected["orders_metadata"], "same metadata after restart")
    check(len(orders.scan().to_arrow()) == 15, "orders rows after restart")
    check(len(orders.scan(snapshot_id=expected["first_snapshot"]).to_arrow()) == 10, "time travel after restart")
    check(cat.load_namespace_properties(("sales", "eu")) == {"tier": "gold"}, "namespace properties")
    check(cat.view_exists(("sales", "ids")), "view after restart")
    check(len(cat.load_table(("sales", "hot")).scan().to_arrow()) == 6, "hot after restart")
    con = duck()
    check(con.execute("SELECT count(*) FROM lake.ducks.items").fetchone()[0] == 92, "duckdb after restart")
    con.execute("INSERT INTO lake.ducks.items VALUES (500, 'after restart')")
    check(con.execute("SELECT count(*) FROM lake.ducks.items").fetchone()[0] == 93, "duckdb insert after restart")
    con.close()
    check(len(cat.load_table(("ducks", "items")).scan().to_arrow()) == 93, "pyiceberg sees duckdb's insert")


if phase == "write":
    write()
elif phase == "verify":
    verify()
else:
    raise SystemExit("unknown phase " + phase)
print("ok")
