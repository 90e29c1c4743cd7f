package generator

import (
	"context"

	"github.com/fgstudio/fgstudio/internal/catalog"
	"github.com/fgstudio/fgstudio/internal/ort"
)

// RunGraph loads the graph of role in m and runs it once on in (by role):
// for the tests of the graph contract that need no whole model.
func RunGraph(ctx context.Context, rt Runtime, m *catalog.Model, role string, in map[string]ort.Tensor, outRoles []string) (map[string]ort.Tensor, error) {
	inRoles := make([]string, 0, len(in))
	for r := range in {
		inRoles = append(inRoles, r)
	}
	g, err := loadGraph(rt, m, role, 1, inRoles, outRoles)
	if err != nil {
		return nil, err
	}
	defer g.close()
	return g.run(ctx, in)
}
