package report

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bpftramp/tramp/internal/golden"
)

// TestMarkdownGolden: the CI step summary of the sample run.
func TestMarkdownGolden(t *testing.T) {
	var b strings.Builder
	require.NoError(t, WriteMarkdown(&b, sample()))
	golden.Check(t, "testdata/summary.md", b.String(), "go test ./vm/report -run TestMarkdownGolden")
	var ok strings.Builder
	require.NoError(t, WriteMarkdown(&ok, &Results{Schema: SchemaVersion, Command: "fuzz", Runs: sample().Runs[:1]}))
	golden.Check(t, "testdata/summary-ok.md", ok.String(), "go test ./vm/report -run TestMarkdownGolden")
}
