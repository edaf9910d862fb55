// Package templates embeds the starter plans of `surge init --template`:
// one plan per failure mode, each opening with a comment that names the
// failure it surfaces and how to read the result.
package templates

import (
	"embed"
	"fmt"
	"io/fs"
	"slices"
	"strings"
)

//go:embed *.yaml
var files embed.FS

// BaseURL is the target every template points at (`surge target`'s
// default address); replace it with your system under test.
const BaseURL = "http://127.0.0.1:8080"

// aliases maps alternative names to template names.
var aliases = map[string]string{"endurance": "soak"}

// Names lists the templates, sorted.
func Names() []string {
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		out = append(out, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	slices.Sort(out)
	return out
}

// Get returns a template's source by name (or alias).
func Get(name string) ([]byte, error) {
	if a, ok := aliases[name]; ok {
		name = a
	}
	b, err := files.ReadFile(name + ".yaml")
	if err != nil {
		return nil, fmt.Errorf("template %q: unknown (valid: %s, endurance)", name, strings.Join(Names(), ", "))
	}
	return b, nil
}
