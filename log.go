package main

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// logEvery is how often one message about one path may repeat: kubectl logs shows
// our stderr between the relayed lines, so a flapping file must not flood it.
const logEvery = 30 * time.Second

// newLogger returns the logger for sidetail's own messages: text on stderr, without
// a time (kubelet adds one), rate-limited per message and path.
func newLogger(w io.Writer, quiet bool) *slog.Logger {
	level := slog.LevelInfo
	if quiet {
		level = slog.LevelError
	}
	h := slog.NewTextHandler(w, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{}
			}
			return a
		},
	})
	return slog.New(&limitedHandler{Handler: h, seen: &seenMessages{last: map[string]time.Time{}}})
}

// limitedHandler drops a record whose message and path were logged less than
// logEvery ago.
type limitedHandler struct {
	slog.Handler
	seen *seenMessages
}

type seenMessages struct {
	mu   sync.Mutex
	last map[string]time.Time
}

func (h *limitedHandler) Handle(ctx context.Context, r slog.Record) error {
	key := r.Level.String() + r.Message
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "path" || a.Key == "dir" {
			key += "\x00" + a.Value.String()
		}
		return true
	})
	h.seen.mu.Lock()
	last, ok := h.seen.last[key]
	now := time.Now()
	if !ok || now.Sub(last) >= logEvery {
		h.seen.last[key] = now
	}
	h.seen.mu.Unlock()
	if ok && now.Sub(last) < logEvery {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h *limitedHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &limitedHandler{Handler: h.Handler.WithAttrs(attrs), seen: h.seen}
}

func (h *limitedHandler) WithGroup(name string) slog.Handler {
	return &limitedHandler{Handler: h.Handler.WithGroup(name), seen: h.seen}
}
