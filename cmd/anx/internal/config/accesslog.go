package config

import "path/filepath"

// The destinations of access_log that are not files.
const (
	AccessLogStderr = "stderr" // the default
	AccessLogOff    = "off"
)

// AccessLog is where a site's access log goes: "stderr" (the default),
// "off", or a file's path, relative to the config file's directory.
type AccessLog struct{ Dest string }

// UnmarshalText accepts "stderr", "off" or a path.
func (a *AccessLog) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		return valueError(b, "want \"stderr\", \"off\" or a file's path, got \"\"")
	}
	a.Dest = string(b)
	return nil
}

// Destination is "stderr", "off" or the file's path.
func (a AccessLog) Destination() string {
	if a.Dest == "" {
		return AccessLogStderr
	}
	return a.Dest
}

// IsFile reports whether the log goes to a file.
func (a AccessLog) IsFile() bool {
	d := a.Destination()
	return d != AccessLogStderr && d != AccessLogOff
}

// resolveAccessLog takes a file's path from dir, the config file's
// directory.
func resolveAccessLog(dir string, a AccessLog) AccessLog {
	if a.IsFile() && !filepath.IsAbs(a.Dest) {
		a.Dest = filepath.Join(dir, a.Dest)
	}
	return a
}

// AccessLogFormat is the format of a site's access log lines.
type AccessLogFormat uint8

// The formats of access_log_format.
const (
	AccessLogJSON     AccessLogFormat = iota // one JSON object per line (the default)
	AccessLogCombined                        // nginx's combined format, then the request id
)

// UnmarshalText accepts "json" or "combined".
func (f *AccessLogFormat) UnmarshalText(b []byte) error {
	switch string(b) {
	case "json":
		*f = AccessLogJSON
	case "combined":
		*f = AccessLogCombined
	default:
		return valueError(b, "want \"json\" or \"combined\", got %q", b)
	}
	return nil
}

// String returns the format as written in the config.
func (f AccessLogFormat) String() string {
	if f == AccessLogCombined {
		return "combined"
	}
	return "json"
}
