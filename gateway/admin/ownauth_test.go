package admin

import (
	"net/http"
	"testing"

	"github.com/hookgate/hookgate/gateway/config"
)

// ownAuth is a handler that checks who is asking itself.
type ownAuth struct{ http.HandlerFunc }

func (ownAuth) OwnAuth() {}

// TestOwnAuthRoutes: a route whose handler is an OwnAuth (the web
// console's pages) is served without the admin token, and only that
// route: its neighbours, and paths no route serves, still need it.
func TestOwnAuthRoutes(t *testing.T) {
	page := ownAuth{func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Cookie") != "session=ok" {
			http.Error(w, "sign in", http.StatusUnauthorized)
			return
		}
		w.Write([]byte("page"))
	}}
	_, base := startAdmin(t, config.Admin{Token: config.NewSecret(adminToken, "${env:HOOKGATE_ADMIN_TOKEN}")}, Routes{
		{Method: "GET", Path: "/ui/{$}", Handler: page},
		{Method: "GET", Path: "/admin/targets", Handler: HandlerFunc(func(*http.Request) (any, error) { return "targets", nil })},
	})
	tests := []struct {
		name, path, cookie, auth string
		status                   int
	}{
		{"own-auth route, its own credential", "/ui/", "session=ok", "", 200},
		{"own-auth route checks for itself", "/ui/", "", "", 401},
		{"a JSON route still needs the token", "/admin/targets", "session=ok", "", 401},
		{"a JSON route with the token", "/admin/targets", "", "Bearer " + adminToken, 200},
		{"a path under the console no route serves", "/ui/nope", "session=ok", "", 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", base+tt.path, nil)
			if tt.cookie != "" {
				req.Header.Set("Cookie", tt.cookie)
			}
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("GET %s: %d, want %d", tt.path, resp.StatusCode, tt.status)
			}
		})
	}
}
