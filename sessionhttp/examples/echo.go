package examples

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/sessiond/sessiond/sessionhttp"
)

// Echo protects an echo group: echo.WrapMiddleware adapts net/http
// middleware, and the session is in the request's context.
func Echo(mw *sessionhttp.Middleware) *echo.Echo {
	e := echo.New()
	g := e.Group("/app", echo.WrapMiddleware(mw.Handler))
	g.GET("/me", func(c echo.Context) error {
		s, _ := sessionhttp.FromContext(c.Request().Context())
		return c.String(http.StatusOK, "signed in as "+s.Subject+"\n")
	})
	return e
}
