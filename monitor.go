package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sidetail/sidetail/internal/prom"
	"github.com/sidetail/sidetail/internal/status"
	"github.com/sidetail/sidetail/tailer"
)

// monitor serves --metrics-addr: /metrics, /healthz and /readyz. A nil monitor
// (no --metrics-addr) serves nothing and measures nothing.
type monitor struct {
	srv     *status.Server
	started time.Time
	tail    *tailer.Metrics // nil for the rotate command
	out     *tailer.Meter   // stdout's writes; nil for the rotate command
	rotate  *rotateMetrics

	mu     sync.Mutex // the sockets are made after the server starts
	dgrams []datagramSocket
}

// datagramSocket is a datagram socket source and its tag.
type datagramSocket struct {
	tag  string
	sock *tailer.Socket
}

// checkMetricsAddr checks --metrics-addr before anything runs: host:port, with
// the host optional and the port a number.
func checkMetricsAddr(addr string) error {
	if addr == "" {
		return nil
	}
	_, port, err := net.SplitHostPort(addr)
	if err == nil {
		_, err = strconv.ParseUint(port, 10, 16)
	}
	if err != nil {
		return fmt.Errorf("--metrics-addr: %q is not HOST:PORT; use e.g. :9090 or 127.0.0.1:9090", addr)
	}
	return nil
}

// listenMonitor binds addr now, so a port already taken ends the command before it
// follows anything; nil when addr is empty.
func listenMonitor(addr string) (*monitor, error) {
	if addr == "" {
		return nil, nil
	}
	srv, err := status.Listen(addr)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) {
			err = op.Err // "address already in use", without the repeated address
		}
		return nil, usageError{fmt.Errorf("--metrics-addr: cannot listen on %s: %v; pick a free port", addr, err)}
	}
	return &monitor{srv: srv, started: time.Now(), rotate: &rotateMetrics{}}, nil
}

// rotated is where rotation is counted; nil without a monitor.
func (m *monitor) rotated() *rotateMetrics {
	if m == nil {
		return nil
	}
	return m.rotate
}

// meter measures the tail command's writes to stdout; nil without a monitor.
func (m *monitor) meter() *tailer.Meter {
	if m == nil {
		return nil
	}
	return m.out
}

// followers are the tail command's metrics; nil without a monitor.
func (m *monitor) followers() *tailer.Metrics {
	if m == nil {
		return nil
	}
	return m.tail
}

// countDrops exposes the kernel's drop counts of the datagram sockets among
// socks, made from specs; stream sockets drop nothing (their senders wait).
func (m *monitor) countDrops(specs []tailer.SocketSpec, socks []*tailer.Socket) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, spec := range specs {
		if spec.Datagram() {
			m.dgrams = append(m.dgrams, datagramSocket{spec.Tag, socks[i]})
		}
	}
}

// writeDrops writes the datagrams dropped, summed by tag, read from the sockets
// now (a getsockopt each).
func (m *monitor) writeDrops(w *prom.Writer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.dgrams) == 0 {
		return
	}
	drops := map[string]uint64{}
	for _, d := range m.dgrams {
		drops[d.tag] += d.sock.Dropped()
	}
	tags := slices.Sorted(maps.Keys(drops))
	w.Each("sidetail_socket_dropped_messages_total", prom.Counter,
		"Datagrams the kernel dropped because the socket's receive buffer (--socket-buffer) was full: stdout slower than the senders. Only UDP drops; unixgram senders wait.",
		"tag", tags, func(i int) float64 { return float64(drops[tags[i]]) })
}

// serve answers requests until ctx is done, then returns once the listener is
// closed; call it on its own goroutine.
func (m *monitor) serve(ctx context.Context) {
	if m != nil {
		m.srv.Serve(ctx, m.handle)
	}
}

func (m *monitor) handle(path string) status.Response {
	switch path {
	case "/metrics":
		return status.Response{Code: 200, ContentType: prom.ContentType, Body: m.exposition()}
	case "/healthz":
		var stuck []string
		if m.tail != nil {
			now := time.Now()
			stuck = m.tail.Health(now, stdoutBlocked(m.out, now))
		}
		if len(stuck) > 0 {
			return status.Response{Code: 503, Body: []byte(strings.Join(stuck, "\n") + "\n")}
		}
		return status.Response{Code: 200, Body: []byte("ok\n")}
	case "/readyz":
		if m.tail != nil && !m.tail.Ready() {
			return status.Response{Code: 503, Body: []byte("starting: not every path was opened or waited for yet\n")}
		}
		return status.Response{Code: 200, Body: []byte("ready\n")}
	}
	return status.Response{Code: 404, Body: []byte("not found: try /metrics, /healthz or /readyz\n")}
}

// exposition is the whole /metrics page.
func (m *monitor) exposition() []byte {
	var w prom.Writer
	w.Family("sidetail_build_info", prom.Gauge, "Always 1; the labels say which sidetail this is.")
	w.Int(1, "version", version, "goversion", runtime.Version())
	m.tail.Write(&w)
	writeStdout(&w, m.out)
	m.writeDrops(&w)
	m.rotate.write(&w)
	writeRuntime(&w)
	writeProcess(&w, m.started)
	return w.Bytes()
}

// runtimeSamples are the Go runtime's own metrics we expose, under the names
// client_golang gives them, so existing dashboards find them.
var runtimeSamples = []struct {
	name, source, help string
	typ                prom.Type
}{
	{"go_goroutines", "/sched/goroutines:goroutines", "Goroutines that currently exist.", prom.Gauge},
	{"go_sched_gomaxprocs_threads", "/sched/gomaxprocs:threads", "GOMAXPROCS: threads that may run Go code at once.", prom.Gauge},
	{"go_memstats_heap_alloc_bytes", "/memory/classes/heap/objects:bytes", "Bytes of allocated heap objects.", prom.Gauge},
	{"go_memstats_sys_bytes", "/memory/classes/total:bytes", "Bytes of memory obtained from the OS by the Go runtime.", prom.Gauge},
	{"go_gc_gomemlimit_bytes", "/gc/gomemlimit:bytes", "The Go memory limit (GOMEMLIMIT).", prom.Gauge},
	{"go_gc_cycles_total", "/gc/cycles/total:gc-cycles", "Completed GC cycles.", prom.Counter},
}

// writeRuntime reads the runtime's metrics (no stop-the-world, unlike
// runtime.ReadMemStats).
func writeRuntime(w *prom.Writer) {
	samples := make([]metrics.Sample, len(runtimeSamples))
	for i, s := range runtimeSamples {
		samples[i].Name = s.source
	}
	metrics.Read(samples)
	for i, s := range runtimeSamples {
		var v float64
		switch samples[i].Value.Kind() {
		case metrics.KindUint64:
			v = float64(samples[i].Value.Uint64())
		case metrics.KindFloat64:
			v = samples[i].Value.Float64()
		default:
			continue // not in this Go version
		}
		w.Family(s.name, s.typ, s.help)
		w.Sample(v)
	}
	w.Family("go_info", prom.Gauge, "Always 1; the Go version.")
	w.Int(1, "version", runtime.Version())
}

// writeProcess writes the process metrics client_golang's process collector
// writes, read from the kernel.
func writeProcess(w *prom.Writer, started time.Time) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		w.Family("process_cpu_seconds_total", prom.Counter, "User and system CPU time spent.")
		w.Sample(cpu.Seconds())
	}
	// statm: size resident shared text lib data dt, in pages.
	if statm, err := os.ReadFile("/proc/self/statm"); err == nil {
		if f := strings.Fields(string(statm)); len(f) >= 2 {
			page := int64(os.Getpagesize())
			size, _ := strconv.ParseInt(f[0], 10, 64)
			rss, _ := strconv.ParseInt(f[1], 10, 64)
			w.Family("process_resident_memory_bytes", prom.Gauge, "Resident memory size.")
			w.Int(rss * page)
			w.Family("process_virtual_memory_bytes", prom.Gauge, "Virtual memory size.")
			w.Int(size * page)
		}
	}
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		w.Family("process_open_fds", prom.Gauge, "Open file descriptors.")
		w.Int(int64(len(fds)) - 1) // the directory being read
	}
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil {
		w.Family("process_max_fds", prom.Gauge, "Limit on open file descriptors.")
		w.Sample(float64(lim.Cur))
	}
	w.Family("process_start_time_seconds", prom.Gauge, "When the process started (Unix time).")
	w.Sample(float64(started.UnixNano()) / 1e9)
}

// blockedAfter is how long one write to stdout must last for stdout to count as
// blocked: a reader (kubelet's log pipe) that stopped reading, not a slow disk.
const blockedAfter = time.Second

// stdoutBlocked reports whether a write to stdout (measured by m) has been under
// way for blockedAfter.
func stdoutBlocked(m *tailer.Meter, now time.Time) bool {
	if m == nil {
		return false
	}
	s := m.Since.Load()
	return s != 0 && now.Sub(time.Unix(0, s)) >= blockedAfter
}

// writeStdout writes the metrics of stdout's writes, measured by m.
func writeStdout(w *prom.Writer, m *tailer.Meter) {
	if m == nil {
		return
	}
	w.Family("sidetail_stdout_bytes_total", prom.Counter, "Bytes written to stdout, formatted.")
	w.Int(m.Bytes.Load())
	w.Family("sidetail_stdout_writes_total", prom.Counter, "Writes to stdout (each one or more whole lines).")
	w.Int(m.Writes.Load())
	w.Family("sidetail_stdout_write_seconds_total", prom.Counter, "Time spent in writes to stdout: when it grows by about 1 per second, stdout's reader is not keeping up.")
	w.Sample(float64(m.Nanos.Load()) / 1e9)
	w.Family("sidetail_stdout_blocked", prom.Gauge, "1 while a write to stdout has been waiting for over a second.")
	blocked := int64(0)
	if stdoutBlocked(m, time.Now()) {
		blocked = 1
	}
	w.Int(blocked)
}
