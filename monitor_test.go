package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sidetail/sidetail/internal/syncbuf"
	"github.com/sidetail/sidetail/tailer"
)

// freePort returns a loopback port nobody listens on now.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// get returns the status code and body of a GET of url; code 0 when it failed.
func get(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// metric returns the value of the sample name{labels} (name alone: no labels) in
// an exposition.
func metric(exposition, sample string) (float64, bool) {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`)
	m := re.FindStringSubmatch(exposition)
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(m[1], 64)
	return v, err == nil
}

// needTool returns the path of a program the test needs: missing, it skips the
// test, or fails it under SIDETAIL_E2E=1 (.ci/run installs it).
func needTool(t *testing.T, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("SIDETAIL_E2E") == "1" {
			t.Fatalf("%s not found: apt-get install %s (.ci/run does)", name, pkg)
		}
		t.Skipf("%s not found (apt-get install %s)", name, pkg)
	}
	return path
}

func TestMetricsAddrBadInput(t *testing.T) {
	t.Parallel() // exit codes and messages only: nothing here needs the CPU to itself
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	os.WriteFile(log, nil, 0o644)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for _, args := range [][]string{
		{"--metrics-addr=9090", log},
		{"--metrics-addr=:http", log},
		{"--metrics-addr=:99999", log},
		{"--metrics-addr=" + taken.Addr().String(), log},
		{"--metrics-addr=192.0.2.1:9090", log}, // not an address of this host
		{"rotate", "--metrics-addr=localhost", log},
		{"rotate", "--metrics-addr=" + taken.Addr().String(), log},
	} {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "SIDETAIL_STATE_DIR=")
		out, _ := cmd.CombinedOutput()
		msg := strings.TrimSpace(string(out))
		if code := cmd.ProcessState.ExitCode(); code != 2 || !strings.Contains(msg, "--metrics-addr") || strings.Contains(msg, "\n") {
			t.Errorf("sidetail %q: exit %d, output %q; want exit 2 and one line naming --metrics-addr", args, code, msg)
		}
	}
}

// TestPrometheusScrapes has a real Prometheus scrape sidetail while a file is
// written and rotated, then asks Prometheus, through its query API, whether every
// line went out and nothing was left behind or given up.
func TestPrometheusScrapes(t *testing.T) {
	t.Parallel() // 7 s of mostly waiting for Prometheus; counts are checked, not times
	prometheus := needTool(t, "prometheus", "prometheus")
	needTool(t, "promtool", "prometheus")
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	sidetailAddr := "127.0.0.1:" + freePort(t)
	p := start(t, "--metrics-addr="+sidetailAddr, "--state-dir=", "app="+log)

	config := filepath.Join(dir, "prometheus.yml")
	os.WriteFile(config, fmt.Appendf(nil, `global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: sidetail
    static_configs:
      - targets: ['%s']
`, sidetailAddr), 0o644)
	promAddr := "127.0.0.1:" + freePort(t)
	prom := exec.Command(prometheus, "--config.file="+config, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+promAddr, "--log.level=warn")
	var promLog syncbuf.Buffer
	prom.Stdout, prom.Stderr = &promLog, &promLog
	if err := prom.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		prom.Process.Kill()
		prom.Wait()
	})

	// 2000 lines, renamed away after 1000, as logrotate's create mode does.
	const total, every = 2000, 1000
	writeRotating(t, p, log, "app", total, every, renameRotation(t, log))
	p.waitLines(t, total)
	var written int64
	for _, name := range []string{log, log + ".1"} {
		info, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		written += info.Size()
	}

	// The exposition passes promtool's checks (format and naming conventions).
	code, body := get("http://" + sidetailAddr + "/metrics")
	if code != 200 {
		t.Fatalf("GET /metrics: %d %s", code, body)
	}
	checkExposition(t, body)
	t.Logf("/metrics after the rotation:\n%s", body)

	// What Prometheus scraped. Each query is waited for: the last scrape may be up
	// to a second old.
	want := []struct {
		query string
		value float64
		wired string // the follower calls the sample needs (issue 11's types)
	}{
		{`up{job="sidetail"}`, 1, ""},
		{`sidetail_stdout_bytes_total`, float64(written), ""},
		{`sidetail_emitted_lines_total{tag="app"}`, total, "FileMetrics.Emitted/EmittedLast in the emitter"},
		{`sidetail_emitted_bytes_total{tag="app"}`, float64(written), "FileMetrics.Emitted/EmittedLast in the emitter"},
		{`sidetail_read_bytes_total{tag="app"}`, float64(written), "FileMetrics.Read in the read loop"},
		{`sidetail_lag_bytes{tag="app"}`, 0, "Metrics.File per follower, FileMetrics.Reading/Read/Emitted"},
		{`sidetail_abandoned_bytes_total{tag="app"}`, 0, "Metrics.File per follower"},
		{`sidetail_rotations_total{tag="app",kind="rename"}`, 1, "FileMetrics.Replaced when the follower leaves a replaced or deleted file"},
		{`sidetail_files_opened_total{tag="app"}`, 2, "FileMetrics.Opened in openName"},
	}
	values := func() string {
		var b strings.Builder
		for _, w := range want {
			v, ok := promQuery(promAddr, w.query)
			fmt.Fprintf(&b, "\n  %s = %v (found %v), want %v", w.query, v, ok, w.value)
			if w.wired != "" {
				fmt.Fprintf(&b, " [needs %s]", w.wired)
			}
		}
		return b.String() + "\nprometheus log:\n" + promLog.String()
	}
	waitUntil(t, func() bool {
		for _, w := range want {
			if v, ok := promQuery(promAddr, w.query); !ok || v != w.value {
				return false
			}
		}
		return true
	}, values)

	if code, body := get("http://" + sidetailAddr + "/readyz"); code != 200 {
		t.Errorf("/readyz: %d %q, want 200 once the file was opened [needs Metrics.File, FileMetrics.Ready, Metrics.Started in tailer.Run]", code, body)
	}
	if code, body := get("http://" + sidetailAddr + "/healthz"); code != 200 {
		t.Errorf("/healthz: %d %q, want 200", code, body)
	}
	if code := p.stop(t); code != 0 {
		t.Errorf("exit %d", code)
	}
}

// promQuery returns the value of an instant query whose answer is one sample.
func promQuery(addr, query string) (float64, bool) {
	resp, err := http.Get("http://" + addr + "/api/v1/query?query=" + url.QueryEscape(query))
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	var r struct {
		Status string
		Data   struct {
			Result []struct {
				Value [2]any
			}
		}
	}
	if json.NewDecoder(resp.Body).Decode(&r) != nil || r.Status != "success" || len(r.Data.Result) != 1 {
		return 0, false
	}
	s, _ := r.Data.Result[0].Value[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	return v, err == nil
}

// TestHealthzStall makes a follower stall for real: its stderr is a pipe nobody
// reads, filled up, so the follower blocks in the message it logs at a
// truncation, with the refilled file unread and stdout flowing. /healthz turns
// 503 naming the file, and back to 200 once stderr is read again.
func TestHealthzStall(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	os.WriteFile(log, []byte("first\n"), 0o644)
	stderrR, stderrW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stderrR.Close()
	addr := "127.0.0.1:" + freePort(t)
	p := &proc{cmd: exec.Command(bin, "--metrics-addr="+addr, "--stall-timeout=1s", "--state-dir=", "app="+log), eof: make(chan struct{})}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stderr = stderrW
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stderrW.Close() // the child holds its copy
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		p.cmd.Wait()
	})
	go func() {
		defer close(p.eof)
		io.Copy(io.Discard, out) // stdout keeps flowing: it is not what blocks
	}()
	healthz := func() (int, string) { return get("http://" + addr + "/healthz") }
	// The first line went out: the follower holds the file and its offset.
	var body string
	waitUntil(t, func() bool {
		_, body = get("http://" + addr + "/metrics")
		v, _ := metric(body, "sidetail_stdout_bytes_total")
		return v == float64(len("first\n"))
	}, func() string { return "the first line never went out:\n" + body })
	if c, b := healthz(); c != 200 {
		t.Fatalf("/healthz %d %q before the stall", c, b)
	}

	// Fill stderr: a one-page pipe, and a page written into it through our own
	// descriptor of it.
	fill, err := os.OpenFile(fmt.Sprintf("/proc/%d/fd/2", p.cmd.Process.Pid), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fill.Close()
	size, err := unix.FcntlInt(fill.Fd(), unix.F_SETPIPE_SZ, 4096)
	if err != nil {
		t.Fatal(err)
	}
	go fill.Write(make([]byte, size)) // blocks if sidetail wrote something first: full either way
	waitUntil(t, func() bool {
		n, err := unix.IoctlGetInt(int(stderrR.Fd()), unix.TIOCINQ) // FIONREAD: bytes in the pipe
		return err == nil && n >= size
	}, func() string { return "stderr pipe never filled" })

	// Truncate and refill past the old offset: the follower logs the truncation
	// and blocks there.
	os.WriteFile(log, []byte(strings.Repeat("refilled past the old offset\n", 100)), 0o644)
	waitUntil(t, func() bool { c, _ := healthz(); return c == 503 }, func() string {
		c, b := healthz()
		return fmt.Sprintf("/healthz still %d %q with a stalled follower [needs FileMetrics.Reading in use/restart/cut and FileMetrics.Read in the read loop]", c, b)
	})
	if _, body := healthz(); !strings.Contains(body, log) || !strings.Contains(body, "unread") {
		t.Errorf("/healthz body %q does not say which file is stuck and why", body)
	}

	// Read stderr again: the follower goes on, and so does /healthz.
	go io.Copy(io.Discard, stderrR)
	waitUntil(t, func() bool { c, _ := healthz(); return c == 200 }, func() string {
		c, b := healthz()
		return fmt.Sprintf("/healthz still %d %q after the follower was unblocked", c, b)
	})
	p.cmd.Process.Signal(unix.SIGTERM)
	<-p.eof
	if err := p.cmd.Wait(); err != nil {
		t.Errorf("sidetail: %v", err)
	}
}

// TestRotateMetrics makes every rotation metric move with real cuts: the rotate
// command on tmpfs, where auto falls back from collapse to punch, with an archive
// past --max-age and --max-files=1; the tail command's --rotate-* in the temporary
// folder (ext4, as the rotate package's tests want it: collapse).
func TestRotateMetrics(t *testing.T) {
	old := time.Now().Add(-8 * 24 * time.Hour)
	for _, tc := range []struct {
		name, parent, method string
		args                 []string
		want                 map[string]float64 // samples, but for their path label
		moved                []string           // samples that must be above 0
	}{
		{"rotate on tmpfs", "/dev/shm", "punch",
			[]string{"rotate", "--max-size=64Ki", "--check-interval=50ms", "--max-files=1", "--max-age=7d"},
			map[string]float64{
				`sidetail_rotate_cuts_total{method="collapse"}`:                          0,
				`sidetail_rotate_method_fallbacks_total{from="collapse",to="punch"}`:     1,
				`sidetail_rotate_method_fallbacks_total{from="punch",to="copytruncate"}`: 0,
				`sidetail_rotate_archives_deleted_total{reason="age"}`:                   1,
				`sidetail_rotate_archives_deleted_total{reason="count"}`:                 1,
				`sidetail_rotate_removed_bytes_total`:                                    0,
				`sidetail_rotate_errors_total`:                                           0,
			}, []string{`sidetail_rotate_archived_bytes_total`}},
		{"tail --rotate-*", "", "collapse",
			[]string{"--rotate-max-size=64Ki", "--rotate-check-interval=50ms", "--state-dir="},
			map[string]float64{
				`sidetail_rotate_cuts_total{method="punch"}`:                         0,
				`sidetail_rotate_method_fallbacks_total{from="collapse",to="punch"}`: 0,
				`sidetail_rotate_archives_deleted_total{reason="age"}`:               0,
				`sidetail_rotate_archives_deleted_total{reason="count"}`:             0,
				`sidetail_rotate_errors_total`:                                       0,
			}, []string{`sidetail_rotate_archived_bytes_total`, `sidetail_rotate_removed_bytes_total`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := tempDirIn(t, tc.parent)
			log := filepath.Join(dir, "app.log")
			archive := filepath.Join(dir, "app-2026-01-01T00-00-00.000.log")
			os.WriteFile(archive, []byte("old\n"), 0o644)
			os.Chtimes(archive, old, old)
			chunk := []byte(strings.Repeat(strings.Repeat("x", 99)+"\n", 2000)) // 200 kB
			os.WriteFile(log, chunk, 0o644)
			addr := "127.0.0.1:" + freePort(t)
			p := start(t, append(tc.args, "--metrics-addr="+addr, log)...)
			// Two cuts: the second appends to a file the first cut.
			tc.want[`sidetail_rotate_cuts_total{method="`+tc.method+`"}`] = 2
			var body string
			scrape := func(sample string, want float64) func() bool {
				return func() bool {
					_, body = get("http://" + addr + "/metrics")
					v, ok := metric(body, withPath(sample, log))
					return ok && v == want
				}
			}
			waitUntil(t, scrape(`sidetail_rotate_cuts_total{method="`+tc.method+`"}`, 1), func() string { return "no first cut in:\n" + body })
			f := openAppend(t, log)
			f.Write(chunk)
			f.Close()
			for sample, want := range tc.want {
				waitUntil(t, scrape(sample, want), func() string { return fmt.Sprintf("%s is not %v in:\n%s", sample, want, body) })
			}
			for _, sample := range tc.moved {
				if v, _ := metric(body, withPath(sample, log)); v <= 0 {
					t.Errorf("%s = %v, want > 0", sample, v)
				}
			}
			checkExposition(t, body)
			t.Logf("/metrics after two cuts:\n%s", body)
			for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/nope": 404} {
				if code, body := get("http://" + addr + path); code != want {
					t.Errorf("GET %s: %d %q, want %d", path, code, body, want)
				}
			}
			if code := p.stop(t); code != 0 {
				t.Errorf("exit %d", code)
			}
		})
	}
}

// withPath adds the label path="path" first to a sample's labels.
func withPath(sample, path string) string {
	label := `path="` + path + `"`
	if name, labels, ok := strings.Cut(sample, "{"); ok {
		return name + "{" + label + "," + labels
	}
	return sample + "{" + label + "}"
}

// checkExposition validates an exposition with promtool (its format and the
// naming conventions).
func checkExposition(t *testing.T, body string) {
	t.Helper()
	check := exec.Command(needTool(t, "promtool", "prometheus"), "check", "metrics")
	check.Stdin = strings.NewReader(body)
	if out, err := check.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s\nexposition:\n%s", err, out, body)
	}
}

// TestSocketDropsMetric fills a real UDP socket nobody reads: the kernel drops
// what its buffer cannot hold, and the exposition counts it under the socket's
// tag. A unixgram socket shows 0; a stream socket, which cannot drop, is not
// listed.
func TestSocketDropsMetric(t *testing.T) {
	var specs []tailer.SocketSpec
	var socks []*tailer.Socket
	for _, u := range [][2]string{{"syslog", "udp://127.0.0.1:0"}, {"local", "unixgram://" + filepath.Join(t.TempDir(), "log.sock")}, {"stream", "tcp://127.0.0.1:0"}} {
		spec, err := tailer.ParseSocketURL(u[0], u[1])
		if err != nil {
			t.Fatal(err)
		}
		sock, err := tailer.Listen(spec, tailer.SocketOptions{Buffer: 64 << 10}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(sock.Close)
		specs, socks = append(specs, spec), append(socks, sock)
	}
	m := &monitor{rotate: &rotateMetrics{}, started: time.Now()}
	m.countDrops(specs, socks)
	c, err := net.Dial("udp", socks[0].Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const sent = 2000
	msg := []byte(strings.Repeat("x", 200))
	for range sent {
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
	}
	body := string(m.exposition())
	// Loopback delivers in the sender's write: every datagram is queued or
	// dropped by now.
	if v, ok := metric(body, `sidetail_socket_dropped_messages_total{tag="syslog"}`); !ok || v == 0 || v >= sent {
		t.Errorf("syslog drops = %v (found %v), want some of %d", v, ok, sent)
	}
	if v, ok := metric(body, `sidetail_socket_dropped_messages_total{tag="local"}`); !ok || v != 0 {
		t.Errorf("unixgram drops = %v (found %v), want 0", v, ok)
	}
	if strings.Contains(body, `tag="stream"`) {
		t.Errorf("a stream socket is listed:\n%s", body)
	}
	checkExposition(t, body)
}
