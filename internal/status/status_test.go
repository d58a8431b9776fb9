package status

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
)

func serve(t *testing.T, h Handler) string {
	t.Helper()
	s, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { s.Serve(ctx, h) })
	t.Cleanup(func() {
		cancel()
		wg.Wait() // Serve returns once stopped
	})
	return s.Addr().String()
}

func routes(path string) Response {
	switch path {
	case "/metrics":
		return Response{Code: 200, ContentType: "text/plain; version=0.0.4", Body: []byte("up 1\n")}
	case "/healthz":
		return Response{Code: 503, Body: []byte("stuck\n")}
	}
	return Response{Code: 404, Body: []byte("not found\n")}
}

func TestServe(t *testing.T) {
	addr := serve(t, routes)
	for _, tc := range []struct {
		method, path string
		code         int
		body, ctype  string
	}{
		{"GET", "/metrics", 200, "up 1\n", "text/plain; version=0.0.4"},
		{"GET", "/metrics?x=1", 200, "up 1\n", "text/plain; version=0.0.4"},
		{"HEAD", "/metrics", 200, "", "text/plain; version=0.0.4"},
		{"GET", "/healthz", 503, "stuck\n", "text/plain; charset=utf-8"},
		{"GET", "/nope", 404, "not found\n", "text/plain; charset=utf-8"},
		{"POST", "/metrics", 405, "only GET and HEAD\n", "text/plain; charset=utf-8"},
	} {
		req, _ := http.NewRequest(tc.method, "http://"+addr+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.method, tc.path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code || string(body) != tc.body || resp.Header.Get("Content-Type") != tc.ctype {
			t.Errorf("%s %s: %d %q %q, want %d %q %q", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), body,
				tc.code, tc.ctype, tc.body)
		}
	}
}

func TestMalformedRequests(t *testing.T) {
	addr := serve(t, routes)
	for _, req := range []string{
		"GARBAGE\r\n\r\n",
		"GET metrics HTTP/1.1\r\n\r\n",
		"GET /metrics\r\n\r\n",
		"GET /" + strings.Repeat("a", maxHead) + " HTTP/1.1\r\n\r\n",
	} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte(req))
		resp, _ := io.ReadAll(c)
		c.Close()
		if !bytes.HasPrefix(resp, []byte("HTTP/1.1 400 ")) {
			t.Errorf("%.40q: answered %.60q, want 400", req, resp)
		}
	}
}

func TestPortTaken(t *testing.T) {
	s, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := Listen(s.Addr().String()); err == nil {
		t.Fatal("second Listen on a taken port succeeded")
	}
}

func TestServeStops(t *testing.T) {
	s, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	// A client that never sends its request must not hold Serve past the
	// connection's timeout; here it closes as Serve stops.
	idle, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		s.Serve(ctx, routes)
		close(done)
	}()
	cancel()
	idle.Close()
	<-done
	if _, err := net.Dial("tcp", s.Addr().String()); err == nil {
		t.Error("listener still open after Serve returned")
	}
}

func FuzzParseRequestLine(f *testing.F) {
	for _, s := range []string{"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", "HEAD /healthz?a=b HTTP/1.0\r\n\r\n", "GET  / HTTP/1.1", "", "GET /\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, head []byte) {
		method, path, err := ParseRequestLine(head)
		if err != nil {
			return
		}
		if method == "" || strings.Trim(method, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
			t.Fatalf("%q: method %q", head, method)
		}
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " ?#\n") {
			t.Fatalf("%q: path %q", head, path)
		}
	})
}
