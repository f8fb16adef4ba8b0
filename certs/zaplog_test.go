package certs

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func TestZapLogger(t *testing.T) {
	var buf bytes.Buffer
	z := newZapLogger(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}), "certmagic")
	z.Debug("debug dropped")
	z.Info("info dropped", zap.String("k", "v"))
	z.Named("handshake").With(zap.String("with", "w1")).Warn("warned",
		zap.String("identifier", "a.test"), zap.Int("n", 3), zap.Error(errors.New("bad thing")),
		zap.Duration("d", 1500*time.Millisecond), zap.Bool("b", true))
	z.Error("failed", zap.Strings("names", []string{"a", "b"}))

	out := buf.String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want 2 (warn and error):\n%s", len(lines), out)
	}
	tests := []struct {
		line int
		want []string
	}{
		{0, []string{"level=WARN", "msg=warned", "component=certmagic.handshake", "with=w1", "identifier=a.test", "n=3", `error="bad thing"`, "d=1.5s", "b=true"}},
		{1, []string{"level=ERROR", "msg=failed", "component=certmagic", "names=\"[a b]\""}},
	}
	for _, tt := range tests {
		for _, want := range tt.want {
			if !strings.Contains(lines[tt.line], want) {
				t.Errorf("line %d lacks %q: %s", tt.line, want, lines[tt.line])
			}
		}
	}
	if strings.Contains(out, "dropped") {
		t.Errorf("debug or info passed:\n%s", out)
	}
	// The fields given With on one logger stay off its parent.
	if strings.Contains(lines[1], "with=") {
		t.Errorf("a With field leaked to the parent logger: %s", lines[1])
	}
}

// TestZapLoggerFieldOrder checks that fields come out in the order given,
// those of With first.
func TestZapLoggerFieldOrder(t *testing.T) {
	var buf bytes.Buffer
	z := newZapLogger(slog.NewTextHandler(&buf, nil), "c")
	z.With(zap.String("a", "1")).With(zap.String("b", "2")).Warn("m", zap.String("c", "3"), zap.String("d", "4"))
	out := buf.String()
	ia, ib, ic, id := strings.Index(out, "a=1"), strings.Index(out, "b=2"), strings.Index(out, "c=3"), strings.Index(out, "d=4")
	if ia < 0 || !(ia < ib && ib < ic && ic < id) {
		t.Errorf("fields out of order: %s", out)
	}
}

// TestZapLoggerHandlerLevel checks that the handler's own level is
// respected: slog calls Handle only when Enabled says yes, and a handler
// at ERROR must not get certmagic's warnings.
func TestZapLoggerHandlerLevel(t *testing.T) {
	var buf bytes.Buffer
	z := newZapLogger(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelError}), "certmagic")
	z.Warn("warning below the handler's level")
	z.Error("error")
	out := buf.String()
	if strings.Contains(out, "warning below") {
		t.Errorf("a warning reached a handler at level ERROR:\n%s", out)
	}
	if !strings.Contains(out, "msg=error") {
		t.Errorf("the error is missing:\n%s", out)
	}
}

func TestZapLoggerEnabled(t *testing.T) {
	z := newZapLogger(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelDebug}), "c")
	tests := []struct {
		level zapcore.Level
		want  bool
	}{
		{zapcore.DebugLevel, false},
		{zapcore.InfoLevel, false},
		{zapcore.WarnLevel, true},
		{zapcore.ErrorLevel, true},
	}
	for _, tt := range tests {
		if got := z.Core().Enabled(tt.level); got != tt.want {
			t.Errorf("Enabled(%v) got %v, want %v", tt.level, got, tt.want)
		}
		if got := z.Check(tt.level, "m") != nil; got != tt.want {
			t.Errorf("Check(%v) got an entry %v, want %v", tt.level, got, tt.want)
		}
	}
	if err := z.Sync(); err != nil {
		t.Errorf("Sync: %v", err)
	}
}

func TestSlogLevel(t *testing.T) {
	tests := []struct {
		zap  zapcore.Level
		want slog.Level
	}{
		{zapcore.DebugLevel, slog.LevelDebug},
		{zapcore.InfoLevel, slog.LevelInfo},
		{zapcore.WarnLevel, slog.LevelWarn},
		{zapcore.ErrorLevel, slog.LevelError},
		{zapcore.DPanicLevel, slog.LevelError},
		{zapcore.PanicLevel, slog.LevelError},
		{zapcore.FatalLevel, slog.LevelError},
	}
	for _, tt := range tests {
		if got := slogLevel(tt.zap); got != tt.want {
			t.Errorf("slogLevel(%v) got %v, want %v", tt.zap, got, tt.want)
		}
	}
}

// TestZapLoggerManager checks that certmagic's own error lines reach the
// Manager's logger with the component name.
func TestZapLoggerManager(t *testing.T) {
	var buf bytes.Buffer
	m, err := Open(t.TempDir(), slog.New(slog.NewTextHandler(&buf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	m.zlog.Named("obtain").Error("could not get certificate from issuer", zap.String("identifier", "x.test"))
	out := buf.String()
	for _, want := range []string{"level=ERROR", "component=certmagic.obtain", "identifier=x.test"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}
