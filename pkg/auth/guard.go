package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/apis/apiserver"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/authenticatorfactory"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/client-go/kubernetes"
)

// Authorization modes, as the kubelet's --authorization-mode.
const (
	// ModeWebhook asks kube-apiserver with a SubjectAccessReview.
	ModeWebhook = "Webhook"
	// ModeAlwaysAllow admits every authenticated request. For local demos
	// only: anyone with a token the API server accepts may exec anywhere.
	ModeAlwaysAllow = "AlwaysAllow"
)

// Options are the agent's authentication and authorization flags, named
// after the kubelet's, and who is told of refused requests.
type Options struct {
	// ClientCAFile verifies client certificates; a certificate's CN is the
	// user, its O the groups. Empty disables certificate authentication.
	ClientCAFile string
	// Anonymous admits requests that carry no credentials as
	// system:anonymous (still subject to authorization).
	Anonymous bool
	// TokenWebhook authenticates bearer tokens with TokenReview, cached for
	// TokenWebhookCacheTTL.
	TokenWebhook         bool
	TokenWebhookCacheTTL time.Duration
	// Mode is ModeWebhook or ModeAlwaysAllow.
	Mode string
	// AuthorizedTTL and UnauthorizedTTL cache SubjectAccessReview answers.
	AuthorizedTTL, UnauthorizedTTL time.Duration
	// Refusals, when set, is told of every request the Guard refuses, so
	// that refused attempts can be audited; nil only logs them (V(2)).
	Refusals RefusalRecorder
}

// RefusalRecorder is told of each request the Guard refuses, after the
// answer is written. u is the authenticated user, nil when authentication
// failed (status 401); status is what the client was answered (401, 403, or
// 500 when authorization could not be decided) and reason why, as the
// answer or the log says it. It runs on the request's goroutine, so it must
// be quick: a flood of refused requests calls it as often.
type RefusalRecorder interface {
	RecordRefusal(ctx context.Context, r *http.Request, u user.Info, status int, reason string)
}

// Guard authenticates and authorizes requests to the agent API; see Wrap.
type Guard struct {
	nodeName string
	authn    authenticator.Request
	authz    authorizer.UnconditionalAuthorizer
	// ca is reloaded while Run runs; nil without a client CA.
	ca *dynamiccertificates.DynamicFileCAContent
	// refusals may be nil.
	refusals RefusalRecorder
}

// webhookBackoff retries TokenReview and SubjectAccessReview calls that
// fail, as kube components do (apiserver's DefaultAuthWebhookRetryBackoff).
func webhookBackoff() *wait.Backoff {
	return &wait.Backoff{Duration: 500 * time.Millisecond, Factor: 1.5, Jitter: 0.2, Steps: 5}
}

// New builds the Guard of node nodeName. client, the agent's own
// credentials, creates TokenReviews and SubjectAccessReviews (the Node
// authorizer allows both); it may be nil when neither the token webhook
// nor the Webhook mode is used.
func New(nodeName string, opts Options, client kubernetes.Interface) (*Guard, error) {
	g := &Guard{nodeName: nodeName, refusals: opts.Refusals}
	authnCfg := authenticatorfactory.DelegatingAuthenticatorConfig{
		Anonymous: &apiserver.AnonymousAuthConfig{Enabled: opts.Anonymous},
		CacheTTL:  opts.TokenWebhookCacheTTL,
	}
	if opts.ClientCAFile != "" {
		ca, err := dynamiccertificates.NewDynamicCAContentFromFile("client-ca-bundle", opts.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("load client CA: %w", err)
		}
		g.ca = ca
		authnCfg.ClientCertificateCAContentProvider = ca
	}
	if opts.TokenWebhook {
		if client == nil {
			return nil, errors.New("token webhook authentication needs an API client")
		}
		authnCfg.TokenAccessReviewClient = client.AuthenticationV1()
		authnCfg.WebhookRetryBackoff = webhookBackoff()
	}
	authn, _, err := authnCfg.New()
	if err != nil {
		return nil, fmt.Errorf("build authenticator: %w", err)
	}
	g.authn = authn

	switch opts.Mode {
	case ModeAlwaysAllow:
		g.authz = authorizerfactory.NewAlwaysAllowAuthorizer()
	case ModeWebhook:
		if client == nil {
			return nil, errors.New("webhook authorization needs an API client")
		}
		authz, err := authorizerfactory.DelegatingAuthorizerConfig{
			SubjectAccessReviewClient: client.AuthorizationV1(),
			AllowCacheTTL:             opts.AuthorizedTTL,
			DenyCacheTTL:              opts.UnauthorizedTTL,
			WebhookRetryBackoff:       webhookBackoff(),
		}.New()
		if err != nil {
			return nil, fmt.Errorf("build authorizer: %w", err)
		}
		g.authz = authz
	default:
		return nil, fmt.Errorf("unknown authorization mode %q (want %s or %s)", opts.Mode, ModeWebhook, ModeAlwaysAllow)
	}
	return g, nil
}

// Run reloads the client CA file when it changes, until ctx ends, so a
// rotated CA needs no restart. It returns nil once ctx ends, also when
// there is nothing to reload, so it can run beside the server.
func (g *Guard) Run(ctx context.Context) error {
	if g.ca == nil {
		<-ctx.Done()
		return nil
	}
	g.ca.Run(ctx, 1)
	return nil
}
