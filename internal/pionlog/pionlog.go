// Package pionlog routes Pion's logs (WebRTC in media, TURN in turn) to a
// node's slog logger, so that they are structured like the rest of its
// logs and not printed to stderr.
package pionlog

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// Factory is a logging.LoggerFactory writing to Log. Pion's info is
// foyer's debug: it reports every state change of every connection, every
// refused TURN permission and every allocation, which a scanner can make
// as numerous as it likes.
type Factory struct {
	Log *slog.Logger
}

var _ logging.LoggerFactory = Factory{}

// NewLogger returns the logger of one Pion subsystem ("ice", "dtls",
// "turn", …).
func (f Factory) NewLogger(scope string) logging.LeveledLogger {
	return logger{log: f.Log.With("pion", scope)}
}

// logger is one Pion subsystem's logger. Trace is dropped: it logs every
// packet.
type logger struct {
	log *slog.Logger
}

var _ logging.LeveledLogger = logger{}

func (l logger) emit(level slog.Level, msg string) {
	l.log.Log(context.Background(), level, msg)
}

func (l logger) emitf(level slog.Level, format string, args ...any) {
	if l.log.Enabled(context.Background(), level) {
		l.log.Log(context.Background(), level, fmt.Sprintf(format, args...))
	}
}

// Trace implements logging.LeveledLogger (dropped).
func (logger) Trace(string) {}

// Tracef implements logging.LeveledLogger (dropped).
func (logger) Tracef(string, ...any) {}

// Debug implements logging.LeveledLogger.
func (l logger) Debug(msg string) { l.emit(slog.LevelDebug, msg) }

// Debugf implements logging.LeveledLogger.
func (l logger) Debugf(format string, args ...any) { l.emitf(slog.LevelDebug, format, args...) }

// Info implements logging.LeveledLogger, at debug level.
func (l logger) Info(msg string) { l.emit(slog.LevelDebug, msg) }

// Infof implements logging.LeveledLogger, at debug level.
func (l logger) Infof(format string, args ...any) { l.emitf(slog.LevelDebug, format, args...) }

// Warn implements logging.LeveledLogger.
func (l logger) Warn(msg string) { l.emit(slog.LevelWarn, msg) }

// Warnf implements logging.LeveledLogger.
func (l logger) Warnf(format string, args ...any) { l.emitf(slog.LevelWarn, format, args...) }

// Error implements logging.LeveledLogger.
func (l logger) Error(msg string) { l.emit(slog.LevelError, msg) }

// Errorf implements logging.LeveledLogger.
func (l logger) Errorf(format string, args ...any) { l.emitf(slog.LevelError, format, args...) }
