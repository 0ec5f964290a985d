// Command clientv3bench drives an etcd endpoint with Go's clientv3 (etcd 3.4's, the client of etcdctl and of
// kube-apiserver's storage layer), so the etcd comparison also measures what real clients see: clientv3's own costs
// (interceptors, retries, its gRPC stack) share the machine's two cores with the server, as they do for
// kube-apiserver. Each scenario runs for a fixed time and prints one JSON object (name, ops/s, p50/p99 latency in ms,
// errors) on stdout. Bench/etcd_compare.py --client clientv3 runs it against Strata, etcd 3.4 and the null server.
//
//	make clientv3bench && .build/clientv3bench -endpoint 127.0.0.1:2379 -scenario put -seconds 8
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/clientv3"
)

var (
	endpoint    = flag.String("endpoint", "127.0.0.1:2379", "etcd endpoint")
	scenario    = flag.String("scenario", "put", "seq-put | put | get | range | txn | watch")
	seconds     = flag.Float64("seconds", 8, "how long each scenario runs")
	connections = flag.Int("connections", 8, "client connections the concurrent scenarios share")
	check       = flag.Bool("check", true, "check answers (off for the null server, which stores nothing)")
	value       = strings.Repeat("v", 128)
)

type result struct {
	Name         string  `json:"name"`
	OpsPerSecond float64 `json:"ops_per_second"`
	P50          float64 `json:"p50_ms"`
	P99          float64 `json:"p99_ms"`
	Errors       int64   `json:"errors"`
	FirstError   string  `json:"first_error,omitempty"`
}

// recorder collects latencies from many goroutines.
type recorder struct {
	mu        sync.Mutex
	latencies []time.Duration
	errors    int64
	first     string
}

func (r *recorder) add(latencies []time.Duration) {
	r.mu.Lock()
	r.latencies = append(r.latencies, latencies...)
	r.mu.Unlock()
}

func (r *recorder) fail(err error) {
	r.mu.Lock()
	r.errors++
	if r.first == "" {
		r.first = err.Error()
	}
	r.mu.Unlock()
}

func (r *recorder) emit(name string, operations int, elapsed time.Duration) {
	sort.Slice(r.latencies, func(i, j int) bool { return r.latencies[i] < r.latencies[j] })
	percentile := func(p float64) float64 {
		if len(r.latencies) == 0 {
			return 0
		}
		index := int(p * float64(len(r.latencies)-1))
		return float64(r.latencies[index]) / 1e6
	}
	line, _ := json.Marshal(result{
		Name: name, OpsPerSecond: float64(operations) / elapsed.Seconds(), P50: percentile(0.5), P99: percentile(0.99),
		Errors: r.errors, FirstError: r.first,
	})
	fmt.Println(string(line))
}

func connect() *clientv3.Client {
	client, err := clientv3.New(clientv3.Config{
		Endpoints: []string{*endpoint}, DialTimeout: 5 * time.Second, MaxCallSendMsgSize: 4 << 20,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "connect:", err)
		os.Exit(1)
	}
	return client
}

func pool(n int) []*clientv3.Client {
	clients := make([]*clientv3.Client, n)
	for i := range clients {
		clients[i] = connect()
	}
	return clients
}

// closedLoop runs `workers` goroutines, each calling op back to back for the scenario's duration; returns how many
// calls succeeded and how long it took.
func closedLoop(workers int, rec *recorder, op func(worker, index int) error) (int, time.Duration) {
	deadline := time.Now().Add(time.Duration(*seconds * float64(time.Second)))
	var done int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(worker int) {
			defer wg.Done()
			var latencies []time.Duration
			for i := 0; time.Now().Before(deadline); i++ {
				began := time.Now()
				if err := op(worker, i); err != nil {
					rec.fail(err)
					continue
				}
				latencies = append(latencies, time.Since(began))
				atomic.AddInt64(&done, 1)
			}
			rec.add(latencies)
		}(w)
	}
	wg.Wait()
	return int(done), time.Since(start)
}

func ctx() (context.Context, context.CancelFunc) { return context.WithTimeout(context.Background(), 10*time.Second) }

func main() {
	flag.Parse()
	switch *scenario {
	case "seq-put":
		client := connect()
		rec := &recorder{}
		n, elapsed := closedLoop(1, rec, func(_, i int) error {
			c, cancel := ctx()
			defer cancel()
			_, err := client.Put(c, "seq/"+strconv.Itoa(i), value)
			return err
		})
		rec.emit("put, sequential", n, elapsed)
	case "put":
		clients := pool(*connections)
		rec := &recorder{}
		n, elapsed := closedLoop(64, rec, func(w, i int) error {
			c, cancel := ctx()
			defer cancel()
			_, err := clients[w%len(clients)].Put(c, fmt.Sprintf("put/%d/%d", w, i), value)
			return err
		})
		rec.emit("put, 64 clients", n, elapsed)
	case "get":
		clients := pool(*connections)
		seed(clients[0], "get/", 1000)
		rec := &recorder{}
		n, elapsed := closedLoop(64, rec, func(w, i int) error {
			c, cancel := ctx()
			defer cancel()
			_, err := clients[w%len(clients)].Get(c, "get/"+strconv.Itoa((w*7919+i*104729)%1000))
			return err
		})
		rec.emit("get, linearizable, 64 clients", n, elapsed)
	case "range":
		clients := pool(*connections)
		seed(clients[0], "range/", 1000)
		rec := &recorder{}
		n, elapsed := closedLoop(8, rec, func(w, _ int) error {
			c, cancel := ctx()
			defer cancel()
			response, err := clients[w%len(clients)].Get(c, "range/", clientv3.WithPrefix())
			if err == nil && *check && len(response.Kvs) != 1000 {
				return fmt.Errorf("range returned %d keys", len(response.Kvs))
			}
			return err
		})
		rec.emit("range of 1000 keys, 8 clients", n, elapsed)
	case "txn":
		clients := pool(*connections)
		rec := &recorder{}
		seen := make([]int64, 16)
		n, elapsed := closedLoop(16, rec, func(w, _ int) error {
			c, cancel := ctx()
			defer cancel()
			key := "cas/" + strconv.Itoa(w)
			response, err := clients[w%len(clients)].Txn(c).
				If(clientv3.Compare(clientv3.ModRevision(key), "=", seen[w])).
				Then(clientv3.OpPut(key, value)).
				Else(clientv3.OpGet(key)).Commit()
			if err != nil {
				return err
			}
			if response.Succeeded {
				seen[w] = response.Header.Revision
			} else if len(response.Responses) > 0 {
				if kvs := response.Responses[0].GetResponseRange().GetKvs(); len(kvs) > 0 {
					seen[w] = kvs[0].ModRevision
				}
			}
			return nil
		})
		rec.emit("txn CAS, 16 clients", n, elapsed)
	case "watch":
		watchFanOut()
	default:
		fmt.Fprintln(os.Stderr, "unknown scenario", *scenario)
		os.Exit(2)
	}
}

func seed(client *clientv3.Client, prefix string, count int) {
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < count; i += 16 {
				c, cancel := ctx()
				if _, err := client.Put(c, prefix+strconv.Itoa(i), value); err != nil {
					fmt.Fprintln(os.Stderr, "seed:", err)
				}
				cancel()
			}
		}(w)
	}
	wg.Wait()
}

// watchFanOut: 500 watchers on one key over 10 connections; 8 writers put to it for the scenario's duration, each put
// carrying its send time, so every delivered event's latency is known. Reports events delivered per second.
func watchFanOut() {
	const watchers, streams, writers = 500, 10, 8
	clients := pool(streams)
	writerClients := pool(*connections)
	rec := &recorder{}
	var delivered int64
	watchContext, stopWatching := context.WithCancel(context.Background())
	var ready, wg sync.WaitGroup
	for i := 0; i < watchers; i++ {
		ready.Add(1)
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			// A context of its own per watcher, so clientv3 gives each its own watch (not one shared stream).
			channel := clients[i%streams].Watch(clientv3.WithRequireLeader(watchContext), "fanout/key",
				clientv3.WithCreatedNotify())
			var latencies []time.Duration
			first := true
			for response := range channel {
				if first && response.Created {
					first = false
					ready.Done()
					continue
				}
				arrival := time.Now().UnixNano()
				for _, event := range response.Events {
					if sent, err := strconv.ParseInt(strings.TrimSpace(string(event.Kv.Value[:20])), 10, 64); err == nil {
						latencies = append(latencies, time.Duration(arrival-sent))
					}
				}
				atomic.AddInt64(&delivered, int64(len(response.Events)))
			}
			rec.add(latencies)
		}(i)
	}
	ready.Wait()
	start := time.Now()
	deadline := start.Add(time.Duration(*seconds * float64(time.Second)))
	var writes sync.WaitGroup
	var sent int64
	for w := 0; w < writers; w++ {
		writes.Add(1)
		go func(w int) {
			defer writes.Done()
			for time.Now().Before(deadline) {
				stamp := fmt.Sprintf("%-20d", time.Now().UnixNano())
				c, cancel := ctx()
				_, err := writerClients[w%len(writerClients)].Put(c, "fanout/key", stamp+value)
				cancel()
				if err != nil {
					rec.fail(err)
				} else {
					atomic.AddInt64(&sent, 1)
				}
			}
		}(w)
	}
	writes.Wait()
	// Every event must arrive: wait (up to 60 s) for the last ones, then stop.
	expected := atomic.LoadInt64(&sent) * watchers
	for limit := time.Now().Add(60 * time.Second); atomic.LoadInt64(&delivered) < expected && time.Now().Before(limit); {
		time.Sleep(10 * time.Millisecond)
	}
	elapsed := time.Since(start)
	stopWatching()
	wg.Wait()
	if got := atomic.LoadInt64(&delivered); got < expected {
		rec.fail(fmt.Errorf("%d of %d events delivered", got, expected))
	}
	rec.emit("watch fan-out, 500 watchers (events)", int(atomic.LoadInt64(&delivered)), elapsed)
}
