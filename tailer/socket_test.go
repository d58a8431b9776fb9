package tailer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sidetail/sidetail/internal/syncbuf"
)

// hangGuard bounds every wait: a hang guard, not a timing assertion.
const hangGuard = 60 * time.Second

// relayed is the output of Run over sockets, read line by line by the test. Until
// open is called nothing is read, so Run's writes block as on a stalled stdout.
type relayed struct {
	lines    syncbuf.Lines
	progress chan struct{}
	gate     chan struct{}
	done     chan struct{}
}

func (o *relayed) open() { close(o.gate) }

func (o *relayed) output() []string { return o.lines.All() }

// waitFor waits until at least n lines came out.
func (o *relayed) waitFor(t *testing.T, n int) {
	t.Helper()
	timeout := time.After(hangGuard)
	for o.lines.Len() < n {
		select {
		case <-o.progress:
		case <-timeout:
			t.Fatalf("%d lines of %d came out", o.lines.Len(), n)
		}
	}
}

// serveSockets listens on each URL and runs Run over them. stop cancels Run, waits
// for it and returns its error once all output is read.
func serveSockets(t *testing.T, cfg Config, opts SocketOptions, urls ...string) (socks []*Socket, out *relayed, stop func() error) {
	t.Helper()
	if cfg.MaxLine == 0 {
		cfg.MaxLine = 1 << 20
	}
	for _, u := range urls {
		spec, err := ParseSocketURL("", u)
		if err != nil {
			t.Fatal(err)
		}
		s, err := Listen(spec, opts, cfg.Log)
		if err != nil {
			t.Fatal(err)
		}
		socks = append(socks, s)
	}
	cfg.Sockets = socks
	out = &relayed{progress: make(chan struct{}, 1), gate: make(chan struct{}), done: make(chan struct{})}
	pr, pw := io.Pipe()
	go func() {
		defer close(out.done)
		<-out.gate
		out.lines.Collect(pr, func() {
			select {
			case out.progress <- struct{}{}:
			default:
			}
		})
	}()
	ctx, cancel := context.WithCancel(context.Background())
	result := make(chan error, 1)
	go func() { result <- Run(ctx, cfg, nil, NewOutput(pw)) }()
	stopped := false
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case <-out.gate:
		default:
			out.open()
		}
		var err error
		select {
		case err = <-result:
		case <-time.After(hangGuard):
			t.Fatal("Run did not return after cancel")
		}
		pw.Close()
		<-out.done
		return err
	}
	t.Cleanup(func() { stop() })
	return socks, out, stop
}

// checkSenders checks that every sender's messages came out once, in order:
// lines "c<sender> <seq>" for seq 0..counts[sender]-1.
func checkSenders(t *testing.T, lines []string, counts ...int) {
	t.Helper()
	next := make([]int, len(counts))
	for _, line := range lines {
		var s, seq int
		if _, err := fmt.Sscanf(line, "c%d %d", &s, &seq); err != nil || s >= len(counts) {
			t.Fatalf("unexpected line %q", line)
		}
		if seq != next[s] {
			t.Fatalf("sender %d: message %d after %d", s, seq, next[s]-1)
		}
		next[s]++
	}
	for s, got := range next {
		if got != counts[s] {
			t.Errorf("sender %d: %d messages of %d", s, got, counts[s])
		}
	}
}

// syslogMsg formats message seq of sender s: RFC 5424 for even senders, RFC 3164
// for odd ones, so both grammars carry load.
func syslogMsg(dst []byte, s, seq int) []byte {
	if s%2 == 0 {
		return fmt.Appendf(dst, "<14>1 2026-11-23T10:00:00.000001Z host app %d - - c%d %d", s, s, seq)
	}
	return fmt.Appendf(dst, "<14>Nov 23 10:00:00 app[%d]: c%d %d", s, s, seq)
}

// The load test: 100k messages over each transport, from several senders at once,
// every message out once and in order per sender. Streams mix the two framings.
func TestSocketTransports(t *testing.T) {
	const total = 100_000
	dir := t.TempDir()
	for _, tr := range []struct {
		url     string
		senders int
	}{
		{"unixgram://" + filepath.Join(dir, "dgram.sock"), 2},
		{"unix://" + filepath.Join(dir, "stream.sock"), 4},
		{"udp://127.0.0.1:0", 2},
		{"tcp://127.0.0.1:0", 4},
	} {
		t.Run(strings.SplitN(tr.url, ":", 2)[0], func(t *testing.T) {
			t.Parallel() // the datagram transports wait on wakeups more than on CPU
			socks, out, stop := serveSockets(t, Config{}, SocketOptions{Syslog: true, Buffer: 4 << 20}, tr.url)
			out.open()
			s := socks[0]
			network, addr := s.spec.Network, s.Addr()
			per := total / tr.senders
			begin := time.Now()
			var wg sync.WaitGroup
			var sent atomic.Int64
			for id := range tr.senders {
				wg.Go(func() {
					c, err := net.Dial(network, addr)
					if err != nil {
						t.Error(err)
						return
					}
					defer c.Close()
					w := bufio.NewWriter(c)
					var msg, frame []byte
					for seq := range per {
						msg = syslogMsg(msg[:0], id, seq)
						switch {
						case s.spec.Datagram():
							// UDP has no flow control: stay a window ahead of the output
							// so this test measures relaying, not drops.
							for sent.Load()-int64(out.lines.Len()) > 2000 {
								select {
								case <-out.progress:
								case <-time.After(hangGuard):
									t.Error("no progress")
									return
								}
							}
							_, err = c.Write(msg)
							sent.Add(1)
						case id%2 == 0:
							frame = append(append(frame[:0], msg...), '\n')
							_, err = w.Write(frame)
						default:
							frame = strconv.AppendInt(frame[:0], int64(len(msg)), 10)
							frame = append(append(frame, ' '), msg...)
							_, err = w.Write(frame)
						}
						if err != nil {
							t.Error(err)
							return
						}
					}
					if err := w.Flush(); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			out.waitFor(t, total)
			elapsed := time.Since(begin)
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			lines := out.output()
			counts := make([]int, tr.senders)
			for i := range counts {
				counts[i] = per
			}
			checkSenders(t, lines, counts...)
			t.Logf("%d messages in %s: %.0f/s", len(lines), elapsed.Round(time.Millisecond), float64(len(lines))/elapsed.Seconds())
		})
	}
}

// SIGTERM while stdout is stalled: what the kernel already holds (queued
// datagrams, bytes of open connections) still comes out. Stream senders stop in
// the middle of a message, which comes out as it is; a client that connected and
// sent nothing does not hold up the exit.
func TestSocketDrainOnShutdown(t *testing.T) {
	dir := t.TempDir()
	socks, out, stop := serveSockets(t, Config{}, SocketOptions{Buffer: 4 << 20},
		"unixgram://"+filepath.Join(dir, "d.sock"), "unix://"+filepath.Join(dir, "s.sock"), "udp://127.0.0.1:0", "tcp://127.0.0.1:0")
	// A unixgram sender blocks once net.unix.max_dgram_qlen (10 by default)
	// datagrams are queued: the kernel holds no more for us.
	counts := []int{10, 1000, 2000, 1000}
	for i, s := range socks {
		c, err := net.Dial(s.spec.Network, s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var buf []byte
		for seq := range counts[i] {
			line := fmt.Appendf(nil, "c%d %d", i, seq)
			if !s.spec.Datagram() {
				buf = append(append(buf, line...), '\n')
				continue
			}
			if _, err := c.Write(line); err != nil {
				t.Fatal(err)
			}
		}
		if len(buf) == 0 {
			continue
		}
		if _, err := c.Write(buf[:len(buf)-1]); err != nil { // the last without its newline
			t.Fatal(err)
		}
	}
	silent, err := net.Dial("tcp", socks[3].Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	if err := stop(); err != nil { // opens the output after cancelling
		t.Fatal(err)
	}
	checkSenders(t, out.output(), counts...)
}

// A datagram sender faster than stdout: what the kernel drops is counted, and the
// count is exactly what was sent and did not come out.
func TestDatagramDrops(t *testing.T) {
	var logBuf syncbuf.Buffer
	log := slog.New(slog.NewTextHandler(&logBuf, nil))
	socks, out, stop := serveSockets(t, Config{Log: log}, SocketOptions{Buffer: 64 << 10}, "udp://127.0.0.1:0")
	s := socks[0]
	c, err := net.Dial("udp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 20_000
	msg := bytes.Repeat([]byte("x"), 200)
	for seq := range n {
		copy(msg, fmt.Sprintf("c0 %d ", seq))
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	got := len(out.output())
	dropped := s.Dropped()
	t.Logf("sent %d, relayed %d, dropped %d", n, got, dropped)
	if dropped == 0 || uint64(got)+dropped != n {
		t.Fatalf("sent %d, relayed %d, counted %d dropped: want relayed + dropped = sent, dropped > 0", n, got, dropped)
	}
	if !strings.Contains(logBuf.String(), "dropped="+strconv.FormatUint(dropped, 10)) {
		t.Errorf("the final drop count is not in the log:\n%s", logBuf.String())
	}
}

// --max-line cuts a long message into pieces; each piece carries the header's
// fields, and all but the last are marked partial.
func TestSocketMaxLine(t *testing.T) {
	dir := t.TempDir()
	socks, out, stop := serveSockets(t, Config{MaxLine: 1000, Format: Format{JSON: true}}, SocketOptions{Syslog: true},
		"unix://"+filepath.Join(dir, "s.sock"), "unixgram://"+filepath.Join(dir, "d.sock"))
	out.open()
	body := strings.Repeat("0123456789", 250)
	msg := "<11>1 - h app - - - " + body
	for _, s := range socks {
		c, err := net.Dial(s.spec.Network, s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		frame := msg
		if !s.spec.Datagram() {
			frame = strconv.Itoa(len(msg)) + " " + msg
		}
		if _, err := io.WriteString(c, frame); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	out.waitFor(t, 6)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	texts := map[string]string{}
	for _, line := range out.output() {
		var o struct {
			Tag, Severity, App, Message string
			Partial                     bool
		}
		if err := json.Unmarshal([]byte(line), &o); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		if o.Severity != "err" || o.App != "app" {
			t.Errorf("a piece without the header's fields: %q", line)
		}
		if len(o.Message) > 1000 {
			t.Errorf("piece of %d bytes", len(o.Message))
		}
		if o.Partial == strings.HasSuffix(texts[o.Tag]+o.Message, body) {
			t.Errorf("partial=%v on %q", o.Partial, line)
		}
		texts[o.Tag] += o.Message
	}
	for tag, text := range texts {
		if !strings.HasSuffix(text, body) {
			t.Errorf("%s: the pieces make %q", tag, text)
		}
	}
	if len(texts) != 2 {
		t.Errorf("messages of %d sockets, want 2", len(texts))
	}
}

func TestParseSocketURL(t *testing.T) {
	for _, tt := range []struct{ in, network, address, tag string }{
		{"unixgram:///run/log/app.sock", "unixgram", "/run/log/app.sock", "app"},
		{"unix:///dev/log", "unix", "/dev/log", "log"},
		{"udp://", "udp", "127.0.0.1:514", "udp-514"},
		{"udp://:1514", "udp", "127.0.0.1:1514", "udp-1514"},
		{"tcp://0.0.0.0", "tcp", "0.0.0.0:601", "tcp-601"},
		{"tcp://[::1]:6514", "tcp", "[::1]:6514", "tcp-6514"},
	} {
		s, err := ParseSocketURL("", tt.in)
		if err != nil || s.Network != tt.network || s.Address != tt.address || s.Tag != tt.tag {
			t.Errorf("%s: %+v, %v", tt.in, s, err)
		}
	}
	// Each bad URL and what its error must say.
	for in, want := range map[string]string{
		"unix://run/log/app.sock": "absolute socket path",
		"unix:///run/log/":        "absolute socket path",
		"udp://127.0.0.1:99999":   "not a port",
		"udp://127.0.0.1:514/x":   "HOST:PORT only",
		"tcp://h:1?x=1":           "no user, query",
		"http://127.0.0.1":        "unsupported scheme",
		"udp://[::1":              "malformed URL",
	} {
		if _, err := ParseSocketURL("", in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", in, err, want)
		}
	}
}

// A socket file left by a killed run is replaced; a live socket and a regular file
// are left alone.
func TestListenSocketFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.sock")
	spec, _ := ParseSocketURL("", "unixgram://"+path)
	first, err := Listen(spec, SocketOptions{Mode: 0o600}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, %v; want 0600", info.Mode(), err)
	}
	if _, err := Listen(spec, SocketOptions{}, nil); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("a second listener on a live socket: %v", err)
	}
	// Killed: the file stays, nobody listens.
	first.dgram.Close()
	second, err := Listen(spec, SocketOptions{Mode: 0o666}, nil)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	second.Close()
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("socket file left after Close: %v", err)
	}
	regular := filepath.Join(dir, "file")
	os.WriteFile(regular, []byte("keep"), 0o644)
	spec, _ = ParseSocketURL("", "unix://"+regular)
	if _, err := Listen(spec, SocketOptions{}, nil); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("listen over a regular file: %v", err)
	}
	if data, _ := os.ReadFile(regular); string(data) != "keep" {
		t.Fatal("the regular file was touched")
	}
}

// SIGTERM before connections were accepted: the connections the kernel completed
// are taken and their bytes relayed, a last line without its newline included,
// then the socket closes. The context is done before Run starts, so most of them
// are still in the listen queue when the accept loop ends.
func TestSocketDrainBacklog(t *testing.T) {
	dir := t.TempDir()
	for _, url := range []string{"unix://" + filepath.Join(dir, "s.sock"), "tcp://127.0.0.1:0"} {
		t.Run(strings.SplitN(url, ":", 2)[0], func(t *testing.T) {
			spec, _ := ParseSocketURL("", url)
			s, err := Listen(spec, SocketOptions{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			counts := []int{3, 3, 3, 3, 3}
			for i := range counts {
				c, err := net.Dial(spec.Network, s.Addr())
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				fmt.Fprintf(c, "c%d 0\nc%d 1\nc%d 2", i, i, i) // the last without its newline
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			var out syncbuf.Buffer
			if err := Run(ctx, Config{MaxLine: 1 << 20, Sockets: []*Socket{s}}, nil, NewOutput(&out)); err != nil {
				t.Fatal(err)
			}
			// Connections run concurrently: checkSenders wants order per sender only.
			checkSenders(t, slices.Collect(strings.Lines(out.String())), counts...)
			if _, err := net.Dial(spec.Network, s.Addr()); err == nil {
				t.Error("the socket still accepts connections after Run")
			}
			if _, err := os.Lstat(spec.Address); spec.Network == "unix" && !os.IsNotExist(err) {
				t.Errorf("socket file left: %v", err)
			}
		})
	}
}

// Unix datagrams are charged to their senders' buffers, not to our receive buffer:
// at SIGTERM the queue may hold far more bytes than that buffer (up to
// net.unix.max_dgram_qlen+1 datagrams, each as long as its sender's buffer allows),
// and every one of them comes out.
func TestSocketDrainLargeDatagrams(t *testing.T) {
	dir := t.TempDir()
	// No buffer asked: the kernel's default, well below what is queued here.
	socks, out, stop := serveSockets(t, Config{}, SocketOptions{}, "unixgram://"+filepath.Join(dir, "d.sock"))
	s := socks[0]
	// One datagram per sender: a sender can have only its own buffer's worth
	// queued. Fewer senders than the queue holds, so none of them blocks.
	senders := min(s.qlen+1, 8)
	counts := make([]int, senders)
	pad := strings.Repeat("x", 150<<10)
	for i := range senders {
		c, err := net.Dial("unixgram", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := fmt.Fprintf(c, "c%d 0 %s", i, pad); err != nil {
			t.Fatal(err)
		}
		counts[i] = 1
	}
	if err := stop(); err != nil { // opens the output after cancelling
		t.Fatal(err)
	}
	checkSenders(t, out.output(), counts...)
}

// SIGTERM while senders keep sending: the drain reads what the kernel held and
// ends, and what came out of each sender is its messages in order with none
// missing, the last perhaps cut where the drain stopped (a stream's half message).
func TestSocketDrainEndlessSenders(t *testing.T) {
	dir := t.TempDir()
	socks, out, stop := serveSockets(t, Config{}, SocketOptions{Buffer: 1 << 20},
		"unix://"+filepath.Join(dir, "s.sock"), "unixgram://"+filepath.Join(dir, "d.sock"), "tcp://127.0.0.1:0")
	out.open()
	var wg sync.WaitGroup
	var conns []net.Conn
	for i, s := range socks {
		c, err := net.Dial(s.spec.Network, s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		wg.Go(func() {
			var buf []byte
			for seq := 0; ; seq++ {
				buf = endlessMsg(buf[:0], i, seq)
				if !s.spec.Datagram() {
					buf = append(buf, '\n')
				}
				if _, err := c.Write(buf); err != nil {
					return // the socket closed at the end of the drain
				}
			}
		})
	}
	out.waitFor(t, 1000)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for _, c := range conns {
		c.Close() // a unixgram sender may wait for room in a queue nobody reads
	}
	wg.Wait()
	next := make([]int, len(socks))
	cut := make([]bool, len(socks))
	for _, line := range out.output() {
		var i int
		if _, err := fmt.Sscanf(line, "c%d ", &i); err != nil || i >= len(socks) || cut[i] {
			t.Fatalf("unexpected line %q after %v", line, next)
		}
		want := string(endlessMsg(nil, i, next[i])) + "\n"
		if line != want {
			// Only the last line of a stream may be cut, and only at its end.
			if socks[i].spec.Datagram() || !strings.HasPrefix(want, strings.TrimSuffix(line, "\n")) {
				t.Fatalf("sender %d: %q, want %q", i, line, want)
			}
			cut[i] = true
		}
		next[i]++
	}
	t.Logf("messages out per sender: %v", next)
}

func endlessMsg(dst []byte, sender, seq int) []byte {
	return fmt.Appendf(dst, "c%d %d %s", sender, seq, strings.Repeat("x", seq%100))
}
