// argo-lint checks Workflow manifests with Argo Workflows' own code, at the version the test
// cluster runs: the `argo lint --strict` path (cmd/argo/lint: strict YAML decoding, unknown fields
// refused) with the server's LintWorkflow (validate.ValidateWorkflow, Lint: true), then the
// validation the workflow-controller runs before it starts a Workflow (ValidateOpts{}).
//
// Usage: argo-lint FILE|DIR...   (YAML or JSON, several documents per file)
// Prints one line per finding; exits 0 when every Workflow passes with no error and no warning,
// 1 otherwise, 2 on usage errors. Only Workflows are expected: anything else is a warning.
package main

import (
	"context"
	"fmt"
	"os"

	log "github.com/sirupsen/logrus"
	"google.golang.org/grpc"

	"github.com/argoproj/argo-workflows/v3/cmd/argo/lint"
	workflowpkg "github.com/argoproj/argo-workflows/v3/pkg/apiclient/workflow"
	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/workflow/validate"
)

// noTemplates resolves no WorkflowTemplate: the project's Workflows inline every template.
type noTemplates struct{}

func (noTemplates) Get(name string) (*wfv1.WorkflowTemplate, error) {
	return nil, fmt.Errorf("WorkflowTemplate %q: the Workflow must not reference templates", name)
}

type noClusterTemplates struct{}

func (noClusterTemplates) Get(name string) (*wfv1.ClusterWorkflowTemplate, error) {
	return nil, fmt.Errorf("ClusterWorkflowTemplate %q: the Workflow must not reference templates", name)
}

// offlineClient answers LintWorkflow as the Argo server does, without a server. Every other
// method of the interface is left unimplemented (the lint code calls none).
type offlineClient struct {
	workflowpkg.WorkflowServiceClient
}

func (offlineClient) LintWorkflow(_ context.Context, req *workflowpkg.WorkflowLintRequest, _ ...grpc.CallOption) (*wfv1.Workflow, error) {
	if req.Workflow == nil {
		return nil, fmt.Errorf("unable to get a workflow")
	}
	if err := validate.ValidateWorkflow(noTemplates{}, noClusterTemplates{}, req.Workflow, nil, validate.ValidateOpts{Lint: true}); err != nil {
		return nil, fmt.Errorf("lint: %w", err)
	}
	// What the controller checks before running it (all arguments must have values).
	wf := req.Workflow.DeepCopy()
	if err := validate.ValidateWorkflow(noTemplates{}, noClusterTemplates{}, wf, nil, validate.ValidateOpts{}); err != nil {
		return nil, fmt.Errorf("controller: %w", err)
	}
	return req.Workflow, nil
}

// warnings counts log entries at warning level or worse (e.g. "is not of kind Workflow. Ignoring...").
type warnings struct{ n int }

func (w *warnings) Levels() []log.Level {
	return []log.Level{log.PanicLevel, log.FatalLevel, log.ErrorLevel, log.WarnLevel}
}

func (w *warnings) Fire(e *log.Entry) error {
	w.n++
	return nil
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: argo-lint FILE|DIR...")
		os.Exit(2)
	}
	warned := &warnings{}
	log.AddHook(warned)
	formatter, err := lint.GetFormatter("simple")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	res, err := lint.Lint(context.Background(), &lint.LintOptions{
		Files:            os.Args[1:],
		Strict:           true,
		DefaultNamespace: "orkestra",
		Formatter:        formatter,
		ServiceClients:   lint.ServiceClients{WorkflowsClient: offlineClient{}},
		Printer:          os.Stdout,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	linted := 0
	for _, r := range res.Results {
		if r.Linted {
			linted++
		}
	}
	switch {
	case !res.Success:
		os.Exit(1)
	case warned.n > 0:
		fmt.Printf("argo-lint: %d warning(s)\n", warned.n)
		os.Exit(1)
	case linted != len(res.Results):
		fmt.Printf("argo-lint: %d of %d sources held no Workflow\n", len(res.Results)-linted, len(res.Results))
		os.Exit(1)
	}
}
