package tailer

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// SocketSpec is a socket source: a URL given beside the file paths, and the tag its
// messages carry.
type SocketSpec struct {
	Tag     string
	URL     string // as given, e.g. udp://127.0.0.1:514
	Network string // "unixgram", "unix", "udp" or "tcp"
	Address string // the socket file for unix sockets, host:port otherwise
}

// Datagram reports whether every read is one message (unixgram, udp).
func (s SocketSpec) Datagram() bool { return s.Network == "unixgram" || s.Network == "udp" }

// defaultPorts are the IANA syslog ports: 514/udp (RFC 5426), 601/tcp (RFC 6587).
var defaultPorts = map[string]string{"udp": "514", "tcp": "601"}

// ParseSocketURL parses unixgram:///PATH, unix:///PATH, udp://[HOST][:PORT] or
// tcp://[HOST][:PORT]. HOST defaults to 127.0.0.1: a wider bind must be asked for,
// since anything that reaches it can write to our output.
func ParseSocketURL(tag, raw string) (SocketSpec, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return SocketSpec{}, fmt.Errorf("malformed URL: %v", errors.Unwrap(err))
	}
	s := SocketSpec{Tag: tag, URL: raw, Network: u.Scheme}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return s, errors.New("malformed URL: no user, query or fragment, e.g. udp://127.0.0.1:514")
	}
	switch u.Scheme {
	case "unix", "unixgram":
		if u.Host != "" || len(u.Path) < 2 || u.Path[0] != '/' || u.Path[len(u.Path)-1] == '/' {
			return s, fmt.Errorf("%s:// takes an absolute socket path after the two slashes, e.g. %s:///run/log/app.sock", u.Scheme, u.Scheme)
		}
		s.Address = u.Path
		if s.Tag == "" {
			s.Tag = DefaultTag(u.Path)
		}
	case "udp", "tcp":
		if u.Path != "" {
			return s, fmt.Errorf("%s:// takes HOST:PORT only, e.g. %s://127.0.0.1:%s", u.Scheme, u.Scheme, defaultPorts[u.Scheme])
		}
		host, port := u.Hostname(), u.Port()
		if host == "" {
			host = "127.0.0.1"
		}
		if port == "" {
			port = defaultPorts[u.Scheme]
		}
		if n, err := strconv.Atoi(port); err != nil || n > 65535 {
			return s, fmt.Errorf("port %q: not a port number", port)
		}
		s.Address = net.JoinHostPort(host, port)
		if s.Tag == "" {
			s.Tag = u.Scheme + "-" + port
		}
	default:
		return s, fmt.Errorf("unsupported scheme %q: use unixgram://, unix://, udp:// or tcp://", u.Scheme)
	}
	return s, nil
}

// SocketOptions say how sockets are made and their messages read.
type SocketOptions struct {
	Syslog bool        // parse RFC 5424 and RFC 3164 headers; false: each message is a plain line
	Mode   fs.FileMode // permissions of unix socket files
	Buffer int         // receive buffer of datagram sockets, bytes
}

// Socket is a listening socket source. Listen makes it, so bad input is found at
// start-up; Run serves it.
type Socket struct {
	spec SocketSpec
	opts SocketOptions
	log  *slog.Logger

	stream net.Listener // unix, tcp
	dgram  net.Conn     // unixgram, udp
	raw    syscall.RawConn
	rcvbuf int // what the kernel granted: bounds a udp drain at shutdown
	qlen   int // net.unix.max_dgram_qlen when we listened: bounds a unixgram drain

	dropped   atomic.Uint64
	closeOnce sync.Once
}

// Listen creates the socket. A stale socket file (its listener gone) is replaced; a
// live one, or a file that is not a socket, is left alone and reported.
func Listen(spec SocketSpec, opts SocketOptions, log *slog.Logger) (*Socket, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Socket{spec: spec, opts: opts, log: log}
	if err := s.listen(); err != nil {
		return nil, fmt.Errorf("listen %s: %w", spec.URL, err)
	}
	return s, nil
}

func (s *Socket) listen() error {
	unixSocket := s.spec.Network == "unix" || s.spec.Network == "unixgram"
	if unixSocket {
		if err := s.removeStale(); err != nil {
			return err
		}
	}
	var err error
	switch s.spec.Network {
	case "unix", "tcp":
		s.stream, err = net.Listen(s.spec.Network, s.spec.Address)
		if err == nil {
			s.raw, err = s.stream.(syscall.Conn).SyscallConn()
		}
	case "udp", "unixgram":
		var pc net.PacketConn
		if pc, err = net.ListenPacket(s.spec.Network, s.spec.Address); err == nil {
			s.dgram = pc.(net.Conn)
			s.raw, err = pc.(syscall.Conn).SyscallConn()
		}
	}
	if err != nil {
		s.Close()
		var op *net.OpError
		if errors.As(err, &op) && op.Err != nil {
			err = op.Err // "bind: address already in use", without the address twice
		}
		if unixSocket && (errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) || errors.Is(err, unix.EROFS)) {
			return fmt.Errorf("%w: the folder %s must exist and be writable by us (a shared emptyDir)", err, filepath.Dir(s.spec.Address))
		}
		return err
	}
	if unixSocket {
		// bind made the file with our umask; the app may run as another user.
		if err := os.Chmod(s.spec.Address, s.opts.Mode); err != nil {
			s.Close()
			return err
		}
	}
	if s.spec.Network == "unixgram" {
		s.qlen = maxDgramQlen()
	}
	if s.dgram != nil {
		return s.setBuffer()
	}
	return nil
}

// maxDgramQlen returns net.unix.max_dgram_qlen, which the kernel gave the socket
// we just made as the length of its queue. Without /proc, it assumes a long queue:
// the drain at SIGTERM then reads longer, not less.
func maxDgramQlen() int {
	data, err := os.ReadFile("/proc/sys/net/unix/max_dgram_qlen")
	if err != nil {
		return 1 << 10
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || n < 0 {
		return 1 << 10
	}
	return n
}

// removeStale removes a socket file nobody listens on any more (left by a previous
// run that was killed), so the bind can take its place.
func (s *Socket) removeStale() error {
	path := s.spec.Address
	info, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if info.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%s exists and is not a socket: it is left alone; name another path", path)
	}
	// Connecting tells a live socket (another sidetail, a syslog daemon) from a
	// stale file: only the stale one refuses.
	if c, err := net.DialTimeout(s.spec.Network, path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("%s is in use by another process", path)
	}
	return os.Remove(path)
}

// setBuffer asks for a receive buffer of opts.Buffer bytes: SO_RCVBUFFORCE where we
// may (CAP_NET_ADMIN), else SO_RCVBUF, which the kernel caps at net.core.rmem_max.
// It also turns on SO_RXQ_OVFL, with which each datagram carries the socket's count
// of datagrams the kernel dropped because the buffer was full.
func (s *Socket) setBuffer() error {
	var err error
	ctrl := s.raw.Control(func(fd uintptr) {
		if s.opts.Buffer > 0 {
			if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, s.opts.Buffer) != nil {
				unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, s.opts.Buffer)
			}
		}
		// The kernel reports twice what it granted (it counts its bookkeeping).
		got, gerr := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
		if gerr == nil {
			s.rcvbuf = got
		}
		err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RXQ_OVFL, 1)
	})
	if ctrl != nil {
		return ctrl
	}
	if err != nil {
		return fmt.Errorf("setsockopt SO_RXQ_OVFL: %w", err)
	}
	if s.rcvbuf/2 < s.opts.Buffer {
		s.log.Warn("socket buffer smaller than asked: raise net.core.rmem_max or grant CAP_NET_ADMIN",
			"path", s.spec.URL, "asked", s.opts.Buffer, "got", s.rcvbuf/2)
	}
	return nil
}

// Addr returns the address the socket is bound to (the port chosen for port 0).
func (s *Socket) Addr() string {
	if s.stream != nil {
		return s.stream.Addr().String()
	}
	return s.dgram.LocalAddr().String()
}

// URL returns the source as given.
func (s *Socket) URL() string { return s.spec.URL }

// Dropped returns how many datagrams the kernel dropped because our receive buffer
// was full (stdout slower than the senders). It is 0 for stream sockets, whose
// senders wait instead, and for unixgram, whose senders block or get EAGAIN.
func (s *Socket) Dropped() uint64 {
	if s.dgram != nil {
		s.raw.Control(func(fd uintptr) {
			if n, ok := meminfoDrops(int(fd)); ok {
				s.noteDropped(n)
			}
		})
	}
	return s.dropped.Load()
}

// noteDropped records the kernel's drop count n (it only grows) and reports
// whether it grew.
func (s *Socket) noteDropped(n uint64) bool {
	for {
		old := s.dropped.Load()
		if n <= old {
			return false
		}
		if s.dropped.CompareAndSwap(old, n) {
			return true
		}
	}
}

// meminfoDrops reads the socket's drop counter with SO_MEMINFO: exact at any time,
// where SO_RXQ_OVFL reports it only on the next datagram received.
func meminfoDrops(fd int) (uint64, bool) {
	var info [unix.SK_MEMINFO_VARS]uint32
	size := uint32(unsafe.Sizeof(info))
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_MEMINFO,
		uintptr(unsafe.Pointer(&info)), uintptr(unsafe.Pointer(&size)), 0)
	if errno != 0 || size <= unix.SK_MEMINFO_DROPS*4 {
		return 0, false
	}
	return uint64(info[unix.SK_MEMINFO_DROPS]), true
}

// Close closes the socket and removes its file. Run closes the sockets it serves;
// Close is for sockets that never got there.
func (s *Socket) Close() {
	s.closeOnce.Do(func() {
		if s.stream != nil {
			s.stream.Close() // a unix listener removes its file
		}
		if s.dgram != nil {
			s.dgram.Close()
			if s.spec.Network == "unixgram" {
				os.Remove(s.spec.Address)
			}
		}
	})
}

// aLongTimeAgo is a deadline in the past: it wakes a blocked read or accept.
var aLongTimeAgo = time.Unix(1, 0)

// flushAt is how much output a datagram socket collects before it writes.
const flushAt = 64 << 10

// maxDatagram is the largest datagram read whole; a longer one is cut there (UDP
// carries at most 65507 bytes; unix datagrams can be longer).
const maxDatagram = 256 << 10

// serve relays the socket's messages to out until ctx is done, then relays what the
// kernel already holds (queued datagrams, bytes of open connections, connections
// not yet accepted) and closes the socket. It returns only output errors.
func (s *Socket) serve(ctx context.Context, cfg *Config, out *Output) error {
	defer s.Close()
	s.log.Info("listening", "path", s.spec.URL, "addr", s.Addr())
	if s.dgram != nil {
		err := s.serveDatagrams(ctx, cfg, out)
		if n := s.Dropped(); n > 0 {
			s.log.Warn("socket closed; datagrams were dropped by the kernel", "path", s.spec.URL, "dropped", n)
		}
		return err
	}
	return s.serveStream(ctx, cfg, out)
}

// relay parses and encodes the messages of one connection or datagram socket.
type relay struct {
	cfg    *Config
	parser *syslogParser // nil: plain lines
	enc    *messageEncoder
	msg    message
	cont   bool // the last piece was partial: the next one continues its message
	outBuf []byte
}

func (s *Socket) newRelay(cfg *Config) *relay {
	r := &relay{cfg: cfg, enc: newMessageEncoder(cfg.Format, s.spec.Tag, s.spec.URL)}
	if s.opts.Syslog {
		r.parser = newSyslogParser()
	}
	r.msg.reset()
	return r
}

// add encodes one message, or one piece of a message cut at --max-line: the pieces
// after the first carry the first one's header fields.
func (r *relay) add(raw []byte, partial bool, now time.Time) {
	switch {
	case r.cont:
		r.msg.text = append(r.msg.text[:0], raw...)
	case r.parser != nil:
		r.parser.parse(raw, &r.msg)
	default:
		r.msg.text = append(r.msg.text[:0], raw...)
	}
	r.cont = partial
	r.outBuf = r.enc.append(r.outBuf, &r.msg, partial, now)
}

func (r *relay) flush(out *Output) error {
	if len(r.outBuf) == 0 {
		return nil
	}
	err := out.write(r.outBuf)
	r.outBuf = r.outBuf[:0]
	return err
}

// serveDatagrams reads one message per datagram. It collects what is queued into
// one write, so a burst costs one write to stdout rather than one per message.
func (s *Socket) serveDatagrams(ctx context.Context, cfg *Config, out *Output) error {
	stop := context.AfterFunc(ctx, func() { s.dgram.SetReadDeadline(aLongTimeAgo) })
	defer stop()
	r := s.newRelay(cfg)
	d := &datagramReader{s: s, buf: make([]byte, maxDatagram), oob: make([]byte, unix.CmsgSpace(4))}
	drain := false
	var held heldBound // what the drain may still read
	for {
		n, err := d.recv(!drain)
		if errors.Is(err, os.ErrDeadlineExceeded) && !drain {
			// SIGTERM: what the kernel holds now is ours to write, without
			// waiting for more. A sender that keeps going is cut off once we
			// have read as much as the queue can hold.
			drain = true
			held = s.held()
			s.dgram.SetReadDeadline(time.Time{})
			continue
		}
		if err != nil {
			if drain && errors.Is(err, unix.EAGAIN) {
				return r.flush(out)
			}
			return errors.Join(r.flush(out), s.recvFailed(err))
		}
		now := time.Now()
		s.split(r, d.buf[:n], now)
		if drain && held.take(n) {
			return r.flush(out)
		}
		// More queued? Take it into the same write.
		for !drain && len(r.outBuf) < flushAt {
			n, err := d.recv(false)
			if err != nil {
				break // EAGAIN, or an error the next blocking recv reports
			}
			s.split(r, d.buf[:n], now)
		}
		if err := r.flush(out); err != nil {
			return err
		}
	}
}

// heldBound is at least what the kernel held for a datagram socket when the drain
// at SIGTERM began. The drain ends when the queue is empty or once it has read
// both this many bytes and this many datagrams.
type heldBound struct{ bytes, datagrams int }

func (h *heldBound) take(n int) (done bool) {
	h.bytes -= n
	h.datagrams--
	return h.bytes <= 0 && h.datagrams <= 0
}

func (s *Socket) held() heldBound {
	if s.spec.Network == "unixgram" {
		// Unix datagrams are charged to their senders' buffers, not to ours, so
		// our buffer says nothing about how many bytes are queued: the queue's
		// length does. The kernel refuses a datagram once more than qlen wait.
		return heldBound{datagrams: s.qlen + 1}
	}
	// UDP queues while what it holds is within our buffer, so at most one
	// datagram goes past it.
	return heldBound{bytes: s.rcvbuf + maxDatagram}
}

// split hands one datagram to the relay, in pieces of at most --max-line bytes.
func (s *Socket) split(r *relay, data []byte, now time.Time) {
	for len(data) > r.cfg.MaxLine {
		cut := cutPoint(data, r.cfg.MaxLine)
		r.add(data[:cut], true, now)
		data = data[cut:]
	}
	r.add(data, false, now)
}

func (s *Socket) recvFailed(err error) error {
	// A read error on a socket we own is not the output's fault; it ends this
	// source, which is worth an error line, not the whole relay.
	s.log.Error("socket read failed; source stopped", "path", s.spec.URL, "err", err)
	return nil
}

// datagramReader receives datagrams with their control messages.
type datagramReader struct {
	s        *Socket
	buf, oob []byte
}

// recv receives one datagram. wait false returns EAGAIN when none is queued.
func (d *datagramReader) recv(wait bool) (int, error) {
	var n, oobn, flags int
	var rerr error
	err := d.s.raw.Read(func(fd uintptr) bool {
		n, oobn, flags, _, rerr = unix.Recvmsg(int(fd), d.buf, d.oob, unix.MSG_DONTWAIT)
		return !wait || rerr != unix.EAGAIN
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return 0, err
	}
	if flags&unix.MSG_TRUNC != 0 {
		d.s.log.Warn("datagram longer than the read buffer: cut", "path", d.s.spec.URL, "bytes", maxDatagram)
	}
	if oobn > 0 {
		d.dropCount(d.oob[:oobn])
	}
	return n, nil
}

// dropCount reads the SO_RXQ_OVFL control message: the kernel's count of datagrams
// dropped so far, sent along once it is non-zero.
func (d *datagramReader) dropCount(oob []byte) {
	for len(oob) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		if h.Len < unix.SizeofCmsghdr || int(h.Len) > len(oob) {
			return
		}
		data := oob[unix.CmsgLen(0):h.Len]
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SO_RXQ_OVFL && len(data) >= 4 {
			if d.s.noteDropped(uint64(binary.NativeEndian.Uint32(data))) {
				// The logger lets one through per 30 s; Dropped has the count.
				d.s.log.Warn("datagrams dropped by the kernel: stdout is slower than the senders",
					"path", d.s.spec.URL, "dropped", d.s.dropped.Load())
			}
		}
		oob = oob[min(len(oob), unix.CmsgSpace(int(h.Len)-unix.CmsgLen(0))):]
	}
}

// serveStream accepts connections and relays each in its own goroutine, which the
// stream socket owns and waits for.
func (s *Socket) serveStream(ctx context.Context, cfg *Config, out *Output) error {
	var wg sync.WaitGroup
	var failOnce sync.Once
	var failed error
	serve := func(c net.Conn) {
		wg.Go(func() {
			if err := s.serveConn(ctx, c, cfg, out); err != nil {
				failOnce.Do(func() { failed = err })
			}
		})
	}
	defer wg.Wait()
	type deadliner interface{ SetDeadline(time.Time) error }
	stop := context.AfterFunc(ctx, func() { s.stream.(deadliner).SetDeadline(aLongTimeAgo) })
	defer stop()
	for {
		c, err := s.stream.Accept()
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			if errors.Is(err, unix.EMFILE) || errors.Is(err, unix.ENFILE) {
				// Out of descriptors: the connections we serve will end and free
				// some; net/http waits the same way.
				s.log.Warn("accept failed: too many open files", "path", s.spec.URL)
				select {
				case <-time.After(100 * time.Millisecond):
				case <-ctx.Done():
				}
				continue
			}
			s.log.Error("accept failed; source stopped", "path", s.spec.URL, "err", err)
			return nil
		}
		serve(c)
	}
	// SIGTERM: connections the kernel completed but we had not accepted yet hold
	// messages too. The past deadline that ended Accept would fail any further
	// Accept before it looks at the queue, so they are taken with accept4.
	s.acceptBacklog(serve)
	s.Close()
	wg.Wait()
	return failed
}

// acceptBacklog stops accepting and hands serve the connections the kernel holds
// in the listen queue. A unix listener shut for reading refuses new connections
// (the client sees ECONNREFUSED) and keeps the queue, so the queue is taken to its
// end. TCP has no such shutdown (it drops the queue), so as many connections are
// taken as were queued when we looked; one completed after that is reset at close.
func (s *Socket) acceptBacklog(serve func(net.Conn)) {
	queued := -1 // unknown: until the queue is empty
	s.raw.Control(func(fd uintptr) {
		if s.spec.Network == "unix" {
			unix.Shutdown(int(fd), unix.SHUT_RD)
			return
		}
		// On a listener, tcpi_unacked is the length of its accept queue.
		if info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
			queued = int(info.Unacked)
		}
	})
	for queued != 0 {
		c, err := s.acceptQueued()
		if errors.Is(err, unix.EINTR) {
			continue
		}
		queued--
		switch {
		case errors.Is(err, unix.EAGAIN):
			return
		case errors.Is(err, unix.ECONNABORTED):
			continue // that one was reset by its client; the rest still wait
		case err != nil:
			s.log.Error("connections not yet accepted at shutdown were lost", "path", s.spec.URL, "err", err)
			return
		}
		serve(c)
	}
}

// acceptQueued accepts a connection already queued, without waiting. It goes
// through Control: the listener's RawConn has no Read (it returns EINVAL), and the
// descriptor is non-blocking, so accept4 returns EAGAIN once the queue is empty.
func (s *Socket) acceptQueued() (net.Conn, error) {
	var nfd int
	var aerr error
	if err := s.raw.Control(func(fd uintptr) {
		nfd, _, aerr = unix.Accept4(int(fd), unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK)
	}); err != nil {
		return nil, err
	}
	if aerr != nil {
		return nil, aerr
	}
	f := os.NewFile(uintptr(nfd), "accepted")
	defer f.Close()
	return net.FileConn(f)
}

// serveConn relays one connection until it ends, or until ctx is done and the
// bytes the kernel holds for it are relayed. Backpressure is the point: while the
// output blocks we do not read, so the kernel's window closes and the sender waits
// instead of us buffering or dropping.
func (s *Socket) serveConn(ctx context.Context, c net.Conn, cfg *Config, out *Output) error {
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetReadDeadline(aLongTimeAgo) })
	defer stop()
	r := s.newRelay(cfg)
	fr := NewFramer(cfg.MaxLine)
	var src io.Reader = c
	for {
		n, err := fr.Fill(src)
		if n > 0 {
			now := time.Now()
			for {
				msg, partial, ok := fr.Next()
				if !ok {
					break
				}
				r.add(msg, partial, now)
			}
			if err := r.flush(out); err != nil {
				return err
			}
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			if _, ok := src.(*queuedReader); ok {
				break // cannot happen: the wakeup fires once, and it was cleared
			}
			c.SetReadDeadline(time.Time{})
			rc, cerr := c.(syscall.Conn).SyscallConn()
			if cerr != nil {
				break
			}
			src = &queuedReader{raw: rc, left: queuedBytes(rc)}
			continue
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				s.log.Info("connection ended", "path", s.spec.URL, "err", err)
			}
			break
		}
	}
	if rest := fr.Rest(); len(rest) > 0 {
		r.add(rest, false, time.Now())
	}
	return r.flush(out)
}

// queuedBytes returns how many bytes the kernel holds for a connection: what the
// drain at SIGTERM reads, so a sender that keeps writing does not hold us up.
// Where the kernel cannot say, its receive buffer bounds it.
func queuedBytes(rc syscall.RawConn) int {
	var n int
	rc.Control(func(fd uintptr) {
		var err error
		if n, err = unix.IoctlGetInt(int(fd), unix.SIOCINQ); err != nil {
			n, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
			n = max(n, readSize)
		}
	})
	return n
}

// queuedReader reads what the kernel holds for a connection and then reports EOF,
// without waiting for more; left bounds it for a sender that keeps writing.
type queuedReader struct {
	raw  syscall.RawConn
	left int
}

func (q *queuedReader) Read(p []byte) (int, error) {
	if q.left <= 0 {
		return 0, io.EOF
	}
	var n int
	var rerr error
	err := q.raw.Read(func(fd uintptr) bool {
		n, rerr = unix.Read(int(fd), p[:min(len(p), q.left)])
		return true
	})
	if err == nil {
		err = rerr
	}
	if errors.Is(err, unix.EAGAIN) || (err == nil && n == 0) {
		return 0, io.EOF
	}
	if n < 0 {
		n = 0
	}
	q.left -= n
	return n, err
}
