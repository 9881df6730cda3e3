package auth

import (
	"fmt"
	"io"
	"net/http"

	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/klog/v2"
)

// Wrap returns next guarded: a request without valid credentials gets 401,
// one whose user may not act on this node's subresource gets 403, and a
// failed SubjectAccessReview 500, each with the kubelet's plain-text
// message. Admitted requests carry their user in the context.
func (g *Guard) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		logger := klog.FromContext(r.Context())
		resp, ok, err := g.authn.AuthenticateRequest(r)
		if err != nil {
			logger.V(2).Info("Unable to authenticate the request", "path", r.URL.Path, "err", err)
		}
		if err != nil || !ok {
			writeText(w, http.StatusUnauthorized, "Unauthorized")
			reason := "Unauthorized"
			if err != nil {
				reason += ": " + err.Error()
			}
			g.refused(r, nil, http.StatusUnauthorized, reason)
			return
		}
		u := resp.User

		attrs := Attributes(g.nodeName, u, r)
		subresources := make([]string, 0, len(attrs))
		for _, a := range attrs {
			subresources = append(subresources, a.GetSubresource())
			decision, _, err := g.authz.Authorize(r.Context(), a)
			if err != nil {
				logger.Error(err, "Authorization error", "user", u.GetName(), "verb", a.GetVerb(), "resource", a.GetResource(), "subresource", a.GetSubresource())
				msg := fmt.Sprintf("Authorization error (user=%s, verb=%s, resource=%s, subresource=%s)",
					u.GetName(), a.GetVerb(), a.GetResource(), a.GetSubresource())
				writeText(w, http.StatusInternalServerError, msg)
				g.refused(r, u, http.StatusInternalServerError, msg+": "+err.Error())
				return
			}
			if decision == authorizer.DecisionAllow {
				next.ServeHTTP(w, r.WithContext(genericapirequest.WithUser(r.Context(), u)))
				return
			}
		}
		logger.V(2).Info("Forbidden", "user", u.GetName(), "verb", attrs[0].GetVerb(), "resource", attrs[0].GetResource(), "subresources", subresources)
		msg := fmt.Sprintf("Forbidden (user=%s, verb=%s, resource=%s, subresource(s)=%v)",
			u.GetName(), attrs[0].GetVerb(), attrs[0].GetResource(), subresources)
		writeText(w, http.StatusForbidden, msg+"\n")
		g.refused(r, u, http.StatusForbidden, msg)
	})
}

// refused tells the RefusalRecorder, if any, of a refused request.
func (g *Guard) refused(r *http.Request, u user.Info, status int, reason string) {
	if g.refusals != nil {
		g.refusals.RecordRefusal(r.Context(), r, u, status, reason)
	}
}

func writeText(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, msg)
}
