package zktest

import (
	"os/exec"
	"strings"
	"testing"
)

// Programs link zktest (lighthouse's CLI starts ZooKeeper with it), so it
// must not bring the testing package or goleak into them.
func TestNoTestingDependency(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for dep := range strings.Lines(string(out)) {
		dep = strings.TrimSpace(dep)
		if dep == "testing" || strings.HasPrefix(dep, "go.uber.org/goleak") {
			t.Errorf("zktest depends on %s", dep)
		}
	}
}
