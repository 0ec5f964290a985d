// clientv3check drives an etcd endpoint with Go's clientv3 (etcd 3.4's, from Debian's golang-etcd-server-dev) and
// prints a transcript: one line per step, with what the server answered. The fields that legitimately differ between
// two servers (cluster and member IDs, Raft term, lease IDs, hashes, the version string, sizes) are printed
// normalized, so the transcripts of Debian's etcd and Strata can be compared line by line
// (Tests/StrataEtcdTests/ClientV3Tests.swift). Steps whose outcome is timing-dependent print what must hold
// ("ttl<=5") rather than the value. Broken invariants print "FAIL" and make the exit status 1.
//
// Built in GOPATH mode against Debian's Go sources: see the Makefile's clientv3check target.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"io/ioutil"
	"math/rand"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/clientv3"
	"go.etcd.io/etcd/clientv3/clientv3util"
	"go.etcd.io/etcd/clientv3/concurrency"
	"go.etcd.io/etcd/clientv3/leasing"
	"go.etcd.io/etcd/clientv3/mirror"
	"go.etcd.io/etcd/clientv3/namespace"
	"go.etcd.io/etcd/clientv3/ordering"
	"go.etcd.io/etcd/etcdserver/api/v3rpc/rpctypes"
	pb "go.etcd.io/etcd/etcdserver/etcdserverpb"
	"go.etcd.io/etcd/mvcc/mvccpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"
)

var (
	failed     = false
	leaseNames = map[clientv3.LeaseID]string{}
	leaseMu    sync.Mutex
)

func out(format string, args ...interface{}) { fmt.Printf(format+"\n", args...) }

func fail(format string, args ...interface{}) {
	failed = true
	fmt.Printf("FAIL "+format+"\n", args...)
}

// lease names lease IDs in order of first appearance: servers choose different IDs.
func lease(id clientv3.LeaseID) string {
	if id == 0 {
		return "0"
	}
	leaseMu.Lock()
	defer leaseMu.Unlock()
	if name, ok := leaseNames[id]; ok {
		return name
	}
	name := fmt.Sprintf("L%d", len(leaseNames)+1)
	leaseNames[id] = name
	return name
}

func kv(k *mvccpb.KeyValue) string {
	if k == nil {
		return "nil"
	}
	value := string(k.Value)
	if len(value) > 24 {
		value = fmt.Sprintf("<%d bytes>", len(value))
	}
	return fmt.Sprintf("%s=%s(c%d m%d v%d %s)", k.Key, value, k.CreateRevision, k.ModRevision, k.Version,
		lease(clientv3.LeaseID(k.Lease)))
}

func kvs(list []*mvccpb.KeyValue) string {
	parts := make([]string, 0, len(list))
	for _, k := range list {
		parts = append(parts, kv(k))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func event(e *clientv3.Event) string {
	text := fmt.Sprintf("%s %s", e.Type, kv(e.Kv))
	if e.PrevKv != nil {
		text += " prev " + kv(e.PrevKv)
	}
	return text
}

var typedErrors = map[error]string{
	rpctypes.ErrEmptyKey: "ErrEmptyKey", rpctypes.ErrKeyNotFound: "ErrKeyNotFound",
	rpctypes.ErrValueProvided: "ErrValueProvided", rpctypes.ErrLeaseProvided: "ErrLeaseProvided",
	rpctypes.ErrTooManyOps: "ErrTooManyOps", rpctypes.ErrDuplicateKey: "ErrDuplicateKey",
	rpctypes.ErrCompacted: "ErrCompacted", rpctypes.ErrFutureRev: "ErrFutureRev", rpctypes.ErrNoSpace: "ErrNoSpace",
	rpctypes.ErrLeaseNotFound: "ErrLeaseNotFound", rpctypes.ErrLeaseExist: "ErrLeaseExist",
	rpctypes.ErrLeaseTTLTooLarge: "ErrLeaseTTLTooLarge", rpctypes.ErrMemberExist: "ErrMemberExist",
	rpctypes.ErrPeerURLExist: "ErrPeerURLExist", rpctypes.ErrMemberNotEnoughStarted: "ErrMemberNotEnoughStarted",
	rpctypes.ErrMemberBadURLs: "ErrMemberBadURLs", rpctypes.ErrMemberNotFound: "ErrMemberNotFound",
	rpctypes.ErrMemberNotLearner: "ErrMemberNotLearner", rpctypes.ErrRequestTooLarge: "ErrRequestTooLarge",
	rpctypes.ErrNotCapable: "ErrNotCapable", rpctypes.ErrAuthNotEnabled: "ErrAuthNotEnabled",
	rpctypes.ErrGRPCNoLeader: "ErrGRPCNoLeader",
}

// errText prints an error as clientv3 hands it to applications: the typed rpctypes error when the server's message
// is one clientv3 recognizes (applications compare with ==), else the gRPC status.
func errText(err error) string {
	if err == nil {
		return "ok"
	}
	if name, ok := typedErrors[err]; ok {
		e := err.(rpctypes.EtcdError)
		return fmt.Sprintf("%s(%s %q)", name, e.Code(), e.Error())
	}
	if s, ok := status.FromError(err); ok {
		return fmt.Sprintf("status(%s %q)", s.Code(), s.Message())
	}
	return fmt.Sprintf("error(%q)", err.Error())
}

func getText(r *clientv3.GetResponse, err error) string {
	if err != nil {
		return errText(err)
	}
	return fmt.Sprintf("rev%d count=%d more=%v %s", r.Header.Revision, r.Count, r.More, kvs(r.Kvs))
}

func ctxT(seconds int) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), time.Duration(seconds)*time.Second)
}

// watchUntil collects watch responses until `events` events arrived (or the channel closed, or the timeout), and
// prints each event on its own line (how many revisions share a response depends on timing: a watcher that is behind
// gets several at once, from etcd as from Strata), and each response without events as a whole.
func watchUntil(name string, ch clientv3.WatchChan, events int, timeout time.Duration) []clientv3.WatchResponse {
	var got []clientv3.WatchResponse
	seen := 0
	deadline := time.After(timeout)
	for seen < events {
		select {
		case r, ok := <-ch:
			if !ok {
				out("%s: channel closed", name)
				return got
			}
			got = append(got, r)
			if len(r.Events) == 0 {
				out("%s: %s", name, watchText(r))
			}
			for _, e := range r.Events {
				out("%s: rev%d {%s}", name, e.Kv.ModRevision, event(e))
			}
			seen += len(r.Events)
		case <-deadline:
			out("%s: timeout after %d of %d events", name, seen, events)
			return got
		}
	}
	return got
}

// watchCreated waits for a watch's created notification (asked for with WithCreatedNotify).
func watchCreated(name string, ch clientv3.WatchChan) {
	select {
	case r, ok := <-ch:
		if !ok {
			out("%s: channel closed", name)
		} else {
			out("%s: %s", name, watchText(r))
		}
	case <-time.After(5 * time.Second):
		out("%s: timeout", name)
	}
}

func watchText(r clientv3.WatchResponse) string {
	parts := []string{fmt.Sprintf("rev%d", r.Header.Revision)}
	if r.Created {
		parts = append(parts, "created")
	}
	if r.IsProgressNotify() {
		parts = append(parts, "progress")
	}
	if r.Canceled {
		parts = append(parts, "canceled")
	}
	if r.CompactRevision != 0 {
		parts = append(parts, fmt.Sprintf("compact%d", r.CompactRevision))
	}
	if err := r.Err(); err != nil {
		parts = append(parts, "err="+errText(err))
	}
	for _, e := range r.Events {
		parts = append(parts, "{"+event(e)+"}")
	}
	return strings.Join(parts, " ")
}

// connect opens a client (its own connection), or exits: every mode needs one.
func connect(endpoint string) *clientv3.Client {
	cli, err := clientv3.New(clientv3.Config{
		Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second, DialOptions: []grpc.DialOption{grpc.WithBlock()},
	})
	if err != nil {
		fmt.Printf("FAIL connect: %v\n", err)
		os.Exit(1)
	}
	return cli
}

func main() {
	endpoint := flag.String("endpoint", "127.0.0.1:2379", "the etcd endpoint (host:port)")
	mode := flag.String("mode", "check", "check: the transcript; writer: see writeUntilStdinCloses")
	flag.Parse()
	if *mode == "writer" {
		writeUntilStdinCloses(*endpoint)
		return
	}
	if *mode == "keepalive" {
		keepAlive(*endpoint)
		return
	}
	if *mode == "watchstorm" || *mode == "watchstorm-compact" {
		watchStorm(*endpoint, *mode == "watchstorm-compact")
		return
	}
	cli := connect(*endpoint)
	defer cli.Close()
	ctx := context.Background()

	kvSteps(ctx, cli)
	txnSteps(ctx, cli)
	watchSteps(ctx, cli)
	leaseSteps(ctx, cli)
	concurrencySteps(ctx, cli)
	wrapperSteps(ctx, cli)
	compactionSteps(ctx, cli)
	maintenanceSteps(ctx, cli, *endpoint)
	clusterSteps(ctx, cli)
	out("done")
	if failed {
		os.Exit(1)
	}
}

func kvSteps(ctx context.Context, cli *clientv3.Client) {
	for i, k := range []string{"kv/b", "kv/a", "kv/c", "kv/d", "kv/a", "kv/e", "kw/x"} {
		r, err := cli.Put(ctx, k, fmt.Sprintf("v%d", i), clientv3.WithPrevKV())
		if err != nil {
			out("kv put %s: %s", k, errText(err))
			continue
		}
		out("kv put %s: rev%d prev=%s", k, r.Header.Revision, kv(r.PrevKv))
	}
	gets := []struct {
		name string
		key  string
		opts []clientv3.OpOption
	}{
		{"one", "kv/a", nil},
		{"missing", "kv/zz", nil},
		{"prefix", "kv/", []clientv3.OpOption{clientv3.WithPrefix()}},
		{"range", "kv/b", []clientv3.OpOption{clientv3.WithRange("kv/d")}},
		{"from-key", "kv/c", []clientv3.OpOption{clientv3.WithFromKey()}},
		{"limit", "kv/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithLimit(2)}},
		{"rev", "kv/a", []clientv3.OpOption{clientv3.WithRev(3)}},
		{"rev-prefix", "kv/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithRev(4)}},
		{"sort-value-desc", "kv/", []clientv3.OpOption{clientv3.WithPrefix(),
			clientv3.WithSort(clientv3.SortByValue, clientv3.SortDescend)}},
		{"sort-create", "kv/", []clientv3.OpOption{clientv3.WithPrefix(),
			clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend)}},
		{"sort-mod-desc-limit", "kv/", []clientv3.OpOption{clientv3.WithPrefix(),
			clientv3.WithSort(clientv3.SortByModRevision, clientv3.SortDescend), clientv3.WithLimit(3)}},
		{"sort-version", "kv/", []clientv3.OpOption{clientv3.WithPrefix(),
			clientv3.WithSort(clientv3.SortByVersion, clientv3.SortDescend)}},
		{"keys-only", "kv/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithKeysOnly()}},
		{"count-only", "kv/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithCountOnly()}},
		{"min-mod", "kv/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithMinModRev(4)}},
		{"max-mod", "kv/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithMaxModRev(4)}},
		{"min-create", "kv/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithMinCreateRev(3)}},
		{"max-create", "kv/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithMaxCreateRev(3)}},
		{"serializable", "kv/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSerializable()}},
		{"first-key", "kv/", clientv3.WithFirstKey()},
		{"last-key", "kv/", clientv3.WithLastKey()},
		{"first-create", "kv/", clientv3.WithFirstCreate()},
		{"last-rev", "kv/", clientv3.WithLastRev()},
		{"all", "\x00", []clientv3.OpOption{clientv3.WithFromKey()}},
		{"future-rev", "kv/a", []clientv3.OpOption{clientv3.WithRev(1000)}},
	}
	for _, g := range gets {
		out("kv get %s: %s", g.name, getText(cli.Get(ctx, g.key, g.opts...)))
	}
	_, err := cli.Put(ctx, "", "x")
	out("kv put empty key: %s", errText(err))
	_, err = cli.Put(ctx, "kv/missing", "", clientv3.WithIgnoreValue())
	out("kv put ignore-value missing key: %s", errText(err))
	r, err := cli.Put(ctx, "kv/a", "", clientv3.WithIgnoreValue(), clientv3.WithPrevKV())
	if err == nil {
		out("kv put ignore-value: rev%d prev=%s", r.Header.Revision, kv(r.PrevKv))
	} else {
		out("kv put ignore-value: %s", errText(err))
	}
	_, err = cli.Put(ctx, "kv/a", "x", clientv3.WithLease(clientv3.LeaseID(424242)))
	out("kv put unknown lease: %s", errText(err))
	_, err = cli.Put(ctx, "kv/a", "y", clientv3.WithIgnoreLease())
	out("kv put ignore-lease: %s", errText(err))
	out("kv get after ignore: %s", getText(cli.Get(ctx, "kv/a")))
	big := strings.Repeat("x", 1600*1024)
	_, err = cli.Put(ctx, "kv/big", big)
	out("kv put 1.6 MiB: %s", errText(err))
	d, err := cli.Delete(ctx, "kv/b", clientv3.WithPrevKV())
	if err == nil {
		out("kv delete one: rev%d deleted=%d prev=%s", d.Header.Revision, d.Deleted, kvs(d.PrevKvs))
	}
	d, err = cli.Delete(ctx, "kv/nothing")
	if err == nil {
		out("kv delete missing: rev%d deleted=%d", d.Header.Revision, d.Deleted)
	}
	d, err = cli.Delete(ctx, "kv/c", clientv3.WithRange("kv/e"), clientv3.WithPrevKV())
	if err == nil {
		out("kv delete range: rev%d deleted=%d prev=%s", d.Header.Revision, d.Deleted, kvs(d.PrevKvs))
	}
	d, err = cli.Delete(ctx, "kw/", clientv3.WithFromKey())
	if err == nil {
		out("kv delete from-key: rev%d deleted=%d", d.Header.Revision, d.Deleted)
	}
	out("kv get after deletes: %s", getText(cli.Get(ctx, "", clientv3.WithFromKey())))
}

func txnText(r *clientv3.TxnResponse, err error) string {
	if err != nil {
		return errText(err)
	}
	parts := []string{fmt.Sprintf("rev%d succeeded=%v", r.Header.Revision, r.Succeeded)}
	for _, op := range r.Responses {
		switch v := op.Response.(type) {
		case *pb.ResponseOp_ResponseRange:
			parts = append(parts, fmt.Sprintf("range(rev%d count=%d %s)", v.ResponseRange.Header.Revision,
				v.ResponseRange.Count, kvs(v.ResponseRange.Kvs)))
		case *pb.ResponseOp_ResponsePut:
			parts = append(parts, fmt.Sprintf("put(rev%d prev=%s)", v.ResponsePut.Header.Revision,
				kv(v.ResponsePut.PrevKv)))
		case *pb.ResponseOp_ResponseDeleteRange:
			parts = append(parts, fmt.Sprintf("delete(rev%d deleted=%d prev=%s)",
				v.ResponseDeleteRange.Header.Revision, v.ResponseDeleteRange.Deleted,
				kvs(v.ResponseDeleteRange.PrevKvs)))
		case *pb.ResponseOp_ResponseTxn:
			parts = append(parts, fmt.Sprintf("txn(rev%d succeeded=%v ops=%d)", v.ResponseTxn.Header.Revision,
				v.ResponseTxn.Succeeded, len(v.ResponseTxn.Responses)))
		}
	}
	return strings.Join(parts, " ")
}

func txnSteps(ctx context.Context, cli *clientv3.Client) {
	cli.Put(ctx, "tx/a", "1")
	cli.Put(ctx, "tx/b", "2")
	cli.Put(ctx, "tx/a", "3")
	get, _ := cli.Get(ctx, "tx/a")
	modRev := get.Kvs[0].ModRevision
	compares := []struct {
		name string
		cmp  clientv3.Cmp
	}{
		{"value=", clientv3.Compare(clientv3.Value("tx/a"), "=", "3")},
		{"value!=", clientv3.Compare(clientv3.Value("tx/a"), "!=", "3")},
		{"value>", clientv3.Compare(clientv3.Value("tx/a"), ">", "2")},
		{"value<", clientv3.Compare(clientv3.Value("tx/a"), "<", "2")},
		{"version=", clientv3.Compare(clientv3.Version("tx/a"), "=", 2)},
		{"version>", clientv3.Compare(clientv3.Version("tx/b"), ">", 1)},
		{"create<", clientv3.Compare(clientv3.CreateRevision("tx/b"), "<", modRev)},
		{"mod=", clientv3.Compare(clientv3.ModRevision("tx/a"), "=", modRev)},
		{"mod!=", clientv3.Compare(clientv3.ModRevision("tx/a"), "!=", modRev)},
		{"lease=", clientv3.Compare(clientv3.LeaseValue("tx/a"), "=", clientv3.NoLease)},
		{"missing version=0", clientv3.Compare(clientv3.Version("tx/none"), "=", 0)},
		{"missing value=", clientv3.Compare(clientv3.Value("tx/none"), "=", "")},
		{"missing create<", clientv3.Compare(clientv3.CreateRevision("tx/none"), "<", 5)},
		{"range value>", clientv3.Compare(clientv3.Value("tx/"), ">", "0").WithPrefix()},
		{"range version=", clientv3.Compare(clientv3.Version("tx/"), "=", 2).WithPrefix()},
		{"range mod<", clientv3.Compare(clientv3.ModRevision("tx/a"), "<", 1000).WithRange("tx/c")},
		{"key exists", clientv3util.KeyExists("tx/b")},
		{"key missing", clientv3util.KeyMissing("tx/b")},
	}
	for _, c := range compares {
		r, err := cli.Txn(ctx).If(c.cmp).Then(clientv3.OpGet("tx/a")).Else(clientv3.OpGet("tx/b")).Commit()
		out("txn %s: %s", c.name, txnText(r, err))
	}
	r, err := cli.Txn(ctx).
		If(clientv3.Compare(clientv3.Value("tx/a"), "=", "3")).
		Then(clientv3.OpPut("tx/c", "x", clientv3.WithPrevKV()), clientv3.OpGet("tx/", clientv3.WithPrefix()),
			clientv3.OpDelete("tx/b", clientv3.WithPrevKV()), clientv3.OpGet("tx/", clientv3.WithPrefix()),
			clientv3.OpTxn([]clientv3.Cmp{clientv3.Compare(clientv3.Version("tx/c"), "=", 1)},
				[]clientv3.Op{clientv3.OpPut("tx/d", "nested"), clientv3.OpGet("tx/d")}, nil)).
		Commit()
	out("txn write branch: %s", txnText(r, err))
	out("txn after: %s", getText(cli.Get(ctx, "tx/", clientv3.WithPrefix())))
	r, err = cli.Txn(ctx).If(clientv3.Compare(clientv3.Value("tx/a"), "=", "nope")).
		Then(clientv3.OpPut("tx/x", "1")).
		Else(clientv3.OpPut("tx/y", "1"), clientv3.OpDelete("tx/d", clientv3.WithPrevKV())).Commit()
	out("txn else writes: %s", txnText(r, err))
	r, err = cli.Txn(ctx).Then(clientv3.OpGet("tx/a")).Commit()
	out("txn read-only: %s", txnText(r, err))
	r, err = cli.Txn(ctx).Then(clientv3.OpPut("tx/a", "1"), clientv3.OpPut("tx/a", "2")).Commit()
	out("txn duplicate put: %s", txnText(r, err))
	r, err = cli.Txn(ctx).Then(clientv3.OpPut("tx/a", "1"), clientv3.OpDelete("tx/", clientv3.WithPrefix())).Commit()
	out("txn put+delete overlap: %s", txnText(r, err))
	r, err = cli.Txn(ctx).Then(clientv3.OpPut("tx/q", "1"),
		clientv3.OpTxn(nil, []clientv3.Op{clientv3.OpPut("tx/q", "2")}, nil)).Commit()
	out("txn duplicate nested put: %s", txnText(r, err))
	r, err = cli.Txn(ctx).Then(clientv3.OpDelete("tx/q"), clientv3.OpDelete("tx/q")).Commit()
	out("txn delete twice: %s", txnText(r, err))
	ops := make([]clientv3.Op, 129)
	for i := range ops {
		ops[i] = clientv3.OpPut(fmt.Sprintf("tx/many/%d", i), "v")
	}
	r, err = cli.Txn(ctx).Then(ops...).Commit()
	out("txn 129 ops: %s", txnText(r, err))
	r, err = cli.Txn(ctx).Then(ops[:128]...).Commit()
	if err == nil {
		out("txn 128 ops: rev%d responses=%d", r.Header.Revision, len(r.Responses))
	} else {
		out("txn 128 ops: %s", errText(err))
	}
	r, err = cli.Txn(ctx).If(clientv3.Compare(clientv3.Value("tx/a"), "=", "3")).
		Then(clientv3.OpPut("tx/a", "4"), clientv3.OpGet("tx/a", clientv3.WithRev(2))).Commit()
	out("txn get at old rev: %s", txnText(r, err))
}

func watchSteps(ctx context.Context, cli *clientv3.Client) {
	base, _ := cli.Get(ctx, "w/")
	start := base.Header.Revision + 1
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	all := cli.Watch(wctx, "w/", clientv3.WithPrefix(), clientv3.WithRev(start), clientv3.WithPrevKV())
	puts := cli.Watch(wctx, "w/", clientv3.WithPrefix(), clientv3.WithFilterDelete(), clientv3.WithCreatedNotify())
	watchCreated("watch puts created", puts)
	cli.Put(ctx, "w/a", "1")
	cli.Put(ctx, "w/b", "2")
	cli.Put(ctx, "w/a", "3")
	cli.Delete(ctx, "w/b")
	cli.Txn(ctx).Then(clientv3.OpPut("w/c", "4"), clientv3.OpPut("w/d", "5"), clientv3.OpDelete("w/a")).Commit()
	watchUntil("watch all", all, 7, 10*time.Second)
	watchUntil("watch puts", puts, 5, 10*time.Second)

	// A second watch on the same context shares the stream; asking for progress reaches every watcher on it.
	progress := cli.Watch(wctx, "w/", clientv3.WithPrefix(), clientv3.WithCreatedNotify())
	watchCreated("watch progress created", progress)
	if err := cli.RequestProgress(wctx); err != nil {
		out("watch request progress: %s", errText(err))
	}
	select {
	case r := <-progress:
		out("watch progress: %s", watchText(r))
	case <-time.After(5 * time.Second):
		out("watch progress: timeout")
	}

	// Fragmented responses: a delete of 12 values of 200 KiB carries 2.4 MiB of previous values in its events.
	value := strings.Repeat("f", 200*1024)
	for i := 0; i < 12; i++ {
		cli.Put(ctx, fmt.Sprintf("frag/%02d", i), value)
	}
	fctx, fcancel := context.WithCancel(ctx)
	defer fcancel()
	fragmented := cli.Watch(fctx, "frag/", clientv3.WithPrefix(), clientv3.WithPrevKV(), clientv3.WithFragment(),
		clientv3.WithCreatedNotify())
	whole := cli.Watch(fctx, "frag/", clientv3.WithPrefix(), clientv3.WithPrevKV(), clientv3.WithCreatedNotify())
	watchCreated("watch fragment created", fragmented)
	watchCreated("watch whole created", whole)
	d, err := cli.Delete(ctx, "frag/", clientv3.WithPrefix())
	if err == nil {
		out("watch fragment delete: rev%d deleted=%d", d.Header.Revision, d.Deleted)
	}
	for _, w := range []struct {
		name string
		ch   clientv3.WatchChan
	}{{"fragmented", fragmented}, {"whole", whole}} {
		select {
		case r := <-w.ch:
			withPrev := 0
			for _, e := range r.Events {
				if e.PrevKv != nil && len(e.PrevKv.Value) == len(value) {
					withPrev++
				}
			}
			out("watch %s: rev%d events=%d with-prev=%d err=%s", w.name, r.Header.Revision, len(r.Events), withPrev,
				errText(r.Err()))
		case <-time.After(10 * time.Second):
			out("watch %s: timeout", w.name)
		}
	}
	fcancel()

	// Watching from a compacted revision ends the watch with the compaction revision.
	cli.Put(ctx, "wc/a", "1")
	r, _ := cli.Put(ctx, "wc/a", "2")
	cli.Put(ctx, "wc/a", "3")
	if _, err := cli.Compact(ctx, r.Header.Revision); err != nil {
		out("watch compact: %s", errText(err))
	}
	compacted := cli.Watch(ctx, "wc/a", clientv3.WithRev(r.Header.Revision-1))
	watchUntil("watch compacted", compacted, 1, 5*time.Second)
	fromCompact := cli.Watch(ctx, "wc/a", clientv3.WithRev(r.Header.Revision))
	watchUntil("watch from compaction rev", fromCompact, 2, 5*time.Second)

	cancel()
	closed := true
	deadline := time.After(5 * time.Second)
	for _, ch := range []clientv3.WatchChan{all, puts, progress} {
	drain:
		for {
			select {
			case _, ok := <-ch:
				if !ok {
					break drain
				}
			case <-deadline:
				closed = false
				break drain
			}
		}
	}
	out("watch cancel closes channels: %v", closed)
}

func leaseSteps(ctx context.Context, cli *clientv3.Client) {
	g, err := cli.Grant(ctx, 30)
	if err != nil {
		fail("lease grant: %s", errText(err))
		return
	}
	out("lease grant 30: %s ttl=%d", lease(g.ID), g.TTL)
	short, err := cli.Grant(ctx, 1)
	if err == nil {
		out("lease grant 1: %s ttl=%d", lease(short.ID), short.TTL)
	}
	_, err = cli.Grant(ctx, 9_000_000_001)
	out("lease grant too large: %s", errText(err))
	for _, k := range []string{"ls/a", "ls/b"} {
		r, err := cli.Put(ctx, k, "v", clientv3.WithLease(g.ID))
		if err == nil {
			out("lease put %s: rev%d", k, r.Header.Revision)
		}
	}
	r, err := cli.Put(ctx, "ls/a", "w", clientv3.WithIgnoreLease())
	if err == nil {
		out("lease put ignore-lease: rev%d", r.Header.Revision)
	}
	out("lease get: %s", getText(cli.Get(ctx, "ls/", clientv3.WithPrefix())))
	t, err := cli.TimeToLive(ctx, g.ID, clientv3.WithAttachedKeys())
	if err == nil {
		keys := []string{}
		for _, k := range t.Keys {
			keys = append(keys, string(k))
		}
		sort.Strings(keys)
		out("lease ttl: %s granted=%d remaining<=30:%v keys=%v", lease(t.ID), t.GrantedTTL, t.TTL <= 30 && t.TTL >= 25,
			keys)
	}
	k, err := cli.KeepAliveOnce(ctx, g.ID)
	if err == nil {
		out("lease keepalive once: %s ttl=%d", lease(k.ID), k.TTL)
	}
	kctx, kcancel := context.WithCancel(ctx)
	ch, err := cli.KeepAlive(kctx, g.ID)
	if err == nil {
		select {
		case k := <-ch:
			if k != nil {
				out("lease keepalive stream: %s ttl=%d", lease(k.ID), k.TTL)
			} else {
				out("lease keepalive stream: closed")
			}
		case <-time.After(5 * time.Second):
			out("lease keepalive stream: timeout")
		}
	}
	kcancel()
	leases, err := cli.Leases(ctx)
	if err == nil {
		names := []string{}
		for _, l := range leases.Leases {
			names = append(names, lease(l.ID))
		}
		sort.Strings(names)
		out("lease list: %v", names)
	}
	rv, err := cli.Revoke(ctx, g.ID)
	if err == nil {
		out("lease revoke: rev%d", rv.Header.Revision)
	}
	out("lease get after revoke: %s", getText(cli.Get(ctx, "ls/", clientv3.WithPrefix())))
	t, err = cli.TimeToLive(ctx, g.ID)
	if err == nil {
		out("lease ttl revoked: ttl=%d granted=%d", t.TTL, t.GrantedTTL)
	} else {
		out("lease ttl revoked: %s", errText(err))
	}
	_, err = cli.KeepAliveOnce(ctx, g.ID)
	out("lease keepalive revoked: %s", errText(err))
	_, err = cli.Revoke(ctx, g.ID)
	out("lease revoke again: %s", errText(err))

	// A lease with a chosen ID, through the generated client (clientv3's Grant always lets the server choose).
	raw := pb.NewLeaseClient(cli.ActiveConnection())
	chosen, err := raw.LeaseGrant(ctx, &pb.LeaseGrantRequest{TTL: 20, ID: 7777})
	if err == nil {
		out("lease grant id 7777: id=%d ttl=%d", chosen.ID, chosen.TTL)
	}
	_, err = raw.LeaseGrant(ctx, &pb.LeaseGrantRequest{TTL: 20, ID: 7777})
	out("lease grant id 7777 again: %s", errText(rpctypes.Error(err)))
	cli.Revoke(ctx, 7777)

	// Expiry: the server deletes the lease's keys in one revision, with DELETE events carrying the previous values.
	expiring, err := cli.Grant(ctx, 2)
	if err != nil {
		fail("lease grant 2: %s", errText(err))
		return
	}
	cli.Put(ctx, "lx/a", "1", clientv3.WithLease(expiring.ID))
	put, _ := cli.Put(ctx, "lx/b", "2", clientv3.WithLease(expiring.ID))
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := cli.Watch(wctx, "lx/", clientv3.WithPrefix(), clientv3.WithPrevKV(), clientv3.WithRev(put.Header.Revision+1))
	got := watchUntil("lease expiry", w, 2, 15*time.Second)
	var expired []*clientv3.Event
	for _, r := range got {
		expired = append(expired, r.Events...)
	}
	if len(expired) == 2 && expired[0].Kv.ModRevision == expired[1].Kv.ModRevision {
		out("lease expiry: one revision")
	}
	out("lease get after expiry: %s", getText(cli.Get(ctx, "lx/", clientv3.WithPrefix())))
	_, err = cli.KeepAliveOnce(ctx, expiring.ID)
	out("lease keepalive expired: %s", errText(err))
	cli.Revoke(ctx, short.ID)
}

func concurrencySteps(ctx context.Context, cli *clientv3.Client) {
	// A mutex: 4 sessions increment one counter 10 times each under the lock; nothing is lost.
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := concurrency.NewSession(cli, concurrency.WithTTL(10))
			if err != nil {
				errs <- err
				return
			}
			defer s.Close()
			m := concurrency.NewMutex(s, "cc/lock/")
			for j := 0; j < 10; j++ {
				if err := m.Lock(ctx); err != nil {
					errs <- err
					return
				}
				g, _ := cli.Get(ctx, "cc/counter")
				n := 0
				if len(g.Kvs) == 1 {
					fmt.Sscanf(string(g.Kvs[0].Value), "%d", &n)
				}
				cli.Put(ctx, "cc/counter", fmt.Sprint(n+1))
				if err := m.Unlock(ctx); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		fail("mutex: %v", err)
	}
	g, _ := cli.Get(ctx, "cc/counter")
	out("mutex counter: %s", string(g.Kvs[0].Value))
	if string(g.Kvs[0].Value) != "40" {
		fail("mutex lost updates")
	}
	locks, _ := cli.Get(ctx, "cc/lock/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	out("mutex lock keys left: %d", locks.Count)

	// An election: the first campaigner leads, an observer sees the proclamation, resigning hands over.
	s1, err := concurrency.NewSession(cli, concurrency.WithTTL(10))
	if err != nil {
		fail("session: %v", err)
		return
	}
	s2, _ := concurrency.NewSession(cli, concurrency.WithTTL(10))
	e1 := concurrency.NewElection(s1, "cc/election/")
	e2 := concurrency.NewElection(s2, "cc/election/")
	if err := e1.Campaign(ctx, "one"); err != nil {
		fail("campaign: %v", err)
	}
	second := make(chan error, 1)
	go func() { second <- e2.Campaign(ctx, "two") }()
	octx, ocancel := context.WithCancel(ctx)
	observed := e1.Observe(octx)
	first := <-observed
	out("election observe: %s", string(first.Kvs[0].Value))
	e1.Proclaim(ctx, "one-again")
	for r := range observed {
		if string(r.Kvs[0].Value) == "one-again" {
			out("election observe proclaim: %s", string(r.Kvs[0].Value))
			break
		}
	}
	select {
	case <-second:
		fail("second campaigner won while the first leads")
	case <-time.After(300 * time.Millisecond):
		out("election second waits: true")
	}
	e1.Resign(ctx)
	select {
	case err := <-second:
		out("election second after resign: %s", errText(err))
	case <-time.After(10 * time.Second):
		fail("second campaigner never won")
	}
	l, err := e2.Leader(ctx)
	if err == nil {
		out("election leader: %s", string(l.Kvs[0].Value))
	}
	ocancel()
	s1.Close()
	s2.Close()

	// STM transfers between accounts from 4 goroutines at every isolation level: the total is conserved.
	for _, iso := range []struct {
		name  string
		level concurrency.Isolation
	}{{"serializable-snapshot", concurrency.SerializableSnapshot}, {"serializable", concurrency.Serializable},
		{"repeatable-reads", concurrency.RepeatableReads}} {
		prefix := "cc/stm/" + iso.name + "/"
		for i := 0; i < 4; i++ {
			cli.Put(ctx, fmt.Sprintf("%s%d", prefix, i), "100")
		}
		var wg sync.WaitGroup
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for j := 0; j < 10; j++ {
					from, to := fmt.Sprintf("%s%d", prefix, (w+j)%4), fmt.Sprintf("%s%d", prefix, (w+j+1)%4)
					_, err := concurrency.NewSTM(cli, func(s concurrency.STM) error {
						var a, b int
						fmt.Sscanf(s.Get(from), "%d", &a)
						fmt.Sscanf(s.Get(to), "%d", &b)
						s.Put(from, fmt.Sprint(a-j-1))
						s.Put(to, fmt.Sprint(b+j+1))
						return nil
					}, concurrency.WithIsolation(iso.level))
					if err != nil {
						fail("stm %s: %v", iso.name, err)
					}
				}
			}(w)
		}
		wg.Wait()
		all, _ := cli.Get(ctx, prefix, clientv3.WithPrefix())
		total := 0
		for _, k := range all.Kvs {
			n := 0
			fmt.Sscanf(string(k.Value), "%d", &n)
			total += n
		}
		out("stm %s total: %d", iso.name, total)
		if total != 400 {
			fail("stm %s lost money", iso.name)
		}
	}
}

func wrapperSteps(ctx context.Context, cli *clientv3.Client) {
	// namespace: the client prefixes keys and strips the prefix from answers.
	ns := namespace.NewKV(cli.KV, "ns1/")
	ns.Put(ctx, "a", "1")
	ns.Put(ctx, "b", "2")
	r, err := ns.Get(ctx, "", clientv3.WithFromKey())
	out("namespace get from empty key: %s", getText(r, err))
	r, err = ns.Get(ctx, "a", clientv3.WithFromKey())
	out("namespace get from a: %s", getText(r, err))
	r, err = cli.Get(ctx, "ns1/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	out("namespace raw keys: %s", getText(r, err))
	nsw := namespace.NewWatcher(cli.Watcher, "ns1/")
	wctx, cancel := context.WithCancel(ctx)
	w := nsw.Watch(wctx, "a", clientv3.WithPrevKV())
	time.Sleep(200 * time.Millisecond)
	ns.Delete(ctx, "a")
	watchUntil("namespace watch", w, 1, 5*time.Second)
	cancel()

	// ordering: a KV that checks revisions never go backwards.
	ordered := ordering.NewKV(cli.KV, ordering.NewOrderViolationSwitchEndpointClosure(cli))
	for i := 0; i < 3; i++ {
		ordered.Put(ctx, "ord/k", fmt.Sprint(i))
		g, err := ordered.Get(ctx, "ord/k")
		out("ordering get %d: %s", i, getText(g, err))
	}

	// leasing: a client-side cache kept coherent with leases, watches and txns.
	lkv, closeLeasing, err := leasing.NewKV(cli, "leasing-prefix/")
	if err != nil {
		fail("leasing: %v", err)
		return
	}
	lkv.Put(ctx, "lk/a", "1")
	g1, _ := lkv.Get(ctx, "lk/a")
	g2, _ := lkv.Get(ctx, "lk/a")
	out("leasing get twice: %s %s", string(g1.Kvs[0].Value), string(g2.Kvs[0].Value))
	owners, _ := cli.Get(ctx, "leasing-prefix/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	out("leasing owner keys: %d", owners.Count)
	// A second leasing client writes: it revokes the first's lease on the key (a txn on the owner key, then a wait
	// for its deletion), so the first must not serve its cached copy afterwards.
	other, closeOther, err := leasing.NewKV(cli, "leasing-prefix/")
	if err != nil {
		fail("leasing: %v", err)
		return
	}
	pctx, pcancel := ctxT(10)
	_, err = other.Put(pctx, "lk/a", "2")
	pcancel()
	out("leasing other client put: %s", errText(err))
	g4, err := lkv.Get(ctx, "lk/a")
	if err == nil && len(g4.Kvs) == 1 {
		out("leasing sees other write: %s", string(g4.Kvs[0].Value))
	}
	closeOther()
	tr, err := lkv.Txn(ctx).If(clientv3.Compare(clientv3.Value("lk/a"), "=", "2")).
		Then(clientv3.OpPut("lk/a", "3")).Commit()
	if err == nil {
		out("leasing txn: succeeded=%v", tr.Succeeded)
	} else {
		out("leasing txn: %s", errText(err))
	}
	lkv.Delete(ctx, "lk/a")
	g3, _ := cli.Get(ctx, "lk/a")
	out("leasing delete: count=%d", g3.Count)
	closeLeasing()

	// mirror: a base copy at one revision, then the updates after it.
	for i := 0; i < 5; i++ {
		cli.Put(ctx, fmt.Sprintf("mir/%d", i), fmt.Sprint(i))
	}
	syncer := mirror.NewSyncer(cli, "mir/", 0)
	copied := 0
	gets, errc := syncer.SyncBase(ctx)
	for g := range gets {
		copied += len(g.Kvs)
	}
	if err := <-errc; err != nil {
		out("mirror base: %s", errText(err))
	}
	out("mirror base: %d keys", copied)
	mctx, mcancel := context.WithCancel(ctx)
	updates := syncer.SyncUpdates(mctx)
	cli.Put(ctx, "mir/new", "x")
	cli.Delete(ctx, "mir/0")
	watchUntil("mirror updates", updates, 2, 5*time.Second)
	mcancel()
}

func compactionSteps(ctx context.Context, cli *clientv3.Client) {
	// kube-apiserver's compaction: a version CAS on compact_rev_key, then Compact.
	key := "compact_rev_key"
	r, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.Version(key), "=", 0)).
		Then(clientv3.OpPut(key, "x")).Else(clientv3.OpGet(key)).Commit()
	out("compaction cas: %s", txnText(r, err))
	cli.Put(ctx, "cp/a", "1")
	p, _ := cli.Put(ctx, "cp/a", "2")
	cli.Put(ctx, "cp/a", "3")
	c, err := cli.Compact(ctx, p.Header.Revision, clientv3.WithCompactPhysical())
	if err == nil {
		out("compaction physical: rev%d", c.Header.Revision)
	} else {
		out("compaction physical: %s", errText(err))
	}
	out("compaction get below: %s", getText(cli.Get(ctx, "cp/a", clientv3.WithRev(p.Header.Revision-1))))
	out("compaction get at: %s", getText(cli.Get(ctx, "cp/a", clientv3.WithRev(p.Header.Revision))))
	_, err = cli.Compact(ctx, p.Header.Revision-1)
	out("compaction again lower: %s", errText(err))
	_, err = cli.Compact(ctx, 1_000_000)
	out("compaction future: %s", errText(err))
	_, err = cli.Txn(ctx).Then(clientv3.OpGet("cp/a", clientv3.WithRev(2))).Commit()
	out("compaction txn read below: %s", errText(err))
}

func maintenanceSteps(ctx context.Context, cli *clientv3.Client, endpoint string) {
	s, err := cli.Status(ctx, endpoint)
	if err != nil {
		fail("status: %s", errText(err))
		return
	}
	out("status: leader-is-self=%v db>0=%v in-use<=db=%v applied<=index=%v learner=%v errors=%v",
		s.Leader == s.Header.MemberId, s.DbSize > 0, s.DbSizeInUse <= s.DbSize && s.DbSizeInUse > 0,
		s.RaftAppliedIndex <= s.RaftIndex && s.RaftAppliedIndex > 0, s.IsLearner, s.Errors)
	if !strings.HasPrefix(s.Version, "3.") {
		fail("status version %q", s.Version)
	}
	s2, _ := cli.Status(ctx, endpoint)
	out("status index monotonic: %v", s2.RaftIndex >= s.RaftIndex)
	a, err := cli.AlarmList(ctx)
	if err == nil {
		out("alarm list: %d", len(a.Alarms))
	}
	_, err = cli.Defragment(ctx, endpoint)
	out("defragment: %s", errText(err))
	h1, err1 := cli.HashKV(ctx, endpoint, 0)
	h2, err2 := cli.HashKV(ctx, endpoint, 0)
	if err1 == nil && err2 == nil {
		out("hashkv: compact=%d stable=%v", h1.CompactRevision, h1.Hash == h2.Hash)
	} else {
		out("hashkv: %s %s", errText(err1), errText(err2))
	}
	rc, err := cli.Snapshot(ctx)
	if err == nil {
		data, err := ioutil.ReadAll(rc)
		rc.Close()
		if err != nil || len(data) < sha256.Size {
			fail("snapshot read: %v (%d bytes)", err, len(data))
		} else {
			sum := sha256.Sum256(data[:len(data)-sha256.Size])
			out("snapshot: sha256 trailer ok=%v", bytes.Equal(sum[:], data[len(data)-sha256.Size:]))
		}
	} else {
		out("snapshot: %s", errText(err))
	}
	_, err = cli.MoveLeader(ctx, 12345)
	out("move leader: %s", errText(err))
}

func clusterSteps(ctx context.Context, cli *clientv3.Client) {
	m, err := cli.MemberList(ctx)
	if err != nil {
		fail("member list: %s", errText(err))
		return
	}
	self := m.Members[0].ID
	out("member list: members=%d is-self=%v learner=%v peer-urls=%d client-urls=%d", len(m.Members),
		self == m.Header.MemberId, m.Members[0].IsLearner, len(m.Members[0].PeerURLs), len(m.Members[0].ClientURLs))
	_, err = cli.MemberRemove(ctx, 12345)
	out("member remove other: %s", errText(err))
	_, err = cli.MemberPromote(ctx, self)
	out("member promote self: %s", errText(err))
	_, err = cli.MemberRemove(ctx, self)
	out("member remove self: %s", errText(err))
	// Last: a one-member etcd accepts a second member (its documented way to restore a cluster) and has no quorum
	// until that member starts; Strata cannot start one and refuses.
	_, err = cli.MemberAdd(ctx, []string{"http://127.0.0.1:1"})
	out("member add: %s", errText(err))
}

// writeUntilStdinCloses is the client half of the kill -9 test (ClientV3Tests.survivesKillNine): 4 goroutines put
// new keys under "crash/" one after another and print "ack KEY REVISION" for each acknowledged put, while a watcher
// from revision 1 prints "event KEY REVISION" for each event it receives. The test kills and restarts the server in
// between: failed puts print "err" and go on with the next key, and clientv3 resumes the watch where it stopped.
// When stdin closes, the writers stop and the watcher is given time to deliver every acknowledged revision; then
// "stopped".
func writeUntilStdinCloses(endpoint string) {
	cli := connect(endpoint)
	defer cli.Close()
	var printMu sync.Mutex
	print := func(format string, args ...interface{}) {
		printMu.Lock()
		fmt.Printf(format+"\n", args...)
		printMu.Unlock()
	}
	var lastAck, lastEvent int64
	var revMu sync.Mutex
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// A session (a lease kept alive by clientv3) must outlive the restarts: leases persist, and each gets its full
	// TTL again when the server comes back.
	session, err := concurrency.NewSession(cli, concurrency.WithTTL(10))
	if err != nil {
		fmt.Printf("FAIL session: %v\n", err)
		os.Exit(1)
	}
	cli.Put(ctx, "crash-session-key", "held", clientv3.WithLease(session.Lease()))
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		for r := range cli.Watch(ctx, "crash/", clientv3.WithPrefix(), clientv3.WithRev(1)) {
			if err := r.Err(); err != nil {
				print("watch-error %s", errText(err))
				continue
			}
			for _, e := range r.Events {
				print("event %s %d %s", e.Kv.Key, e.Kv.ModRevision, e.Type)
				revMu.Lock()
				lastEvent = e.Kv.ModRevision
				revMu.Unlock()
			}
		}
	}()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("crash/%d/%07d", w, i)
				pctx, pcancel := context.WithTimeout(ctx, 3*time.Second)
				r, err := cli.Put(pctx, key, "v")
				pcancel()
				if err != nil {
					print("err %s %s", key, errText(err))
					time.Sleep(20 * time.Millisecond)
					continue
				}
				print("ack %s %d", key, r.Header.Revision)
				revMu.Lock()
				if r.Header.Revision > lastAck {
					lastAck = r.Header.Revision
				}
				revMu.Unlock()
			}
		}(w)
	}
	ioutil.ReadAll(os.Stdin)
	close(stop)
	wg.Wait()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		revMu.Lock()
		caughtUp := lastEvent >= lastAck
		revMu.Unlock()
		if caughtUp {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case <-session.Done():
		print("session ended")
	default:
		t, err := cli.TimeToLive(ctx, session.Lease(), clientv3.WithAttachedKeys())
		if err != nil {
			print("session ttl %s", errText(err))
		} else {
			print("session alive ttl>0=%v keys=%d", t.TTL > 0, len(t.Keys))
		}
	}
	print("stopped")
}

// watchStorm checks watch delivery under concurrent load, as a busy kube-apiserver sees it: 4 writers put 3,000
// keys in all while 48 watchers start at random moments, on 3 connections, on the whole prefix or one writer's part of
// it, from a random revision between 1 and the next one (history replay, or live), some with prev_kv. Each watcher
// must see exactly the acknowledged puts of its range from its start revision on: in order, none missing, none twice.
// With `compacting`, a compactor meanwhile compacts (every other time physically) to 300 revisions behind the
// newest every 50 ms: a watcher may then end with ErrCompacted instead, after exactly a prefix of its events.
// Prints "watchstorm ok ..." or FAIL lines. Needs a server with no data yet.
func watchStorm(endpoint string, compacting bool) {
	clients := []*clientv3.Client{connect(endpoint), connect(endpoint), connect(endpoint)}
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	type ack struct {
		key string
		rev int64
	}
	var mu sync.Mutex
	var acks []ack
	var current int64 = 1
	var writers sync.WaitGroup
	for w := 0; w < 4; w++ {
		writers.Add(1)
		go func(w int) {
			defer writers.Done()
			for i := 0; i < 750; i++ {
				key := fmt.Sprintf("ws/%d/%04d", w, i%500) // a third of the puts overwrite
				r, err := clients[w%len(clients)].Put(ctx, key, fmt.Sprint(i))
				if err != nil {
					fail("watchstorm put %s: %s", key, errText(err))
					return
				}
				mu.Lock()
				acks = append(acks, ack{key, r.Header.Revision})
				if r.Header.Revision > current {
					current = r.Header.Revision
				}
				mu.Unlock()
			}
		}(w)
	}

	// The compactor stops with the writers; it reports how many compactions it made.
	compactorDone := make(chan int, 1)
	writersDone := make(chan struct{})
	go func() { writers.Wait(); close(writersDone) }()
	go func() {
		made := 0
		var last int64
		for compacting {
			stop := false
			select {
			case <-writersDone:
				stop = true // one last compaction, so there is at least one
			case <-time.After(50 * time.Millisecond):
			}
			mu.Lock()
			target := current - 300
			mu.Unlock()
			if target <= last {
				if stop {
					break
				}
				continue
			}
			var opts []clientv3.CompactOption
			if made%2 == 1 {
				opts = append(opts, clientv3.WithCompactPhysical())
			}
			if _, err := clients[0].Compact(ctx, target, opts...); err != nil {
				fail("watchstorm compact %d: %s", target, errText(err))
			}
			last = target
			made++
			if stop {
				break
			}
		}
		compactorDone <- made
	}()

	type watcher struct {
		prefix string
		start  int64
		prevKV bool
		events []*clientv3.Event
		target int64 // set before `finished` closes: the last revision this watcher must see
		// compacted is the compaction revision the watch ended with (compacting runs only)
		compacted int64
	}
	var watchers []*watcher
	finished := make(chan struct{})
	rng := rand.New(rand.NewSource(7))
	var watchersWG sync.WaitGroup
	for n := 0; n < 48; n++ {
		time.Sleep(time.Duration(rng.Intn(15)) * time.Millisecond)
		mu.Lock()
		now := current
		mu.Unlock()
		w := &watcher{prefix: "ws/", start: 1 + rng.Int63n(now+1), prevKV: rng.Intn(2) == 0}
		if rng.Intn(2) == 0 {
			w.prefix = fmt.Sprintf("ws/%d/", rng.Intn(4))
		}
		opts := []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithRev(w.start)}
		if w.prevKV {
			opts = append(opts, clientv3.WithPrevKV())
		}
		ch := clients[n%len(clients)].Watch(ctx, w.prefix, opts...)
		watchers = append(watchers, w)
		watchersWG.Add(1)
		go func() {
			defer watchersWG.Done()
			over := false
			for {
				if !over {
					select {
					case <-finished:
						over = true
					default:
					}
				}
				var last int64
				if len(w.events) > 0 {
					last = w.events[len(w.events)-1].Kv.ModRevision
				}
				if over && last >= w.target {
					return
				}
				select {
				case r, ok := <-ch:
					if !ok {
						return
					}
					if err := r.Err(); err != nil {
						if compacting && err == rpctypes.ErrCompacted && r.CompactRevision > 0 {
							w.compacted = r.CompactRevision
						} else {
							fail("watchstorm watch %s from %d: %s", w.prefix, w.start, errText(err))
						}
						return
					}
					w.events = append(w.events, r.Events...)
				case <-time.After(100 * time.Millisecond):
				}
			}
		}()
	}
	writers.Wait()
	compactions := <-compactorDone
	for _, w := range watchers {
		for _, a := range acks {
			if a.rev >= w.start && strings.HasPrefix(a.key, w.prefix) && a.rev > w.target {
				w.target = a.rev
			}
		}
	}
	close(finished) // every watcher stops once it has seen the last revision of its range
	waitDone := make(chan struct{})
	go func() { watchersWG.Wait(); close(waitDone) }()
	select {
	case <-waitDone:
	case <-time.After(30 * time.Second):
		fail("watchstorm: watchers did not finish")
	}

	sort.Slice(acks, func(i, j int) bool { return acks[i].rev < acks[j].rev })
	events, compactedWatchers := 0, 0
	for _, w := range watchers {
		var want []ack
		for _, a := range acks {
			if a.rev >= w.start && strings.HasPrefix(a.key, w.prefix) {
				want = append(want, a)
			}
		}
		if w.compacted > 0 {
			compactedWatchers++
			if len(w.events) > len(want) {
				fail("watchstorm watch %s from %d: %d events before compaction, want at most %d", w.prefix, w.start,
					len(w.events), len(want))
				continue
			}
			want = want[:len(w.events)]
		}
		if len(w.events) != len(want) {
			fail("watchstorm watch %s from %d: %d events, want %d", w.prefix, w.start, len(w.events), len(want))
			continue
		}
		for i, e := range w.events {
			if string(e.Kv.Key) != want[i].key || e.Kv.ModRevision != want[i].rev || e.Type != clientv3.EventTypePut {
				fail("watchstorm watch %s from %d: event %d is %s, want %s@%d", w.prefix, w.start, i, event(e),
					want[i].key, want[i].rev)
				break
			}
			// etcd leaves prev_kv out when the revision before the event is compacted.
			if e.Kv.Version > 1 && w.prevKV != (e.PrevKv != nil) && !compacting {
				fail("watchstorm watch %s: prev_kv %v on %s", w.prefix, e.PrevKv != nil, event(e))
				break
			}
		}
		events += len(w.events)
	}
	if compacting {
		// After the last compaction, a watch from revision 1 ends at once with that compaction revision.
		status, _ := clients[0].Status(ctx, endpoint)
		var r clientv3.WatchResponse
		select {
		case r = <-clients[1].Watch(ctx, "ws/", clientv3.WithPrefix(), clientv3.WithRev(1)):
		case <-time.After(10 * time.Second):
		}
		if compactions == 0 || r.Err() != rpctypes.ErrCompacted || r.CompactRevision == 0 ||
			(status != nil && r.CompactRevision > status.Header.Revision) {
			fail("watchstorm: after %d compactions a watch from revision 1 got %s", compactions, watchText(r))
		}
	}
	if !failed {
		out("watchstorm ok: %d puts, %d watchers, %d events, %d compactions, %d watchers compacted", len(acks),
			len(watchers), events, compactions, compactedWatchers)
	}
	os.Exit(map[bool]int{false: 0, true: 1}[failed])
}

// keepAlive holds an idle connection with an open watch for 25 s while grpc-go pings every 10 s (its minimum; etcd lets
// clients ping every 5 s, kube-apiserver pings every 30 s), also without active calls: the connection must stay READY
// throughout (a GOAWAY for too many pings would drop it) and the watch must still deliver afterwards.
func keepAlive(endpoint string) {
	cli, err := clientv3.New(clientv3.Config{
		Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second, DialOptions: []grpc.DialOption{grpc.WithBlock()},
		DialKeepAliveTime: 10 * time.Second, DialKeepAliveTimeout: 5 * time.Second, PermitWithoutStream: true,
	})
	if err != nil {
		fmt.Printf("FAIL connect: %v\n", err)
		os.Exit(1)
	}
	defer cli.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := cli.Watch(ctx, "ka/", clientv3.WithPrefix(), clientv3.WithCreatedNotify())
	watchCreated("keepalive watch", w)
	conn := cli.ActiveConnection()
	out("keepalive state before: %s", conn.GetState())
	changes := 0
	idle, idleCancel := context.WithTimeout(ctx, 25*time.Second)
	defer idleCancel()
	for state := conn.GetState(); ; {
		if !conn.WaitForStateChange(idle, state) {
			break // the idle time is over
		}
		state = conn.GetState()
		changes++
		out("keepalive state changed to %s", state)
	}
	out("keepalive state after 25 s idle: %s, %d changes", conn.GetState(), changes)
	if changes > 0 || conn.GetState() != connectivity.Ready {
		fail("keepalive: the connection did not stay ready")
	}
	r, err := cli.Put(ctx, "ka/after", "v")
	if err != nil {
		fail("keepalive put: %s", errText(err))
		return
	}
	got := watchUntil("keepalive watch", w, 1, 10*time.Second)
	if len(got) != 1 || len(got[0].Events) != 1 || got[0].Events[0].Kv.ModRevision != r.Header.Revision {
		fail("keepalive: the watch did not deliver the put after the idle time")
	}
	out("keepalive ok")
}
