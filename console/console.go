// Package console serves the sessiond web console: a single-page app,
// built from console/web (Vite, TypeScript, Preact) into console/dist and
// embedded here, so that the Go build needs no Node.js.
//
// The page itself is public; it asks for the admin API key and sends it
// with every API call it makes, keeping it in the tab's memory only
// (docs/console.md). Rebuild the assets with
//
//	cd console/web && npm ci && npm run build
//
// and commit console/dist: CI rebuilds them and fails when they differ.
package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/wire"
)

// Prefix is where the console is served: /console and everything under
// /console/.
const Prefix = "/console"

//go:embed all:dist
var dist embed.FS

// CSP is the Content-Security-Policy of every answer: scripts, styles,
// images and API calls from the server itself only, no inline script or
// style, no plugins, and no framing (clickjacking).
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// file is one embedded file, with what its answers carry.
type file struct {
	name  string // for the Content-Type, by extension
	body  []byte
	etag  string
	cache string
}

// Handler serves the console under Prefix, for GET and HEAD: the files of
// the build by path (the hashed ones under /console/assets/ cached for a
// year), a missing asset 404 not_found, and index.html, not cached, for
// every other path: the app's routes (/console/sessions/ID) are the
// browser's to resolve.
func Handler() http.Handler {
	h, err := newHandler(dist)
	if err != nil {
		panic("console: the embedded build is broken: " + err.Error()) // caught by the package's tests
	}
	return h
}

type handler struct {
	files map[string]*file // by path under Prefix, "/assets/index-x.js"
	index *file
}

func newHandler(fsys fs.FS) (*handler, error) {
	root, err := fs.Sub(fsys, "dist")
	if err != nil {
		return nil, err
	}
	h := &handler{files: map[string]*file{}}
	err = fs.WalkDir(root, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(root, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		f := &file{name: p, body: body, etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`}
		switch {
		case strings.HasPrefix(p, "assets/"):
			f.cache = "public, max-age=31536000, immutable" // the name holds the content's hash
		case p == "index.html":
			f.cache = "no-cache" // revalidated (ETag) on each load, so a new build is seen at once
		default:
			f.cache = "public, max-age=3600"
		}
		h.files["/"+p] = f
		return nil
	})
	if err != nil {
		return nil, err
	}
	h.index = h.files["/index.html"]
	if h.index == nil {
		return nil, fs.ErrNotExist
	}
	return h, nil
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", CSP)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hd.Set("Allow", "GET, HEAD")
		wire.WriteError(w, &sessiond.Error{Code: wire.CodeMethodNotAllowed, Message: r.Method + " is not allowed here; use GET, HEAD"})
		return
	}
	rel, ok := strings.CutPrefix(r.URL.Path, Prefix)
	if !ok || rel != "" && rel[0] != '/' {
		wire.WriteError(w, &sessiond.Error{Code: wire.CodeRouteNotFound, Message: "no such route: " + r.URL.Path})
		return
	}
	f := h.files[path.Clean("/"+rel)]
	switch {
	case f != nil && f != h.index:
	case strings.HasPrefix(rel, "/assets/"):
		// A file the build does not have: a stale page asking for an old
		// asset gets a 404, not the index as a script.
		wire.WriteError(w, &sessiond.Error{Code: wire.CodeRouteNotFound, Message: "no such console file: " + r.URL.Path})
		return
	default:
		f = h.index
	}
	hd.Set("Cache-Control", f.cache)
	hd.Set("ETag", f.etag)
	http.ServeContent(w, r, f.name, time.Time{}, bytes.NewReader(f.body))
}
