package config

import (
	"slices"

	"github.com/pelletier/go-toml/v2/unstable"
)

// keyLines is where a config file sets its keys, found in its text in one
// pass, so that the checks made after decoding can name a line: the
// top-level keys, and by site in file order the keys of each [[site]]
// table and of each of its [[site.route]] tables.
type keyLines struct {
	top   map[string]int // keys set before any table header
	sites []siteLines
}

// siteLines is where one [[site]] table sets its keys.
type siteLines struct {
	keys   map[string]int // of the [[site]] table itself
	routes []routeTable
}

// routeTable is where one [[site.route]] table is in the file.
type routeTable struct {
	line int            // of its [[site.route]] header
	keys map[string]int // the line of each key it sets
}

// findKeyLines reads a config file's text for keyLines. Text that does
// not parse gives what was read before the fault (the decoder has said
// why by then).
func findKeyLines(text []byte) keyLines {
	var p unstable.Parser
	p.Reset(text)
	k := keyLines{top: map[string]int{}}
	into := k.top // where the keys read now go; nil: a table no check names
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.ArrayTable, unstable.Table:
			key, line := keyOf(&p, e)
			into = nil
			switch {
			case e.Kind == unstable.ArrayTable && slices.Equal(key, []string{"site"}):
				k.sites = append(k.sites, siteLines{keys: map[string]int{}})
				into = k.sites[len(k.sites)-1].keys
			case e.Kind == unstable.ArrayTable && slices.Equal(key, []string{"site", "route"}):
				s := k.lastSite()
				s.routes = append(s.routes, routeTable{line: line, keys: map[string]int{}})
				into = s.routes[len(s.routes)-1].keys
			case len(key) == 3 && key[0] == "site" && key[1] == "route" && len(k.sites) > 0 && len(k.lastSite().routes) > 0:
				// A route's sub-table ([site.route.header_up]): its line
				// is the route's key; the keys in it are not.
				routes := k.lastSite().routes
				routes[len(routes)-1].keys[key[2]] = line
			}
		case unstable.KeyValue:
			if key, line := keyOf(&p, e); into != nil {
				into[key[0]] = line
			}
		}
	}
	return k
}

// lastSite returns the site read last, making one for a [[site.route]]
// that comes before any [[site]] (the decoder makes that site too).
func (k *keyLines) lastSite() *siteLines {
	if len(k.sites) == 0 {
		k.sites = append(k.sites, siteLines{keys: map[string]int{}})
	}
	return &k.sites[len(k.sites)-1]
}

// topLine returns the line of a top-level key, or 0 when it is not set.
func (k *keyLines) topLine(key string) int { return k.top[key] }

// siteLine returns the line where site i's [[site]] table sets key, or 0.
func (k *keyLines) siteLine(i int, key string) int {
	if i < len(k.sites) {
		return k.sites[i].keys[key]
	}
	return 0
}

// route returns where route j of site i is in the file.
func (k *keyLines) route(i, j int) routeTable {
	if i < len(k.sites) && j < len(k.sites[i].routes) {
		return k.sites[i].routes[j]
	}
	return routeTable{keys: map[string]int{}}
}

// keyOf returns the dotted key of a table header or key-value and its line.
func keyOf(p *unstable.Parser, e *unstable.Node) ([]string, int) {
	var key []string
	line := 0
	it := e.Key()
	for it.Next() {
		n := it.Node()
		if line == 0 {
			line = p.Shape(n.Raw).Start.Line
		}
		key = append(key, string(n.Data))
	}
	return key, line
}
