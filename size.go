package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/alecthomas/kong"
)

// Size is a byte count written the Kubernetes way: 512Ki, 1Mi, 10M, or plain bytes.
type Size int64

// Decode lets kong parse a Size from a flag or an environment variable.
func (s *Size) Decode(ctx *kong.DecodeContext) error {
	var text string
	if err := ctx.Scan.PopValueInto("size", &text); err != nil {
		return err
	}
	n, err := ParseSize(text)
	if err != nil {
		return err
	}
	*s = Size(n)
	return nil
}

// ParseSize parses a size such as "1Mi", "512Ki", "10M" or "4096".
func ParseSize(text string) (int64, error) {
	suffixes := []struct {
		suffix string
		mult   int64
	}{
		{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40},
		{"k", 1e3}, {"K", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12},
	}
	num, mult := strings.TrimSpace(text), int64(1)
	for _, s := range suffixes {
		if strings.HasSuffix(num, s.suffix) {
			num, mult = strings.TrimSuffix(num, s.suffix), s.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("invalid size %q: use a whole number with an optional Ki, Mi or Gi suffix, e.g. 1Mi", text)
	}
	return n * mult, nil
}
