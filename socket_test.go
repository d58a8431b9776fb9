package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// addrOf returns the address sidetail logged for a socket (its port when 0 was
// asked for).
func (p *proc) addrOf(t *testing.T, url string) string {
	t.Helper()
	re := regexp.MustCompile(`msg=listening path=` + regexp.QuoteMeta(url) + ` addr=(\S+)`)
	var addr string
	waitUntil(t, func() bool {
		m := re.FindStringSubmatch(p.stderr.String())
		if m != nil {
			addr = m[1]
		}
		return m != nil
	}, func() string { return "not listening on " + url + ": " + p.stderr.String() })
	return addr
}

// util-linux logger over every transport and framing it has, beside a file: each
// message comes out once as JSON with the header's fields.
func TestSocketLogger(t *testing.T) {
	logger, err := exec.LookPath("logger")
	if err != nil {
		t.Skip("needs util-linux logger (Debian bsdutils); .ci/run installs it")
	}
	dir := t.TempDir()
	dgram, stream := filepath.Join(dir, "log.sock"), filepath.Join(dir, "app.sock")
	file := filepath.Join(dir, "app.log")
	os.WriteFile(file, []byte("from the file\n"), 0o644)
	p := start(t, "--format=json", "--state-dir=", file,
		"unixgram://"+dgram, "unix://"+stream, "udp=udp://127.0.0.1:0", "tcp=tcp://127.0.0.1:0")
	_, udpPort, _ := net.SplitHostPort(p.addrOf(t, "udp://127.0.0.1:0"))
	_, tcpPort, _ := net.SplitHostPort(p.addrOf(t, "tcp://127.0.0.1:0"))
	p.addrOf(t, "unixgram://"+dgram)
	p.addrOf(t, "unix://"+stream)
	cases := []struct {
		args []string
		tag  string
		host bool // the format carries a hostname
	}{
		{[]string{"--socket", dgram, "-d"}, "log", false}, // the local format, as syslog(3) writes /dev/log
		{[]string{"--socket", dgram, "-d", "--rfc5424"}, "log", true},
		{[]string{"--socket", stream, "-T"}, "app", false},
		{[]string{"--socket", stream, "-T", "--octet-count", "--rfc3164"}, "app", true},
		{[]string{"--socket", stream, "-T", "--octet-count", "--rfc5424"}, "app", true},
		{[]string{"-n", "127.0.0.1", "-P", udpPort, "-d", "--rfc3164"}, "udp", true},
		{[]string{"-n", "127.0.0.1", "-P", udpPort, "-d", "--rfc5424"}, "udp", true},
		{[]string{"-n", "127.0.0.1", "-P", tcpPort, "-T", "--rfc5424"}, "tcp", true},
		{[]string{"-n", "127.0.0.1", "-P", tcpPort, "-T", "--octet-count", "--rfc5424"}, "tcp", true},
	}
	for i, c := range cases {
		msg := fmt.Sprintf("message %d: %s", i, strings.Join(c.args, " "))
		args := append(c.args, "-p", "local3.err", "-t", "myapp", "--", msg)
		if out, err := exec.Command(logger, args...).CombinedOutput(); err != nil {
			t.Fatalf("logger %q: %v: %s", args, err, out)
		}
	}
	p.waitLines(t, len(cases)+1)
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, p.stderr.String())
	}
	seen := map[string]bool{}
	for _, line := range p.output() {
		var o struct{ Time, Tag, File, Severity, Facility, Hostname, App, Message string }
		if err := json.Unmarshal([]byte(line), &o); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		if o.Tag == "app" && o.File == file {
			seen[o.Message] = true
			continue
		}
		var i int
		if _, err := fmt.Sscanf(o.Message, "message %d:", &i); err != nil || i >= len(cases) || seen[o.Message] {
			t.Fatalf("unexpected or repeated line %q", line)
		}
		seen[o.Message] = true
		c := cases[i]
		if o.Tag != c.tag || o.Severity != "err" || o.Facility != "local3" || o.App != "myapp" || (o.Hostname != "") != c.host || o.Time == "" {
			t.Errorf("logger %q: %s", c.args, line)
		}
	}
	if len(seen) != len(cases)+1 {
		t.Errorf("%d distinct lines, want %d: %q", len(seen), len(cases)+1, p.output())
	}
	for _, path := range []string{dgram, stream} {
		if _, err := os.Lstat(path); !os.IsNotExist(err) {
			t.Errorf("%s left behind: %v", path, err)
		}
	}
}

// Lines of a file and of a socket, both written fast, never interleave mid-line and
// all come out on SIGTERM.
func TestSocketBesideFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f.log")
	p := start(t, "--state-dir=", "--socket-format=lines", file, "tcp://127.0.0.1:0")
	addr := p.addrOf(t, "tcp://127.0.0.1:0")
	const n = 20000
	done := make(chan error, 1)
	go func() {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		g := &lineGen{stream: "s"}
		for range n / 100 {
			if _, err := c.Write(g.next(100)); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	f := openAppend(t, file)
	g := &lineGen{stream: "f"}
	for range n / 100 {
		f.Write(g.next(100))
	}
	f.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	p.waitLines(t, 2*n)
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, p.stderr.String())
	}
	checkStreams(t, p.output(), noPrefix, map[string]int{"f": n, "s": n})
}

func TestSocketBadInput(t *testing.T) {
	t.Parallel() // exit codes and messages only: nothing here needs the CPU to itself
	dir := publicTempDir(t, "sidetail-sock")
	regular := filepath.Join(dir, "file.sock")
	os.WriteFile(regular, []byte("keep"), 0o644)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	tests := []struct {
		args   []string
		want   string // what the one line must name
		nobody bool
	}{
		{[]string{"udp://[::1"}, "udp://[::1", false},
		{[]string{"http://127.0.0.1:80"}, "http://127.0.0.1:80", false},
		{[]string{"unix://relative.sock"}, "unix://relative.sock", false},
		{[]string{"tcp://" + taken.Addr().String()}, "tcp://" + taken.Addr().String(), false},
		{[]string{"unix://" + filepath.Join(dir, "missing", "a.sock")}, filepath.Join(dir, "missing", "a.sock"), false},
		{[]string{"unixgram://" + filepath.Join(dir, "ro.sock")}, filepath.Join(dir, "ro.sock"), true},
		{[]string{"unixgram://" + regular}, regular, false},
		{[]string{"--socket-mode=999", "unix://" + filepath.Join(dir, "a.sock")}, "--socket-mode", false},
		{[]string{"--socket-format=gelf", "unix://" + filepath.Join(dir, "a.sock")}, "--socket-format", false},
	}
	for _, tt := range tests {
		cmd := exec.Command(bin, append([]string{"--quiet"}, tt.args...)...)
		if tt.nobody {
			if os.Geteuid() != 0 {
				continue
			}
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		}
		out, err := cmd.CombinedOutput()
		code := cmd.ProcessState.ExitCode()
		msg := strings.TrimSpace(string(out))
		if err == nil || code != 2 || !strings.Contains(msg, tt.want) || strings.Contains(msg, "\n") {
			t.Errorf("sidetail %q: exit %d, output %q; want exit 2 and one line naming %s", tt.args, code, msg, tt.want)
		}
	}
	if data, err := os.ReadFile(regular); err != nil || string(data) != "keep" {
		t.Errorf("the regular file was touched: %q, %v", data, err)
	}
}

// SIGTERM while stdout is stalled, with real clients in every state: a unix
// stream sender whose bytes wait in the kernel behind the stalled output, a tcp
// sender stopped in the middle of a message, a tcp client connected and silent,
// datagrams queued on both datagram sockets. Everything the kernel held comes
// out, the half message as it is, and sidetail exits 0: a client that held it up
// would end it at --drain-timeout with exit 1.
func TestSocketSIGTERM(t *testing.T) {
	dir := t.TempDir()
	urls := []string{"unix://" + filepath.Join(dir, "s.sock"), "unixgram://" + filepath.Join(dir, "d.sock"),
		"udp://127.0.0.1:0", "tcp://127.0.0.1:0"}
	p, open := startStalled(t, append([]string{"--state-dir=", "--socket-format=lines"}, urls...)...)
	dial := func(url string) net.Conn {
		c, err := net.Dial(strings.SplitN(url, ":", 2)[0], p.addrOf(t, url))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	want := map[string]int{"f": 2000, "h": 50, "d": 5, "u": 200}
	// About 110 KiB: the pipe takes 64 KiB, the rest waits in the kernel, charged
	// to the sender, whose default buffer holds it all, so the write returns.
	if _, err := dial(urls[0]).Write((&lineGen{stream: "f"}).next(want["f"])); err != nil {
		t.Fatal(err)
	}
	h := &lineGen{stream: "h"}
	half := string(h.next(want["h"] + 1))
	half = half[:len(half)-20]
	if _, err := io.WriteString(dial(urls[3]), half); err != nil {
		t.Fatal(err)
	}
	half = half[strings.LastIndexByte(half, '\n')+1:] + "\n"
	dial(urls[3]) // connected, silent
	for _, s := range []struct{ stream, url string }{{"d", urls[1]}, {"u", urls[2]}} {
		c, g := dial(s.url), &lineGen{stream: s.stream}
		for range want[s.stream] {
			if _, err := c.Write(bytes.TrimSuffix(g.next(1), []byte("\n"))); err != nil {
				t.Fatal(err)
			}
		}
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	open()
	if code := p.wait(t); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, p.stderr.String())
	}
	lines := p.output()
	i := slices.Index(lines, half)
	if i < 0 {
		t.Fatalf("the half message %q did not come out as it was", half)
	}
	checkStreams(t, slices.Delete(lines, i, i+1), noPrefix, want)
}

// startStalled starts sidetail with a stdout nobody reads until open is called:
// its writes block once the pipe is full, as behind a stalled node agent.
func startStalled(t *testing.T, args ...string) (p *proc, open func()) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p = &proc{cmd: exec.Command(bin, args...), eof: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = w, &p.stderr
	err = p.cmd.Start()
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	go func() {
		defer close(p.eof)
		defer r.Close()
		<-gate
		p.lines.Collect(r, nil)
	}()
	open = sync.OnceFunc(func() { close(gate) })
	t.Cleanup(func() {
		open()
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			p.cmd.Wait()
		}
	})
	return p, open
}
