package lighthouse

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestREADMESnippetsCompile builds every Go snippet of README.md as the body
// of a function, so the README cannot drift from the API. A snippet that
// declares functions (its first line of code starts with "func ") is kept
// as top-level code, with testing, zktest and goleak imported, so the README
// can show a user's test.
//
// Only fences that say exactly "go" are built: one that says "go nocompile"
// shows code that needs modules this one does not require (an exporter).
func TestREADMESnippetsCompile(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	snippets := regexp.MustCompile("(?s)```go\n(.*?)```").FindAllStringSubmatch(string(readme), -1)
	if len(snippets) == 0 {
		t.Fatal("no Go snippet in README.md")
	}
	var src strings.Builder
	src.WriteString(`package readme

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"testing"

	"github.com/lighthouse-zk/lighthouse"
	"github.com/lighthouse-zk/lighthouse/zktest"
	"go.uber.org/goleak"
	"golang.org/x/sync/errgroup"
)

var (
	_ = slog.Default
	_ = errors.Is
	_ = time.Second
	_ = errgroup.Group{}
	_ = lighthouse.Connect
	_ testing.TB
	_ = zktest.Start
	_ = goleak.VerifyTestMain
)
`)
	for i, s := range snippets {
		if declaresFuncs(s[1]) {
			fmt.Fprintf(&src, "\n%s", s[1])
			continue
		}
		fmt.Fprintf(&src, "\nfunc snippet%d(ctx context.Context, secret string, runLeaderDuties func(context.Context, int64) error) error {\n%s}\n", i, s[1])
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "readme.go")
	if err := os.WriteFile(file, []byte(src.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	// Build it as if it were a package of this module, without writing
	// into the source tree.
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	overlay, _ := json.Marshal(map[string]map[string]string{
		"Replace": {filepath.Join(wd, "internal", "readme", "readme.go"): file},
	})
	overlayFile := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(overlayFile, overlay, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("go", "build", "-overlay", overlayFile, "./internal/readme").CombinedOutput()
	if err != nil {
		t.Fatalf("README snippets do not compile:\n%s\n%s", out, src.String())
	}
}

// declaresFuncs reports whether a snippet's first line that is not a comment
// starts a function declaration.
func declaresFuncs(snippet string) bool {
	for line := range strings.Lines(snippet) {
		if strings.HasPrefix(line, "//") {
			continue
		}
		return strings.HasPrefix(line, "func ")
	}
	return false
}
