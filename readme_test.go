package sessiond_test

import (
	"os"
	"strings"
	"testing"
)

// The README's "As a Go library" section shows ExampleManager's body and
// output exactly, so that what it shows compiles and prints what it says.
func TestREADMEShowsExampleManager(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	body, output := exampleParts(t, string(example))
	section := between(t, string(readme), "## As a Go library\n", "\n## ")
	if got := between(t, section, "```go\n", "```\n"); got != body {
		t.Errorf("README's Go snippet is not ExampleManager's body.\nREADME:\n%s\nExampleManager:\n%s", got, body)
	}
	if got := between(t, section, "It prints:\n\n```\n", "```\n"); got != output {
		t.Errorf("README's output is not ExampleManager's.\nREADME:\n%s\nExampleManager:\n%s", got, output)
	}
}

// exampleParts returns ExampleManager's body, one tab less indented, and
// its // Output: lines without the comment markers.
func exampleParts(t *testing.T, src string) (body, output string) {
	t.Helper()
	fn := between(t, src, "func ExampleManager() {\n", "\n}\n")
	code, out, ok := strings.Cut(fn, "\t// Output:\n")
	if !ok {
		t.Fatal("ExampleManager has no // Output:")
	}
	var b strings.Builder
	for _, line := range strings.SplitAfter(code, "\n") {
		b.WriteString(strings.TrimPrefix(line, "\t"))
	}
	var o strings.Builder
	for _, line := range strings.Split(out, "\n") {
		o.WriteString(strings.TrimPrefix(strings.TrimSpace(line), "// ") + "\n")
	}
	return b.String(), o.String()
}

// between returns the text of s after the first from and before the next to.
func between(t *testing.T, s, from, to string) string {
	t.Helper()
	_, after, ok := strings.Cut(s, from)
	if !ok {
		t.Fatalf("no %q in the text", from)
	}
	in, _, ok := strings.Cut(after, to)
	if !ok {
		t.Fatalf("no %q after %q", to, from)
	}
	return in
}
