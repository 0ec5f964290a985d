// Command nulletcd answers etcd's KV and Maintenance RPCs without storing anything: a put costs only gRPC. It exists
// to measure the load generator, not a server: `etcdctl check perf` against it shows the most writes/s its
// rate limiter and 500 clients produce on this machine (docs/benchmarks.md).
//
//	make nulletcd && .build/nulletcd -listen 127.0.0.1:23999
//	ETCDCTL_API=3 etcdctl --endpoints 127.0.0.1:23999 check perf --load=l
package main

import (
	"context"
	"flag"
	"log"
	"net"
	"sync/atomic"

	pb "go.etcd.io/etcd/etcdserver/etcdserverpb"
	"google.golang.org/grpc"
)

type server struct{ revision int64 }

func (s *server) header() *pb.ResponseHeader {
	return &pb.ResponseHeader{ClusterId: 1, MemberId: 1, Revision: atomic.LoadInt64(&s.revision), RaftTerm: 1}
}

func (s *server) write() *pb.ResponseHeader {
	atomic.AddInt64(&s.revision, 1)
	return s.header()
}

func (s *server) Range(context.Context, *pb.RangeRequest) (*pb.RangeResponse, error) {
	return &pb.RangeResponse{Header: s.header()}, nil
}

func (s *server) Put(context.Context, *pb.PutRequest) (*pb.PutResponse, error) {
	return &pb.PutResponse{Header: s.write()}, nil
}

func (s *server) DeleteRange(context.Context, *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	return &pb.DeleteRangeResponse{Header: s.write()}, nil
}

func (s *server) Txn(context.Context, *pb.TxnRequest) (*pb.TxnResponse, error) {
	return &pb.TxnResponse{Header: s.write(), Succeeded: true}, nil
}

func (s *server) Compact(context.Context, *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	return &pb.CompactionResponse{Header: s.header()}, nil
}

func (s *server) Alarm(context.Context, *pb.AlarmRequest) (*pb.AlarmResponse, error) {
	return &pb.AlarmResponse{Header: s.header()}, nil
}

func (s *server) Status(context.Context, *pb.StatusRequest) (*pb.StatusResponse, error) {
	return &pb.StatusResponse{Header: s.header(), Version: "3.4.23", Leader: 1}, nil
}

func (s *server) Defragment(context.Context, *pb.DefragmentRequest) (*pb.DefragmentResponse, error) {
	return &pb.DefragmentResponse{Header: s.header()}, nil
}

func (s *server) Hash(context.Context, *pb.HashRequest) (*pb.HashResponse, error) {
	return &pb.HashResponse{Header: s.header()}, nil
}

func (s *server) HashKV(context.Context, *pb.HashKVRequest) (*pb.HashKVResponse, error) {
	return &pb.HashKVResponse{Header: s.header()}, nil
}

func (s *server) Snapshot(*pb.SnapshotRequest, pb.Maintenance_SnapshotServer) error { return nil }

func (s *server) MoveLeader(context.Context, *pb.MoveLeaderRequest) (*pb.MoveLeaderResponse, error) {
	return &pb.MoveLeaderResponse{Header: s.header()}, nil
}

func main() {
	listen := flag.String("listen", "127.0.0.1:23999", "loopback address to serve on")
	flag.Parse()
	listener, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	s := &server{revision: 1}
	g := grpc.NewServer()
	pb.RegisterKVServer(g, s)
	pb.RegisterMaintenanceServer(g, s)
	log.Fatal(g.Serve(listener))
}
