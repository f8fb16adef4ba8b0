package statictest

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// Every case has a unique name that starts with the section deciding it.
func TestCaseNames(t *testing.T) {
	section := regexp.MustCompile(`^\d+(\.\d+)* `)
	seen := map[string]bool{}
	for _, c := range Cases() {
		if !section.MatchString(c.Name) {
			t.Errorf("case %q does not start with a section number", c.Name)
		}
		if seen[c.Name] {
			t.Errorf("two cases are named %q", c.Name)
		}
		seen[c.Name] = true
	}
}

func TestWriteSite(t *testing.T) {
	dir := t.TempDir()
	root, err := WriteSite(dir)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(filepath.Join(root, "hello.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if !info.ModTime().Equal(ModTime()) || info.Size() != int64(len(HelloText)) {
		t.Errorf("hello.txt: modified %v, %d bytes; want %v, %d", info.ModTime(), info.Size(), ModTime(), len(HelloText))
	}
	if got, err := os.ReadFile(filepath.Join(root, "link-out.txt")); err != nil || string(got) != SecretText {
		t.Errorf("link-out.txt does not lead to the secret outside the root: %q, %v", got, err)
	}
}

// Verify reports every difference.
func TestVerifyReportsDifferences(t *testing.T) {
	c := Case{Req: get("/x"), Want: Want{Status: 200, Body: "a", Header: []Field{h("ETag", `"1"`)}, Absent: []string{"Vary"}}}
	header := func(name string) []string {
		return map[string][]string{"ETag": {`"2"`}, "Vary": {"Accept-Encoding"}, "Content-Length": {"5"}}[name]
	}
	err := c.Verify(404, header, []byte("b"))
	if err == nil {
		t.Fatal("Verify accepted a response that differs in everything")
	}
	for _, want := range []string{"status", "ETag", "Vary", "Content-Length", "content"} {
		if !regexp.MustCompile(want).MatchString(err.Error()) {
			t.Errorf("Verify's report lacks %s:\n%v", want, err)
		}
	}
}
