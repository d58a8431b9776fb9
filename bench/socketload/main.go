// Command socketload measures how fast sidetail relays syslog messages from each
// kind of socket to its stdout (read by this program, counted, thrown away) and the
// CPU sidetail spends per 100k messages. One sidetail per transport; each sends -n
// RFC 5424 messages of about 120 bytes from -senders connections at once. UDP has no
// flow control, so its senders stay a window ahead of the output: the figure is what
// sidetail sustains without drops.
//
//	socketload -bin ./sidetail -n 500000
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sidetail/sidetail/bench/internal/command"
)

func main() { command.Main("socketload", &socketload{}) }

// socketload is one run's settings, from the flags.
type socketload struct {
	bin     string
	n       int // messages per transport
	senders int
	format  string
}

func (s *socketload) Flags(fs *flag.FlagSet) {
	fs.StringVar(&s.bin, "bin", "sidetail", "the sidetail binary")
	fs.IntVar(&s.n, "n", 500_000, "messages per transport")
	fs.IntVar(&s.senders, "senders", 2, "connections sending at once")
	fs.StringVar(&s.format, "format", "raw", "sidetail --format")
}

// Run measures each transport in turn, one line each.
func (s *socketload) Run([]string) error {
	dir, err := os.MkdirTemp("", "socketload-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fmt.Printf("%-9s %10s %12s %16s\n", "transport", "messages", "messages/s", "CPU/100k msgs")
	for _, url := range []string{"unixgram://" + filepath.Join(dir, "d.sock"), "unix://" + filepath.Join(dir, "s.sock"),
		"udp://127.0.0.1:0", "tcp://127.0.0.1:0"} {
		if err := s.transport(url); err != nil {
			return err
		}
	}
	return nil
}

var listening = regexp.MustCompile(`msg=listening path=\S+ addr=(\S+)`)

// transport runs one sidetail on url, sends it s.n messages and prints how fast
// they came out and the CPU it took.
func (s *socketload) transport(url string) error {
	r, err := s.start(url)
	if err != nil {
		return err
	}
	network := regexp.MustCompile(`^\w+`).FindString(url)
	begin := time.Now()
	s.send(network, r)
	for r.got.Load() < int64(s.n) {
		select {
		case <-r.progress:
		case <-time.After(10 * time.Second):
			return fmt.Errorf("%s: %d of %d messages came out", url, r.got.Load(), s.n)
		}
	}
	elapsed := time.Since(begin)
	r.cmd.Process.Signal(syscall.SIGTERM)
	<-r.done
	r.cmd.Wait()
	cpu := r.cmd.ProcessState.UserTime() + r.cmd.ProcessState.SystemTime()
	fmt.Printf("%-9s %10d %12.0f %16s\n", network, s.n, float64(s.n)/elapsed.Seconds(),
		(cpu * 100_000 / time.Duration(s.n)).Round(time.Millisecond))
	return nil
}

// relay is a running sidetail listening on a socket, and the lines it has written.
type relay struct {
	cmd      *exec.Cmd
	addr     string        // where it listens
	got      atomic.Int64  // lines written to its stdout
	progress chan struct{} // a line came out since the last receive
	done     chan struct{} // its stdout ended
}

// start runs sidetail on url and returns once it listens; its stderr after that
// goes to ours.
func (s *socketload) start(url string) (*relay, error) {
	r := &relay{cmd: exec.Command(s.bin, "--format="+s.format, url),
		progress: make(chan struct{}, 1), done: make(chan struct{})}
	stdout, _ := r.cmd.StdoutPipe()
	stderr, _ := r.cmd.StderrPipe()
	if err := r.cmd.Start(); err != nil {
		return nil, err
	}
	errs := bufio.NewScanner(stderr)
	for errs.Scan() {
		if m := listening.FindStringSubmatch(errs.Text()); m != nil {
			r.addr = m[1]
			break
		}
	}
	go func() {
		for errs.Scan() {
			fmt.Fprintln(os.Stderr, errs.Text())
		}
	}()
	go r.count(stdout)
	return r, nil
}

// count counts the lines of stdout until it ends.
func (r *relay) count(stdout io.Reader) {
	defer close(r.done)
	br := bufio.NewReaderSize(stdout, 1<<20)
	for {
		if _, err := br.ReadSlice('\n'); err != nil && err != bufio.ErrBufferFull {
			return
		}
		r.got.Add(1)
		select {
		case r.progress <- struct{}{}:
		default:
		}
	}
}

// send sends s.n messages to r from s.senders connections at once. UDP senders
// stay at most 2000 messages ahead of the output: UDP has no flow control.
func (s *socketload) send(network string, r *relay) {
	datagram := network == "udp" || network == "unixgram"
	var sent atomic.Int64
	var wg sync.WaitGroup
	for id := range s.senders {
		wg.Go(func() {
			c, err := net.Dial(network, r.addr)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return
			}
			defer c.Close()
			w := bufio.NewWriterSize(c, 64<<10)
			var msg []byte
			for seq := range s.n / s.senders {
				msg = fmt.Appendf(msg[:0], "<14>1 2026-11-23T10:00:00.000001Z web01 nginx %d - - GET /index.html?id=%09d HTTP/1.1 200 512", id, seq)
				if !datagram {
					fmt.Fprintf(w, "%d %s", len(msg), msg) // octet counting
					continue
				}
				for network == "udp" && sent.Load()-r.got.Load() > 2000 {
					<-r.progress
				}
				c.Write(msg)
				sent.Add(1)
			}
			w.Flush()
		})
	}
	wg.Wait()
}
