package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/sessiond/sessiond"
)

// completionScripts are the shells `sessiond completion` writes for.
var completionScripts = map[string]func(io.Writer, completionData){
	"bash": writeBashCompletion,
	"zsh":  writeZshCompletion,
}

func cmdCompletion(*flag.FlagSet) action {
	return func(_ context.Context, in *input) error {
		shells := slices.Sorted(maps.Keys(completionScripts))
		if len(in.args) != 1 || completionScripts[in.args[0]] == nil {
			return usageError{"completion takes a shell: " + strings.Join(shells, " or ")}
		}
		completionScripts[in.args[0]](in.stdout, newCompletionData())
		return nil
	}
}

// completionData is what the scripts complete, from the command table.
type completionData struct {
	top      []compItem            // the first word: the commands
	commands []compCommand         // every command, by name
	aliases  map[string]string     // "sessions list": "sessions ls"
	files    []string              // flags whose value is a file ...
	dirs     []string              // ... a directory ...
	choices  map[string][]string   // ... one of these words ...
	values   []string              // ... or something else to type
	flagHelp map[string]string     // a flag's description, by name
	words    map[string][]compItem // what follows a command as its argument (completion's shells)
}

// compItem is a word completed, with its description.
type compItem struct{ word, help string }

// compCommand is a command's name, its subcommands and its flags.
type compCommand struct {
	name  string
	subs  []compItem
	flags []string // names, without the dashes
}

func newCompletionData() completionData {
	d := completionData{aliases: map[string]string{}, choices: map[string][]string{}, flagHelp: map[string]string{},
		words: map[string][]compItem{}}
	table := commandTable()
	for _, c := range table {
		d.top = append(d.top, compItem{c.lastWord(), c.summary})
	}
	kind := map[string]string{} // flag name -> file, dir, choices, value or switch
	walk(table, func(c *command) {
		cc := compCommand{name: c.name}
		for _, s := range c.subs {
			cc.subs = append(cc.subs, compItem{s.lastWord(), s.summary})
		}
		for _, a := range c.aliases {
			prefix := strings.TrimSuffix(c.name, c.lastWord())
			d.aliases[prefix+a] = c.name
		}
		fs, _, _ := c.flagSet()
		own, config := helpFlags(fs)
		arg := map[string]string{}
		for _, f := range append(own, config...) {
			arg[f.name] = f.arg
			d.flagHelp[f.name] = f.usage
		}
		for _, f := range sortedFlags(fs) {
			cc.flags = append(cc.flags, f.Name)
			k := "switch"
			if takesValue(f) {
				k = valueKind(f.Name, arg[f.Name])
			}
			if prev, ok := kind[f.Name]; ok && prev != k {
				panic(fmt.Sprintf("sessiond: flag --%s is a %s in one command and a %s in another", f.Name, prev, k))
			}
			kind[f.Name] = k
		}
		d.commands = append(d.commands, cc)
	})
	for _, shell := range slices.Sorted(maps.Keys(completionScripts)) {
		d.words["completion"] = append(d.words["completion"], compItem{shell, "the " + shell + " completion script"})
	}
	for _, name := range slices.Sorted(maps.Keys(kind)) {
		switch k := kind[name]; k {
		case "file":
			d.files = append(d.files, name)
		case "dir":
			d.dirs = append(d.dirs, name)
		case "value":
			d.values = append(d.values, name)
		case "choices":
			d.choices[name] = flagChoices[name]
		}
	}
	return d
}

// flagChoices are the values of the flags that take one of a few words.
var flagChoices = map[string][]string{
	"log-format": {"auto", "text", "json"},
	"log-level":  {"debug", "info", "warn", "error"},
	"store":      {"embedded", "memory"}, // or a Redis URL
	"state":      stateList(),
}

func stateList() []string {
	var out []string
	for _, s := range sessiond.States {
		out = append(out, s.String())
	}
	return out
}

// valueKind is how the value of a flag is completed: a file, a
// directory, one of flagChoices, or a value to type.
func valueKind(name, arg string) string {
	switch {
	case flagChoices[name] != nil:
		return "choices"
	case arg == "FILE" || arg == "FILES":
		return "file"
	case arg == "DIR":
		return "dir"
	}
	return "value"
}

// shq quotes s for the shell, in single quotes.
func shq(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// dashed is the flags' names with their dashes, joined by sep.
func dashed(names []string, sep string) string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = "--" + n
	}
	return strings.Join(out, sep)
}

func words(items []compItem) string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.word
	}
	return strings.Join(out, " ")
}

// names are the command names and aliases, as case patterns.
func (d completionData) namePatterns() (canonical []string, aliases []string) {
	for _, c := range d.commands {
		canonical = append(canonical, shq(c.name))
	}
	aliases = slices.Sorted(maps.Keys(d.aliases))
	return canonical, aliases
}

func writeBashCompletion(w io.Writer, d completionData) {
	canonical, aliases := d.namePatterns()
	fmt.Fprintf(w, `# bash completion for sessiond, written by sessiond completion bash.
# Load it with: source <(sessiond completion bash)

# _sessiond_compgen sets COMPREPLY to what compgen prints, a line a word.
_sessiond_compgen() {
	local w
	COMPREPLY=()
	while IFS= read -r w; do
		COMPREPLY+=("$w")
	done < <(compgen "$@")
}

_sessiond() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
	local cmd= next i help=
	# The command: the longest run of words that names one (after help,
	# the command help describes).
	for ((i = 1; i < COMP_CWORD; i++)); do
		if [[ -z $cmd && -z $help && ${COMP_WORDS[i]} == help ]]; then
			help=1
			continue
		fi
		next=${cmd:+$cmd }${COMP_WORDS[i]}
		case $next in
		%s) cmd=$next ;;
`, strings.Join(canonical, "|"))
	for _, a := range aliases {
		fmt.Fprintf(w, "\t\t%s) cmd=%s ;;\n", shq(a), shq(d.aliases[a]))
	}
	fmt.Fprintf(w, `		*) break ;;
		esac
	done
	COMPREPLY=()
	if [[ -z $help ]]; then
		case $prev in
		%s)
			compopt -o filenames 2>/dev/null
			_sessiond_compgen -f -- "$cur"
			return ;;
		%s)
			compopt -o filenames 2>/dev/null
			_sessiond_compgen -d -- "$cur"
			return ;;
`, dashed(d.files, "|"), dashed(d.dirs, "|"))
	for _, name := range slices.Sorted(maps.Keys(d.choices)) {
		fmt.Fprintf(w, "\t\t--%s)\n\t\t\t_sessiond_compgen -W %s -- \"$cur\"\n\t\t\treturn ;;\n",
			name, shq(strings.Join(d.choices[name], " ")))
	}
	fmt.Fprintf(w, `		%s)
			return ;; # a value to type
		esac
	fi
	local subs= flags=
	case $cmd in
	'') subs=%s; flags='--help --version' ;;
`, dashed(d.values, "|"), shq(words(d.top)))
	for _, c := range d.commands {
		subs := words(c.subs)
		if ws, ok := d.words[c.name]; ok {
			subs = words(ws)
		}
		fmt.Fprintf(w, "\t%s) subs=%s; flags=%s ;;\n", shq(c.name), shq(subs), shq(dashed(append(c.flags, "help"), " ")))
	}
	fmt.Fprint(w, `	esac
	if [[ -n $help ]]; then
		flags=
		[[ $cmd == help ]] && subs=
	fi
	if [[ $cur == -* ]]; then
		_sessiond_compgen -W "$flags" -- "$cur"
	elif ((i == COMP_CWORD)); then
		_sessiond_compgen -W "$subs" -- "$cur"
	fi
}

complete -F _sessiond sessiond
`)
}

func writeZshCompletion(w io.Writer, d completionData) {
	canonical, aliases := d.namePatterns()
	fmt.Fprintf(w, `#compdef sessiond
# zsh completion for sessiond, written by sessiond completion zsh.
# Save it as _sessiond in a directory of $fpath, or load it after compinit
# with: source <(sessiond completion zsh)

_sessiond() {
	local cmd= next i help= cur=${words[CURRENT]} prev=${words[CURRENT-1]}
	# The command: the longest run of words that names one (after help,
	# the command help describes).
	for (( i = 2; i < CURRENT; i++ )); do
		if [[ -z $cmd && -z $help && ${words[i]} == help ]]; then
			help=1
			continue
		fi
		next=${cmd:+$cmd }${words[i]}
		case $next in
		(%s) cmd=$next ;;
`, strings.Join(canonical, "|"))
	for _, a := range aliases {
		fmt.Fprintf(w, "\t\t(%s) cmd=%s ;;\n", shq(a), shq(d.aliases[a]))
	}
	fmt.Fprintf(w, `		(*) break ;;
		esac
	done
	if [[ -z $help ]]; then
		case $prev in
		(%s) _files; return ;;
		(%s) _files -/; return ;;
`, dashed(d.files, "|"), dashed(d.dirs, "|"))
	for _, name := range slices.Sorted(maps.Keys(d.choices)) {
		fmt.Fprintf(w, "\t\t(--%s) compadd -- %s; return ;;\n", name, strings.Join(quoteAll(d.choices[name]), " "))
	}
	fmt.Fprintf(w, `		(%s) _message 'a value'; return ;;
		esac
	fi
	local -a subs flags
	case $cmd in
	('') subs=(%s); flags=('--help:describe the commands' '--version:print the version') ;;
`, dashed(d.values, "|"), strings.Join(zshItems(d.top), " "))
	for _, c := range d.commands {
		subs := c.subs
		if ws, ok := d.words[c.name]; ok {
			subs = ws
		}
		var flags []compItem
		for _, f := range c.flags {
			flags = append(flags, compItem{"--" + f, d.flagHelp[f]})
		}
		flags = append(flags, compItem{"--help", "describe the command and its flags"})
		fmt.Fprintf(w, "\t(%s) subs=(%s); flags=(%s) ;;\n", shq(c.name), strings.Join(zshItems(subs), " "), strings.Join(zshItems(flags), " "))
	}
	fmt.Fprint(w, `	esac
	if [[ -n $help ]]; then
		flags=()
		[[ $cmd == help ]] && subs=()
	fi
	if [[ $cur == -* ]]; then
		(( ${#flags} )) && _describe -t flags 'flag' flags
	elif (( i == CURRENT && ${#subs} )); then
		_describe -t commands 'command' subs
	fi
}

if [[ $funcstack[1] == _sessiond ]]; then
	_sessiond "$@"
else
	compdef _sessiond sessiond
fi
`)
}

// zshItems are items as _describe takes them: 'word:description', quoted.
func zshItems(items []compItem) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = shq(strings.ReplaceAll(it.word, ":", `\:`) + ":" + it.help)
	}
	return out
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = shq(s)
	}
	sort.Strings(out)
	return out
}

// takesValue reports whether the flag takes a value (it is not a switch).
func takesValue(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return !ok || !b.IsBoolFlag()
}

// sortedFlags are fs's flags by name.
func sortedFlags(fs *flag.FlagSet) []*flag.Flag {
	var out []*flag.Flag
	fs.VisitAll(func(f *flag.Flag) { out = append(out, f) })
	slices.SortFunc(out, func(a, b *flag.Flag) int { return strings.Compare(a.Name, b.Name) })
	return out
}
