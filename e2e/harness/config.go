package harness

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Config renders an anx TOML config for one site. Its zero value is a valid
// config; Start fills in the addresses, the data dir and the site root.
type Config struct {
	// HTTPMode is the site's http_mode ("redirect" or "serve"); empty omits it.
	HTTPMode string
	// Timeouts maps keys of [timeouts] (e.g. "read_header") to durations ("2s").
	Timeouts map[string]string
	// Limits maps keys of [limits] (e.g. "max_body_bytes") to values.
	Limits map[string]int64
	// Site holds extra raw TOML lines for the [[site]] table.
	Site []string
}

// TOML returns the config as a template for Options.Config: {{.HTTPS}},
// {{.HTTP}}, {{.Data}} and {{.Root}} are filled in by Start.
func (c Config) TOML() string {
	var b strings.Builder
	b.WriteString("https = \"{{.HTTPS}}\"\nhttp = \"{{.HTTP}}\"\ndata = \"{{.Data}}\"\n")
	if len(c.Timeouts) > 0 {
		b.WriteString("\n[timeouts]\n")
		for _, k := range slices.Sorted(maps.Keys(c.Timeouts)) {
			fmt.Fprintf(&b, "%s = %s\n", k, strconv.Quote(c.Timeouts[k]))
		}
	}
	if len(c.Limits) > 0 {
		b.WriteString("\n[limits]\n")
		for _, k := range slices.Sorted(maps.Keys(c.Limits)) {
			fmt.Fprintf(&b, "%s = %d\n", k, c.Limits[k])
		}
	}
	b.WriteString("\n[[site]]\nhosts = [\"localhost\"]\nroot = \"{{.Root}}\"\n")
	if c.HTTPMode != "" {
		fmt.Fprintf(&b, "http_mode = %q\n", c.HTTPMode)
	}
	for _, l := range c.Site {
		b.WriteString(l + "\n")
	}
	return b.String()
}
