package tailer

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sidetail/sidetail/internal/syncbuf"
)

// watched runs one follower on path with inotify and no timer that could stand in
// for a missing event: polling and the safety poll are an hour apart, so whatever
// it relays, an event brought it.
func watched(t *testing.T, path string) *syncbuf.Buffer {
	t.Helper()
	return watchedSettle(t, path, 0)
}

// watchedSettle is watched with a settle period.
func watchedSettle(t *testing.T, path string, settle time.Duration) *syncbuf.Buffer {
	t.Helper()
	_, out, _ := watchedTailer(t, path, settle)
	return out
}

// watchedTailer is watchedSettle with the tailer it runs, and stop, which shuts
// it down (as SIGTERM does) and returns once it ended; cleanup stops it too.
func watchedTailer(t *testing.T, path string, settle time.Duration) (tl *tailer, out *syncbuf.Buffer, stop func()) {
	t.Helper()
	tl, out = inotifyTailer(t, settle)
	w := tl.watcher
	ctx, cancel := context.WithCancel(context.Background())
	var done sync.WaitGroup
	done.Go(func() { w.Run(ctx) })
	done.Go(func() {
		if err := tl.follower(path, "t", followOpts{}).run(ctx, w); err != nil {
			t.Errorf("follower: %v", err)
		}
	})
	stop = func() {
		cancel()
		done.Wait()
	}
	t.Cleanup(stop)
	return tl, out, stop
}

// inotifyTailer returns a tailer, writing to out, whose watcher uses inotify and
// no timer that could stand in for a missing event (see watched); its Run is the
// caller's to start.
func inotifyTailer(t *testing.T, settle time.Duration) (tl *tailer, out *syncbuf.Buffer) {
	t.Helper()
	cfg := &Config{MaxLine: 1 << 20, PollInterval: time.Hour, Settle: settle, Log: slog.New(slog.DiscardHandler)}
	w := newWatcher(cfg.Log, inotifyWhereItWorks, cfg.PollInterval)
	if w.in == nil {
		t.Skip("no inotify here")
	}
	w.safety = time.Hour
	out = &syncbuf.Buffer{}
	return &tailer{cfg: cfg, out: NewOutput(out), files: newRegistry(), watcher: w, bufs: newBufPool()}, out
}

// waitOutput waits until out holds want; the deadline is a hang guard.
func waitOutput(t *testing.T, out *syncbuf.Buffer, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for out.String() != want {
		if time.Now().After(deadline) {
			t.Fatalf("output %q, want %q", out.String(), want)
		}
		time.Sleep(time.Millisecond)
	}
}

// A log folder deleted and made again is watched again: inotify drops a watch
// with its folder, and without a new one nothing but the safety poll would wake
// the follower (files rotated and deleted in between would be lost).
func TestWatchFolderRecreated(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "logs")
	path := filepath.Join(dir, "app.log")
	os.Mkdir(dir, 0o755)
	write(t, path, "a\n", os.O_APPEND)
	out := watched(t, path)
	want := "a\n"
	waitOutput(t, out, want)
	for i := range 20 { // the race between a folder made again and its parent's watch, many times
		line := fmt.Sprintf("%d\n", i)
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		write(t, path, line, os.O_APPEND)
		want += line
		waitOutput(t, out, want)
		// Lines appended later come through the new folder's watch.
		write(t, path, "more\n", os.O_APPEND)
		want += "more\n"
		waitOutput(t, out, want)
	}
}

// A log folder deleted and made again while the follower still drains the file
// it held there: the kernel keeps a folder alive while a file in it is open, and
// reports the folder's deletion only when the drain closes the file, a settle
// period later (an hour here). The folder's parent reports it at once: the file
// made in the new folder is opened before it is deleted in turn, with the next
// folder, and its lines come once the drain is over (here, at shutdown).
func TestWatchFolderRecreatedWhileDrained(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "logs")
	path := filepath.Join(dir, "app.log")
	os.Mkdir(dir, 0o755)
	write(t, path, "a\n", os.O_APPEND)
	_, out, stop := watchedTailer(t, path, time.Hour)
	waitOutput(t, out, "a\n")
	for _, line := range []string{"b\n", "c\n"} {
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		write(t, path, line, os.O_APPEND)
		waitOpened(t, path)
	}
	stop()
	if got := out.String(); got != "a\nb\nc\n" {
		t.Errorf("output %q, want %q", got, "a\nb\nc\n")
	}
}

// A folder's parent is watched for names only (see watcher.guards): writes to
// the other files of a folder sidetail does not read wake nothing. Also after the
// folder was deleted and made again, while the parent was watched in its place
// for every event, the nearest folder there.
func TestWatchParentForNamesOnly(t *testing.T) {
	top := t.TempDir()
	dir := filepath.Join(top, "logs")
	path := filepath.Join(dir, "app.log")
	os.Mkdir(dir, 0o755)
	write(t, path, "a\n", os.O_APPEND)
	tl, out, _ := watchedTailer(t, path, 0)
	waitOutput(t, out, "a\n")
	fd := tl.watcher.in.fd
	waitMask(t, fd, top, guardMask)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	waitMask(t, fd, top, inotifyMask) // watched in the folder's place
	os.Mkdir(dir, 0o755)
	write(t, path, "b\n", os.O_APPEND)
	waitOutput(t, out, "a\nb\n")
	waitMask(t, fd, top, guardMask)
}

// waitMask waits until the inotify instance fd watches folder dir for the events
// of want; the deadline is a hang guard.
func waitMask(t *testing.T, fd int, dir string, want uint32) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for got := watchMask(t, fd, dir); got != want; got = watchMask(t, fd, dir) {
		if time.Now().After(deadline) {
			t.Fatalf("%s watched for %#x, want %#x", dir, got, want)
		}
		time.Sleep(time.Millisecond)
	}
}

// watchMask returns the events the inotify instance fd watches folder dir for
// (0: not watched), as /proc/self/fdinfo says.
func watchMask(t *testing.T, fd int, dir string) uint32 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	info, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", fd))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(info)) {
		var wd int
		var ino uint64
		var mask uint32
		if _, err := fmt.Sscanf(line, "inotify wd:%d ino:%x sdev:%x mask:%x", &wd, &ino, new(uint64), &mask); err == nil && ino == st.Ino {
			return mask
		}
	}
	return 0
}

// A symbolic link among the folders of the path, switched as a deploy switches
// "current" to a new release: the switch happens in the folder holding the link,
// which is watched, so the file that took the path is read at once; and the
// writes to it wake the follower, through a watch moved to the link's new target.
// (A file that held the path only between two switches whose events are read
// together is not known: by then the path names the next.)
func TestWatchLinkedFolderSwitched(t *testing.T) {
	top := t.TempDir()
	cur := filepath.Join(top, "current")
	for _, r := range []string{"r1", "r2", "r3"} {
		if err := os.Mkdir(filepath.Join(top, r), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	want := ""
	add := func(r, line string) {
		write(t, filepath.Join(top, r, "app.log"), line, os.O_APPEND)
		want += line
	}
	switchTo := func(r string) { mkLink(t, r, cur) }
	add("r1", "one\n")
	switchTo("r1")
	out := watched(t, filepath.Join(cur, "app.log"))
	waitOutput(t, out, want)
	for _, step := range []struct{ to, before, after string }{
		{"r2", "two\n", "two-b\n"},
		{"r3", "three\n", "three-b\n"},
		{"r1", "one-b\n", "one-c\n"}, // back to r1: from where it was left
	} {
		add(step.to, step.before)
		switchTo(step.to)
		waitOutput(t, out, want)
		add(step.to, step.after)
		waitOutput(t, out, want)
	}
}

// A symbolic link into another folder: writes and rotations happen in the
// target's folder, so it is watched and searched for rotated files too.
func TestWatchSymlinkTarget(t *testing.T) {
	top := t.TempDir()
	links, real := filepath.Join(top, "links"), filepath.Join(top, "real")
	os.Mkdir(links, 0o755)
	os.Mkdir(real, 0o755)
	target, path := filepath.Join(real, "app.log"), filepath.Join(links, "app.log")
	write(t, target, "1\n", os.O_APPEND)
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	out := watched(t, path)
	waitOutput(t, out, "1\n")
	write(t, target, "2\n", os.O_APPEND)
	waitOutput(t, out, "1\n2\n")
	// Rename rotation of the target, beside it.
	if err := os.Rename(target, target+".1"); err != nil {
		t.Fatal(err)
	}
	write(t, target, "3\n", os.O_APPEND)
	waitOutput(t, out, "1\n2\n3\n")
}

// Links met on the way to the file other than the path and its folders: a link
// to a link (switched as a deploy does), and a link whose target's folder is a
// link. Switching either changes the file the path names, with an event in a
// watched folder under a name that is not the path's: every change of names
// there must wake the follower, or only the safety poll would find the new file.
func TestWatchLinkChainSwitched(t *testing.T) {
	for _, c := range []struct {
		name string
		make func(top string) (path string, switchTo func(r string) string)
	}{
		{"link to a link", func(top string) (string, func(string) string) {
			path := filepath.Join(top, "app.log")
			mkLink(t, "mid", path)
			return path, func(r string) string {
				mkLink(t, r+".log", filepath.Join(top, "mid"))
				return filepath.Join(top, r+".log")
			}
		}},
		{"link into a linked folder", func(top string) (string, func(string) string) {
			for _, r := range []string{"r1", "r2", "r3"} {
				if err := os.Mkdir(filepath.Join(top, r), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			path := filepath.Join(top, "app.log")
			mkLink(t, "cur/app.log", path)
			return path, func(r string) string {
				mkLink(t, r, filepath.Join(top, "cur"))
				return filepath.Join(top, r, "app.log")
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			path, switchTo := c.make(t.TempDir())
			first := switchTo("r1")
			write(t, first, "1\n", os.O_APPEND)
			out := watched(t, path)
			waitOutput(t, out, "1\n")
			write(t, switchTo("r2"), "2\n", os.O_APPEND)
			waitOutput(t, out, "1\n2\n")
			// Switched to where the file is not yet: it is waited for there.
			next := switchTo("r3")
			waitClosed(t, first)
			write(t, next, "3\n", os.O_APPEND)
			waitOutput(t, out, "1\n2\n3\n")
		})
	}
}

// waitClosed waits until this process holds no descriptor of file (by the name
// it had when opened, or now).
func waitClosed(t *testing.T, file string) {
	t.Helper()
	waitHeld(t, file+" closed", func(name string) bool { return strings.HasPrefix(name, file) }, false)
}

// waitOpened waits until this process holds file, not deleted.
func waitOpened(t *testing.T, file string) {
	t.Helper()
	waitHeld(t, file+" opened", func(name string) bool { return name == file }, true)
}

// waitHeld waits until some descriptor of this process names a file that passes
// is (held), or none does; a deleted file's name, in /proc/self/fd, ends in
// " (deleted)". what names the wait in its failure; the deadline is a hang guard.
func waitHeld(t *testing.T, what string, is func(name string) bool, held bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		found := false
		fds, _ := os.ReadDir("/proc/self/fd")
		for _, fd := range fds {
			if name, _ := os.Readlink("/proc/self/fd/" + fd.Name()); is(name) {
				found = true
			}
		}
		if found == held {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited 10 s for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// mkLink makes (or switches) the symbolic link at link to target, atomically.
func mkLink(t *testing.T, target, link string) {
	t.Helper()
	tmp := link + ".next"
	if err := os.Symlink(target, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, link); err != nil {
		t.Fatal(err)
	}
}

// A file with another hard link, written under that name (the app's "current"
// name for the file we follow): its writes wake the follower, with nothing else
// going on in the folder.
func TestWatchWrittenThroughAHardLink(t *testing.T) {
	dir := t.TempDir()
	path, other := filepath.Join(dir, "app.log"), filepath.Join(dir, "current")
	write(t, path, "1\n", os.O_APPEND)
	if err := os.Link(path, other); err != nil {
		t.Fatal(err)
	}
	out := watched(t, path)
	waitOutput(t, out, "1\n")
	write(t, other, "2\n", os.O_APPEND)
	waitOutput(t, out, "1\n2\n")
	write(t, other, "3\n", os.O_APPEND)
	waitOutput(t, out, "1\n2\n3\n")
}

// While a file rotated away is drained, its writes wake the follower, though they
// come under a name it does not know: the settle period here is an hour, and
// only a write's event can bring its line. (A wakeup left over from before can
// bring one line, not three.)
func TestWatchDrainWokenByWritesToRenamed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	old, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	old.WriteString("a\n")
	out := watchedSettle(t, path, time.Hour)
	waitOutput(t, out, "a\n")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	want := "a\n"
	for _, line := range []string{"b\n", "c\n", "d\n"} {
		old.WriteString(line)
		want += line
		waitOutput(t, out, want)
	}
	// Renamed again while it is drained (numbered archives shift up): its
	// writes are found under the new name.
	if err := os.Rename(path+".1", path+".2"); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"e\n", "f\n"} {
		old.WriteString(line)
		want += line
		waitOutput(t, out, want)
	}
}

// A write wakes only the subscribers that follow the file written, and a glob's
// scanner none: each wakeup of a follower is a look at its file. A change of
// names wakes the followers of that name, and the scanner when a name comes in,
// with the name. Events are handed out in order, so a new name in another
// folder, once its pin came, says that the events before it were all handed out.
func TestWatchWritesWakeTheirFile(t *testing.T) {
	w := newWatcher(slog.New(slog.DiscardHandler), inotifyWhereItWorks, time.Hour)
	if w.in == nil {
		t.Skip("no inotify here")
	}
	w.safety = time.Hour
	dir, other := t.TempDir(), t.TempDir()
	pinned := make(chan struct{}, 1)
	follower, scanner := newSubscription(nil), newSubscription(nil)
	barrier := newSubscription(func() { pinned <- struct{}{} })
	follower.writes.Store(&[2]string{"app.log", "app.log"})
	follower.renames.Store(&[]string{"app.log", "app.log"})
	scanner.writes.Store(noWrites)
	created := make(chan string, 16)
	scanner.created = func(name []byte) { created <- string(name) }
	for _, s := range []*subscription{follower, scanner} {
		w.Subscribe(dir, s)
	}
	w.Subscribe(other, barrier)
	write(t, filepath.Join(dir, "app.log"), "", os.O_APPEND)
	write(t, filepath.Join(dir, "access.log"), "", os.O_APPEND)
	done := runWatcher(t, w)
	defer done()

	// through reports which of subs were woken by the events of what did, then
	// takes their wakeups.
	barriers := 0
	through := func(did func()) (woke []bool) {
		did()
		barriers++
		write(t, filepath.Join(other, fmt.Sprint(barriers)), "", os.O_APPEND) // one event: a new name
		select {
		case <-pinned:
		case <-time.After(10 * time.Second):
			t.Fatal("the barrier's event never came")
		}
		for _, s := range []*subscription{follower, scanner} {
			select {
			case <-s.wake:
				woke = append(woke, true)
			default:
				woke = append(woke, false)
			}
		}
		return woke
	}
	through(func() {}) // the wakeups of the files made above
	for len(created) > 0 {
		<-created
	}
	for _, c := range []struct {
		name string
		did  func()
		want []bool // follower, scanner
		news []string
	}{
		{"write to another file", func() { write(t, filepath.Join(dir, "access.log"), "x\n", os.O_APPEND) }, []bool{false, false}, nil},
		{"write to the file", func() { write(t, filepath.Join(dir, "app.log"), "x\n", os.O_APPEND) }, []bool{true, false}, nil},
		{"a new file", func() { write(t, filepath.Join(dir, "new.log"), "", os.O_APPEND) }, []bool{false, true}, []string{"new.log"}},
		{"another file deleted", func() { os.Remove(filepath.Join(dir, "access.log")) }, []bool{false, false}, nil},
		{"the file renamed", func() { os.Rename(filepath.Join(dir, "app.log"), filepath.Join(dir, "app.log.1")) }, []bool{true, true}, []string{"app.log.1"}},
		{"the file back", func() { write(t, filepath.Join(dir, "app.log"), "", os.O_APPEND) }, []bool{true, true}, []string{"app.log"}},
	} {
		if got := through(c.did); !slices.Equal(got, c.want) {
			t.Errorf("%s: woken (follower, scanner) %v, want %v", c.name, got, c.want)
		}
		var news []string // sent before the barrier's pin
		for len(created) > 0 {
			news = append(news, <-created)
		}
		if !slices.Equal(news, c.news) {
			t.Errorf("%s: the scanner was given %q, want %q", c.name, news, c.news)
		}
	}
}

// loopsRunning counts the goroutines running a follower's loop.
func loopsRunning() int {
	buf := make([]byte, 1<<20)
	return bytes.Count(buf[:runtime.Stack(buf, true)], []byte("tailer.(*follower).loop("))
}

// waitParked waits until the follower has parked and no goroutine runs its loop;
// the deadline is a hang guard.
func waitParked(t *testing.T, f *follower) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !f.wait.parked.Load() || loopsRunning() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the follower never parked (%d goroutines in its loop)", loopsRunning())
		}
		time.Sleep(time.Millisecond)
	}
}

// An idle follower holds no goroutine, and a write wakes it: its lines come out
// and it parks again. Many writers in a row, each a wakeup while the follower is
// parked, parking or busy, lose no line, and only one goroutine at a time runs
// the follower (the race detector would see two).
func TestParkedFollower(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	write(t, path, "a\n", os.O_APPEND)
	tl, out := inotifyTailer(t, 0)
	w := tl.watcher
	stop := runWatcher(t, w)
	defer stop()
	ctx, cancel := context.WithCancel(context.Background())
	f := tl.follower(path, "t", followOpts{})
	ended := make(chan error, 1)
	f.start(ctx, w, func(err error) { ended <- err })

	waitOutput(t, out, "a\n")
	want := "a\n"
	for _, line := range []string{"b\n", "c\n"} {
		waitParked(t, f)
		write(t, path, line, os.O_APPEND)
		want += line
		waitOutput(t, out, want)
	}

	waitParked(t, f)
	file, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2000 {
		line := fmt.Sprintf("line %d\n", i)
		file.WriteString(line)
		want += line
	}
	file.Close()
	waitOutput(t, out, want)

	// Ended while parked: it goes on to drain, and ends.
	waitParked(t, f)
	cancel()
	select {
	case err := <-ended:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a parked follower did not end with its context")
	}
}

// While a file rotated away is drained, the writes that wake its follower are
// those under the name the file has now, asked again at each look, and its
// renames too: with a thousand files of a folder rotated at once, each write woke
// every draining follower. A file deleted raises no event in the folder, and
// none wakes it. Then the path's names are back.
func TestDrainingWakesUnderTheNewName(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	write(t, path, "a\n", os.O_APPEND)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	k := &waker{w: newWatcher(slog.New(slog.DiscardHandler), pollOnly, time.Hour), sub: newSubscription(nil)}
	k.watch(path)
	k.steady()
	check := func(when string, writes, renames map[string]bool) {
		t.Helper()
		for name, want := range writes {
			if got := k.sub.wants([]byte(name)); got != want {
				t.Errorf("%s: a write to %s wakes: %v, want %v", when, name, got, want)
			}
		}
		for name, want := range renames {
			if got := k.sub.concerns([]byte(name)); got != want {
				t.Errorf("%s: a rename of %s wakes: %v, want %v", when, name, got, want)
			}
		}
	}
	check("following", map[string]bool{"app.log": true, "access.log": false}, map[string]bool{"app.log": true, "access.log": false})
	was := path
	for _, name := range []string{"app.log.1", "app.log.2"} { // archives shift up
		if err := os.Rename(was, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
		was = filepath.Join(dir, name)
		k.draining(f)
		check("renamed to "+name, map[string]bool{name: true, "app.log": false, "access.log": false},
			map[string]bool{name: true, "app.log": true, "access.log": false})
	}
	if err := os.Remove(path + ".2"); err != nil {
		t.Fatal(err)
	}
	k.draining(f)
	check("deleted", map[string]bool{"app.log.2": false, "app.log": false, "app.log.2 (deleted)": false}, nil)
	k.steady()
	check("drained", map[string]bool{"app.log": true, "app.log.2": false}, map[string]bool{"app.log": true, "app.log.2": false})
}
