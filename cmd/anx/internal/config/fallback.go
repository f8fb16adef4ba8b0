package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// FallbackPath is a site's fallback: the path, under the site's root, of
// the file served for a page that is no file (single-page applications),
// such as "/index.html". core/static applies the same rules to it.
type FallbackPath struct{ Path string }

// UnmarshalText accepts a path that starts with "/" and is made of plain
// names: no "..", no dot files, no empty segment, no trailing "/", no
// backslash or control byte.
func (f *FallbackPath) UnmarshalText(b []byte) error {
	p := string(b)
	if !plainFilePath(p) {
		return valueError(b, "want the path of a file under the root, such as \"/index.html\" (starting with \"/\", no \"..\" or dot files), got %q", b)
	}
	f.Path = p
	return nil
}

// plainFilePath reports whether p is "/" followed by plain names
// separated by "/".
func plainFilePath(p string) bool {
	if !strings.HasPrefix(p, "/") || strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' }) {
		return false
	}
	for name := range strings.SplitSeq(p[1:], "/") {
		if name == "" || name[0] == '.' {
			return false
		}
	}
	return true
}

// checkFallback checks site i's fallback, once its root is resolved: it
// needs the site's root, and it must name a regular file there now (a
// file added later needs a reload). A root that is not a directory is
// left for the start-up check of roots to report. Errors name the file,
// the line and the key.
func checkFallback(path string, lines *keyLines, i int, s *Site) error {
	if s.Fallback.Path == "" {
		return nil
	}
	fail := func(format string, args ...any) error {
		where := fmt.Sprintf("%s: site %d", path, i+1)
		if line := lines.siteLine(i, "fallback"); line > 0 {
			where = fmt.Sprintf("%s:%d", path, line)
		}
		return fmt.Errorf("%s: key \"site.fallback\": %s", where, fmt.Sprintf(format, args...))
	}
	if s.Root == "" {
		return fail("%q is looked up under the site's root, and the site has none", s.Fallback.Path)
	}
	if st, err := os.Stat(s.Root); err != nil || !st.IsDir() {
		return nil
	}
	file := filepath.Join(s.Root, filepath.FromSlash(s.Fallback.Path))
	st, err := os.Stat(file)
	switch {
	case err != nil && os.IsNotExist(err):
		return fail("%s: no such file", file)
	case err != nil:
		return fail("%v", err)
	case !st.Mode().IsRegular():
		return fail("%s: not a regular file", file)
	}
	return nil
}
