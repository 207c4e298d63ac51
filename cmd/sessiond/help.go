package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// flagDocs say how help shows each configuration flag: arg stands for its
// value (none for a switch), key is the config file key it overrides, if
// any, whose default help shows.
var flagDocs = map[string]struct{ arg, key string }{
	"config":                  {"FILE", ""},
	"addr":                    {"HOST:PORT", "addr"},
	"data-dir":                {"DIR", "data_dir"},
	"api-key":                 {"KEY", "api_key"},
	"api-key-file":            {"FILE", "api_key_file"},
	"store":                   {"STORE", "store"},
	"log-format":              {"FORMAT", "log_format"},
	"log-level":               {"LEVEL", "log_level"},
	"node":                    {"NAME", "node"},
	"jwt-secret":              {"SECRET", "jwt.secret"},
	"jwt-secret-file":         {"FILE", "jwt.secret_file"},
	"jwt-public-key":          {"FILES", "jwt.public_keys"},
	"jwt-jwks-url":            {"URL", "jwt.jwks_url"},
	"jwt-issuer":              {"ISSUER", "jwt.issuer"},
	"jwt-audience":            {"AUDIENCE", "jwt.audience"},
	"jwt-subject-claim":       {"CLAIM", "jwt.subject_claim"},
	"jwt-leeway":              {"DURATION", "jwt.leeway"},
	"jwt-max-lifetime":        {"DURATION", "jwt.max_lifetime"},
	"jwt-allow-any-audience":  {"", "jwt.allow_any_audience"},
	"tls-cert":                {"FILE", "tls.cert"},
	"tls-key":                 {"FILE", "tls.key"},
	"insecure-http":           {"", "insecure_http"},
	"trusted-proxies":         {"CIDRS", "trusted_proxies"},
	"access-log":              {"", "access_log"},
	"console":                 {"", "console"},
	"debug-addr":              {"HOST:PORT", "debug_addr"},
	"ws-allowed-origins":      {"ORIGINS", "websocket.allowed_origins"},
	"ws-max-sockets":          {"N", "websocket.max_sockets"},
	"ws-connects-per-subject": {"N", "websocket.connects_per_subject"},
	"ws-connects-per-address": {"N", "websocket.connects_per_address"},
	"ending-hook-url":         {"URL", "ending_hook_url"},
	"ending-hook-secret":      {"SECRET", "ending_hook_secret"},
	"runtime-hook-url":        {"URL", "hooks.runtime.url"},
	"runtime-hook-secret":     {"SECRET", "hooks.runtime.secret"},
	"history":                 {"URL", "history"},
	"min-free-space":          {"SIZE", "min_free_space"},
	"max-subscribers":         {"N", "max_subscribers"},
}

// configDefaults are the defaults of the configuration flags, as `sessiond
// config` prints them when nothing is set: the values serve uses.
func configDefaults() map[string]string {
	cfg := defaultConfig()
	cfg.fillDefaults()
	var doc yaml.Node
	if err := doc.Encode(cfg); err != nil { //nolint:gosec // G117: the defaults hold no secret
		return nil
	}
	out := map[string]string{}
	for name, d := range flagDocs {
		if d.key == "" {
			continue
		}
		n := valueAt(&doc, strings.Split(d.key, ".")...)
		switch {
		case n == nil:
		case n.Kind == yaml.ScalarNode && n.Value != "" && n.Value != "false":
			out[name] = n.Value
		case n.Kind == yaml.SequenceNode && len(n.Content) > 0:
			var items []string
			for _, c := range n.Content {
				items = append(items, c.Value)
			}
			out[name] = strings.Join(items, ",")
		}
	}
	return out
}

// envOfFlag is the environment variable of each configuration flag.
func envOfFlag() map[string]string {
	m := map[string]string{}
	for _, f := range flagEnv {
		m[f.flag] = f.env
	}
	return m
}

// helpFlag is a flag as help shows it.
type helpFlag struct {
	name, arg, usage string
	def              string // "" if none worth saying
	env, key         string // of configuration flags
}

// unbroken joins words that wrap keeps on one line.
const unbroken = "\x00"

// defaultText is " (default X)", kept on one line, or "" without a
// default.
func (f helpFlag) defaultText() string {
	if f.def == "" {
		return ""
	}
	return " (default" + unbroken + f.def + ")"
}

// left is the flag as typed: "--addr HOST:PORT".
func (f helpFlag) left() string {
	if f.arg == "" {
		return "--" + f.name
	}
	return "--" + f.name + " " + f.arg
}

// helpFlags are the flags of fs as help shows them: the command's own,
// then its configuration flags in the order of flagEnv.
func helpFlags(fs *flag.FlagSet) (own, config []helpFlag) {
	defaults, envs := configDefaults(), envOfFlag()
	isConfig := map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) {
		if _, ok := envs[f.Name]; ok {
			isConfig[f.Name] = true
			return
		}
		arg, usage := flag.UnquoteUsage(f)
		if !takesValue(f) {
			arg = ""
		} else if arg == "value" || arg == "string" || arg == "int" || arg == "duration" {
			arg = strings.ToUpper(arg)
		}
		hf := helpFlag{name: f.Name, arg: arg, usage: usage}
		if d := f.DefValue; d != "" && d != "0" && d != "false" && d != "0s" {
			hf.def = shortDuration(d)
		}
		own = append(own, hf)
	})
	for _, f := range flagEnv {
		if !isConfig[f.flag] {
			continue
		}
		d := flagDocs[f.flag]
		config = append(config, helpFlag{name: f.flag, arg: d.arg, usage: f.help, def: defaults[f.flag], env: f.env, key: d.key})
	}
	return own, config
}

// shortDuration writes a duration as a person does: 1h, not 1h0m0s.
// Anything else is returned as it is.
func shortDuration(s string) string {
	if _, err := time.ParseDuration(s); err != nil {
		return s
	}
	if t, ok := strings.CutSuffix(s, "m0s"); ok {
		s = t + "m"
	}
	if t, ok := strings.CutSuffix(s, "h0m"); ok {
		s = t + "h"
	}
	return s
}

// helpWidth is the width help wraps its text to.
const helpWidth = 100

// leftWidth is the width of the first column of rows: the widest first
// cell that is at most maxLeft wide.
func leftWidth(maxLeft int, rows ...[][2]string) int {
	col := 0
	for _, rr := range rows {
		for _, r := range rr {
			if n := len(r[0]); n <= maxLeft && n > col {
				col = n
			}
		}
	}
	return col
}

// writeRows writes two columns, the second wrapped to helpWidth, the first
// col wide (a wider cell puts its text on the next line).
func writeRows(w io.Writer, indent string, rows [][2]string, col int) {
	pad := strings.Repeat(" ", len(indent)+col+2)
	for _, r := range rows {
		lines := wrap(r[1], helpWidth-len(pad))
		for i := range lines {
			lines[i] = strings.ReplaceAll(lines[i], unbroken, " ")
		}
		if len(r[0]) > col {
			fmt.Fprintf(w, "%s%s\n", indent, r[0])
			for _, l := range lines {
				fmt.Fprintf(w, "%s%s\n", pad, l)
			}
			continue
		}
		for i, l := range lines {
			if i == 0 {
				fmt.Fprintf(w, "%s%-*s  %s\n", indent, col, r[0], l)
			} else {
				fmt.Fprintf(w, "%s%s\n", pad, l)
			}
		}
		if len(lines) == 0 {
			fmt.Fprintf(w, "%s%s\n", indent, r[0])
		}
	}
}

// wrap breaks text into lines of at most width, between words; a line of
// the text that starts with a space is kept as it is, less that space.
func wrap(text string, width int) []string {
	var lines []string
	for _, para := range strings.Split(text, "\n") {
		if pre, ok := strings.CutPrefix(para, " "); ok {
			lines = append(lines, pre)
			continue
		}
		line := ""
		for _, word := range strings.Fields(para) {
			switch {
			case line == "":
				line = word
			case len(line)+1+len(word) > width:
				lines = append(lines, line)
				line = word
			default:
				line += " " + word
			}
		}
		if line != "" {
			lines = append(lines, line)
		}
	}
	return lines
}

// synopsis is the command as the usage text shows it.
func (c *command) synopsis() string {
	if c.args == "" {
		return "sessiond " + c.name
	}
	return "sessiond " + c.name + " " + c.args
}

// usageLine is the synopsis, with [flags] if the command has flags.
func (c *command) usageLine() string {
	fs, _, _ := c.flagSet()
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		return c.synopsis()
	}
	return c.synopsis() + " [flags]"
}

// sentence is the summary as a sentence.
func sentence(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:] + "."
}

// writeHelp is the help of cmd, whose flag set is fs: what it does, its
// arguments, and its flags with their defaults (and the environment
// variables and config file keys of its configuration flags).
func writeHelp(w io.Writer, cmd *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage:\n")
	if cmd.flags != nil {
		fmt.Fprintf(w, "  %s\n", cmd.usageLine())
	}
	for _, s := range cmd.subs {
		fmt.Fprintf(w, "  %s\n", s.usageLine())
	}
	fmt.Fprintf(w, "\n%s\n", sentence(cmd.summary))
	if h := strings.TrimSpace(cmd.help); h != "" {
		fmt.Fprintln(w)
		for _, l := range wrap(h, helpWidth) {
			fmt.Fprintln(w, l)
		}
	}
	if len(cmd.subs) > 0 {
		fmt.Fprintf(w, "\nSubcommands:\n")
		var rows [][2]string
		for _, s := range cmd.subs {
			rows = append(rows, [2]string{s.name, s.summary})
		}
		writeRows(w, "  ", rows, leftWidth(24, rows))
		fmt.Fprintf(w, "\nsessiond help %s SUBCOMMAND describes one.\n", cmd.name)
	}
	own, config := helpFlags(fs)
	var ownRows, configRows [][2]string
	for _, f := range own {
		text := f.usage + f.defaultText()
		ownRows = append(ownRows, [2]string{f.left(), text})
	}
	for _, f := range config {
		text := f.usage + f.defaultText()
		text += "\n env " + f.env
		if f.key != "" {
			text += "; config file: " + f.key
		}
		configRows = append(configRows, [2]string{f.left(), text})
	}
	col := leftWidth(28, ownRows, configRows)
	if len(ownRows) > 0 {
		fmt.Fprintf(w, "\nFlags:\n")
		writeRows(w, "  ", ownRows, col)
	}
	if len(configRows) > 0 {
		fmt.Fprintf(w, "\nConfiguration flags (a flag wins over its environment variable, which wins over the config file):\n")
		writeRows(w, "  ", configRows, col)
	}
}

// usageText is what `sessiond help` prints: every command, a line each.
func usageText() string {
	var b strings.Builder
	b.WriteString("sessiond: session lifecycle server\n\nUsage:\n")
	var rows [][2]string
	walk(commandTable(), func(c *command) {
		if c.flags != nil {
			rows = append(rows, [2]string{c.synopsis(), c.summary})
		}
	})
	writeRows(&b, "  ", rows, leftWidth(44, rows))
	b.WriteString(`
sessiond help COMMAND (or sessiond COMMAND --help) describes a command and
its flags, each with its default. Settings come from a flag, else its
environment variable (--api-key: SESSIOND_API_KEY), else the config file
(--config), else the default.

Docs: README.md and docs/ in the source tree.
`)
	return b.String()
}

// cmdHelp prints the usage text, or a command's help.
func cmdHelp(*flag.FlagSet) action {
	return func(_ context.Context, in *input) error {
		if len(in.args) == 0 {
			_, err := io.WriteString(in.stdout, usageText())
			return err
		}
		cmd, rest, err := lookup(commandTable(), in.args)
		if err != nil {
			return err
		}
		if len(rest) > 0 {
			return usageError{fmt.Sprintf("help: %s has no subcommand %q", cmd.name, rest[0])}
		}
		fs, _, _ := cmd.flagSet()
		writeHelp(in.stdout, cmd, fs)
		return nil
	}
}
