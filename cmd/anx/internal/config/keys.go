package config

import (
	"slices"

	"github.com/pelletier/go-toml/v2/unstable"
)

// routeTables finds, in a config file's text, the [[site.route]] tables
// and the line of each key set in them, by site and route in file order,
// so that the checks made after decoding can name a line. It returns nil
// for text that does not parse (the decoder has said why by then).
func routeTables(text []byte) [][]routeTable {
	var p unstable.Parser
	p.Reset(text)
	var sites [][]routeTable
	var current *routeTable // the route the keys read now belong to
	var sub string          // the route's sub-table being read ([site.route.header_up])
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.ArrayTable, unstable.Table:
			key, line := keyOf(&p, e)
			current, sub = nil, ""
			switch {
			case e.Kind == unstable.ArrayTable && slices.Equal(key, []string{"site"}):
				sites = append(sites, nil)
			case e.Kind == unstable.ArrayTable && slices.Equal(key, []string{"site", "route"}):
				if len(sites) == 0 {
					sites = append(sites, nil) // the decoder makes the site too
				}
				last := &sites[len(sites)-1]
				*last = append(*last, routeTable{line: line, keys: map[string]int{}})
				current = &(*last)[len(*last)-1]
			case len(key) == 3 && key[0] == "site" && key[1] == "route" && len(sites) > 0 && len(sites[len(sites)-1]) > 0:
				routes := sites[len(sites)-1]
				current, sub = &routes[len(routes)-1], key[2]
				current.keys[sub] = line
			}
		case unstable.KeyValue:
			if current != nil && sub == "" {
				key, line := keyOf(&p, e)
				current.keys[key[0]] = line
			}
		}
	}
	if p.Error() != nil {
		return nil
	}
	return sites
}

// routeTable is where one [[site.route]] table is in the file.
type routeTable struct {
	line int            // of its [[site.route]] header
	keys map[string]int // the line of each key it sets
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
