package main

import (
	"context"
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

func cmdVersion(*flag.FlagSet) action {
	return func(_ context.Context, in *input) error {
		info, ok := debug.ReadBuildInfo()
		if !ok {
			info = nil
		}
		_, err := fmt.Fprint(in.stdout, versionText(info, version))
		return err
	}
}

// versionText describes a build: the main module's version and the VCS
// revision (with the time of its commit, and "modified" if the tree had
// changes that were not committed) from the build information, and the Go
// version. Without a module version (a build in the source tree before Go
// 1.24 stamped one, or with -buildvcs=false), it is ldflagsVersion: the
// -ldflags "-X main.version=..." one, or "dev".
func versionText(info *debug.BuildInfo, ldflagsVersion string) string {
	v, goVersion := moduleVersion(info, ldflagsVersion), runtime.Version()
	var rev, at string
	modified := false
	if info != nil {
		if info.GoVersion != "" {
			goVersion = info.GoVersion
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				at = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "sessiond %s\n", v)
	if rev != "" {
		line := "revision " + rev
		if at != "" {
			line += " (" + at + ")"
		}
		if modified {
			line += ", modified: built with changes not committed"
		}
		b.WriteString(line + "\n")
	}
	fmt.Fprintf(&b, "%s %s/%s\n", goVersion, runtime.GOOS, runtime.GOARCH)
	return b.String()
}

// moduleVersion is the version of a build: the main module's, or else
// ldflagsVersion.
func moduleVersion(info *debug.BuildInfo, ldflagsVersion string) string {
	if info != nil {
		if mv := info.Main.Version; mv != "" && mv != "(devel)" {
			return mv
		}
	}
	return ldflagsVersion
}

// serverVersion is what the server reports as its version (GET
// /v1/stats, its start banner): the version `sessiond version` prints.
func serverVersion() string {
	info, _ := debug.ReadBuildInfo()
	return moduleVersion(info, version)
}
