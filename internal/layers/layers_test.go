package layers

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

// rule is one row of the module's layering: no package under one of from
// may depend, directly or through any chain of imports, on a package under
// one of not. A package under a forbidden prefix is exempt from that prefix
// (a group may import itself).
//
// Tests are held to the same rule, import by import (the test's own imports
// and everything they pull in), except where tests names the package whose
// tests may import more, and why: end-to-end tests that drive a real pool
// or real devices cross layers on purpose.
type rule struct {
	from, not []string
	why       string
	tests     []testImports
}

// testImports lets the tests of the packages under pkg import the packages
// under may (and what those import).
type testImports struct {
	pkg string
	may []string
	why string
}

// layers is the rule, bottom up. work/ is the Bitcoin side and the contracts
// both ends consume (work/source upstream, work/device downstream); gpu/
// implements the device contract; stratum/ implements the source contract
// and serves the proxy; bench/ and cmd/ assemble them. Extend the table
// rather than writing another test; every prefix must name packages that
// exist, so a renamed directory cannot quietly retire its rule. README's
// "Layers" table says the same in words.
var layers = []rule{
	{
		from: []string{"clminer/work"},
		not:  []string{"clminer/gpu", "clminer/kernels", "clminer/stratum", "clminer/bench", "clminer/cmd"},
		why:  "the Bitcoin side and its contracts know neither the devices nor the protocols that implement them",
		tests: []testImports{
			{pkg: "clminer/work/miner", may: []string{"clminer/gpu/cpu", "clminer/gpu/opencl", "clminer/gpu/gputest", "clminer/stratum"},
				why: "end-to-end: the mining loop on real devices against a real pool"},
			{pkg: "clminer/work/observe", may: []string{"clminer/gpu/gputest", "clminer/stratum"},
				why: "the status API and metrics over a real mining run"},
			{pkg: "clminer/work/device", may: []string{"clminer/gpu/gputest"},
				why: "the contract's checks run against the reference device"},
		},
	},
	{
		from: []string{"clminer/work/source", "clminer/work/device"},
		not: []string{"clminer/work/miner", "clminer/work/dispatch", "clminer/work/observe", "clminer/work/failover",
			"clminer/work/gbt"},
		why: "the contracts sit below every implementation and every consumer of them",
	},
	{
		from: []string{"clminer/stratum"},
		not:  []string{"clminer/gpu", "clminer/kernels", "clminer/bench", "clminer/cmd", "clminer/work/miner"},
		why:  "a protocol implements work/source or serves miners; the mining loop and the devices consume it, not the reverse",
		tests: []testImports{
			{pkg: "clminer/stratum/proxy", may: []string{"clminer/gpu/gputest", "clminer/work/miner"},
				why: "the miners behind the proxy in its tests are real mining loops"},
			{pkg: "clminer/stratum/v2/channel", may: []string{"clminer/work/miner", "clminer/work/observe"},
				why: "a pool's text is fed through the miner's metrics, which must not fail on it"},
		},
	},
	{
		from: []string{"clminer/gpu"},
		not:  []string{"clminer/stratum", "clminer/bench", "clminer/cmd", "clminer/work/source", "clminer/work/miner"},
		why:  "a device hashes work.Units; where the work came from and who drives it are not its business",
	},
	{
		from: []string{"clminer"},
		not:  []string{"clminer/cmd"},
		why:  "cmd/ assembles the layers into the binary; it is the top, and nothing is built on it",
	},
}

// goPackage is the part of `go list -json` the rule reads.
type goPackage struct {
	ImportPath   string
	Imports      []string
	Deps         []string
	TestImports  []string
	XTestImports []string
}

// under reports whether path is prefix or a package below it.
func under(path, prefix string) bool {
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

func underAny(path string, prefixes []string) bool {
	return slices.ContainsFunc(prefixes, func(p string) bool { return under(path, p) })
}

func listModule(t *testing.T) map[string]goPackage {
	t.Helper()
	// go test puts its own GOROOT/bin first on PATH.
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the layer rule needs the go tool: %v", err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(goTool, "list", "-json=ImportPath,Imports,Deps,TestImports,XTestImports", "clminer/...")
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
		if under(p, prefix) {
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

// forbidden is the first prefix of r.not that a package under from may
// not use and that path is (or depends on), or "".
func (r rule) forbidden(pkgs map[string]goPackage, from, path string) string {
	for _, n := range r.not {
		if under(from, n) {
			continue
		}
		if under(path, n) || slices.ContainsFunc(pkgs[path].Deps, func(d string) bool { return under(d, n) }) {
			return n
		}
	}
	return ""
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
		var named []string
		named = append(named, l.from...)
		named = append(named, l.not...)
		for _, e := range l.tests {
			named = append(named, e.pkg)
			named = append(named, e.may...)
		}
		for _, n := range named {
			if !exists(n) {
				t.Errorf("layer %v: no package is under %s; fix the table", l.from, n)
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
			if !underAny(name, l.from) {
				continue
			}
			p := pkgs[name]
			if n := l.forbidden(pkgs, name, name); n != "" {
				t.Errorf("%s depends on %s (%s), but %s", name, n, strings.Join(chain(pkgs, name, n), " -> "), l.why)
			}
			var may []string
			for _, e := range l.tests {
				if under(name, e.pkg) {
					may = append(may, e.may...)
				}
			}
			for _, imp := range slices.Concat(p.TestImports, p.XTestImports) {
				if imp == name || !under(imp, "clminer") || underAny(imp, may) {
					continue
				}
				if n := l.forbidden(pkgs, name, imp); n != "" {
					t.Errorf("the tests of %s import %s, which is or depends on %s (%s), but %s; if the test must, say why in the rule's tests",
						name, imp, n, strings.Join(chain(pkgs, imp, n), " -> "), l.why)
				}
			}
		}
	}
}
