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
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	bin := flag.String("bin", "sidetail", "the sidetail binary")
	n := flag.Int("n", 500_000, "messages per transport")
	senders := flag.Int("senders", 2, "connections sending at once")
	format := flag.String("format", "raw", "sidetail --format")
	flag.Parse()
	dir, err := os.MkdirTemp("", "socketload-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer os.RemoveAll(dir)
	fmt.Printf("%-9s %10s %12s %16s\n", "transport", "messages", "messages/s", "CPU/100k msgs")
	for _, url := range []string{"unixgram://" + filepath.Join(dir, "d.sock"), "unix://" + filepath.Join(dir, "s.sock"),
		"udp://127.0.0.1:0", "tcp://127.0.0.1:0"} {
		if err := run(*bin, url, *format, *n, *senders); err != nil {
			fmt.Fprintln(os.Stderr, "socketload:", err)
			os.Exit(1)
		}
	}
}

var listening = regexp.MustCompile(`msg=listening path=\S+ addr=(\S+)`)

func run(bin, url, format string, n, senders int) error {
	cmd := exec.Command(bin, "--format="+format, url)
	stdout, _ := cmd.StdoutPipe()
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		return err
	}
	errs := bufio.NewScanner(stderr)
	var addr string
	for errs.Scan() {
		if m := listening.FindStringSubmatch(errs.Text()); m != nil {
			addr = m[1]
			break
		}
	}
	go func() {
		for errs.Scan() {
			fmt.Fprintln(os.Stderr, errs.Text())
		}
	}()
	var got atomic.Int64
	progress := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		r := bufio.NewReaderSize(stdout, 1<<20)
		for {
			if _, err := r.ReadSlice('\n'); err != nil && err != bufio.ErrBufferFull {
				return
			}
			got.Add(1)
			select {
			case progress <- struct{}{}:
			default:
			}
		}
	}()
	network := regexp.MustCompile(`^\w+`).FindString(url)
	datagram := network == "udp" || network == "unixgram"
	begin := time.Now()
	var sent atomic.Int64
	var wg sync.WaitGroup
	for id := range senders {
		wg.Go(func() {
			c, err := net.Dial(network, addr)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return
			}
			defer c.Close()
			w := bufio.NewWriterSize(c, 64<<10)
			var msg []byte
			for seq := range n / senders {
				msg = fmt.Appendf(msg[:0], "<14>1 2026-11-23T10:00:00.000001Z web01 nginx %d - - GET /index.html?id=%09d HTTP/1.1 200 512", id, seq)
				if !datagram {
					fmt.Fprintf(w, "%d %s", len(msg), msg) // octet counting
					continue
				}
				for network == "udp" && sent.Load()-got.Load() > 2000 {
					<-progress
				}
				c.Write(msg)
				sent.Add(1)
			}
			w.Flush()
		})
	}
	wg.Wait()
	for got.Load() < int64(n) {
		select {
		case <-progress:
		case <-time.After(10 * time.Second):
			return fmt.Errorf("%s: %d of %d messages came out", url, got.Load(), n)
		}
	}
	elapsed := time.Since(begin)
	cmd.Process.Signal(syscall.SIGTERM)
	<-done
	cmd.Wait()
	cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	fmt.Printf("%-9s %10d %12.0f %16s\n", network, n, float64(n)/elapsed.Seconds(),
		(cpu * 100_000 / time.Duration(n)).Round(time.Millisecond))
	return nil
}
