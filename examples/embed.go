// Package examples embeds surge's example plans, so `surge demo` runs
// examples/demo.yaml without the file on disk.
package examples

import (
	"embed"
	"io/fs"
)

//go:embed *.yaml
var plans embed.FS

// DemoFile is the name of the demo plan.
const DemoFile = "demo.yaml"

// FS returns the example plans, one file per plan at the root.
func FS() fs.FS { return plans }

// Demo returns the source of the demo plan.
func Demo() []byte {
	b, err := plans.ReadFile(DemoFile)
	if err != nil {
		// The file is embedded at build time; missing, the build fails.
		panic("examples: " + err.Error())
	}
	return b
}
