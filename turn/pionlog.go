package turn

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// pionLogs routes pion/turn's logs to the injected slog logger instead of
// stderr. pion's info is our debug: it reports every refused permission and
// every allocation, which a scanner can make as numerous as it likes.
type pionLogs struct {
	log *slog.Logger
}

var _ logging.LoggerFactory = pionLogs{}

// NewLogger returns the logger of one pion/turn subsystem.
func (f pionLogs) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{log: f.log.With("pion", scope)}
}

// pionLogger is one pion subsystem's logger. Trace is dropped: it logs
// every packet.
type pionLogger struct {
	log *slog.Logger
}

var _ logging.LeveledLogger = pionLogger{}

func (l pionLogger) emit(level slog.Level, msg string) {
	l.log.Log(context.Background(), level, msg)
}

func (l pionLogger) emitf(level slog.Level, format string, args ...any) {
	if l.log.Enabled(context.Background(), level) {
		l.log.Log(context.Background(), level, fmt.Sprintf(format, args...))
	}
}

// Trace implements logging.LeveledLogger (dropped).
func (pionLogger) Trace(string) {}

// Tracef implements logging.LeveledLogger (dropped).
func (pionLogger) Tracef(string, ...any) {}

// Debug implements logging.LeveledLogger.
func (l pionLogger) Debug(msg string) { l.emit(slog.LevelDebug, msg) }

// Debugf implements logging.LeveledLogger.
func (l pionLogger) Debugf(format string, args ...any) { l.emitf(slog.LevelDebug, format, args...) }

// Info implements logging.LeveledLogger, at debug level.
func (l pionLogger) Info(msg string) { l.emit(slog.LevelDebug, msg) }

// Infof implements logging.LeveledLogger, at debug level.
func (l pionLogger) Infof(format string, args ...any) { l.emitf(slog.LevelDebug, format, args...) }

// Warn implements logging.LeveledLogger.
func (l pionLogger) Warn(msg string) { l.emit(slog.LevelWarn, msg) }

// Warnf implements logging.LeveledLogger.
func (l pionLogger) Warnf(format string, args ...any) { l.emitf(slog.LevelWarn, format, args...) }

// Error implements logging.LeveledLogger.
func (l pionLogger) Error(msg string) { l.emit(slog.LevelError, msg) }

// Errorf implements logging.LeveledLogger.
func (l pionLogger) Errorf(format string, args ...any) { l.emitf(slog.LevelError, format, args...) }
