package work

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// layers is the module's dependency rule, one row per layer: no package
// under from may depend, directly or through any chain of imports, on a
// package under one of not. work/ is the bottom layer, the Bitcoin side
// and the contracts both ends consume (work/source upstream, work/device
// downstream); gpu/ implements the device contract; stratum/ implements
// the source contract and serves the proxy; bench/ and cmd/ assemble them.
// Extend the table rather than writing another test; a row's prefixes must
// name packages that exist, so a renamed directory cannot quietly retire
// its rule.
//
// Only what is built into the binary is checked (go list's Imports and
// Deps, not TestImports): the end-to-end tests of work/miner and
// work/observe drive real devices against a real pool, which is what they
// are for.
var layers = []struct {
	from string
	not  []string
	why  string
}{
	{
		from: "clminer/work",
		not:  []string{"clminer/gpu", "clminer/stratum", "clminer/bench", "clminer/cmd"},
		why:  "the Bitcoin side and its contracts know neither the devices nor the protocols that implement them",
	},
	{
		from: "clminer/gpu",
		not:  []string{"clminer/stratum", "clminer/cmd"},
		why:  "a device hashes work.Units; where the work came from is not its business",
	},
}

// goPackage is the part of `go list -json` the rule reads.
type goPackage struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

// under reports whether path is prefix or a package below it.
func under(path, prefix string) bool {
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

func listModule(t *testing.T) map[string]goPackage {
	t.Helper()
	// go test puts its own GOROOT/bin first on PATH.
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the layer rule needs the go tool: %v", err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(goTool, "list", "-json=ImportPath,Imports,Deps", "clminer/...")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	pkgs := map[string]goPackage{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p goPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs[p.ImportPath] = p
	}
	return pkgs
}

// chain is one import path from a package to a forbidden one, for a
// message that says which import to remove.
func chain(pkgs map[string]goPackage, from, prefix string) []string {
	prev := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if p != from && under(p, prefix) {
			var path []string
			for ; p != ""; p = prev[p] {
				path = append(path, p)
			}
			slices.Reverse(path)
			return path
		}
		for _, imp := range pkgs[p].Imports {
			if _, seen := prev[imp]; !seen {
				prev[imp] = p
				queue = append(queue, imp)
			}
		}
	}
	return nil
}

func TestLayers(t *testing.T) {
	pkgs := listModule(t)
	exists := func(prefix string) bool {
		for p := range pkgs {
			if under(p, prefix) {
				return true
			}
		}
		return false
	}
	for _, l := range layers {
		if !exists(l.from) {
			t.Errorf("layer %s: no package is under it; fix the table", l.from)
		}
		for _, n := range l.not {
			if !exists(n) {
				t.Errorf("layer %s: no package is under %s; fix the table", l.from, n)
			}
		}
	}
	names := make([]string, 0, len(pkgs))
	for p := range pkgs {
		names = append(names, p)
	}
	slices.Sort(names)
	for _, l := range layers {
		for _, name := range names {
			if !under(name, l.from) {
				continue
			}
			for _, n := range l.not {
				if !slices.ContainsFunc(pkgs[name].Deps, func(d string) bool { return under(d, n) }) {
					continue
				}
				t.Errorf("%s depends on %s (%s), but %s", name, n, strings.Join(chain(pkgs, name, n), " -> "), l.why)
			}
		}
	}
}
