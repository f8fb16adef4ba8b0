package main

import (
	"bufio"
	"fmt"
	"os"
	"path"
	"strings"
)

// allowlist is the parsed skips file: which tests may skip, and why.
//
// The file has one entry per line, "PACKAGE TEST", after one or more
// comment lines ("# ...") that say why the skip is allowed. PACKAGE is an
// import path or its tail ("core/netpoll"); TEST is a test name, with
// subtests after "/", and may use path.Match patterns ("TestX/*").
type allowlist struct {
	file    string
	entries []allowed
}

// allowed is one entry of the allowlist.
type allowed struct {
	pkg, test, why string
}

// readAllowlist parses the allowlist in file. Every entry must follow a
// comment: an allowed skip without a reason is an error.
func readAllowlist(file string) (allowlist, error) {
	list := allowlist{file: file}
	f, err := os.Open(file)
	if err != nil {
		return list, err
	}
	defer f.Close()
	var why []string
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "":
			why = nil
		case strings.HasPrefix(line, "#"):
			why = append(why, strings.TrimSpace(strings.TrimPrefix(line, "#")))
		default:
			entry, err := parseEntry(line, why)
			if err != nil {
				return list, fmt.Errorf("%s:%d: %w", file, n, err)
			}
			list.entries = append(list.entries, entry)
		}
	}
	return list, sc.Err()
}

// parseEntry reads one "PACKAGE TEST" line, whose reason is why.
func parseEntry(line string, why []string) (allowed, error) {
	fields := strings.Fields(line)
	if len(fields) != 2 {
		return allowed{}, fmt.Errorf("want \"PACKAGE TEST\", got %q", line)
	}
	if len(why) == 0 {
		return allowed{}, fmt.Errorf("%q has no comment above it saying why it may skip", line)
	}
	if _, err := path.Match(fields[1], ""); err != nil {
		return allowed{}, fmt.Errorf("bad pattern %q: %w", fields[1], err)
	}
	return allowed{pkg: fields[0], test: fields[1], why: strings.Join(why, " ")}, nil
}

// match reports whether the test of pkg may skip, and why.
func (l allowlist) match(pkg, test string) (string, bool) {
	for _, e := range l.entries {
		if pkg != e.pkg && !strings.HasSuffix(pkg, "/"+e.pkg) {
			continue
		}
		if ok, _ := path.Match(e.test, test); ok {
			return e.why, true
		}
	}
	return "", false
}
