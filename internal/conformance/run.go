package conformance

import (
	_ "embed"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Skip is a spec the lab cannot run, and why (conformance-skips.yaml).
type Skip struct {
	// Spec is a regular expression on the spec's full text.
	Spec   string `yaml:"spec"`
	Reason string `yaml:"reason"`
}

//go:embed conformance-skips.yaml
var skipsYAML []byte

// Skips are the specs every run leaves out, each with its reason.
func Skips() ([]Skip, error) {
	var skips []Skip
	if err := yaml.Unmarshal(skipsYAML, &skips); err != nil {
		return nil, fmt.Errorf("conformance-skips.yaml: %w", err)
	}
	for i, s := range skips {
		if s.Spec == "" || s.Reason == "" {
			return nil, fmt.Errorf("conformance-skips.yaml entry %d: give both spec (a regular expression) and reason", i+1)
		}
		if _, err := regexp.Compile(s.Spec); err != nil {
			return nil, fmt.Errorf("conformance-skips.yaml entry %d: spec %q: %w", i+1, s.Spec, err)
		}
	}
	return skips, nil
}

// Options are one run's.
type Options struct {
	// E2EDir holds e2e.test and ginkgo (make e2e-binaries).
	E2EDir string
	// Kubeconfig is the cluster admin's; Kubectl the kubectl the kubectl
	// specs run.
	Kubeconfig, Kubectl string
	// ReportDir gets ginkgo's JUnit report (junit.xml) and the suite's log.
	ReportDir string
	// Focus narrows the [Conformance] specs (a regular expression), e.g.
	// the CI's subset; empty runs them all.
	Focus string
	// Serial includes the [Serial] and [Disruptive] specs.
	Serial bool
	// Nodes is how many ginkgo processes run specs side by side.
	Nodes int
	// Prefix runs the suite inside something, e.g. ip netns exec <ns>.
	Prefix []string
	// Out gets the suite's progress as it runs.
	Out io.Writer
}

// Argv is the ginkgo command line of a run: the specs labelled Conformance
// (the label framework.ConformanceIt gives them), without the Serial and
// Disruptive ones unless asked, narrowed by Focus, less the skips.
func (o Options) Argv(skips []Skip) []string {
	filter := "Conformance"
	if !o.Serial {
		filter += " && !Serial && !Disruptive"
	}
	var skip []string
	for _, s := range skips {
		skip = append(skip, s.Spec)
	}
	nodes := max(o.Nodes, 1)
	argv := append([]string{}, o.Prefix...)
	argv = append(argv, filepath.Join(o.E2EDir, "ginkgo"),
		fmt.Sprintf("--nodes=%d", nodes), "--label-filter="+filter)
	if o.Focus != "" {
		argv = append(argv, "--focus="+o.Focus)
	}
	if len(skip) > 0 {
		argv = append(argv, "--skip="+strings.Join(skip, "|"))
	}
	return append(argv,
		"--no-color", "--timeout=6h",
		"--output-dir="+o.ReportDir, "--junit-report=junit.xml",
		filepath.Join(o.E2EDir, "e2e.test"), "--",
		"--kubeconfig="+o.Kubeconfig,
		"--kubectl-path="+o.Kubectl,
		"--provider=skeleton",
		"--report-dir="+o.ReportDir,
		"--dump-logs-on-failure=false",
		// The masters carry the control-plane taint; the suite schedules on
		// the workers.
		"--non-blocking-taints=node-role.kubernetes.io/control-plane",
	)
}

// Result is a run's account, read from its JUnit report.
type Result struct {
	Passed, Failed, Skipped []string
	Took                    time.Duration
}

// Run runs the suite and reads its report. A failing spec is not an error
// of Run: it is in Result.Failed.
func Run(o Options) (Result, error) {
	skips, err := Skips()
	if err != nil {
		return Result{}, err
	}
	for _, f := range []string{"ginkgo", "e2e.test"} {
		if _, err := os.Stat(filepath.Join(o.E2EDir, f)); err != nil {
			return Result{}, fmt.Errorf("%s: %w: run `make e2e-binaries`", f, err)
		}
	}
	if err := os.MkdirAll(o.ReportDir, 0o755); err != nil {
		return Result{}, err
	}
	log, err := os.Create(filepath.Join(o.ReportDir, "e2e.log"))
	if err != nil {
		return Result{}, err
	}
	defer log.Close()
	argv := o.Argv(skips)
	cmd := exec.Command(argv[0], argv[1:]...)
	out := io.Writer(log)
	if o.Out != nil {
		out = io.MultiWriter(log, o.Out)
	}
	cmd.Stdout, cmd.Stderr = out, out
	start := time.Now()
	runErr := cmd.Run()
	took := time.Since(start)
	res, err := ReadJUnit(filepath.Join(o.ReportDir, "junit.xml"))
	res.Took = took
	if err != nil {
		return res, fmt.Errorf("the suite wrote no report (%v): %v; its log: %s", runErr, err, log.Name())
	}
	return res, nil
}

// junit is the part of ginkgo's JUnit report read here.
type junit struct {
	Suites []struct {
		Cases []struct {
			Name    string    `xml:"name,attr"`
			Skipped *struct{} `xml:"skipped"`
			Failure *struct{} `xml:"failure"`
			Error   *struct{} `xml:"error"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

// ReadJUnit reads ginkgo's JUnit report: every spec passed or failed, and
// the [Conformance] specs skipped. The suite's set-up and tear-down nodes
// ([SynchronizedBeforeSuite] and the like) count only when they fail.
func ReadJUnit(file string) (Result, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return Result{}, err
	}
	var j junit
	if err := xml.Unmarshal(b, &j); err != nil {
		return Result{}, fmt.Errorf("%s: %w", file, err)
	}
	var r Result
	for _, s := range j.Suites {
		for _, c := range s.Cases {
			spec := !strings.HasPrefix(c.Name, "[") || strings.HasPrefix(c.Name, "[sig-") || strings.HasPrefix(c.Name, "[It]")
			switch {
			case c.Failure != nil || c.Error != nil:
				r.Failed = append(r.Failed, c.Name)
			case !spec:
			case c.Skipped != nil:
				// The report lists every spec of e2e.test, most filtered
				// out: the [Conformance] ones left out are what counts.
				if strings.Contains(c.Name, "[Conformance]") {
					r.Skipped = append(r.Skipped, c.Name)
				}
			default:
				r.Passed = append(r.Passed, c.Name)
			}
		}
	}
	sort.Strings(r.Failed)
	return r, nil
}

// Summary is the run's account in a few lines.
func (r Result) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "conformance: %d specs run, %d passed, %d failed; %d skipped; %s\n",
		len(r.Passed)+len(r.Failed), len(r.Passed), len(r.Failed), len(r.Skipped), r.Took.Round(time.Second))
	for _, f := range r.Failed {
		fmt.Fprintf(&b, "  FAILED %s\n", f)
	}
	return b.String()
}
