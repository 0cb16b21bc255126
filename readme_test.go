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
// of a function, so the README cannot drift from the API.
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
	"log/slog"
	"time"

	"github.com/lighthouse-zk/lighthouse"
	"golang.org/x/sync/errgroup"
)

var (
	_ = slog.Default
	_ = time.Second
	_ = errgroup.Group{}
	_ = lighthouse.Connect
)
`)
	for i, s := range snippets {
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
