package examples

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/sessiond/sessiond/sessionhttp"
)

// Gin protects a gin group. Gin has no adapter for net/http middleware, so
// this one runs the middleware around the rest of the chain: a request the
// middleware refuses is answered by it and aborted.
func Gin(mw *sessionhttp.Middleware) *gin.Engine {
	r := gin.New()
	g := r.Group("/app", func(c *gin.Context) {
		passed := false
		mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			passed = true
			c.Request = req // carries the session in its context
			c.Next()
		})).ServeHTTP(c.Writer, c.Request)
		if !passed {
			c.Abort()
		}
	})
	g.GET("/me", func(c *gin.Context) {
		s, _ := sessionhttp.FromContext(c.Request.Context())
		c.String(http.StatusOK, "signed in as %s\n", s.Subject)
	})
	return r
}
