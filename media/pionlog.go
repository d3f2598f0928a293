package media

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// pionLogs routes Pion's logs to the injected slog logger, so that they are
// structured like the rest of the node's and not printed to stderr. Pion's
// info is our debug: it reports every state change of every connection.
type pionLogs struct {
	log *slog.Logger
}

var _ logging.LoggerFactory = pionLogs{}

// NewLogger returns the logger of one Pion subsystem ("ice", "dtls", …).
func (f pionLogs) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{log: f.log.With("pion", scope)}
}

// pionLogger is one Pion subsystem's logger. Trace is dropped: it logs
// every packet.
type pionLogger struct {
	log *slog.Logger
}

func (l pionLogger) emit(level slog.Level, msg string) {
	l.log.Log(context.Background(), level, msg)
}

func (l pionLogger) emitf(level slog.Level, format string, args ...any) {
	if l.log.Enabled(context.Background(), level) {
		l.log.Log(context.Background(), level, fmt.Sprintf(format, args...))
	}
}

func (l pionLogger) Trace(string)          {}
func (l pionLogger) Tracef(string, ...any) {}

func (l pionLogger) Debug(msg string) { l.emit(slog.LevelDebug, msg) }
func (l pionLogger) Debugf(format string, args ...any) {
	l.emitf(slog.LevelDebug, format, args...)
}

func (l pionLogger) Info(msg string) { l.emit(slog.LevelDebug, msg) }
func (l pionLogger) Infof(format string, args ...any) {
	l.emitf(slog.LevelDebug, format, args...)
}

func (l pionLogger) Warn(msg string) { l.emit(slog.LevelWarn, msg) }
func (l pionLogger) Warnf(format string, args ...any) {
	l.emitf(slog.LevelWarn, format, args...)
}

func (l pionLogger) Error(msg string) { l.emit(slog.LevelError, msg) }
func (l pionLogger) Errorf(format string, args ...any) {
	l.emitf(slog.LevelError, format, args...)
}
