// Package status answers HTTP GET requests for sidetail's own state (/metrics,
// /healthz, /readyz) with a minimal HTTP/1.1 server: one request per connection,
// answered from a function, then closed.
//
// It is not net/http on purpose: importing net/http's server adds 3.6 MiB to the
// static binary (5.9 to 9.5 MiB), past the 6 MiB budget of the sidecar image,
// while Prometheus and the kubelet's probes need only a GET and a status line.
package status

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"
)

// Response is what a path answers.
type Response struct {
	Code        int // 200, 503, ...
	ContentType string
	Body        []byte
}

// Handler answers a GET or HEAD of path (without the query).
type Handler func(path string) Response

const (
	// maxHead bounds a request's line and headers: a probe or a scrape sends
	// well under 1 KiB.
	maxHead = 8 << 10
	// ioTimeout bounds a connection, so a client that stops reading or writing
	// holds nothing for long.
	ioTimeout = 10 * time.Second
	// maxConns bounds the connections served at once; more are closed unanswered.
	maxConns = 16
)

// Server serves one listener.
type Server struct {
	l     net.Listener
	conns chan struct{} // one token per connection being served
}

// Listen binds addr (host:port; an empty host means every address) at once, so a
// taken port is reported before anything else starts.
func Listen(addr string) (*Server, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &Server{l: l, conns: make(chan struct{}, maxConns)}, nil
}

// Addr is the address bound (with the port chosen for port 0).
func (s *Server) Addr() net.Addr { return s.l.Addr() }

// Serve answers requests with h until ctx is done, then closes the listener and
// returns once every connection is closed.
func (s *Server) Serve(ctx context.Context, h Handler) {
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { s.l.Close() })
	defer stop()
	for {
		c, err := s.l.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// EMFILE and the like: wait instead of spinning.
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		select {
		case s.conns <- struct{}{}:
		default:
			c.Close()
			continue
		}
		wg.Go(func() {
			defer func() { <-s.conns }()
			serveConn(c, h)
		})
	}
}

// Close stops accepting; Serve returns once its connections are done.
func (s *Server) Close() error { return s.l.Close() }

func serveConn(c net.Conn, h Handler) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(ioTimeout))
	head, err := readHead(bufio.NewReaderSize(c, 1024))
	var method, path string
	if err == nil {
		method, path, err = ParseRequestLine(head)
	}
	var r Response
	switch {
	case err != nil:
		r = Response{Code: 400, Body: []byte(err.Error() + "\n")}
	case method != "GET" && method != "HEAD":
		r = Response{Code: 405, Body: []byte("only GET and HEAD\n")}
	default:
		r = h(path)
	}
	if r.ContentType == "" {
		r.ContentType = "text/plain; charset=utf-8"
	}
	var out bytes.Buffer
	fmt.Fprintf(&out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n",
		r.Code, statusText(r.Code), r.ContentType, len(r.Body))
	if method != "HEAD" {
		out.Write(r.Body)
	}
	c.Write(out.Bytes())
}

// readHead reads up to the blank line that ends the headers.
func readHead(r *bufio.Reader) ([]byte, error) {
	var head []byte
	for {
		line, err := r.ReadSlice('\n')
		head = append(head, line...)
		if len(head) > maxHead {
			return nil, errors.New("request head too long")
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read request: %w", err)
		}
		if len(bytes.TrimRight(line, "\r\n")) == 0 && len(head) > len(line) {
			return head, nil
		}
	}
}

// ParseRequestLine returns the method and the path (without its query) of the
// request line at the start of head: METHOD SP TARGET SP HTTP/1.x.
func ParseRequestLine(head []byte) (method, path string, err error) {
	line, _, _ := bytes.Cut(head, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	parts := bytes.Split(line, []byte(" "))
	if len(parts) != 3 || !bytes.HasPrefix(parts[2], []byte("HTTP/1.")) {
		return "", "", errors.New("malformed request line")
	}
	if len(parts[0]) == 0 || !isToken(parts[0]) {
		return "", "", errors.New("malformed method")
	}
	target := parts[1]
	if len(target) == 0 || target[0] != '/' {
		return "", "", errors.New("request target must be a path")
	}
	if i := bytes.IndexAny(target, "?#"); i >= 0 {
		target = target[:i]
	}
	return string(parts[0]), string(target), nil
}

func isToken(b []byte) bool {
	for _, c := range b {
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	return true
}

func statusText(code int) string {
	switch code {
	case 200:
		return "OK"
	case 400:
		return "Bad Request"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 503:
		return "Service Unavailable"
	}
	return "Status " + strconv.Itoa(code)
}
